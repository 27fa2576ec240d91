//! The `CostLedger` conformance suite: one set of cases run against every adapter
//! (DESIGN §2 invariant). Use [`cost_conformance_tests!`](crate::cost_conformance_tests)
//! to turn it into one `#[tokio::test]` per case for an adapter.
//!
//! Each case gets a ledger no other case uses (a fresh SQLite file, a fresh DynamoDB
//! table). The cases hold every adapter to the port's promise: a message counts once
//! per category however many times, in whatever order and from however many callers
//! its statuses arrive, on the tenant's day of the first one counted.

use async_trait::async_trait;
use std::sync::Arc;
use wa_shared::domain::costs::{CallingCode, CostCount, PricedStatus};
use wa_shared::domain::quota::UtcDay;
use wa_shared::domain::{MessageId, TenantId, Timestamp};
use wa_shared::ports::{CostLedger, CostLedgerError, MAX_COST_DAYS};

/// What the suite needs from an adapter under test.
pub trait CostHarness: Send + Sync {
    /// The adapter under test, on a ledger no other case uses.
    fn ledger(&self) -> Arc<dyn CostLedger>;
}

/// 2026-06-03T10:15:30Z.
const T0: Timestamp = Timestamp::from_millis(1_780_481_730_000);

fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

fn day(offset: i64) -> UtcDay {
    UtcDay::of(T0.plus_millis(offset * 86_400_000))
}

/// A priced status of `message` to calling code `code`, `offset` days after T0's day.
fn priced(
    tenant_id: &str,
    message: &MessageId,
    category: &str,
    billable: bool,
    code: &str,
    offset: i64,
) -> PricedStatus {
    PricedStatus {
        tenant: tenant(tenant_id),
        message_id: message.clone(),
        day: day(offset),
        category: category.to_owned(),
        billable,
        calling_code: CallingCode::parse(code).unwrap(),
    }
}

fn count(offset: i64, category: &str, billable: bool, code: &str, messages: u64) -> CostCount {
    CostCount {
        day: day(offset),
        category: category.to_owned(),
        billable,
        calling_code: CallingCode::parse(code).unwrap(),
        messages,
    }
}

/// Every counter of `tenant` over the week around T0.
async fn week(l: &dyn CostLedger, tenant_id: &str) -> Vec<CostCount> {
    l.cost_totals(&tenant(tenant_id), day(-3), day(4))
        .await
        .unwrap()
}

/// A status repeated (Meta's retries, a replayed body) counts once.
pub async fn a_repeated_status_counts_once(h: &dyn CostHarness) {
    let l = h.ledger();
    let id = MessageId::generate();
    let status = priced("acme", &id, "marketing", true, "1415", 0);
    assert!(l.record_pricing(&status).await.unwrap(), "first time");
    for _ in 0..3 {
        assert!(!l.record_pricing(&status).await.unwrap(), "again");
    }
    assert_eq!(
        week(&*l, "acme").await,
        [count(0, "marketing", true, "1415", 1)]
    );
}

/// `delivered` before `sent` (or `read` before `delivered`), even across midnight:
/// the first one counted wins and the other counts nothing, on either day.
pub async fn reordered_statuses_count_once_on_the_first_ones_day(h: &dyn CostHarness) {
    let l = h.ledger();
    let id = MessageId::generate();
    let delivered = priced("acme", &id, "utility", true, "44", 1);
    let sent = priced("acme", &id, "utility", true, "44", 0);
    assert!(l.record_pricing(&delivered).await.unwrap());
    assert!(!l.record_pricing(&sent).await.unwrap());
    assert!(!l.record_pricing(&delivered).await.unwrap());
    assert_eq!(
        week(&*l, "acme").await,
        [count(1, "utility", true, "44", 1)]
    );
}

/// One message in two categories (a template re-categorised, a free entry point
/// followed by a paid one) counts in each; so do two messages in one category.
pub async fn categories_and_messages_count_apart(h: &dyn CostHarness) {
    let l = h.ledger();
    let (a, b) = (MessageId::generate(), MessageId::generate());
    assert!(
        l.record_pricing(&priced("acme", &a, "marketing", true, "91", 0))
            .await
            .unwrap()
    );
    assert!(
        l.record_pricing(&priced("acme", &a, "service", false, "91", 0))
            .await
            .unwrap()
    );
    assert!(
        l.record_pricing(&priced("acme", &b, "marketing", true, "91", 0))
            .await
            .unwrap()
    );
    assert!(
        !l.record_pricing(&priced("acme", &a, "service", false, "91", 0))
            .await
            .unwrap()
    );
    assert_eq!(
        week(&*l, "acme").await,
        [
            count(0, "marketing", true, "91", 2),
            count(0, "service", false, "91", 1),
        ]
    );
}

/// Each tenant has its own days; a day's count is not another day's, and the same
/// message id under two tenants (ids are per tenant) counts under each.
pub async fn tenants_and_days_are_kept_apart(h: &dyn CostHarness) {
    let l = h.ledger();
    let id = MessageId::generate();
    assert!(
        l.record_pricing(&priced("acme", &id, "utility", true, "1415", 0))
            .await
            .unwrap()
    );
    assert!(
        l.record_pricing(&priced("beta", &id, "utility", true, "1415", 0))
            .await
            .unwrap()
    );
    let later = MessageId::generate();
    assert!(
        l.record_pricing(&priced("acme", &later, "utility", true, "1415", 2))
            .await
            .unwrap()
    );
    assert_eq!(
        week(&*l, "acme").await,
        [
            count(0, "utility", true, "1415", 1),
            count(2, "utility", true, "1415", 1),
        ]
    );
    assert_eq!(
        week(&*l, "beta").await,
        [count(0, "utility", true, "1415", 1)]
    );
    assert!(week(&*l, "gamma").await.is_empty());
    // The period is since (inclusive) to until (exclusive).
    let one_day = l
        .cost_totals(&tenant("acme"), day(2), day(3))
        .await
        .unwrap();
    assert_eq!(one_day, [count(2, "utility", true, "1415", 1)]);
    let before = l
        .cost_totals(&tenant("acme"), day(1), day(2))
        .await
        .unwrap();
    assert!(before.is_empty());
}

