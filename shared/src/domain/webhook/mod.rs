//! Meta's webhooks, the pure part (DESIGN §6, reference §4): the signature check, the
//! subscription handshake, and parsing a POST body into typed events.
//!
//! The handler's order is: [`verify_signature_with_any`] on the raw bytes, then
//! [`parse_envelope`], then act on [`WebhookBatch::events`] and log/count
//! [`WebhookBatch::warnings`].

mod events;
mod handshake;
mod inbound;
mod management;
mod parse;
mod signature;
mod statuses;
mod warnings;
mod wire;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod tolerance_tests;

pub use events::{EventKind, SystemError, UnknownChange, WebhookBatch, WebhookError, WebhookEvent};
pub use handshake::{HandshakeQuery, HandshakeRefusal, answer_handshake};
pub use inbound::{InboundContent, InboundMessage, ReplyKind};
pub use management::{
    AccountRestriction, AccountUpdate, PhoneNumberQualityUpdate, TemplateCategoryUpdate,
    TemplateQualityUpdate, TemplateStatusUpdate, UserPreferenceUpdate,
};
pub use parse::{WHATSAPP_OBJECT, WebhookParseError, parse_envelope};
pub use signature::{
    MalformedSignature, SIGNATURE_HEADER, SignatureError, sign, verify_signature,
    verify_signature_with_any,
};
pub use statuses::{DeliveryStatus, Pricing, StatusUpdate};
pub use warnings::{ItemList, ParseWarning, Problem};
