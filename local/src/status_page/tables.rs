//! The two overview tables (counts per tenant and state; the latest messages) and
//! the friendly empty state.

use super::html::{Badge, Esc, Time};
use std::collections::BTreeMap;
use std::fmt::{self, Write};
use wa_shared::adapters::sqlite::overview::StateCount;
use wa_shared::domain::{Message, MessageState, TenantId};

/// Counts of one row: one per state of [`MessageState::ALL`], in that order.
type Row = [u64; MessageState::ALL.len()];

fn column(state: MessageState) -> usize {
    // ALL lists every state, so the position always exists.
    MessageState::ALL
        .iter()
        .position(|s| *s == state)
        .unwrap_or_default()
}

/// A number cell; zeros are greyed out.
fn cell(out: &mut String, tenant: Option<&TenantId>, state: &str, n: u64) -> fmt::Result {
    let zero = if n == 0 { " zero" } else { "" };
    match tenant {
        Some(t) => write!(
            out,
            "<td class=\"n{zero}\" data-tenant=\"{}\" data-state=\"{state}\">{n}</td>",
            Esc(t.as_str())
        ),
        None => write!(out, "<td class=\"n{zero}\" data-state=\"{state}\">{n}</td>"),
    }
}

/// `#counts`: a row per tenant, a column per state, totals in the last column and
/// in the footer. Cells carry `data-tenant`/`data-state` (footer: `data-state` only).
pub(super) fn counts(out: &mut String, counts: &[StateCount]) -> fmt::Result {
    let mut rows: BTreeMap<&TenantId, Row> = BTreeMap::new();
    for c in counts {
        rows.entry(&c.tenant).or_default()[column(c.state)] += c.count;
    }
    out.write_str(
        "<section id=\"counts\"><h2>Messages per tenant and state</h2><table>\
         <thead><tr><th>tenant</th>",
    )?;
    for state in MessageState::ALL {
        write!(out, "<th class=\"n\">{}</th>", Badge(state))?;
    }
    out.write_str("<th class=\"n\">total</th></tr></thead><tbody>")?;
    let mut totals: Row = Row::default();
    for (tenant, row) in &rows {
        write!(out, "<tr><th scope=\"row\">{}</th>", Esc(tenant.as_str()))?;
        for (i, state) in MessageState::ALL.iter().enumerate() {
            cell(out, Some(tenant), state.as_str(), row[i])?;
            totals[i] += row[i];
        }
        cell(out, Some(tenant), "total", row.iter().sum())?;
        out.write_str("</tr>")?;
    }
    out.write_str("</tbody><tfoot><tr><th scope=\"row\">all tenants</th>")?;
    for (i, state) in MessageState::ALL.iter().enumerate() {
        cell(out, None, state.as_str(), totals[i])?;
    }
    cell(out, None, "total", totals.iter().sum())?;
    out.write_str("</tr></tfoot></table></section>")
}

/// What the failure column says: the class of a failed message, the reason of a
/// suppressed one, and the last retryable failure of one queued again.
fn failure_cell(out: &mut String, m: &Message) -> fmt::Result {
    match (&m.failure, &m.suppression) {
        (Some(f), _) if m.state == MessageState::Failed => {
            let code = f.code.map(|c| format!(" {c}")).unwrap_or_default();
            write!(
                out,
                "<span class=\"fail\" title=\"{}\">{}</span>",
                Esc(&format!("{}{code}: {}", f.class, f.title)),
                Esc(f.class.as_str())
            )
        }
        (_, Some(s)) => write!(out, "{}", Esc(s.reason.as_str())),
        (Some(f), None) => write!(out, "<span class=\"muted\">retry: {}</span>", f.class),
        (None, None) => Ok(()),
    }
}

/// `#latest`: newest first; each id links to the message's timeline.
pub(super) fn latest(
    out: &mut String,
    messages: &[Message],
    selected: Option<&Message>,
) -> fmt::Result {
    write!(
        out,
        "<section id=\"latest\"><h2>Latest {} messages</h2><table><thead><tr>\
         <th>created (UTC)</th><th>tenant</th><th>message</th><th>to</th><th>state</th>\
         <th>template</th><th>wamid</th><th>failure</th></tr></thead><tbody>",
        messages.len()
    )?;
    for m in messages {
        let is_selected = selected.is_some_and(|s| s.tenant == m.tenant && s.id == m.id);
        let (tenant, id) = (Esc(m.tenant.as_str()), Esc(m.id.as_str()));
        write!(
            out,
            "<tr data-id=\"{id}\" data-state=\"{state}\"{class}><td>{created}</td><td>{tenant}</td>\
             <td><a class=\"mono\" href=\"/ui/messages/{tenant}/{id}\">{id}</a></td>\
             <td class=\"mono\">{to}</td><td>{badge}</td><td>{content}</td>\
             <td><span class=\"mono clip\" title=\"{wamid}\">{wamid}</span></td><td>",
            state = m.state.as_str(),
            class = if is_selected {
                " class=\"selected\""
            } else {
                ""
            },
            created = Time(m.created_at),
            to = Esc(&m.to.masked()),
            badge = Badge(m.state),
            content = Esc(m.template_name.as_deref().unwrap_or("text")),
            wamid = Esc(m.wamid.as_ref().map_or("", |w| w.as_str())),
        )?;
        failure_cell(out, m)?;
        out.write_str("</td></tr>")?;
    }
    out.write_str("</tbody></table></section>")
}

