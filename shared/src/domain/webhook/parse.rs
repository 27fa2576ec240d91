//! From raw body bytes to a [`WebhookBatch`]: the envelope is checked strictly (a
//! wrong shape is an error, so the handler can refuse it), everything inside it
//! leniently (an odd change or item is reported as a warning and the rest is kept).

use super::management;
use super::warnings::{ItemList, ParseWarning, Problem};
use super::wire::{self, LooseTime};
use super::{UnknownChange, WebhookBatch, WebhookError, WebhookEvent};
use crate::domain::{PhoneNumberId, Timestamp};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The `object` of every WhatsApp Business Account webhook.
pub const WHATSAPP_OBJECT: &str = "whatsapp_business_account";

/// Unix times at or above this are milliseconds: as seconds they would be past the
/// year 5000, as milliseconds they are after 1973.
const MILLIS_FROM: i64 = 100_000_000_000;

/// Longest piece of a foreign value quoted in an error or warning.
const QUOTE_MAX: usize = 64;

/// Why a body is not a webhook batch at all (nothing in it can be acted on).
#[derive(Debug, thiserror::Error)]
pub enum WebhookParseError {
    /// The body is not JSON (syntax error or truncated).
    #[error("webhook body is not valid JSON")]
    InvalidJson(#[source] serde_json::Error),
    /// JSON, but not `{"object": …, "entry": [{…}]}`.
    #[error("webhook body does not have the envelope shape")]
    WrongShape(#[source] serde_json::Error),
    /// The `object` is not `whatsapp_business_account` (quoted, truncated).
    #[error("webhook object is `{0}`, expected `whatsapp_business_account`")]
    WrongObject(String),
}

/// Parse a webhook POST body (already signature-checked) into typed events.
///
/// Fails only when the body is not JSON or not a WhatsApp webhook envelope; unknown
/// fields, unknown status values and unreadable changes or items are kept or dropped
/// and listed in [`WebhookBatch::warnings`]. Never panics, whatever the bytes.
pub fn parse_envelope(raw: &[u8]) -> Result<WebhookBatch, WebhookParseError> {
    let envelope: wire::Envelope<'_> = serde_json::from_slice(raw).map_err(|e| {
        if e.is_data() {
            WebhookParseError::WrongShape(e)
        } else {
            WebhookParseError::InvalidJson(e)
        }
    })?;
    if envelope.object != WHATSAPP_OBJECT {
        return Err(WebhookParseError::WrongObject(quote(&envelope.object)));
    }
    let mut batch = WebhookBatch::default();
    for (entry_index, entry) in envelope.entry.into_iter().enumerate() {
        let waba_id = match entry.id {
            Some(id) => id.0,
            None => {
                batch.warnings.push(ParseWarning {
                    entry: entry_index,
                    change: 0,
                    problem: Problem::MissingWabaId,
                });
                String::new()
            }
        };
        // An unreadable entry time is not worth a warning: nothing orders by it.
        let time = entry.time.as_ref().and_then(|t| read_time(t).ok());
        for (change_index, change) in entry.changes.into_iter().flatten().enumerate() {
            let mut scope = Scope {
                entry: entry_index,
                change: change_index,
                origin: Origin {
                    waba_id: &waba_id,
                    time,
                },
                batch: &mut batch,
            };
            scope.read_change(change.field, change.value);
        }
    }
    Ok(batch)
}

/// The entry a change came in: what every event of the change is stamped with.
#[derive(Clone, Copy)]
pub(super) struct Origin<'s> {
    /// `entry.id`.
    pub(super) waba_id: &'s str,
    /// `entry.time`.
    pub(super) time: Option<Timestamp>,
}

/// Where a change sits, and the batch its events and warnings go to.
pub(super) struct Scope<'s> {
    entry: usize,
    change: usize,
    pub(super) origin: Origin<'s>,
    batch: &'s mut WebhookBatch,
}

/// Deserialize a change's `value` as `T`, or say why it could not be.
fn typed<'v, T: Deserialize<'v>>(value: Option<&'v RawValue>) -> Result<T, String> {
    let raw = value.ok_or_else(|| "no value".to_owned())?;
    serde_json::from_str::<T>(raw.get()).map_err(|e| reason(&e))
}

