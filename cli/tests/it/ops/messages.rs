//! `wa messages get|list` on SQLite and on moto, over messages written through the store.

use crate::ops::support::{Backend, wa};
use serde_json::Value;
use wa_shared::adapters::SystemClock;
use wa_shared::domain::{Message, MessageId, MessageState, Suppression, SuppressionReason};
use wa_shared::ports::{Clock, CreateOutcome};
use wa_testkit::store_conformance::{new_message, policy, queued_with_id};

const MINUTE: i64 = 60_000;

/// The messages of one scenario, oldest first.
struct Seeded {
    /// Three days old, queued.
    old: Message,
    /// Ten minutes old, queued.
    queued: Message,
    /// Five minutes old, claimed by a sender.
    sending: Message,
    /// Two minutes old, suppressed (opted out).
    suppressed: Message,
}

async fn create(backend: &Backend, message: &Message) {
    let outcome = backend.store.create_if_absent(message).await.unwrap();
    assert_eq!(outcome, CreateOutcome::Created);
}

async fn seed(backend: &Backend, tenant: &str) -> Seeded {
    let now = SystemClock.now();
    let ago = |minutes: i64| now.plus_millis(-minutes * MINUTE);
    let old = queued_with_id(tenant, MessageId::generate(), ago(3 * 24 * 60));
    let queued = queued_with_id(tenant, MessageId::generate(), ago(10));
    let claimed = queued_with_id(tenant, MessageId::generate(), ago(5));
    let suppressed = Message::new_suppressed(
        new_message(tenant, MessageId::generate()),
        Suppression {
            reason: SuppressionReason::OptedOut,
            detail: None,
        },
        ago(2),
        &policy(),
    );
    for m in [&old, &queued, &claimed, &suppressed] {
        create(backend, m).await;
    }
    let sending = backend
        .store
        .claim_for_send(&claimed.tenant, &claimed.id, ago(4), &policy())
        .await
        .unwrap()
        .expect("claimed");
    assert_eq!(sending.state, MessageState::Sending);
    // Another tenant's message, which no command of this tenant may show.
    create(
        backend,
        &queued_with_id("someone-else", MessageId::generate(), ago(1)),
    )
    .await;
    Seeded {
        old,
        queued,
        sending,
        suppressed,
    }
}

fn ids_of_table(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect()
}

async fn get_and_list_read_the_store(backend: Backend) {
    let s = seed(&backend, "acme").await;

    let view: Value = serde_json::from_str(
        &wa(&backend.cmd(&["messages", "get", s.sending.id.as_str(), "--tenant", "acme"])).ok(),
    )
    .unwrap();
    assert_eq!(view["id"], s.sending.id.as_str());
    assert_eq!(view["status"], "sending");
    assert_eq!(view["to"], "+14155550123");
    assert_eq!(view["in_flight"], true);
    assert!(view["timestamps"]["sending_at"].is_string(), "{view}");
    assert!(
        view.get("lease_until").is_none(),
        "the API view hides internals"
    );
    let raw: Value = serde_json::from_str(
        &wa(&backend.cmd(&[
            "messages",
            "get",
            s.sending.id.as_str(),
            "--tenant",
            "acme",
            "--raw",
        ]))
        .ok(),
    )
    .unwrap();
    assert_eq!(raw["attempt"], 1);
    assert!(raw["lease_until"].is_number(), "{raw}");
    let suppressed: Value = serde_json::from_str(
        &wa(&backend.cmd(&[
            "messages",
            "get",
            s.suppressed.id.as_str(),
            "--tenant",
            "acme",
        ]))
        .ok(),
    )
    .unwrap();
    assert_eq!(suppressed["suppression"]["reason"], "opted_out");

    let missing = wa(&backend.cmd(&[
        "messages",
        "get",
        MessageId::generate().as_str(),
        "--tenant",
        "acme",
    ]))
    .failed();
    assert!(missing.contains("no message"), "{missing}");
    let foreign = wa(&backend.cmd(&[
        "messages",
        "get",
        s.queued.id.as_str(),
        "--tenant",
        "someone-else",
    ]))
    .failed();
    assert!(
        foreign.contains("no message"),
        "another tenant's id is not found: {foreign}"
    );
    let invalid = wa(&backend.cmd(&["messages", "get", "42", "--tenant", "acme"])).failed();
    assert!(invalid.contains("invalid message id"), "{invalid}");

    // Newest first; recipients masked in the table.
    let table = wa(&backend.cmd(&["messages", "list", "--tenant", "acme"])).ok();
    assert!(table.starts_with("ID"), "{table}");
    let all = [&s.suppressed, &s.sending, &s.queued, &s.old].map(|m| m.id.to_string());
    assert_eq!(ids_of_table(&table), all, "{table}");
    assert!(
        table.contains("+1******0123") && !table.contains("+14155550123"),
        "{table}"
    );
    assert!(table.contains("opted_out"), "{table}");

    let sending = wa(&backend.cmd(&[
        "messages", "list", "--tenant", "acme", "--status", "sending",
    ]))
    .ok();
    assert_eq!(ids_of_table(&sending), [s.sending.id.to_string()]);
    let recent = wa(&backend.cmd(&["messages", "list", "--tenant", "acme", "--since", "1h"])).ok();
    assert_eq!(ids_of_table(&recent), all[..3]);
    let since = s.queued.created_at.to_rfc3339();
    let absolute =
        wa(&backend.cmd(&["messages", "list", "--tenant", "acme", "--since", &since])).ok();
    assert_eq!(ids_of_table(&absolute), all[..3]);
    let json = wa(&backend.cmd(&[
        "messages", "list", "--tenant", "acme", "--status", "queued", "--json",
    ]))
    .ok();
    let views: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = views.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [s.queued.id.as_str(), s.old.id.as_str()]);

    let limited = wa(&backend.cmd(&["messages", "list", "--tenant", "acme", "--limit", "2"]));
    assert!(
        limited.stderr.contains("raise --limit"),
        "{}",
        limited.stderr
    );
    assert_eq!(ids_of_table(&limited.ok()), all[..2]);
    let none = wa(&backend.cmd(&["messages", "list", "--tenant", "nobody"])).ok();
    assert_eq!(none.trim(), "no messages");
    let bad = wa(&backend.cmd(&[
        "messages",
        "list",
        "--tenant",
        "acme",
        "--since",
        "yesterday",
    ]))
    .failed();
    assert!(bad.contains("RFC 3339"), "{bad}");
    let bad =
        wa(&backend.cmd(&["messages", "list", "--tenant", "acme", "--status", "lost"])).failed();
    assert!(bad.contains("queued, sending"), "{bad}");
}

#[tokio::test]
async fn messages_get_and_list_on_sqlite() {
    get_and_list_read_the_store(Backend::sqlite().await).await;
}

#[tokio::test]
async fn messages_get_and_list_on_dynamodb() {
    let Some(backend) = Backend::moto().await else {
        return;
    };
    get_and_list_read_the_store(backend).await;
}

#[tokio::test]
async fn a_missing_sqlite_file_is_an_error_not_a_new_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.sqlite");
    let err = wa(&crate::ops::support::args(&[
        "messages",
        "list",
        "--tenant",
        "acme",
        "--data",
        &path.display().to_string(),
    ]))
    .failed();
    assert!(err.contains("no SQLite file"), "{err}");
    assert!(!path.exists());
}