/// No message at all yet: say so, and show how to send the first one.
pub(super) fn empty(out: &mut String, host: &str) -> fmt::Result {
    write!(
        out,
        "<section id=\"empty\" class=\"empty\"><h2>No messages yet</h2>\
         <p>Send one (with the demo tenant that <code>wa dev</code> starts without a \
         config; use your tenant's API key otherwise) and watch it move here:</p>\
         <pre>curl -s http://{host}/v1/messages \\\n  \
         -H 'Authorization: Bearer wa_demo_key' \\\n  \
         -H 'Content-Type: application/json' \\\n  \
         -d '{{\"to\": \"+14155550123\", \"template\": {{\"name\": \"welcome_offer\", \"language\": \"en_US\"}}}}'</pre>\
         </section>",
        host = Esc(host),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa_shared::domain::{
        Failure, FailureClass, FailureSource, LifecyclePolicy, MessageId, NewMessage, PhoneNumber,
        Timestamp,
    };

    fn tenant(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    fn count(t: &str, state: MessageState, count: u64) -> StateCount {
        StateCount {
            tenant: tenant(t),
            state,
            count,
        }
    }

    fn message(t: &str, template: Option<&str>) -> Message {
        let new = NewMessage {
            tenant: tenant(t),
            id: MessageId::generate(),
            to: PhoneNumber::parse("+14155550123").unwrap(),
            template_name: template.map(str::to_owned),
            template_language: template.map(|_| "en_US".to_owned()),
            request: serde_json::json!({}),
            request_hash: "h".into(),
            metadata: None,
        };
        Message::new_queued(
            new,
            Timestamp::from_millis(1_780_481_730_123),
            &LifecyclePolicy::default(),
        )
    }

    #[test]
    fn counts_show_every_state_per_tenant_with_row_and_column_totals() {
        let mut out = String::new();
        counts(
            &mut out,
            &[
                count("acme", MessageState::Queued, 2),
                count("acme", MessageState::Read, 3),
                count("beta", MessageState::Failed, 1),
                count("beta", MessageState::Read, 4),
            ],
        )
        .unwrap();
        for (cell, n) in [
            (r#"data-tenant="acme" data-state="queued">"#, 2),
            (r#"data-tenant="acme" data-state="read">"#, 3),
            (r#"data-tenant="acme" data-state="failed">"#, 0),
            (r#"data-tenant="acme" data-state="total">"#, 5),
            (r#"data-tenant="beta" data-state="total">"#, 5),
            (r#"<td class="n" data-state="read">"#, 7),
            (r#"<td class="n" data-state="failed">"#, 1),
            (r#"<td class="n" data-state="total">"#, 10),
        ] {
            assert!(
                out.contains(&format!("{cell}{n}</td>")),
                "{cell}{n} in {out}"
            );
        }
        for state in MessageState::ALL {
            assert!(out.contains(&format!("data-tenant=\"beta\" data-state=\"{state}\"")));
        }
        assert!(out.find(">acme</th>") < out.find(">beta</th>"));
    }

    #[test]
    fn a_latest_row_masks_the_recipient_links_the_timeline_and_escapes_store_values() {
        let mut m = message("acme", Some("<img src=x onerror=alert(1)>"));
        m.state = MessageState::Failed;
        m.failure = Some(Failure {
            class: FailureClass::Recipient,
            code: Some(131026),
            title: "Message \"undeliverable\"".into(),
            detail: None,
            source: FailureSource::Webhook,
        });
        let mut out = String::new();
        latest(&mut out, std::slice::from_ref(&m), Some(&m)).unwrap();
        assert!(out.contains("+1******0123"), "{out}");
        assert!(
            !out.contains("4155550123"),
            "recipient must be masked: {out}"
        );
        assert!(out.contains(&format!("href=\"/ui/messages/acme/{}\"", m.id)));
        assert!(out.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(!out.contains("<img"), "{out}");
        assert!(out.contains("title=\"recipient 131026: Message &quot;undeliverable&quot;\""));
        assert!(out.contains(">recipient</span>"));
        assert!(out.contains("class=\"selected\""));
        assert!(out.contains("Latest 1 messages"));
    }

    #[test]
    fn a_text_message_says_text_and_a_queued_retry_shows_its_last_failure_class() {
        let mut m = message("acme", None);
        m.failure = Some(Failure {
            class: FailureClass::Transient,
            code: None,
            title: "HTTP 503".into(),
            detail: None,
            source: FailureSource::Graph,
        });
        let mut out = String::new();
        latest(&mut out, &[m], None).unwrap();
        assert!(out.contains("<td>text</td>"), "{out}");
        assert!(out.contains("retry: transient"));
        assert!(!out.contains("selected"));
    }

    #[test]
    fn the_empty_state_gives_a_curl_for_this_host_escaped() {
        let mut out = String::new();
        empty(&mut out, "127.0.0.1:8080\"><script>").unwrap();
        assert!(out.contains("No messages yet"));
        assert!(out.contains("curl -s http://127.0.0.1:8080&quot;&gt;&lt;script&gt;/v1/messages"));
        assert!(out.contains("Bearer wa_demo_key"));
        assert!(!out.contains("<script>"));
    }
}
