//! One message's timeline: its facts, every state timestamp and every history entry,
//! in time order. The data is the API's own view of the message
//! ([`message_view`], what `GET /v1/messages/{id}` answers), so the page shows what
//! callers see; only the recipient is masked.

use super::html::{Badge, Esc, Rfc3339, Time};
use serde_json::Value;
use std::fmt::{self, Write};
use wa_shared::app::intake::view::message_view;
use wa_shared::domain::{Message, MessageState, Timestamp};

/// `#timeline` for a message that exists.
pub(super) fn timeline(out: &mut String, m: &Message) -> fmt::Result {
    let view = message_view(m);
    let text = |key: &str| view.get(key).and_then(Value::as_str);
    write!(
        out,
        "<section id=\"timeline\" data-id=\"{id}\"><div class=\"panel-head\">\
         <h2>Message <code>{id}</code></h2><a href=\"/\">close</a></div><dl class=\"facts\">\
         <dt>tenant</dt><dd>{tenant}</dd><dt>state</dt><dd>{badge}{in_flight}</dd>\
         <dt>to</dt><dd class=\"mono\">{to}</dd>",
        id = Esc(m.id.as_str()),
        tenant = Esc(m.tenant.as_str()),
        badge = Badge(m.state),
        in_flight = if view.get("in_flight").is_some() {
            " <span class=\"muted\">Graph call in flight</span>"
        } else {
            ""
        },
        to = Esc(&m.to.masked()),
    )?;
    match view.get("template") {
        Some(t) => write!(
            out,
            "<dt>template</dt><dd>{} <span class=\"muted\">{}</span></dd>",
            Esc(t["name"].as_str().unwrap_or_default()),
            Esc(t["language"].as_str().unwrap_or_default())
        )?,
        None => out.write_str("<dt>template</dt><dd>text</dd>")?,
    }
    if let Some(w) = text("wamid") {
        write!(out, "<dt>wamid</dt><dd class=\"mono\">{}</dd>", Esc(w))?;
    }
    if let Some(s) = text("message_status") {
        write!(out, "<dt>message status</dt><dd>{}</dd>", Esc(s))?;
    }
    write!(out, "<dt>attempts</dt><dd>{}</dd>", m.attempt)?;
    for (label, key) in [
        ("created", "created_at"),
        ("updated", "updated_at"),
        ("ambiguous since", "ambiguous_at"),
    ] {
        if let Some(t) = text(key) {
            write!(out, "<dt>{label}</dt><dd>{}</dd>", Rfc3339(t))?;
        }
    }
    if let Some(f) = view.get("failure") {
        out.write_str("<dt>failure</dt><dd>")?;
        failure(out, f)?;
        out.write_str("</dd>")?;
    }
    if let Some(s) = view.get("suppression") {
        out.write_str("<dt>suppression</dt><dd>")?;
        suppression(out, s)?;
        out.write_str("</dd>")?;
    }
    if let Some(flags) = view.get("flags").and_then(Value::as_array) {
        out.write_str("<dt>flags</dt><dd>")?;
        for flag in flags.iter().filter_map(Value::as_str) {
            write!(out, "<span class=\"flag\">{}</span> ", Esc(flag))?;
        }
        out.write_str("</dd>")?;
    }
    if m.history_dropped > 0 {
        write!(
            out,
            "<dt>history</dt><dd><span class=\"flag\">{} later events not kept (history full)</span></dd>",
            m.history_dropped
        )?;
    }
    out.write_str("</dl>")?;
    state_times(out, &view)?;
    history(out, &view)?;
    out.write_str("</section>")
}

/// `#timeline` for a message that does not exist (or not for that tenant).
pub(super) fn not_found(out: &mut String, tenant: &str, id: &str) -> fmt::Result {
    write!(
        out,
        "<section id=\"timeline\"><div class=\"panel-head\"><h2>No such message</h2>\
         <a href=\"/\">close</a></div><p>Tenant <code>{}</code> has no message <code>{}</code>.</p>\
         </section>",
        Esc(tenant),
        Esc(id)
    )
}

