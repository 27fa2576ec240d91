//! What parsing tolerated: each warning says where in the envelope it was and what
//! was odd, so the handler can log it and count it by [`Problem::code`].

use std::fmt;

/// Something tolerated while parsing, with where it was (`entry` and `change` are
/// indexes into the envelope's arrays).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseWarning {
    /// Index in `entry[]`.
    pub entry: usize,
    /// Index in `entry[].changes[]` (0 for problems of the entry itself).
    pub change: usize,
    /// What was wrong.
    pub problem: Problem,
}

/// Which list of a `messages` change an item came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemList {
    /// `value.statuses[]`.
    Statuses,
    /// `value.messages[]`.
    Messages,
    /// `value.errors[]`.
    Errors,
}

impl ItemList {
    /// The JSON key of the list.
    pub const fn as_str(self) -> &'static str {
        match self {
            ItemList::Statuses => "statuses",
            ItemList::Messages => "messages",
            ItemList::Errors => "errors",
        }
    }
}

/// What a [`ParseWarning`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// An entry without `id`: its events carry an empty WABA id.
    MissingWabaId,
    /// A change whose `field` we do not handle; kept as [`WebhookEvent::Unknown`](super::WebhookEvent::Unknown).
    UnknownField {
        /// The `field`.
        field: String,
    },
    /// A known `field` whose `value` is missing or not the expected shape; kept as
    /// [`WebhookEvent::Unknown`](super::WebhookEvent::Unknown).
    MalformedChange {
        /// The `field`.
        field: String,
        /// The parser's explanation.
        reason: String,
    },
    /// A `messages` change without a usable `metadata.phone_number_id`.
    MissingPhoneNumberId,
    /// An item that could not be read and was dropped (its neighbours were kept).
    DroppedItem {
        /// The list it was in.
        list: ItemList,
        /// Its index in that list.
        index: usize,
        /// Why.
        reason: String,
    },
    /// A status whose `status` value we do not know; kept as `DeliveryStatus::Unknown`.
    UnknownStatus {
        /// Its index in `statuses[]`.
        index: usize,
        /// The value (e.g. `deleted`).
        status: String,
    },
    /// An item whose `timestamp` is missing or unreadable; kept with no timestamp.
    BadTimestamp {
        /// The list it was in.
        list: ItemList,
        /// Its index in that list.
        index: usize,
        /// The value as sent, `None` if absent.
        raw: Option<String>,
    },
}

impl Problem {
    /// Stable snake_case label for metrics.
    pub const fn code(&self) -> &'static str {
        match self {
            Problem::MissingWabaId => "missing_waba_id",
            Problem::UnknownField { .. } => "unknown_field",
            Problem::MalformedChange { .. } => "malformed_change",
            Problem::MissingPhoneNumberId => "missing_phone_number_id",
            Problem::DroppedItem { .. } => "dropped_item",
            Problem::UnknownStatus { .. } => "unknown_status",
            Problem::BadTimestamp { .. } => "bad_timestamp",
        }
    }
}

impl fmt::Display for ParseWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (e, c) = (self.entry, self.change);
        match &self.problem {
            Problem::MissingWabaId => write!(f, "entry {e} has no id"),
            Problem::UnknownField { field } => {
                write!(f, "unknown field `{field}` in change {c} of entry {e}")
            }
            Problem::MalformedChange { field, reason } => write!(
                f,
                "malformed `{field}` value in change {c} of entry {e}: {reason}"
            ),
            Problem::MissingPhoneNumberId => {
                write!(f, "no metadata.phone_number_id in change {c} of entry {e}")
            }
            Problem::DroppedItem {
                list,
                index,
                reason,
            } => write!(
                f,
                "dropped {}[{index}] in change {c} of entry {e}: {reason}",
                list.as_str()
            ),
            Problem::UnknownStatus { index, status } => write!(
                f,
                "unknown status value `{status}` in statuses[{index}] of change {c} of entry {e}"
            ),
            Problem::BadTimestamp { list, index, raw } => match raw {
                Some(raw) => write!(
                    f,
                    "unreadable timestamp `{raw}` in {}[{index}] of change {c} of entry {e}",
                    list.as_str()
                ),
                None => write!(
                    f,
                    "missing timestamp in {}[{index}] of change {c} of entry {e}",
                    list.as_str()
                ),
            },
        }
    }
}
