//! `#tenants`: each tenant's sending state: active or suspended, on hold (since when,
//! why), its number's quality (and whether marketing is held for it), its last
//! account event. The account-state table (`wa_shared::domain::account_state`) says
//! what each signal does.

use super::html::{Esc, Time};
use std::fmt::{self, Write};
use wa_shared::domain::account_state::marketing_held;
use wa_shared::domain::tenant::{TenantProfile, TenantStatus};

/// The table (nothing without tenants).
pub(super) fn tenants(out: &mut String, rows: &[TenantProfile]) -> fmt::Result {
    if rows.is_empty() {
        return Ok(());
    }
    out.write_str(
        "<section id=\"tenants\"><h2>Tenants</h2><table><thead><tr>\
         <th>tenant</th><th>sending</th><th>number quality</th><th>account</th>\
         </tr></thead><tbody>",
    )?;
    for t in rows {
        let state = match (&t.hold, t.status) {
            (_, TenantStatus::Suspended) => "suspended",
            (Some(_), _) => "held",
            (None, _) => "active",
        };
        write!(
            out,
            "<tr data-tenant=\"{id}\" data-sending=\"{state}\"><th scope=\"row\">{id}</th><td>",
            id = Esc(t.id.as_str())
        )?;
        match (&t.hold, t.status) {
            (_, TenantStatus::Suspended) => {
                out.write_str("<span class=\"flag\">suspended</span>")?
            }
            (Some(h), _) => write!(
                out,
                "<span class=\"flag late\">on hold</span> since {} · {}{}",
                Time(h.since),
                h.code.map(|c| format!("{c} ")).unwrap_or_default(),
                Esc(&h.reason)
            )?,
            (None, _) => out.write_str("<span class=\"badge st-delivered\">active</span>")?,
        }
        out.write_str("</td><td>")?;
        match &t.phone_quality {
            Some(q) => {
                write!(out, "<span class=\"mono\">{}</span>", Esc(q))?;
                if marketing_held(t) {
                    out.write_str(
                        " <span class=\"flag\" data-marketing=\"held\">marketing held</span>",
                    )?;
                }
            }
            None => out.write_str("<span class=\"muted\">–</span>")?,
        }
        out.write_str("</td><td>")?;
        match &t.account_event {
            Some(e) => write!(out, "<span class=\"mono\">{}</span>", Esc(e))?,
            None => out.write_str("<span class=\"muted\">–</span>")?,
        }
        out.write_str("</td></tr>")?;
    }
    out.write_str("</tbody></table></section>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa_shared::domain::Timestamp;
    use wa_shared::domain::tenant::TenantHold;

    #[test]
    fn held_flagged_and_suspended_tenants_say_so() {
        let mut held = wa_testkit_free_profile("acme");
        held.hold = Some(TenantHold {
            code: Some(190),
            reason: "access token expired".into(),
            detail: None,
            since: Timestamp::from_millis(0),
            probe_at: Timestamp::from_millis(120_000),
        });
        held.phone_quality = Some("FLAGGED TIER_250".into());
        let mut suspended = wa_testkit_free_profile("globex");
        suspended.status = TenantStatus::Suspended;
        let mut out = String::new();
        tenants(&mut out, &[held, suspended]).unwrap();
        assert!(
            out.contains("data-tenant=\"acme\" data-sending=\"held\""),
            "{out}"
        );
        assert!(out.contains("190 access token expired"), "{out}");
        assert!(out.contains("data-marketing=\"held\""), "{out}");
        assert!(
            out.contains("data-tenant=\"globex\" data-sending=\"suspended\""),
            "{out}"
        );
    }

    fn wa_testkit_free_profile(id: &str) -> TenantProfile {
        serde_json::from_value(serde_json::json!({
            "id": id, "phone_number_id": "1000001", "waba_id": "2000001", "queue": id,
            "token_ref": "env:X", "max_concurrency": 2, "throughput_mps": 80, "updated_at": 0
        }))
        .unwrap()
    }
}