/// `#state-times`: when the message first reached each state, earliest first.
fn state_times(out: &mut String, view: &Value) -> fmt::Result {
    let mut times: Vec<(&str, &str)> = view["timestamps"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(field, t)| Some((field.as_str(), t.as_str()?)))
        .collect();
    // The view's times share one fixed-width UTC format, so text order is time order;
    // the stable sort keeps lifecycle order for equal times.
    times.sort_by_key(|(_, t)| *t);
    out.write_str("<h3>State timestamps</h3><ol id=\"state-times\" class=\"chain\">")?;
    for (field, t) in times {
        let name = field.trim_end_matches("_at");
        write!(out, "<li data-field=\"{}\">", Esc(field))?;
        match MessageState::parse(name) {
            Some(state) => write!(out, "{}", Badge(state))?,
            None => write!(out, "{}", Esc(name))?,
        }
        write!(out, " {}</li>", Rfc3339(t))?;
    }
    out.write_str("</ol>")
}

/// `#history`: every recorded event, in the view's order (time, then name).
fn history(out: &mut String, view: &Value) -> fmt::Result {
    let wamid = view.get("wamid").and_then(Value::as_str);
    out.write_str(
        "<h3>History</h3><table id=\"history\"><thead><tr><th>time (UTC)</th><th>source</th>\
         <th>event</th><th>state after</th><th>outcome</th><th>details</th></tr></thead><tbody>",
    )?;
    for entry in view["history"].as_array().into_iter().flatten() {
        let str_of = |key: &str| entry.get(key).and_then(Value::as_str).unwrap_or_default();
        let event = str_of("event");
        let (source, kind) = event.split_once('.').unwrap_or(("", event));
        let outcome = str_of("outcome");
        write!(
            out,
            "<tr data-event=\"{event}\" data-outcome=\"{outcome}\"><td>{at}</td><td>{source}</td>\
             <td>{kind}</td><td>{state}</td><td>{badge}</td><td class=\"details\">",
            event = Esc(event),
            outcome = Esc(outcome),
            at = Rfc3339(str_of("at")),
            source = Esc(source),
            kind = Esc(kind),
            state = Esc(str_of("state")),
            badge = OutcomeBadge(outcome),
        )?;
        if let Some(detail) = entry.get("detail") {
            details(out, detail, wamid)?;
        }
        out.write_str("</td></tr>")?;
    }
    out.write_str("</tbody></table>")
}

/// What an event did: plain for the usual case, flagged when it came late (out of
/// order) or contradicted what we knew (anomaly).
struct OutcomeBadge<'a>(&'a str);

impl std::fmt::Display for OutcomeBadge<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            "timestamp_filled" => f.write_str(
                "<span class=\"flag late\" title=\"arrived after a later state: only its \
                 timestamp was filled\">out of order</span>",
            ),
            "anomaly" => f.write_str(
                "<span class=\"flag\" title=\"contradicted the stored state: recorded and \
                 flagged, state kept\">anomaly</span>",
            ),
            other => write!(f, "<span class=\"muted\">{}</span>", Esc(other)),
        }
    }
}

