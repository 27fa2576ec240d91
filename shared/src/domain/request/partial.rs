//! A request as far as it parsed: each field [`Slot::Absent`], [`Slot::Invalid`] (a
//! problem was recorded) or [`Slot::Present`], so validation can still check the template
//! rules of the parts that parsed, without reporting a broken field twice.

use super::{
    BodyParams, ButtonParam, Content, HeaderParam, NamedValue, ParamValue, ReplyContext,
    SendRequest, TemplateMessage,
};
use serde_json::{Map, Value};

/// A field after parsing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Slot<T> {
    /// Not given (or `null`).
    Absent,
    /// Given but unusable; a problem says why.
    Invalid,
    /// Given and well formed.
    Present(T),
}

impl<T> Slot<T> {
    pub(crate) fn present(&self) -> Option<&T> {
        match self {
            Slot::Present(v) => Some(v),
            _ => None,
        }
    }

    pub(crate) fn present_mut(&mut self) -> Option<&mut T> {
        match self {
            Slot::Present(v) => Some(v),
            _ => None,
        }
    }

    pub(crate) fn is_absent(&self) -> bool {
        matches!(self, Slot::Absent)
    }
}

/// A request as far as it parsed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PartialRequest {
    pub(crate) to: Slot<String>,
    pub(crate) template: Slot<PartialTemplate>,
    /// Any content but a template (`Invalid` when several free-form keys are given).
    pub(crate) free_form: Slot<Content>,
    pub(crate) context: Slot<ReplyContext>,
    pub(crate) metadata: Slot<Map<String, Value>>,
    pub(crate) from: Slot<String>,
    /// `send_at`, canonical (UTC, milliseconds).
    pub(crate) send_at: Slot<String>,
}

/// A template send as far as it parsed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PartialTemplate {
    pub(crate) name: Slot<String>,
    pub(crate) language: Slot<String>,
    pub(crate) header: Slot<HeaderParam>,
    pub(crate) body: Slot<PartialBody>,
    /// Each button with its position in the request's `buttons` array.
    pub(crate) buttons: Slot<Vec<Slot<ButtonParam>>>,
}

/// Body values as far as they parsed; element slots keep positions and names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PartialBody {
    Positional(Vec<Slot<ParamValue>>),
    Named(Vec<(String, Slot<ParamValue>)>),
}

impl PartialRequest {
    /// The request, if every field parsed and exactly one content key is present.
    pub(crate) fn into_request(self) -> Option<SendRequest> {
        let Slot::Present(to) = self.to else {
            return None;
        };
        let content = match (self.template, self.free_form) {
            (Slot::Present(t), Slot::Absent) => Content::Template(t.into_message()?),
            (Slot::Absent, Slot::Present(c)) => c,
            _ => return None,
        };
        let context = optional(self.context)?;
        let metadata = match self.metadata {
            Slot::Absent => None,
            Slot::Present(m) => Some(m),
            Slot::Invalid => return None,
        };
        let from = match self.from {
            Slot::Absent => None,
            Slot::Present(f) => Some(f),
            Slot::Invalid => return None,
        };
        let send_at = match self.send_at {
            Slot::Absent => None,
            Slot::Present(at) => Some(at),
            Slot::Invalid => return None,
        };
        Some(SendRequest {
            to,
            context,
            content,
            metadata,
            from,
            send_at,
        })
    }
}

impl PartialTemplate {
    fn into_message(self) -> Option<TemplateMessage> {
        let (Slot::Present(name), Slot::Present(language)) = (self.name, self.language) else {
            return None;
        };
        let header = optional(self.header)?;
        let body = match self.body {
            Slot::Absent => None,
            Slot::Invalid => return None,
            Slot::Present(PartialBody::Positional(values)) => Some(BodyParams::Positional(
                values.into_iter().map(required).collect::<Option<_>>()?,
            )),
            Slot::Present(PartialBody::Named(values)) => Some(BodyParams::Named(
                values
                    .into_iter()
                    .map(|(name, v)| {
                        Some(NamedValue {
                            name,
                            value: required(v)?,
                        })
                    })
                    .collect::<Option<_>>()?,
            )),
        };
        let buttons = match self.buttons {
            Slot::Absent => Vec::new(),
            Slot::Invalid => return None,
            Slot::Present(list) => list.into_iter().map(required).collect::<Option<_>>()?,
        };
        Some(TemplateMessage {
            name,
            language,
            header,
            body,
            buttons,
        })
    }
}

pub(super) fn required<T>(slot: Slot<T>) -> Option<T> {
    match slot {
        Slot::Present(v) => Some(v),
        _ => None,
    }
}

/// `Some(None)` when absent, `None` when invalid.
pub(super) fn optional<T>(slot: Slot<T>) -> Option<Option<T>> {
    match slot {
        Slot::Absent => Some(None),
        Slot::Present(v) => Some(Some(v)),
        Slot::Invalid => None,
    }
}