/// Totals come ordered by day, category, billable, calling code; an empty period or
/// one longer than `MAX_COST_DAYS` is refused, the longest allowed one is read.
pub async fn totals_are_ordered_and_the_period_checked(h: &dyn CostHarness) {
    let l = h.ledger();
    let rows = [
        ("utility", true, "91", 1),
        ("marketing", true, "44", 0),
        ("marketing", false, "44", 0),
        ("authentication", true, "1415", 1),
        ("marketing", true, "1415", 0),
        ("marketing", true, "44", 0),
    ];
    for (category, billable, code, offset) in rows {
        let id = MessageId::generate();
        assert!(
            l.record_pricing(&priced("acme", &id, category, billable, code, offset))
                .await
                .unwrap()
        );
    }
    let want = vec![
        count(0, "marketing", false, "44", 1),
        count(0, "marketing", true, "1415", 1),
        count(0, "marketing", true, "44", 2),
        count(1, "authentication", true, "1415", 1),
        count(1, "utility", true, "91", 1),
    ];
    assert_eq!(week(&*l, "acme").await, want);
    let acme = tenant("acme");
    for (since, until) in [(day(0), day(0)), (day(1), day(0))] {
        assert!(matches!(
            l.cost_totals(&acme, since, until).await,
            Err(CostLedgerError::Period { .. })
        ));
    }
    let longest = i64::try_from(MAX_COST_DAYS).unwrap();
    assert!(matches!(
        l.cost_totals(&acme, day(1 - longest - 1), day(1)).await,
        Err(CostLedgerError::Period { .. })
    ));
    let year = l
        .cost_totals(&acme, day(1 - longest), day(1))
        .await
        .unwrap();
    assert_eq!(year, want[..3]);
}

/// The same status recorded by many callers at once (concurrent webhook invocations,
/// a replay racing Meta's retry) is counted by exactly one of them; different
/// messages recorded at once on one day's counter are all counted.
pub async fn concurrent_records_count_exactly_once(h: &dyn CostHarness) {
    let id = MessageId::generate();
    let status = priced("acme", &id, "marketing", true, "1415", 0);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (l, s) = (h.ledger(), status.clone());
            tokio::spawn(async move { l.record_pricing(&s).await })
        })
        .collect();
    let mut counted = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            counted += 1;
        }
    }
    assert_eq!(counted, 1);
    let others: Vec<_> = (0..12)
        .map(|_| {
            let l = h.ledger();
            let s = priced("acme", &MessageId::generate(), "marketing", true, "1415", 0);
            tokio::spawn(async move { l.record_pricing(&s).await })
        })
        .collect();
    for task in others {
        assert!(task.await.unwrap().unwrap());
    }
    assert_eq!(
        week(&*h.ledger(), "acme").await,
        [count(0, "marketing", true, "1415", 13)]
    );
}

/// A ledger whose writes run one at a time, for moto: moto checks a transaction's
/// conditions and applies it without a lock, so two concurrent transactions can both
/// pass (DynamoDB serialises them). The concurrency case then tests the adapter's
/// logic, not moto's races; real parallel writers run on SQLite.
#[derive(Debug)]
pub struct OneCostCallAtATime<L> {
    inner: L,
    calling: tokio::sync::Mutex<()>,
}

impl<L> OneCostCallAtATime<L> {
    /// Wrap `inner`.
    pub fn new(inner: L) -> Self {
        Self {
            inner,
            calling: tokio::sync::Mutex::new(()),
        }
    }

    /// The wrapped ledger.
    pub fn inner(&self) -> &L {
        &self.inner
    }
}

#[async_trait]
impl<L: CostLedger> CostLedger for OneCostCallAtATime<L> {
    async fn record_pricing(&self, status: &PricedStatus) -> Result<bool, CostLedgerError> {
        let _one = self.calling.lock().await;
        self.inner.record_pricing(status).await
    }

    async fn cost_totals(
        &self,
        tenant: &TenantId,
        since: UtcDay,
        until: UtcDay,
    ) -> Result<Vec<CostCount>, CostLedgerError> {
        self.inner.cost_totals(tenant, since, until).await
    }
}

/// One `#[tokio::test]` per conformance case. `$harness` is an expression giving a
/// future of `Option<impl CostHarness>` (`None`: skip, e.g. moto not running).
#[macro_export]
macro_rules! cost_conformance_tests {
    ($harness:expr) => {
        $crate::cost_conformance_tests!(@cases $harness;
            a_repeated_status_counts_once,
            reordered_statuses_count_once_on_the_first_ones_day,
            categories_and_messages_count_apart,
            tenants_and_days_are_kept_apart,
            totals_are_ordered_and_the_period_checked,
            concurrent_records_count_exactly_once,
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(harness) = $harness.await else { return };
                $crate::cost_conformance::$case(&harness).await;
            }
        )*
    };
}
