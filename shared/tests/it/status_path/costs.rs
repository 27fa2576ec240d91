//! The cost ledger behind status webhooks (issue 17 point 2): each status's `pricing`
//! counted once per message and category through the real handler, whatever the
//! repeats and the order; a ledger failure parks the body (the status is kept) and
//! its replay counts it once. On SQLite (`sqlite::`) and DynamoDB + SQS (`dynamo::`).

use crate::status_path::support::*;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wa_shared::app::webhook::handle_inbox;
use wa_shared::domain::costs::{CostCount, PricedStatus, parse_day};
use wa_shared::domain::quota::UtcDay;
use wa_shared::domain::{MessageState, TenantId};
use wa_shared::ports::{CostLedger, CostLedgerError};

on_every_backend!(
    priced_statuses_count_once_per_message_and_category_whatever_the_order_and_repeats,
    statuses_without_pricing_or_of_unknown_messages_count_nothing,
    a_cost_ledger_failure_parks_the_body_and_its_replay_counts_once,
);

/// 2025-06-15: the day of the statuses' timestamps (1_750_030_200 s and after).
fn status_day() -> UtcDay {
    parse_day("2025-06-15").unwrap()
}

fn pricing(category: &str, billable: bool) -> Value {
    let kind = if billable {
        "regular"
    } else {
        "free_customer_service"
    };
    json!({"billable": billable, "pricing_model": "PMP", "type": kind, "category": category})
}

fn priced_item(wamid: &str, status: &str, secs: i64, pricing: Option<Value>) -> Value {
    let mut item = json!({"id": wamid, "status": status, "timestamp": secs.to_string(),
        "recipient_id": "16505551234"});
    if let Some(p) = pricing {
        item["pricing"] = p;
    }
    item
}

/// The tenant's counters on the statuses' day, as (category, billable, code, messages).
async fn counted(w: &World) -> Vec<(String, bool, String, u64)> {
    let day = status_day();
    w.functions
        .webhook
        .costs
        .cost_totals(&w.tenant, day, wa_shared::domain::costs::next_day(day))
        .await
        .unwrap()
        .into_iter()
        .map(|c: CostCount| {
            (
                c.category,
                c.billable,
                c.calling_code.as_str().to_owned(),
                c.messages,
            )
        })
        .collect()
}

/// Three marketing templates, each `sent`, `delivered` and `read` with `pricing` (as
/// Meta sends it), every status twice, reads first; a fourth message whose `sent` is
/// `utility` and whose `delivered` is free `service`: one count per message and
/// category, and `BillableMessages` once per billable count.
async fn priced_statuses_count_once_per_message_and_category_whatever_the_order_and_repeats(
    mut w: World,
) {
    let mut items = Vec::new();
    for n in 1..=3 {
        let wamid = format!("wamid.COST{n}");
        w.accepted(&format!("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2C{n}"), &wamid)
            .await;
        for (status, secs) in [
            ("read", 1_750_030_300),
            ("delivered", 1_750_030_250),
            ("sent", 1_750_030_200),
        ] {
            let item = priced_item(&wamid, status, secs, Some(pricing("marketing", true)));
            items.push(item.clone());
            items.push(item);
        }
    }
    w.accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2C4", "wamid.COST4")
        .await;
    items.push(priced_item(
        "wamid.COST4",
        "sent",
        1_750_030_200,
        Some(pricing("utility", true)),
    ));
    items.push(priced_item(
        "wamid.COST4",
        "delivered",
        1_750_030_250,
        Some(pricing("service", false)),
    ));
    w.functions.webhook.settings.apply_budget = None;
    let resp = w.post(&statuses_body(items.clone())).await;
    assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
    // Meta retries the whole body: nothing more is counted.
    let resp = w.post(&statuses_body(items)).await;
    assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
    assert!(w.inbox_event().await.records.is_empty(), "nothing parked");
    assert_eq!(
        counted(&w).await,
        [
            ("marketing".into(), true, "1650".into(), 3),
            ("service".into(), false, "1650".into(), 1),
            ("utility".into(), true, "1650".into(), 1),
        ],
        "on {}",
        w.backend
    );
    let dims = |category| [("Tenant", TENANT), ("Category", category)];
    assert_eq!(w.metric("BillableMessages", &dims("marketing")), 3.0);
    assert_eq!(w.metric("BillableMessages", &dims("utility")), 1.0);
    assert_eq!(w.metric("BillableMessages", &dims("service")), 0.0);
    assert_eq!(w.metric("CostLedgerFailed", &[("Tenant", TENANT)]), 0.0);
}