/// A history entry's detail, key by key; keys the page does not know are shown raw.
fn details(out: &mut String, detail: &Value, wamid: Option<&str>) -> fmt::Result {
    let Some(fields) = detail.as_object() else {
        return write!(out, "<code>{}</code>", Esc(&detail.to_string()));
    };
    let mut first = true;
    for (key, value) in fields {
        let instant = value.as_i64().map(Timestamp::from_millis);
        let sep = if first { "" } else { " · " };
        match (key.as_str(), instant) {
            ("message_status", _) if value.is_null() => continue,
            ("wamid", _) if value.as_str() == wamid => continue,
            ("attempt", _) => write!(out, "{sep}attempt {}", Esc(&value.to_string()))?,
            ("failure", _) => {
                out.write_str(sep)?;
                failure(out, value)?;
            }
            ("suppression", _) => {
                out.write_str(sep)?;
                suppression(out, value)?;
            }
            ("occurred_at", Some(t)) => write!(out, "{sep}Meta time {}", Time(t))?,
            ("not_before", Some(t)) => write!(out, "{sep}retry after {}", Time(t))?,
            ("lease_until", Some(t)) => write!(out, "{sep}lease until {}", Time(t))?,
            ("next", Some(t)) => write!(out, "{sep}next sweep {}", Time(t))?,
            (key, _) => write!(
                out,
                "{sep}<span class=\"muted\">{}</span> <code>{}</code>",
                Esc(&key.replace('_', " ")),
                Esc(&compact(value))
            )?,
        }
        first = false;
    }
    Ok(())
}

