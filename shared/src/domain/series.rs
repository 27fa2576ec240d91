//! Traffic series (issue 17 point 1): per-minute counters of what happened to the
//! tenants' messages, kept by the store so charts never scan messages.
//!
//! A counter is keyed (tenant, [`Minute`], [`SeriesMetric`]): transitions (`accepted`,
//! `delivered`, `read`, `failed.<class>`, `suppressed.<reason>`) and, for latencies and
//! webhook lag, one counter per fixed histogram bucket ([`LATENCY_BOUNDS_MS`]), so
//! percentiles come from bucket counts ([`percentile`]). The transition points build
//! their counts with the functions here (the same milestones as the metrics count),
//! and [`Grid`] folds stored minutes into an hour by minute or a day by hour.

use crate::domain::lifecycle::ProviderStatusKind;
use crate::domain::{Message, MessageState, TenantId, Timestamp};
use std::collections::BTreeMap;
use std::fmt;

/// How long counters are kept: two days of minutes.
pub const KEEP_MINUTES: i64 = 2 * 24 * 60;

/// Upper bounds (inclusive, milliseconds) of the latency buckets, log-spaced
/// 1-2.5-5 per decade; a last, unbounded bucket holds whatever is slower.
pub const LATENCY_BOUNDS_MS: [i64; 14] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 1_800_000,
    3_600_000,
];

/// Number of latency buckets: one per bound plus the unbounded one.
pub const BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

/// A UTC minute: whole minutes since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minute(i64);

impl Minute {
    /// The minute `index` minutes after the epoch.
    pub const fn from_index(index: i64) -> Self {
        Self(index)
    }

    /// The minute holding `t`.
    pub const fn of(t: Timestamp) -> Self {
        Self(t.as_millis().div_euclid(60_000))
    }

    /// Minutes since the epoch.
    pub const fn index(self) -> i64 {
        self.0
    }

    /// The minute's first millisecond.
    pub const fn start(self) -> Timestamp {
        Timestamp::from_millis(self.0.saturating_mul(60_000))
    }

    /// This minute moved by `minutes` (negative: earlier).
    pub const fn plus(self, minutes: i64) -> Self {
        Self(self.0.saturating_add(minutes))
    }

    /// The first minute of this minute's UTC hour.
    pub const fn hour_start(self) -> Self {
        Self(self.0.div_euclid(60) * 60)
    }
}

/// A timed span measured into histogram buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Span {
    /// Message created (queued) until Meta accepted it.
    QueuedAccepted,
    /// Meta accepted it until it was delivered.
    AcceptedDelivered,
    /// Meta's status time until we stored the status (webhook lag).
    WebhookLag,
}

impl Span {
    /// Every span, in display order.
    pub const ALL: [Span; 3] = [
        Span::QueuedAccepted,
        Span::AcceptedDelivered,
        Span::WebhookLag,
    ];

    /// The key prefix of its buckets.
    pub const fn as_str(self) -> &'static str {
        match self {
            Span::QueuedAccepted => "lat.queued_accepted",
            Span::AcceptedDelivered => "lat.accepted_delivered",
            Span::WebhookLag => "lag.webhook",
        }
    }
}

/// What one counter counts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SeriesMetric {
    /// Meta accepted a send.
    Accepted,
    /// Delivered (or implied delivered by a read that skipped it).
    Delivered,
    /// Read.
    Read,
    /// Failed, by failure class (`FailureClass::as_str`).
    Failed(String),
    /// Suppressed, by reason (`SuppressionReason::as_str`).
    Suppressed(String),
    /// One observation of `span` in bucket `bucket` (index into [`LATENCY_BOUNDS_MS`],
    /// or its length for the unbounded bucket).
    Latency {
        /// What was timed.
        span: Span,
        /// The bucket.
        bucket: usize,
    },
}

impl SeriesMetric {
    /// The stored key: `accepted`, `failed.recipient`, `lat.queued_accepted.le_1000`, ….
    pub fn key(&self) -> String {
        match self {
            SeriesMetric::Accepted => "accepted".into(),
            SeriesMetric::Delivered => "delivered".into(),
            SeriesMetric::Read => "read".into(),
            SeriesMetric::Failed(class) => format!("failed.{class}"),
            SeriesMetric::Suppressed(reason) => format!("suppressed.{reason}"),
            SeriesMetric::Latency { span, bucket } => match LATENCY_BOUNDS_MS.get(*bucket) {
                Some(bound) => format!("{}.le_{bound}", span.as_str()),
                None => format!("{}.le_inf", span.as_str()),
            },
        }
    }

