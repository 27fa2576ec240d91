//! `#endpoints`: each event endpoint's health, per tenant: last success, failing
//! since, backlog (pending deliveries), dead letters, disabled.

use super::html::{Esc, Time};
use crate::events::EndpointHealth;
use std::fmt::{self, Write};
use wa_shared::domain::Timestamp;

fn time_cell(out: &mut String, ms: Option<i64>, class: &str) -> fmt::Result {
    match ms {
        Some(ms) => write!(
            out,
            "<td class=\"{class}\">{}</td>",
            Time(Timestamp::from_millis(ms))
        ),
        None => write!(out, "<td class=\"{class} muted\">–</td>"),
    }
}

fn count_cell(out: &mut String, n: u64, what: &str) -> fmt::Result {
    let zero = if n == 0 { " zero" } else { "" };
    write!(out, "<td class=\"n{zero}\" data-count=\"{what}\">{n}</td>")
}

/// The table (nothing when no endpoint is configured).
pub(super) fn endpoints(out: &mut String, rows: &[EndpointHealth]) -> fmt::Result {
    if rows.is_empty() {
        return Ok(());
    }
    out.write_str(
        "<section id=\"endpoints\"><h2>Event endpoints</h2><table><thead><tr>\
         <th>tenant</th><th>url</th><th>health</th><th>last success</th><th>failing since</th>\
         <th class=\"n\">backlog</th><th class=\"n\">dead letters</th><th class=\"n\">delivered</th>\
         <th>last error</th></tr></thead><tbody>",
    )?;
    for e in rows {
        let health = if e.disabled_ms.is_some() {
            "<span class=\"flag\">disabled</span>"
        } else if e.failing_since_ms.is_some() {
            "<span class=\"flag late\">failing</span>"
        } else {
            "<span class=\"badge st-delivered\">ok</span>"
        };
        let state = if e.disabled_ms.is_some() {
            "disabled"
        } else if e.failing_since_ms.is_some() {
            "failing"
        } else {
            "ok"
        };
        write!(
            out,
            "<tr data-tenant=\"{t}\" data-url=\"{u}\" data-health=\"{state}\"><th scope=\"row\">{t}</th>\
             <td class=\"mono\">{u}</td><td>{health}</td>",
            t = Esc(&e.tenant),
            u = Esc(&e.url),
        )?;
        time_cell(out, e.last_success_ms, "last-success")?;
        time_cell(out, e.failing_since_ms, "failing-since")?;
        count_cell(out, e.pending, "backlog")?;
        count_cell(out, e.dead, "dead")?;
        count_cell(out, e.delivered, "delivered")?;
        match &e.last_error {
            Some(err) if e.failing_since_ms.is_some() || e.disabled_ms.is_some() => write!(
                out,
                "<td><span class=\"fail clip\" title=\"{0}\">{0}</span></td>",
                Esc(err)
            )?,
            _ => out.write_str("<td></td>")?,
        }
        out.write_str("</tr>")?;
    }
    out.write_str(
        "</tbody></table><p class=\"muted\">Dead letters and a disabled endpoint: \
         <code>wa events replay --since 1d --data FILE</code>.</p></section>",
    )
}
