//! Directory events: a contact's opt-out changed, a template's status changed.

use super::{Event, EventType};
use crate::domain::ids::{PhoneNumber, TenantId};
use crate::domain::template::TemplateStatus;
use crate::domain::time::Timestamp;
use serde_json::json;
use sha2::{Digest, Sha256};

/// Hex characters of the template event's hash kept in its id (96 bits).
const TEMPLATE_ID_HEX: usize = 24;

/// `contact.opted_out` (or `contact.opted_in` when `opted_out` is false): `who` changed
/// its opt-out at `at`, because of `cause_id` (the inbound message's wamid for a
/// keyword, or the id of the operator's change).
///
/// The id is `evt_opt_<cause_id>_out` (or `_in`): the same cause always yields the
/// same event. `data` is `{contact, opted_out, cause}`.
pub fn contact_opt_change(
    tenant: &TenantId,
    who: &PhoneNumber,
    opted_out: bool,
    at: Timestamp,
    cause_id: &str,
) -> Event {
    let (event_type, suffix) = if opted_out {
        (EventType::ContactOptedOut, "out")
    } else {
        (EventType::ContactOptedIn, "in")
    };
    Event {
        id: format!("evt_opt_{cause_id}_{suffix}"),
        event_type,
        timestamp: at.to_rfc3339(),
        tenant: tenant.clone(),
        data: json!({ "contact": who, "opted_out": opted_out, "cause": cause_id }),
    }
}

/// `template.status_changed`: Meta moved the tenant's template `name`/`language` to
/// `status` at `at` (`reason` as Meta gave it, e.g. `NONE` for a pause).
///
/// The id is `evt_tpl_` + the first 24 hex characters of the SHA-256 of tenant, name,
/// language, status and the instant's milliseconds (NUL-separated): a redelivered
/// webhook yields the same id. `data` is `{name, language, status, reason}`.
pub fn template_status_changed(
    tenant: &TenantId,
    name: &str,
    language: &str,
    status: &TemplateStatus,
    reason: Option<&str>,
    at: Timestamp,
) -> Event {
    let mut hash = Sha256::new();
    for part in [
        tenant.as_str(),
        name,
        language,
        status.as_str(),
        &at.as_millis().to_string(),
    ] {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    let digest = hex::encode(hash.finalize());
    let short = digest.get(..TEMPLATE_ID_HEX).unwrap_or(&digest);
    Event {
        id: format!("evt_tpl_{short}"),
        event_type: EventType::TemplateStatusChanged,
        timestamp: at.to_rfc3339(),
        tenant: tenant.clone(),
        data: json!({
            "name": name,
            "language": language,
            "status": status.as_str(),
            "reason": reason,
        }),
    }
}
