//! The template catalog: Meta's message-template JSON, and what a send of each needs.
//!
//! - [`model`]: templates and components exactly as the Graph API returns them.
//! - [`buttons`]: every button type, unknown ones kept verbatim.
//! - [`requirements`]: [`SendRequirements`] derived from a template.
//! - [`catalog`]: [`TemplateCatalog`], lookup by `(name, language)`.

pub mod buttons;
pub mod catalog;
pub mod model;
pub mod requirements;
mod tagged;

#[cfg(test)]
mod tests;

pub use buttons::{Button, OtpButton, OtpType, PhoneNumberButton, PlainButton, UrlButton};
pub use catalog::{Cursors, Lookup, Paging, TemplateCatalog, TemplateError, TemplatePage};
pub use model::{
    BodyComponent, BodyExample, ButtonsComponent, Component, FooterComponent, HeaderComponent,
    HeaderExample, HeaderFormat, NamedParamExample, ParameterFormat, Template, TemplateCategory,
    TemplateStatus,
};
pub use requirements::{
    ButtonRequirement, HeaderRequirement, MediaKind, ParamSlots, SendRequirements, slots_in_text,
};
