//! Per-tenant intake quotas through the real intake handler, on SQLite and on
//! DynamoDB (moto): 429 with `Retry-After` and the limit, for the tenant over its
//! quota only; replays answered and not counted; a failing ledger lets requests in.

use crate::send_path::support::*;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use wa_shared::app::http::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use wa_shared::domain::quota::{IntakeQuota, UtcDay};
use wa_shared::domain::{MessageId, TenantId, Timestamp};
use wa_shared::ports::{Admission, QuotaError, QuotaLedger};
use wa_testkit::{moto, unique_name};

fn demo() -> TenantId {
    TenantId::parse("demo").unwrap()
}

async fn on_moto() -> Option<Pipeline> {
    let sdk = moto::sdk_config_or_skip().await?;
    Some(
        Pipeline::on_aws(
            Arc::new(ScriptedProvider::default()),
            &sdk,
            &unique_name("sq"),
        )
        .await,
    )
}

async fn on_sqlite() -> Pipeline {
    Pipeline::new(Arc::new(ScriptedProvider::default())).await
}

/// Give `tenant` this quota (before its first request: intake caches profiles).
async fn set_quota(p: &Pipeline, tenant: &str, quota: IntakeQuota) {
    let id = TenantId::parse(tenant).unwrap();
    let mut profile = p.directory.tenant(&id).await.unwrap().unwrap();
    profile.intake_quota = quota;
    p.directory.put_tenant(&profile).await.unwrap();
}