    /// The metric of a stored key; `None` for a key not of ours.
    pub fn parse(key: &str) -> Option<Self> {
        match key {
            "accepted" => return Some(SeriesMetric::Accepted),
            "delivered" => return Some(SeriesMetric::Delivered),
            "read" => return Some(SeriesMetric::Read),
            _ => {}
        }
        if let Some(class) = key.strip_prefix("failed.") {
            return is_word(class).then(|| SeriesMetric::Failed(class.into()));
        }
        if let Some(reason) = key.strip_prefix("suppressed.") {
            return is_word(reason).then(|| SeriesMetric::Suppressed(reason.into()));
        }
        let span = Span::ALL
            .into_iter()
            .find(|s| key.starts_with(s.as_str()))?;
        let bound = key.get(span.as_str().len()..)?.strip_prefix(".le_")?;
        let bucket = if bound == "inf" {
            LATENCY_BOUNDS_MS.len()
        } else {
            let ms: i64 = bound.parse().ok()?;
            LATENCY_BOUNDS_MS.iter().position(|b| *b == ms)?
        };
        Some(SeriesMetric::Latency { span, bucket })
    }
}

impl fmt::Display for SeriesMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The bucket a duration of `ms` falls in (a negative one, clock skew, in the first).
pub fn bucket_of(ms: i64) -> usize {
    LATENCY_BOUNDS_MS
        .iter()
        .position(|bound| ms <= *bound)
        .unwrap_or(LATENCY_BOUNDS_MS.len())
}

/// `count` more of `metric` for `tenant` in `minute`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesPoint {
    /// Whose messages.
    pub tenant: TenantId,
    /// When (the minute the transition was stored in).
    pub minute: Minute,
    /// What.
    pub metric: SeriesMetric,
    /// How many.
    pub count: u64,
}

impl SeriesPoint {
    /// One of `metric` for `tenant` at `at`.
    pub fn one(tenant: &TenantId, at: Timestamp, metric: SeriesMetric) -> Self {
        Self {
            tenant: tenant.clone(),
            minute: Minute::of(at),
            metric,
            count: 1,
        }
    }

    /// One observation of `span` lasting `ms`, at `at`.
    pub fn timed(tenant: &TenantId, at: Timestamp, span: Span, ms: i64) -> Self {
        Self::one(
            tenant,
            at,
            SeriesMetric::Latency {
                span,
                bucket: bucket_of(ms),
            },
        )
    }
}

/// The counts of an accept stored at `now`: `accepted` and the queued→accepted time
/// (from the message's creation, like the `QueueToAcceptedMs` metric; a scheduled
/// message from its release to `queued`).
pub fn accepted(message: &Message, now: Timestamp) -> Vec<SeriesPoint> {
    let t = &message.tenant;
    let stamps = &message.timestamps;
    let queued = match (stamps.scheduled_at, stamps.queued_at) {
        (Some(_), Some(queued)) => queued,
        _ => message.created_at,
    };
    vec![
        SeriesPoint::one(t, now, SeriesMetric::Accepted),
        SeriesPoint::timed(t, now, Span::QueuedAccepted, now.millis_since(queued)),
    ]
}

/// The counts of a status webhook that advanced `message` (as stored) at `now`: each
/// milestone once, when first reached, as the webhook's metrics count them (a `read`
/// that skipped `delivered` counts both), the accepted→delivered time on a
/// `delivered` status, and the webhook lag when Meta gave the status a time.
pub fn advanced(
    message: &Message,
    kind: ProviderStatusKind,
    status_at: Option<Timestamp>,
    now: Timestamp,
) -> Vec<SeriesPoint> {
    let t = &message.tenant;
    let mut points = Vec::new();
    let stamps = &message.timestamps;
    if message.state == MessageState::Read && stamps.delivered_at.is_none() {
        points.push(SeriesPoint::one(t, now, SeriesMetric::Delivered));
    }
    match message.state {
        MessageState::Delivered => points.push(SeriesPoint::one(t, now, SeriesMetric::Delivered)),
        MessageState::Read => points.push(SeriesPoint::one(t, now, SeriesMetric::Read)),
        MessageState::Failed => {
            let class = message
                .failure
                .as_ref()
                .map_or("rejected", |f| f.class.as_str());
            points.push(SeriesPoint::one(t, now, SeriesMetric::Failed(class.into())));
        }
        _ => {}
    }
    if kind == ProviderStatusKind::Delivered
        && let (Some(accepted), Some(delivered)) = (stamps.accepted_at, stamps.delivered_at)
    {
        points.push(SeriesPoint::timed(
            t,
            now,
            Span::AcceptedDelivered,
            delivered.millis_since(accepted),
        ));
    }
    points.extend(lag(t, status_at, now));
    points
}

/// The webhook lag of a status stored at `now` that Meta timed `status_at` (none
/// without a time).
pub fn lag(tenant: &TenantId, status_at: Option<Timestamp>, now: Timestamp) -> Option<SeriesPoint> {
    status_at.map(|at| SeriesPoint::timed(tenant, now, Span::WebhookLag, now.millis_since(at)))
}

/// A percentile read from bucket counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Percentile {
    /// At most this many milliseconds (the upper bound of its bucket).
    AtMost(i64),
    /// Slower than the largest bound.
    Above(i64),
}

