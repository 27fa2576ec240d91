//! Meta's webhook envelope (reference §4), built from what the sandbox decided:
//! `{"object":"whatsapp_business_account","entry":[{"id":<WABA>,"changes":[{"field":..,"value":..}]}]}`.
//!
//! `messages` changes carry `value.metadata` (display number and phone number id);
//! management changes (template, quality) carry `entry.time` and no metadata.

use serde_json::{Map, Value, json};

/// The number a `messages` change is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberMeta {
    /// `metadata.phone_number_id`.
    pub phone_number_id: String,
    /// `metadata.display_phone_number`.
    pub display_phone_number: String,
    /// `entry.id`.
    pub waba_id: String,
}

/// One status of one outbound message.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusEvent {
    /// The number that sent it.
    pub number: NumberMeta,
    /// `id`.
    pub wamid: String,
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: &'static str,
    /// Unix seconds (written as a string, like Meta).
    pub timestamp: u64,
    /// `recipient_id`.
    pub recipient_id: String,
    /// `biz_opaque_callback_data`, echoed when the send had it.
    pub callback_data: Option<String>,
    /// `pricing` (on `sent` and `delivered`).
    pub pricing: Option<PricingInfo>,
    /// `errors[0]` of a `failed` status: code, title, details.
    pub error: Option<(i64, &'static str, &'static str)>,
}

/// `pricing` of a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricingInfo {
    /// Billed (templates) or not (service messages in the window).
    pub billable: bool,
    /// `regular` or `free_customer_service`.
    pub pricing_type: &'static str,
    /// `marketing`, `utility`, `authentication` or `service`.
    pub category: String,
}

impl StatusEvent {
    /// The `statuses[]` item.
    pub fn to_json(&self) -> Value {
        let mut s = Map::new();
        s.insert("id".into(), json!(self.wamid));
        s.insert("status".into(), json!(self.status));
        s.insert("timestamp".into(), json!(self.timestamp.to_string()));
        s.insert("recipient_id".into(), json!(self.recipient_id));
        if let Some(data) = &self.callback_data {
            s.insert("biz_opaque_callback_data".into(), json!(data));
        }
        if let Some(p) = &self.pricing {
            s.insert(
                "pricing".into(),
                json!({"billable": p.billable, "pricing_model": "PMP",
                       "type": p.pricing_type, "category": p.category}),
            );
        }
        if let Some((code, title, details)) = self.error {
            s.insert(
                "errors".into(),
                json!([{"code": code, "title": title, "message": title,
                        "error_data": {"details": details},
                        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]),
            );
        }
        Value::Object(s)
    }
}

/// The `value` of a `messages` change: metadata plus the given lists.
pub fn messages_value(number: &NumberMeta, lists: Map<String, Value>) -> Value {
    let mut value = Map::new();
    value.insert("messaging_product".into(), json!("whatsapp"));
    value.insert(
        "metadata".into(),
        json!({"display_phone_number": number.display_phone_number,
               "phone_number_id": number.phone_number_id}),
    );
    value.extend(lists);
    Value::Object(value)
}

/// One POST of statuses: one entry per WABA, one change per phone number, statuses in
/// the given order.
pub fn statuses_envelope(statuses: &[&StatusEvent]) -> Value {
    // (WABA id, [(number, its statuses)]), in order of first appearance.
    type Changes = Vec<(NumberMeta, Vec<Value>)>;
    let mut entries: Vec<(String, Changes)> = Vec::new();
    for s in statuses {
        let entry = match entries.iter_mut().position(|(w, _)| *w == s.number.waba_id) {
            Some(i) => &mut entries[i].1,
            None => {
                entries.push((s.number.waba_id.clone(), Vec::new()));
                let last = entries.len() - 1;
                &mut entries[last].1
            }
        };
        match entry
            .iter_mut()
            .find(|(n, _)| n.phone_number_id == s.number.phone_number_id)
        {
            Some((_, list)) => list.push(s.to_json()),
            None => entry.push((s.number.clone(), vec![s.to_json()])),
        }
    }
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|(waba, changes)| {
            let changes: Vec<Value> = changes
                .into_iter()
                .map(|(number, list)| {
                    let mut lists = Map::new();
                    lists.insert("statuses".into(), Value::Array(list));
                    json!({"value": messages_value(&number, lists), "field": "messages"})
                })
                .collect();
            json!({"id": waba, "changes": changes})
        })
        .collect();
    json!({"object": "whatsapp_business_account", "entry": entries})
}

/// One POST of one change.
pub fn change_envelope(waba_id: &str, time: Option<u64>, field: &str, value: Value) -> Value {
    let mut entry = json!({"id": waba_id, "changes": [{"value": value, "field": field}]});
    if let Some(t) = time {
        entry["time"] = json!(t);
    }
    json!({"object": "whatsapp_business_account", "entry": [entry]})
}

/// `value` of an inbound text message from `from`.
pub fn inbound_text_value(
    number: &NumberMeta,
    from: &str,
    name: &str,
    wamid: &str,
    timestamp: u64,
    text: &str,
) -> Value {
    let mut lists = Map::new();
    lists.insert(
        "contacts".into(),
        json!([{"profile": {"name": name}, "wa_id": from}]),
    );
    lists.insert(
        "messages".into(),
        json!([{"from": from, "id": wamid, "timestamp": timestamp.to_string(),
                "type": "text", "text": {"body": text}}]),
    );
    messages_value(number, lists)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa_shared::domain::webhook::{DeliveryStatus, parse_envelope};

    fn number(id: &str, waba: &str) -> NumberMeta {
        NumberMeta {
            phone_number_id: id.into(),
            display_phone_number: "15550001111".into(),
            waba_id: waba.into(),
        }
    }

    fn status(id: &str, waba: &str, wamid: &str, status: &'static str) -> StatusEvent {
        StatusEvent {
            number: number(id, waba),
            wamid: wamid.into(),
            status,
            timestamp: 1_750_000_000,
            recipient_id: "14155550123".into(),
            callback_data: Some("wa1:acme:msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3".into()),
            pricing: None,
            error: (status == "failed").then_some((
                131026,
                "Message undeliverable",
                "Message Undeliverable.",
            )),
        }
    }

    #[test]
    fn batched_statuses_parse_back_grouped_by_waba_and_number() {
        let a = status("1", "w1", "wamid.A", "sent");
        let b = status("2", "w1", "wamid.B", "delivered");
        let c = status("3", "w2", "wamid.C", "failed");
        let body = serde_json::to_vec(&statuses_envelope(&[&a, &b, &c])).unwrap();
        let batch = parse_envelope(&body).unwrap();
        assert!(batch.warnings.is_empty(), "{:?}", batch.warnings);
        let parsed: Vec<_> = batch.statuses().collect();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0].waba_id, "w1");
        assert_eq!(parsed[2].waba_id, "w2");
        assert_eq!(parsed[2].status, DeliveryStatus::Failed);
        assert_eq!(parsed[2].errors[0].code, Some(131026));
        assert_eq!(
            parsed[1].biz_opaque_callback_data.as_deref(),
            Some("wa1:acme:msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3")
        );
    }
}