/// A status without `pricing` (a `failed` one, an old webhook) and a priced status of
/// a message we do not know count nothing.
async fn statuses_without_pricing_or_of_unknown_messages_count_nothing(w: World) {
    w.accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2D1", "wamid.NOPRICE")
        .await;
    let items = vec![
        priced_item("wamid.NOPRICE", "delivered", 1_750_030_200, None),
        priced_item(
            "wamid.UNKNOWN",
            "sent",
            1_750_030_200,
            Some(pricing("marketing", true)),
        ),
    ];
    let resp = w.post(&statuses_body(items)).await;
    assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
    assert!(counted(&w).await.is_empty(), "on {}", w.backend);
    let unknown = TenantId::parse("unknown").unwrap();
    let day = status_day();
    let next = wa_shared::domain::costs::next_day(day);
    let ledger = &w.functions.webhook.costs;
    assert!(
        ledger
            .cost_totals(&unknown, day, next)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A ledger that fails every write while its switch is on (the real one underneath).
struct Down {
    inner: Arc<dyn CostLedger>,
    down: AtomicBool,
}

#[async_trait]
impl CostLedger for Down {
    async fn record_pricing(&self, status: &PricedStatus) -> Result<bool, CostLedgerError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(CostLedgerError::Backend {
                operation: "record_pricing",
                source: "the ledger is down (test)".into(),
            });
        }
        self.inner.record_pricing(status).await
    }

    async fn cost_totals(
        &self,
        tenant: &TenantId,
        since: UtcDay,
        until: UtcDay,
    ) -> Result<Vec<wa_shared::domain::costs::CostCount>, CostLedgerError> {
        self.inner.cost_totals(tenant, since, until).await
    }
}

/// The ledger is down: the status is stored all the same, the body parked on the
/// inbox (Meta gets its 200) and `CostLedgerFailed` counted; replayed while the
/// ledger is still down, the record comes back; replayed once it is up, the status
/// (now a duplicate) is counted, once, however often it comes again.
async fn a_cost_ledger_failure_parks_the_body_and_its_replay_counts_once(mut w: World) {
    let down = Arc::new(Down {
        inner: w.functions.webhook.costs.clone(),
        down: AtomicBool::new(true),
    });
    w.functions.webhook.costs = down.clone();
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2E1", "wamid.LEDGER")
        .await;
    let body = statuses_body(vec![priced_item(
        "wamid.LEDGER",
        "sent",
        1_750_030_200,
        Some(pricing("marketing", true)),
    )]);
    let resp = w.post(&body).await;
    assert_eq!(status_code(&resp), 200, "parked: Meta need not retry");
    assert_eq!(
        w.message(&id).await.state,
        MessageState::Sent,
        "status kept"
    );
    assert_eq!(w.metric("CostLedgerFailed", &[("Tenant", TENANT)]), 1.0);
    assert!(counted(&w).await.is_empty());

    let event = w.inbox_event().await;
    assert_eq!(event.records.len(), 1, "parked on {}", w.backend);
    let failures: Vec<String> = handle_inbox(&w.functions.webhook, event.clone())
        .await
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    assert_eq!(failures.len(), 1, "still down: the record comes back");
    w.settle(&w.inbox, &event, &failures).await;

    down.down.store(false, Ordering::SeqCst);
    let again = w.inbox_event().await;
    assert_eq!(again.records.len(), 1);
    assert!(
        handle_inbox(&w.functions.webhook, again.clone())
            .await
            .batch_item_failures
            .is_empty()
    );
    w.settle(&w.inbox, &again, &[]).await;
    let resp = w.post(&body).await;
    assert_eq!(status_code(&resp), 200);
    assert_eq!(
        counted(&w).await,
        [("marketing".into(), true, "1650".into(), 1)],
        "on {}",
        w.backend
    );
    let dims = [("Tenant", TENANT), ("Category", "marketing")];
    assert_eq!(w.metric("BillableMessages", &dims), 1.0);
}