impl Percentile {
    /// Milliseconds to plot: the bucket's bound (the largest bound for [`Self::Above`]).
    pub const fn millis(self) -> i64 {
        match self {
            Percentile::AtMost(ms) | Percentile::Above(ms) => ms,
        }
    }
}

/// The `q` quantile (0 < q ≤ 1) of the observations counted in `buckets` (one count
/// per bucket, [`BUCKETS`] of them): the bound of the first bucket at which the
/// cumulative count reaches `q` of the total. `None` without observations.
pub fn percentile(buckets: &[u64; BUCKETS], q: f64) -> Option<Percentile> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    // The rank of the wanted observation, 1-based: ceil(q * total), at least 1.
    let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0u64;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(match LATENCY_BOUNDS_MS.get(i) {
                Some(bound) => Percentile::AtMost(*bound),
                None => Percentile::Above(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1]),
            });
        }
    }
    None
}

/// The time axis of a chart: `slots` slots of `step` minutes from `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    /// The first slot's first minute.
    pub from: Minute,
    /// Minutes per slot.
    pub step: i64,
    /// Number of slots (the last holds `now`).
    pub slots: usize,
}

impl Grid {
    /// The last hour by minute, ending with `now`'s minute.
    pub fn hour_by_minute(now: Timestamp) -> Self {
        Self {
            from: Minute::of(now).plus(-59),
            step: 1,
            slots: 60,
        }
    }

    /// The last day by hour, ending with `now`'s (partial) hour.
    pub fn day_by_hour(now: Timestamp) -> Self {
        Self {
            from: Minute::of(now).hour_start().plus(-23 * 60),
            step: 60,
            slots: 24,
        }
    }

    /// The first minute after the grid (exclusive end of a read).
    pub fn until(&self) -> Minute {
        self.from.plus(self.step * self.slots as i64)
    }

    /// The slot `minute` falls in, if inside the grid.
    pub fn slot(&self, minute: Minute) -> Option<usize> {
        let offset = minute.index().checked_sub(self.from.index())?;
        if offset < 0 {
            return None;
        }
        let slot = usize::try_from(offset / self.step).ok()?;
        (slot < self.slots).then_some(slot)
    }

    /// The first minute of `slot`.
    pub fn slot_start(&self, slot: usize) -> Minute {
        self.from.plus(self.step * slot as i64)
    }

    /// `points` (any tenants: they are summed) folded into the grid's slots.
    pub fn fold<'a>(&self, points: impl IntoIterator<Item = &'a SeriesPoint>) -> Folded {
        let mut folded = Folded {
            slots: self.slots,
            counts: BTreeMap::new(),
        };
        for p in points {
            if let Some(slot) = self.slot(p.minute) {
                let row = folded
                    .counts
                    .entry(p.metric.clone())
                    .or_insert_with(|| vec![0; self.slots]);
                row[slot] = row[slot].saturating_add(p.count);
            }
        }
        folded
    }
}

/// Counts per metric and slot of a [`Grid`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folded {
    slots: usize,
    /// Each metric's count per slot.
    pub counts: BTreeMap<SeriesMetric, Vec<u64>>,
}

impl Folded {
    /// One metric's counts per slot (zeros when never counted).
    pub fn row(&self, metric: &SeriesMetric) -> Vec<u64> {
        self.counts
            .get(metric)
            .cloned()
            .unwrap_or_else(|| vec![0; self.slots])
    }

    /// Every `failed.*` (or `suppressed.*`, with `suppressed`) row by class or reason.
    pub fn by_label(&self, suppressed: bool) -> Vec<(String, Vec<u64>)> {
        self.counts
            .iter()
            .filter_map(|(m, row)| match (m, suppressed) {
                (SeriesMetric::Failed(c), false) | (SeriesMetric::Suppressed(c), true) => {
                    Some((c.clone(), row.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// `span`'s bucket counts in `slot`.
    pub fn histogram(&self, span: Span, slot: usize) -> [u64; BUCKETS] {
        let mut buckets = [0u64; BUCKETS];
        for (bucket, n) in buckets.iter_mut().enumerate() {
            if let Some(row) = self.counts.get(&SeriesMetric::Latency { span, bucket }) {
                *n = row.get(slot).copied().unwrap_or(0);
            }
        }
        buckets
    }

    /// `span`'s `q` quantile per slot, in milliseconds (`None`: nothing timed).
    pub fn percentiles(&self, span: Span, q: f64) -> Vec<Option<i64>> {
        (0..self.slots)
            .map(|slot| percentile(&self.histogram(span, slot), q).map(Percentile::millis))
            .collect()
    }

    /// Observations of `span` in all slots.
    pub fn observations(&self, span: Span) -> u64 {
        (0..self.slots)
            .map(|s| self.histogram(span, s).iter().sum::<u64>())
            .sum()
    }
}

#[cfg(test)]
#[path = "series_tests.rs"]
mod tests;