fn order_to(to: &str, name: &str) -> Value {
    json!({"to": to, "template": {"name": "order_shipped", "language": "en_US",
        "body": [name, "#1234"], "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}})
}

/// `POST /v1/messages` as `api_key` with `body` and an optional idempotency key.
fn post(api_key: &str, key: Option<&str>, body: &Value) -> ApiGatewayV2httpRequest {
    let req = with_header(
        with_body(request("intake/send-template.json"), body),
        "authorization",
        Some(&format!("Bearer {api_key}")),
    );
    with_header(req, "idempotency-key", key)
}

fn assert_refused(resp: &ApiGatewayV2httpResponse, code: &str, retry_after: &str) -> Value {
    assert_eq!(resp.status_code, 429, "{}", body_text(resp));
    assert_eq!(header(resp, "retry-after"), Some(retry_after));
    let b = body(resp);
    assert_eq!(b["error"]["code"], code, "{b}");
    assert_eq!(
        b["error"]["retry_after_seconds"].to_string(),
        retry_after,
        "{b}"
    );
    b
}

/// demo: 2/s with a burst of 3. Its fourth request at one instant is a 429 naming
/// the limit (before its body is even read), while `other` sends 10 at that instant;
/// half a second later demo sends again.
async fn a_flood_is_refused_for_its_tenant_only(p: &Pipeline) {
    let strict = IntakeQuota {
        requests_per_second: 2,
        burst: 3,
        messages_per_day: None,
    };
    set_quota(p, "demo", strict).await;
    for n in 0..3 {
        let key = format!("burst-{n}");
        let resp = p
            .intake(post(API_KEY, Some(&key), &order_to("+14155550123", "Ana")))
            .await;
        assert_eq!(resp.status_code, 202, "{}", body_text(&resp));
    }
    let refused = p
        .intake(post(
            API_KEY,
            Some("burst-3"),
            &order_to("+14155550123", "Ana"),
        ))
        .await;
    let b = assert_refused(&refused, "rate_limited", "1");
    assert_eq!(
        b["error"]["limit"],
        json!({"requests_per_second": 2, "burst": 3})
    );
    assert!(b["error"]["request_id"].is_string());
    let never = MessageId::for_idempotency_key(
        &demo(),
        &wa_shared::domain::IdempotencyKey::parse("burst-3").unwrap(),
    );
    assert!(p.store.get(&demo(), &never).await.unwrap().is_none());
    // Refused before the body is read: a malformed body is still a 429, not a 400.
    let mut garbage = post(API_KEY, None, &json!({}));
    garbage.body = Some("{not json".into());
    assert_eq!(p.intake(garbage).await.status_code, 429);

    for n in 0..10 {
        let resp = p
            .intake(post(
                OTHER_KEY,
                Some(&format!("other-{n}")),
                &order_to("+14155550124", "Bo"),
            ))
            .await;
        assert_eq!(resp.status_code, 202, "other #{n}: {}", body_text(&resp));
    }
    // Reads are not counted.
    let get = with_header(
        request("intake/get.json"),
        "authorization",
        Some(&format!("Bearer {API_KEY}")),
    );
    assert_ne!(p.intake(get).await.status_code, 429);

    p.clock.advance(Duration::from_millis(500));
    let resp = p
        .intake(post(
            API_KEY,
            Some("later"),
            &order_to("+14155550123", "Ana"),
        ))
        .await;
    assert_eq!(resp.status_code, 202, "{}", body_text(&resp));
    assert_eq!(
        p.metric(
            "QuotaRefused",
            &[("Tenant", "demo"), ("Reason", "rate_limited")]
        ),
        2.0
    );
    assert_eq!(p.metric("QuotaRefused", &[("Tenant", "other")]), 0.0);
}

/// demo: 2 new messages a day. Replays are answered and not counted, a 422 uses
/// nothing, the third new message waits for midnight (UTC), and `other` is untouched.
async fn a_full_day_refuses_new_messages_and_still_answers_replays(p: &Pipeline) {
    let daily = IntakeQuota {
        messages_per_day: Some(2),
        ..IntakeQuota::default()
    };
    set_quota(p, "demo", daily).await;
    let today = UtcDay::of(START);
    let counted = || async { p.quotas.messages_counted(&demo(), today).await.unwrap() };
    let first = order_to("+14155550123", "Ana");

    assert_eq!(
        p.intake(post(API_KEY, Some("a"), &first)).await.status_code,
        202
    );
    let replay = p.intake(post(API_KEY, Some("a"), &first)).await;
    assert_eq!(replay.status_code, 200, "{}", body_text(&replay));
    assert_eq!(counted().await, 1, "a replay is no new message");
    let invalid =
        json!({"to": "+14155550123", "template": {"name": "order_shipped", "language": "en_US"}});
    assert_eq!(
        p.intake(post(API_KEY, Some("bad"), &invalid))
            .await
            .status_code,
        422
    );
    assert_eq!(counted().await, 1, "a 422 is no new message");
    assert_eq!(
        p.intake(post(API_KEY, Some("b"), &order_to("+14155550125", "Cy")))
            .await
            .status_code,
        202
    );
    assert_eq!(counted().await, 2);

    let third = p
        .intake(post(API_KEY, Some("c"), &order_to("+14155550126", "Di")))
        .await;
    // START is 10:15:30Z: 13 h 44 min 30 s to midnight.
    let b = assert_refused(&third, "daily_quota_exceeded", "49470");
    assert_eq!(b["error"]["limit"], json!({"messages_per_day": 2}));
    let without_key = p
        .intake(post(API_KEY, None, &order_to("+14155550126", "Di")))
        .await;
    assert_refused(&without_key, "daily_quota_exceeded", "49470");
    // A full day still answers what it stored: the replay, and the 409 of a reused key.
    let replay = p.intake(post(API_KEY, Some("a"), &first)).await;
    assert_eq!(replay.status_code, 200, "{}", body_text(&replay));
    assert_eq!(header(&replay, "idempotent-replayed"), Some("true"));
    let reused = p
        .intake(post(API_KEY, Some("a"), &order_to("+14155550123", "Other")))
        .await;
    assert_eq!(reused.status_code, 409, "{}", body_text(&reused));
    assert_eq!(counted().await, 2);
    assert_eq!(
        p.intake(post(OTHER_KEY, Some("c"), &order_to("+14155550126", "Di")))
            .await
            .status_code,
        202
    );
    assert_eq!(
        p.metric(
            "QuotaRefused",
            &[("Tenant", "demo"), ("Reason", "daily_quota_exceeded")]
        ),
        2.0
    );

    // Midnight UTC: a new day, a new count.
    p.clock
        .advance(Duration::from_millis(today.end().millis_since(START) as u64));
    let next = p
        .intake(post(API_KEY, Some("c"), &order_to("+14155550126", "Di")))
        .await;
    assert_eq!(next.status_code, 202, "{}", body_text(&next));
    let tomorrow = UtcDay::of(today.end());
    assert_eq!(
        p.quotas.messages_counted(&demo(), tomorrow).await.unwrap(),
        1
    );
}

#[tokio::test]
async fn a_flood_is_refused_for_its_tenant_only_on_sqlite() {
    a_flood_is_refused_for_its_tenant_only(&on_sqlite().await).await;
}

#[tokio::test]
async fn a_flood_is_refused_for_its_tenant_only_on_dynamodb() {
    let Some(p) = on_moto().await else { return };
    a_flood_is_refused_for_its_tenant_only(&p).await;
}

#[tokio::test]
async fn a_full_day_refuses_new_messages_and_still_answers_replays_on_sqlite() {
    a_full_day_refuses_new_messages_and_still_answers_replays(&on_sqlite().await).await;
}

#[tokio::test]
async fn a_full_day_refuses_new_messages_and_still_answers_replays_on_dynamodb() {
    let Some(p) = on_moto().await else { return };
    a_full_day_refuses_new_messages_and_still_answers_replays(&p).await;
}

/// A ledger whose backend is down.
struct DownLedger;

fn down() -> QuotaError {
    QuotaError::Backend {
        operation: "test",
        source: "the quotas table is unreachable".into(),
    }
}

#[async_trait]
impl QuotaLedger for DownLedger {
    async fn take_request(
        &self,
        _: &TenantId,
        _: &IntakeQuota,
        _: Timestamp,
    ) -> Result<Admission, QuotaError> {
        Err(down())
    }
    async fn reserve_message(&self, _: &TenantId, _: UtcDay, _: u32) -> Result<bool, QuotaError> {
        Err(down())
    }
    async fn release_message(&self, _: &TenantId, _: UtcDay) -> Result<(), QuotaError> {
        Err(down())
    }
    async fn messages_counted(&self, _: &TenantId, _: UtcDay) -> Result<u64, QuotaError> {
        Err(down())
    }
}

/// When the ledger fails, sends go through (counted as `QuotaCheckFailed`): a quota
/// protects the other tenants and is not worth refusing sends over.
#[tokio::test]
async fn a_failing_ledger_lets_sends_through_and_counts_it() {
    let mut p = on_sqlite().await;
    set_quota(
        &p,
        "demo",
        IntakeQuota {
            requests_per_second: 1,
            burst: 1,
            messages_per_day: Some(1),
        },
    )
    .await;
    p.functions.intake.quotas = Arc::new(DownLedger);
    for n in 0..3 {
        let resp = p
            .intake(post(
                API_KEY,
                Some(&format!("down-{n}")),
                &order_to("+14155550123", "Ana"),
            ))
            .await;
        assert_eq!(resp.status_code, 202, "{}", body_text(&resp));
    }
    // Each request: the rate check and the day's count both failed.
    assert_eq!(p.metric("QuotaCheckFailed", &[("Tenant", "demo")]), 6.0);
    assert_eq!(p.metric("QuotaRefused", &[]), 0.0);
}