/// A string as itself, anything else as compact JSON.
fn compact(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

/// A failure (the stored `Failure` as JSON): class, code, title, detail, source.
fn failure(out: &mut String, f: &Value) -> fmt::Result {
    let str_of = |key: &str| f.get(key).and_then(Value::as_str);
    write!(
        out,
        "<span class=\"fail\">{}</span>",
        Esc(str_of("class").unwrap_or("unknown"))
    )?;
    if let Some(code) = f.get("code").and_then(Value::as_i64) {
        write!(out, " <code>{code}</code>")?;
    }
    if let Some(title) = str_of("title") {
        write!(out, " {}", Esc(title))?;
    }
    if let Some(detail) = str_of("detail") {
        write!(out, " — {}", Esc(detail))?;
    }
    if let Some(source) = str_of("source") {
        write!(out, " <span class=\"muted\">({})</span>", Esc(source))?;
    }
    Ok(())
}

/// A suppression: reason and optional detail.
fn suppression(out: &mut String, s: &Value) -> fmt::Result {
    write!(
        out,
        "suppressed: {}",
        Esc(s.get("reason").and_then(Value::as_str).unwrap_or("unknown"))
    )?;
    if let Some(detail) = s.get("detail").and_then(Value::as_str) {
        write!(out, " — {}", Esc(detail))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa_shared::domain::lifecycle::{
        EventKind, LifecycleEvent, ProviderStatus, ProviderStatusKind, decide,
    };
    use wa_shared::domain::{
        Failure, FailureClass, FailureSource, LifecyclePolicy, MessageId, NewMessage, PhoneNumber,
        TenantId, Wamid,
    };

    const T0: i64 = 1_780_481_730_000;

    fn at(offset_ms: i64) -> Timestamp {
        Timestamp::from_millis(T0 + offset_ms)
    }

    fn queued() -> Message {
        let new = NewMessage {
            tenant: TenantId::parse("acme").unwrap(),
            id: MessageId::generate(),
            to: PhoneNumber::parse("+14155550123").unwrap(),
            template_name: Some("order_shipped".into()),
            template_language: Some("en_US".into()),
            request: serde_json::json!({}),
            request_hash: "h".into(),
            metadata: None,
        };
        Message::new_queued(new, at(0), &LifecyclePolicy::default())
    }

    /// Apply `event` to `m` the way the store does (decide, then apply the transition).
    fn apply(m: &mut Message, event: LifecycleEvent) {
        let decision = decide(m, &event, &LifecyclePolicy::default());
        let transition = decision
            .into_transition()
            .expect("the event changes the message");
        assert!(transition.holds(m));
        transition.apply_to(m);
    }

    fn status(kind: ProviderStatusKind, wamid: &Wamid, received: i64) -> LifecycleEvent {
        LifecycleEvent::new(
            at(received),
            EventKind::Provider(ProviderStatus {
                wamid: wamid.clone(),
                status: kind,
                occurred_at: at(received - 1),
                failure: (kind == ProviderStatusKind::Failed).then(|| Failure {
                    class: FailureClass::Recipient,
                    code: Some(131026),
                    title: "Message <undeliverable>".into(),
                    detail: None,
                    source: FailureSource::Webhook,
                }),
                detail: None,
            }),
        )
    }

    /// queued -> sending -> accepted -> read, then a late `delivered` and a `failed`
    /// after `read` (an anomaly).
    fn read_with_late_and_contradicting_webhooks() -> Message {
        let mut m = queued();
        let w = Wamid::parse("wamid.HBgLMTQxNTU1NTAxMjMVAgARGBI").unwrap();
        apply(&mut m, LifecycleEvent::new(at(100), EventKind::Claimed));
        apply(
            &mut m,
            LifecycleEvent::new(
                at(200),
                EventKind::Accepted {
                    attempt: 1,
                    wamid: w.clone(),
                    message_status: Some("accepted".into()),
                },
            ),
        );
        apply(&mut m, status(ProviderStatusKind::Read, &w, 500));
        apply(&mut m, status(ProviderStatusKind::Delivered, &w, 600));
        apply(&mut m, status(ProviderStatusKind::Failed, &w, 700));
        m
    }

    fn positions(out: &str, needles: &[&str]) -> Vec<usize> {
        needles
            .iter()
            .map(|n| {
                out.find(n)
                    .unwrap_or_else(|| panic!("{n} missing in {out}"))
            })
            .collect()
    }

    #[test]
    fn the_timeline_lists_every_event_in_time_order_with_its_outcome() {
        let m = read_with_late_and_contradicting_webhooks();
        let mut out = String::new();
        timeline(&mut out, &m).unwrap();
        let events = positions(
            &out,
            &[
                "data-event=\"intake.queued\" data-outcome=\"advanced\"",
                "data-event=\"sender.claimed\" data-outcome=\"advanced\"",
                "data-event=\"sender.accepted\" data-outcome=\"advanced\"",
                "data-event=\"webhook.read\" data-outcome=\"advanced\"",
                "data-event=\"webhook.delivered\" data-outcome=\"timestamp_filled\"",
                "data-event=\"webhook.failed\" data-outcome=\"anomaly\"",
            ],
        );
        assert!(events.is_sorted(), "{events:?}");
        assert!(out.contains(">out of order</span>") && out.contains(">anomaly</span>"));
        assert!(out.contains("<td>webhook</td><td>delivered</td>"));
        assert!(out.contains("<span class=\"flag\">failed_after_delivered</span>"));
        assert!(out.contains("attempt 1"));
        // The failure of the anomalous webhook: class, code, escaped title, source.
        assert!(out.contains(
            "<span class=\"fail\">recipient</span> <code>131026</code> Message &lt;undeliverable&gt; \
             <span class=\"muted\">(webhook)</span>"
        ));
        assert!(!out.contains("<undeliverable>"));
        assert!(out.contains("+1******0123") && !out.contains("4155550123"));
    }

    #[test]
    fn state_timestamps_are_in_time_order_even_when_filled_late() {
        let m = read_with_late_and_contradicting_webhooks();
        let mut out = String::new();
        timeline(&mut out, &m).unwrap();
        // read (Meta time +499) came before the late delivered (+599).
        let rows = positions(
            &out,
            &[
                "data-field=\"queued_at\"",
                "data-field=\"sending_at\"",
                "data-field=\"accepted_at\"",
                "data-field=\"read_at\"",
                "data-field=\"delivered_at\"",
            ],
        );
        assert!(rows.is_sorted(), "{rows:?}");
        assert!(out.contains(
            "<li data-field=\"read_at\"><span class=\"badge st-read\">read</span> \
             <time datetime=\"2026-06-03T10:15:30.499Z\">"
        ));
        assert!(
            !out.contains("data-field=\"failed_at\""),
            "the state stayed read"
        );
    }

    #[test]
    fn a_missing_message_says_so_with_escaped_names() {
        let mut out = String::new();
        not_found(&mut out, "acme", "msg_<b>").unwrap();
        assert!(out.contains("No such message") && out.contains("msg_&lt;b&gt;"));
    }
}
