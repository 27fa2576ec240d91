//! `wa dlq list|redrive` on SQLite and on SQS (moto): dead letters made the way
//! production makes them, by receiving a message more than `maxReceiveCount` times.

use crate::ops::support::{Backend, wa};
use serde_json::Value;
use std::time::Duration;
use wa_shared::domain::{MessageId, TenantId};
use wa_shared::ports::QueueRef;
use wa_testkit::store_conformance::{at, queued_with_id};

/// Send `bodies` to `queue` and receive them until they move to its DLQ.
async fn dead_letter(backend: &Backend, queue: &QueueRef, bodies: &[String]) {
    for body in bodies {
        backend
            .queue
            .send(queue, body, Duration::ZERO)
            .await
            .unwrap();
    }
    // Visibility 0: every receive counts, and the receive after the fifth moves them.
    for _ in 0..20 {
        let got = backend
            .queue
            .receive(queue, 10, Duration::ZERO, Duration::ZERO)
            .await
            .unwrap();
        if got.is_empty() {
            break;
        }
    }
    let letters = backend.queue.dead_letters(queue, 100).await.unwrap();
    assert_eq!(letters.len(), bodies.len(), "all dead-lettered");
}

async fn dead_letters(backend: &Backend, queue: &QueueRef) -> usize {
    backend.queue.dead_letters(queue, 100).await.unwrap().len()
}

async fn list_and_redrive(backend: Backend) {
    backend.add_tenant("acme", &[]);
    let tenant = TenantId::parse("acme").unwrap();
    let queue = QueueRef::new(
        backend
            .directory
            .tenant(&tenant)
            .await
            .unwrap()
            .unwrap()
            .queue,
    );
    let mut ids = Vec::new();
    let mut bodies = Vec::new();
    for i in 0..3 {
        let m = queued_with_id("acme", MessageId::generate(), at(i));
        backend.store.create_if_absent(&m).await.unwrap();
        bodies.push(serde_json::json!({"tenant": "acme", "id": m.id}).to_string());
        ids.push(m.id.to_string());
    }
    bodies.push("not a reference".to_owned());
    dead_letter(&backend, &queue, &bodies).await;

    let table = wa(&backend.cmd(&["dlq", "list", "--tenant", "acme"])).ok();
    assert!(table.starts_with("DEAD LETTER"), "{table}");
    for id in &ids {
        let row = table
            .lines()
            .find(|l| l.contains(id.as_str()))
            .unwrap_or_else(|| panic!("{id} in {table}"));
        assert!(row.contains("queued"), "{row}");
    }
    assert!(table.contains("(not in the store)"), "{table}");
    assert!(table.contains("4 dead letter(s) of tenant acme"), "{table}");
    let json = wa(&backend.cmd(&["dlq", "list", "--tenant", "acme", "--json"])).ok();
    let lines: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["message"]["status"] == "queued")
            .count(),
        3
    );
    assert_eq!(lines.iter().filter(|l| l["message"].is_null()).count(), 1);
    assert_eq!(
        dead_letters(&backend, &queue).await,
        4,
        "listing leaves them in place"
    );

    let dry = wa(&backend.cmd(&["dlq", "redrive", "--tenant", "acme", "--dry-run"])).ok();
    assert!(
        dry.contains("dry run: 4 of about 4 dead letter(s)"),
        "{dry}"
    );
    assert_eq!(dead_letters(&backend, &queue).await, 4);

    let some = wa(&backend.cmd(&["dlq", "redrive", "--tenant", "acme", "--max", "2"])).ok();
    assert!(some.contains("moved 2 dead letter(s)"), "{some}");
    assert!(some.contains("about 2 dead letter(s) remain"), "{some}");
    assert_eq!(dead_letters(&backend, &queue).await, 2);

    let rest = wa(&backend.cmd(&["dlq", "redrive", "--tenant", "acme"])).ok();
    assert!(rest.contains("moved 2 dead letter(s)"), "{rest}");
    assert!(!rest.contains("remain"), "{rest}");
    assert_eq!(dead_letters(&backend, &queue).await, 0);
    assert_eq!(
        backend
            .queue
            .approximate_depth(&queue)
            .await
            .unwrap()
            .visible,
        4
    );
    let mut back: Vec<String> = Vec::new();
    for _ in 0..5 {
        for m in backend
            .queue
            .receive(&queue, 10, Duration::from_secs(60), Duration::ZERO)
            .await
            .unwrap()
        {
            back.push(m.body);
        }
    }
    back.sort();
    bodies.sort();
    assert_eq!(back, bodies, "every body is back, once");

    let empty = wa(&backend.cmd(&["dlq", "list", "--tenant", "acme"])).ok();
    assert_eq!(empty.trim(), "no dead letters for tenant acme");
    let nothing = wa(&backend.cmd(&["dlq", "redrive", "--tenant", "acme"])).ok();
    assert_eq!(nothing.trim(), "no dead letters for tenant acme");
    let err = wa(&backend.cmd(&["dlq", "list", "--tenant", "nobody"])).failed();
    assert!(err.contains("no tenant nobody"), "{err}");
}

#[tokio::test]
async fn dlq_list_and_redrive_on_sqlite() {
    list_and_redrive(Backend::sqlite().await).await;
}

#[tokio::test]
async fn dlq_list_and_redrive_on_sqs() {
    let Some(backend) = Backend::moto().await else {
        return;
    };
    list_and_redrive(backend).await;
}
