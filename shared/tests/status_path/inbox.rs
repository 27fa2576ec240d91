//! Durability: a store failure parks the signed body on the inbox, the inbox replay
//! applies it, and when parking fails too Meta gets a 500 and retries.

use crate::support::*;
use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wa_shared::app::webhook::{ParkedBody, handle_inbox};
use wa_shared::domain::lifecycle::{LifecyclePolicy, Transition};
use wa_shared::domain::{Message, MessageId, MessageState, TenantId, Timestamp, Wamid};
use wa_shared::ports::{ApplyOutcome, CreateOutcome, MessageStore, Page, QueueRef, StoreError};

/// A real store that fails every call while `down` is set (an outage, not a mock).
struct FlakyStore {
    inner: Arc<dyn MessageStore>,
    down: Arc<AtomicBool>,
}

impl FlakyStore {
    fn check(&self, operation: &'static str) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Backend {
                operation,
                source: "injected outage".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl MessageStore for FlakyStore {
    async fn create_if_absent(&self, m: &Message) -> Result<CreateOutcome, StoreError> {
        self.check("create_if_absent")?;
        self.inner.create_if_absent(m).await
    }
    async fn get(&self, t: &TenantId, id: &MessageId) -> Result<Option<Message>, StoreError> {
        self.check("get")?;
        self.inner.get(t, id).await
    }
    async fn find_by_wamid(&self, w: &Wamid) -> Result<Option<(TenantId, MessageId)>, StoreError> {
        self.check("find_by_wamid")?;
        self.inner.find_by_wamid(w).await
    }
    async fn apply(
        &self,
        t: &TenantId,
        id: &MessageId,
        tr: &Transition,
    ) -> Result<ApplyOutcome, StoreError> {
        self.check("apply")?;
        self.inner.apply(t, id, tr).await
    }
    async fn sweep(
        &self,
        key: &str,
        due: Timestamp,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError> {
        self.check("sweep")?;
        self.inner.sweep(key, due, limit, cursor).await
    }
    async fn list_by_tenant(
        &self,
        t: &TenantId,
        s: Option<MessageState>,
        since: Option<Timestamp>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError> {
        self.check("list_by_tenant")?;
        self.inner.list_by_tenant(t, s, since, limit, cursor).await
    }
    async fn claim_for_send(
        &self,
        t: &TenantId,
        id: &MessageId,
        now: Timestamp,
        p: &LifecyclePolicy,
    ) -> Result<Option<Message>, StoreError> {
        self.check("claim_for_send")?;
        self.inner.claim_for_send(t, id, now, p).await
    }
}

async fn flaky_world() -> (World, Arc<AtomicBool>) {
    let down = Arc::new(AtomicBool::new(false));
    let flag = down.clone();
    let w = World::build(move |inner| Arc::new(FlakyStore { inner, down: flag })).await;
    (w, down)
}

#[tokio::test]
async fn a_store_failure_parks_the_signed_body_and_the_replay_applies_it() {
    let (w, down) = flaky_world().await;
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2J1", "wamid.I1")
        .await;
    let body = status_body("wamid.I1", "delivered", 1_750_030_200, None);
    down.store(true, Ordering::SeqCst);
    let resp = w.post(&body).await;
    assert_eq!(
        status_code(&resp),
        200,
        "parked is stored: Meta need not retry"
    );
    assert_eq!(w.message(&id).await.state, MessageState::Accepted);

    // While the store is still down, the replay asks for the record to come back.
    let event = w.inbox_event().await;
    assert_eq!(event.records.len(), 1);
    let parked: ParkedBody =
        serde_json::from_str(event.records[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(parked.raw().unwrap(), body.as_bytes());
    let failures = handle_inbox(&w.deps, event.clone())
        .await
        .batch_item_failures;
    assert_eq!(failures.len(), 1);

    down.store(false, Ordering::SeqCst);
    let failures = handle_inbox(&w.deps, event).await.batch_item_failures;
    assert!(failures.is_empty());
    let m = w.message(&id).await;
    assert_eq!(m.state, MessageState::Delivered);
    assert_eq!(
        m.timestamps.delivered_at,
        Some(Timestamp::from_secs(1_750_030_200))
    );
}

#[tokio::test]
async fn when_parking_fails_too_the_answer_is_500_so_meta_retries() {
    let (mut w, down) = flaky_world().await;
    w.accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2J2", "wamid.I2")
        .await;
    down.store(true, Ordering::SeqCst);
    w.deps.webhook.inbox = Some(QueueRef::new("no-such-queue"));
    let resp = w
        .post(&status_body("wamid.I2", "sent", 1_750_030_200, None))
        .await;
    assert_eq!(status_code(&resp), 500);
    assert!(!body_text(&resp).contains("outage"));
    w.deps.webhook.inbox = None;
    let resp = w
        .post(&status_body("wamid.I2", "sent", 1_750_030_200, None))
        .await;
    assert_eq!(status_code(&resp), 500);
}

#[tokio::test]
async fn a_parked_body_whose_signature_does_not_verify_is_not_applied() {
    let w = World::new().await;
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2J3", "wamid.I3")
        .await;
    let body = status_body("wamid.I3", "read", 1_750_030_200, None);
    let forged = ParkedBody::new(body.as_bytes(), "sha256=00", w.now());
    wa_shared::app::webhook::park(&w.deps, &forged)
        .await
        .unwrap();
    let event = w.inbox_event().await;
    assert_eq!(
        handle_inbox(&w.deps, event).await.batch_item_failures.len(),
        1
    );
    assert_eq!(w.message(&id).await.state, MessageState::Accepted);
    assert_eq!(w.metric("SignatureRejected", &[]), 1.0);
}

#[tokio::test]
async fn the_inbox_sqs_fixture_replays_once_signed() {
    let w = World::new().await;
    let mut event: aws_lambda_events::sqs::SqsEvent =
        serde_json::from_str(&event_file("webhook/inbox-sqs.json")).unwrap();
    let record = &mut event.records[0];
    let mut parked: ParkedBody = serde_json::from_str(record.body.as_deref().unwrap()).unwrap();
    let raw = parked.raw().unwrap();
    parked.signature = wa_shared::domain::webhook::sign(APP_SECRET.as_bytes(), &raw);
    record.body = Some(serde_json::to_string(&parked).unwrap());
    let batch = wa_shared::domain::webhook::parse_envelope(&raw).unwrap();
    let status = batch.statuses().next().unwrap();
    let cb = wa_shared::domain::graph::CallbackData::decode(
        status.biz_opaque_callback_data.as_deref().unwrap(),
    )
    .unwrap();
    let id = w
        .accepted(cb.message_id.as_str(), status.wamid.as_str())
        .await;
    assert!(
        handle_inbox(&w.deps, event)
            .await
            .batch_item_failures
            .is_empty()
    );
    assert_eq!(w.message(&id).await.state, MessageState::Read);
}
