//! `wa costs` on SQLite and on moto: counters written through the cost ledger (as the
//! webhook writes them), read back per day and category and priced by a rate card.

use crate::ops::support::{Backend, args, wa};
use serde_json::Value;
use std::sync::Arc;
use wa_shared::adapters::sqlite::{SqliteDb, SqliteOptions};
use wa_shared::adapters::{DynamoCostLedger, SqliteCostLedger, SystemClock};
use wa_shared::domain::costs::{CallingCode, PricedStatus};
use wa_shared::domain::quota::UtcDay;
use wa_shared::domain::{MessageId, PhoneNumber, TenantId};
use wa_shared::ports::{Clock, CostLedger};

/// The cost ledger of the backend the commands use.
async fn ledger(backend: &Backend) -> Arc<dyn CostLedger> {
    match &backend.moto {
        Some(stack) => Arc::new(DynamoCostLedger::new(&stack.sdk, &stack.tables.quotas)),
        None => {
            let db = SqliteDb::open(&backend.args[1], SqliteOptions::default())
                .await
                .unwrap();
            Arc::new(SqliteCostLedger::new(db).await.unwrap())
        }
    }
}

async fn costs_are_read_per_day_and_priced(backend: Backend, extra: &[&str]) {
    let l = ledger(&backend).await;
    let today = UtcDay::of(SystemClock.now());
    let acme = TenantId::parse("acme").unwrap();
    let rows = [
        (today, "marketing", true, "+14155550123"),
        (today, "marketing", true, "+14155550123"),
        (today.minus_days(2), "utility", true, "+919876543210"),
        (today.minus_days(2), "service", false, "+447911123456"),
        // Outside `--since 7d`.
        (today.minus_days(30), "marketing", true, "+14155550123"),
    ];
    for (day, category, billable, to) in rows {
        let status = PricedStatus {
            tenant: acme.clone(),
            message_id: MessageId::generate(),
            day,
            category: category.into(),
            billable,
            calling_code: CallingCode::of(&PhoneNumber::parse(to).unwrap()),
        };
        // A repeat (a retried webhook) counts nothing.
        assert!(l.record_pricing(&status).await.unwrap());
        assert!(!l.record_pricing(&status).await.unwrap());
    }
    let mut cmd = backend.cmd(&["costs", "--tenant", "acme", "--since", "7d"]);
    cmd.extend(args(extra));
    let text = wa(&cmd).ok();
    assert!(text.contains("WARNING: sample rates"), "{text}");
    assert!(text.contains("effective 2025-07-01, USD"), "{text}");
    let today_row = format!("{}  marketing", today.key());
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with(&today_row))
        .unwrap_or_else(|| panic!("no {today_row} in {text}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[2..], ["2", "2", "0", "0.0500"], "{text}");
    assert!(
        text.contains("Total: 3 billable, 1 free, estimated spend 0.0514 USD"),
        "{text}"
    );

    let until = today.minus_days(1).key();
    let mut cmd = backend.cmd(&[
        "costs", "--tenant", "acme", "--since", "60d", "--json", "--until", &until,
    ]);
    cmd.extend(args(extra));
    let doc: Value = serde_json::from_str(&wa(&cmd).ok()).unwrap();
    assert_eq!(doc["until"], today.minus_days(1).key());
    assert_eq!(doc["billable"], 2, "{doc}");
    assert_eq!(doc["free"], 1);
    assert_eq!(doc["rates"]["sample"], true);

    let dir = tempfile::tempdir().unwrap();
    let rates = dir.path().join("rates.json");
    std::fs::write(
        &rates,
        r#"{"effective": "2026-01-01", "currency": "USD", "source": "ours", "markets": [],
            "default": {"market": "Everywhere", "rates": {"marketing": 1, "utility": 1}}}"#,
    )
    .unwrap();
    let rates = rates.display().to_string();
    let mut cmd = backend.cmd(&[
        "costs", "--tenant", "acme", "--since", "7d", "--rates", &rates,
    ]);
    cmd.extend(args(extra));
    let text = wa(&cmd).ok();
    assert!(!text.contains("WARNING"), "{text}");
    assert!(text.contains("estimated spend 3.0000 USD"), "{text}");

    let mut cmd = backend.cmd(&["costs", "--tenant", "acme", "--since", "2000-01-01"]);
    cmd.extend(args(extra));
    let err = wa(&cmd).failed();
    assert!(err.contains("not 1 to 367 days"), "{err}");
}

#[tokio::test]
async fn costs_on_sqlite() {
    costs_are_read_per_day_and_priced(Backend::sqlite().await, &[]).await;
}

#[tokio::test]
async fn costs_on_dynamodb() {
    let Some(backend) = Backend::moto().await else {
        return;
    };
    let quotas = backend.moto.as_ref().unwrap().tables.quotas.clone();
    costs_are_read_per_day_and_priced(backend, &["--quotas-table", &quotas]).await;
}