impl Scope<'_> {
    pub(super) fn warn(&mut self, problem: Problem) {
        self.batch.warnings.push(ParseWarning {
            entry: self.entry,
            change: self.change,
            problem,
        });
    }

    pub(super) fn emit(&mut self, event: WebhookEvent) {
        self.batch.events.push(event);
    }

    fn read_change(&mut self, field: String, value: Option<&RawValue>) {
        let origin = self.origin;
        let outcome = match field.as_str() {
            "messages" => Some(typed(value).map(|v| self.read_messages(v))),
            "message_template_status_update" => Some(typed(value).map(|v| {
                self.emit(WebhookEvent::TemplateStatus(management::template_status(
                    origin, v,
                )));
            })),
            "message_template_quality_update" => Some(typed(value).map(|v| {
                self.emit(WebhookEvent::TemplateQuality(management::template_quality(
                    origin, v,
                )));
            })),
            "template_category_update" => Some(typed(value).map(|v| {
                self.emit(WebhookEvent::TemplateCategory(
                    management::template_category(origin, v),
                ));
            })),
            "phone_number_quality_update" => Some(typed(value).map(|v| {
                self.emit(WebhookEvent::PhoneNumberQuality(management::phone_quality(
                    origin, v,
                )));
            })),
            "account_update" => Some(typed(value).map(|v| {
                self.emit(WebhookEvent::AccountUpdate(management::account(origin, v)));
            })),
            "user_preferences" => Some(typed(value).map(|v| {
                for update in management::user_preferences(origin, v) {
                    self.emit(WebhookEvent::UserPreference(update));
                }
            })),
            _ => None,
        };
        match outcome {
            Some(Ok(())) => {}
            Some(Err(reason)) => {
                self.warn(Problem::MalformedChange {
                    field: quote(&field),
                    reason,
                });
                self.keep_unknown(field, value);
            }
            None => {
                self.warn(Problem::UnknownField {
                    field: quote(&field),
                });
                self.keep_unknown(field, value);
            }
        }
    }

    fn keep_unknown(&mut self, field: String, value: Option<&RawValue>) {
        // The raw slice was validated as JSON by the envelope parse, so this only
        // fails past serde_json's nesting limit; `null` then stands in for it.
        let value = value
            .and_then(|v| serde_json::from_str(v.get()).ok())
            .unwrap_or(serde_json::Value::Null);
        self.emit(WebhookEvent::Unknown(UnknownChange {
            waba_id: self.origin.waba_id.to_owned(),
            time: self.origin.time,
            field,
            value,
        }));
    }

    fn read_messages(&mut self, value: wire::MessagesValue<'_>) {
        let phone_number_id = value
            .metadata
            .and_then(|m| m.phone_number_id)
            .and_then(|id| PhoneNumberId::parse(&id.0).ok());
        if phone_number_id.is_none() {
            self.warn(Problem::MissingPhoneNumberId);
        }
        let contacts = value.contacts.unwrap_or_default();
        for (index, raw) in value.statuses.into_iter().flatten().enumerate() {
            if let Some(status) = self.item(ItemList::Statuses, index, raw) {
                super::statuses::read(self, &phone_number_id, index, status);
            }
        }
        for (index, raw) in value.messages.into_iter().flatten().enumerate() {
            if let Some(message) = self.item(ItemList::Messages, index, raw) {
                super::inbound::read(self, &phone_number_id, &contacts, index, message);
            }
        }
        for (index, raw) in value.errors.into_iter().flatten().enumerate() {
            if let Some(error) = self.item::<wire::Error>(ItemList::Errors, index, raw) {
                self.emit(WebhookEvent::SystemError(super::SystemError {
                    waba_id: self.origin.waba_id.to_owned(),
                    phone_number_id: phone_number_id.clone(),
                    error: read_error(error),
                }));
            }
        }
    }

    /// One item of a list, or `None` (reported) if it does not deserialize.
    fn item<'v, T: Deserialize<'v>>(
        &mut self,
        list: ItemList,
        index: usize,
        raw: &'v RawValue,
    ) -> Option<T> {
        match serde_json::from_str(raw.get()) {
            Ok(item) => Some(item),
            Err(e) => {
                self.drop_item(list, index, reason(&e));
                None
            }
        }
    }

    pub(super) fn drop_item(&mut self, list: ItemList, index: usize, reason: String) {
        self.warn(Problem::DroppedItem {
            list,
            index,
            reason,
        });
    }

    /// The timestamp of an item, reporting it when missing or unreadable.
    pub(super) fn item_time(
        &mut self,
        list: ItemList,
        index: usize,
        time: Option<&LooseTime>,
    ) -> Option<Timestamp> {
        let read = match time {
            Some(t) => read_time(t).map_err(Some),
            None => Err(None),
        };
        match read {
            Ok(t) => Some(t),
            Err(raw) => {
                self.warn(Problem::BadTimestamp { list, index, raw });
                None
            }
        }
    }
}

/// Interpret a Unix time in seconds, or in milliseconds when it is too large to be
/// seconds; `Err` carries the value as sent.
pub(super) fn read_time(time: &LooseTime) -> Result<Timestamp, String> {
    match time {
        LooseTime::Number(n) if *n < 0 => Err(n.to_string()),
        LooseTime::Number(n) if *n >= MILLIS_FROM => Ok(Timestamp::from_millis(*n)),
        LooseTime::Number(n) => Ok(Timestamp::from_secs(*n)),
        LooseTime::Text(s) => Err(quote(s)),
    }
}

pub(super) fn read_error(error: wire::Error) -> WebhookError {
    WebhookError {
        code: error.code.and_then(|c| c.0),
        title: error.title,
        message: error.message,
        details: error.error_data.and_then(|d| d.details),
        href: error.href,
    }
}

/// serde's explanation without the values it quotes (`invalid type: string "…"`):
/// warnings are logged, and a quoted value may be a message body or a phone number.
/// Field names (in backticks) and positions are kept.
pub(super) fn reason(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    for c in text.chars() {
        if c == '"' {
            if !quoted {
                out.push_str("\"…\"");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

/// A foreign string cut to [`QUOTE_MAX`] characters for errors and warnings.
pub(super) fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_MAX) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}
