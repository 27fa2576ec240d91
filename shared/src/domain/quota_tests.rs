//! The quota rules: examples and properties of the rate rule (GCRA) and the UTC day.

use super::*;
use proptest::prelude::*;

fn quota(requests_per_second: u32, burst: u32) -> IntakeQuota {
    IntakeQuota {
        requests_per_second,
        burst,
        messages_per_day: None,
    }
}

/// Run `arrivals` (µs, ascending) through the rule; the admitted instants.
fn admitted(rate: RequestRate, arrivals: &[i64]) -> Vec<i64> {
    let mut tat = None;
    let mut out = Vec::new();
    for &now in arrivals {
        if let RateDecision::Admit { tat_us } = rate.decide(tat, now) {
            tat = Some(tat_us);
            out.push(now);
        }
    }
    out
}

#[test]
fn a_quiet_tenant_gets_its_burst_at_once_then_one_per_interval() {
    let rate = quota(10, 3).rate();
    assert_eq!(rate.interval_us(), 100_000);
    let now = 5_000_000;
    assert_eq!(admitted(rate, &[now; 5]), vec![now; 3]);
    // The fourth request at the same instant waits one interval.
    let mut tat = None;
    for _ in 0..3 {
        let RateDecision::Admit { tat_us } = rate.decide(tat, now) else {
            panic!("the burst is admitted")
        };
        tat = Some(tat_us);
    }
    assert_eq!(
        rate.decide(tat, now),
        RateDecision::Refuse {
            retry_after: Duration::from_millis(100)
        }
    );
    assert!(matches!(
        rate.decide(tat, now + 100_000),
        RateDecision::Admit { .. }
    ));
}

#[test]
fn the_interval_rounds_up_so_the_rate_is_never_exceeded() {
    assert_eq!(quota(3, 1).rate().interval_us(), 333_334);
    assert_eq!(quota(1, 1).rate().interval_us(), 1_000_000);
    // Zero settings (a hand-edited profile) count as 1.
    assert_eq!(quota(0, 0).rate(), quota(1, 1).rate());
}

#[test]
fn profiles_without_a_quota_get_the_defaults() {
    let q: IntakeQuota = serde_json::from_str("{}").unwrap();
    assert_eq!(q, IntakeQuota::default());
    assert_eq!((q.requests_per_second, q.burst), (50, 100));
    assert_eq!(q.messages_per_day, None);
    let q: IntakeQuota = serde_json::from_str(r#"{"messages_per_day": 1000}"#).unwrap();
    assert_eq!(q.messages_per_day, Some(1000));
    assert_eq!(q.requests_per_second, DEFAULT_REQUESTS_PER_SECOND);
    let json = serde_json::to_value(IntakeQuota::default()).unwrap();
    assert!(json.get("messages_per_day").is_none(), "{json}");
}

#[test]
fn quotas_read_as_operators_write_them() {
    assert_eq!(
        IntakeQuota::default().to_string(),
        "50/s burst 100, no daily cap"
    );
    let capped = IntakeQuota {
        messages_per_day: Some(10_000),
        ..quota(5, 10)
    };
    assert_eq!(capped.to_string(), "5/s burst 10, 10000/day");
}

#[test]
fn out_of_range_settings_are_named() {
    assert_eq!(IntakeQuota::default().check(), Ok(()));
    assert_eq!(quota(0, 1).check(), Err(InvalidQuota::RequestsPerSecond(0)));
    assert_eq!(quota(1, 0).check(), Err(InvalidQuota::Burst(0)));
    let zero_day = IntakeQuota {
        messages_per_day: Some(0),
        ..IntakeQuota::default()
    };
    assert_eq!(zero_day.check(), Err(InvalidQuota::MessagesPerDay));
}

#[test]
fn days_are_utc_and_keyed_by_their_date() {
    // 2026-06-03T10:15:30Z.
    let t = Timestamp::from_millis(1_780_481_730_000);
    let day = UtcDay::of(t);
    assert_eq!(day.key(), "2026-06-03");
    assert_eq!(day.start().to_rfc3339(), "2026-06-03T00:00:00.000Z");
    assert_eq!(day.end().to_rfc3339(), "2026-06-04T00:00:00.000Z");
    assert_eq!(day.minus_days(3).key(), "2026-05-31");
    assert_eq!(
        until_next_day(t),
        Duration::from_millis(13 * 3_600_000 + 44 * 60_000 + 30_000)
    );
    assert_eq!(UtcDay::of(day.end().plus_millis(-1)), day);
    assert!(day_has_room(999, 1000));
    assert!(!day_has_room(1000, 1000));
}

#[test]
fn refusals_round_retry_after_up_to_whole_seconds() {
    let rate = QuotaRefusal::RateLimited {
        requests_per_second: 50,
        burst: 100,
        retry_after: Duration::from_millis(20),
    };
    assert_eq!(rate.code(), "rate_limited");
    assert_eq!(rate.retry_after_secs(), 1);
    assert!(rate.to_string().contains("50 requests/s (burst 100)"));
    let day = QuotaRefusal::DailyQuotaExceeded {
        messages_per_day: 10,
        retry_after: Duration::from_millis(3_000_001),
    };
    assert_eq!(day.code(), "daily_quota_exceeded");
    assert_eq!(day.retry_after_secs(), 3_001);
    let exact = QuotaRefusal::DailyQuotaExceeded {
        messages_per_day: 10,
        retry_after: Duration::from_secs(7),
    };
    assert_eq!(exact.retry_after_secs(), 7);
}

fn arrivals() -> impl Strategy<Value = Vec<i64>> {
    // Gaps of 0..0.2 s between arrivals, starting at an arbitrary instant.
    (
        0i64..1_000_000_000_000,
        prop::collection::vec(0i64..200_000, 1..300),
    )
        .prop_map(|(start, gaps)| {
            gaps.iter()
                .scan(start, |t, gap| {
                    *t += gap;
                    Some(*t)
                })
                .collect()
        })
}

proptest! {
    /// In any window of length `d`, at most `burst + d / interval` requests pass:
    /// the rate with its burst is never exceeded, whatever the arrivals.
    #[test]
    fn no_window_admits_more_than_the_burst_plus_the_rate(
        rps in 1u32..200, burst in 1u32..50, arrivals in arrivals()
    ) {
        let rate = quota(rps, burst).rate();
        let ok = admitted(rate, &arrivals);
        for (i, first) in ok.iter().enumerate() {
            for (j, last) in ok.iter().enumerate().skip(i) {
                let n = (j - i + 1) as i64;
                let allowed = i64::from(burst) + (last - first) / rate.interval_us();
                prop_assert!(n <= allowed, "{n} admitted in {} us (allowed {allowed})", last - first);
            }
        }
    }

    /// A refused request is admitted when retried after `retry_after` (and not a
    /// microsecond earlier), if nothing else was admitted meanwhile.
    #[test]
    fn retry_after_is_exactly_when_a_request_passes_again(
        rps in 1u32..500, burst in 1u32..20, arrivals in arrivals()
    ) {
        let rate = quota(rps, burst).rate();
        let mut tat = None;
        for now in arrivals {
            match rate.decide(tat, now) {
                RateDecision::Admit { tat_us } => {
                    prop_assert!(tat_us > now);
                    tat = Some(tat_us);
                }
                RateDecision::Refuse { retry_after } => {
                    let wait = i64::try_from(retry_after.as_micros()).unwrap();
                    prop_assert!(wait > 0);
                    prop_assert!(wait <= rate.interval_us() * i64::from(burst));
                    let is_admitted = |at| matches!(rate.decide(tat, at), RateDecision::Admit { .. });
                    prop_assert!(is_admitted(now + wait));
                    prop_assert!(!is_admitted(now + wait - 1));
                }
            }
        }
    }

    /// Requests spaced by at least one interval are never refused.
    #[test]
    fn a_tenant_within_its_rate_is_never_refused(
        rps in 1u32..1000, burst in 1u32..20, start in 0i64..1_000_000_000_000,
        extra in prop::collection::vec(0i64..50_000, 1..200)
    ) {
        let rate = quota(rps, burst).rate();
        let mut now = start;
        let mut tat = None;
        for e in extra {
            let RateDecision::Admit { tat_us } = rate.decide(tat, now) else {
                return Err(TestCaseError::fail(format!("refused at {now}")));
            };
            tat = Some(tat_us);
            now += rate.interval_us() + e;
        }
    }

    /// After a quiet spell of `burst` intervals, exactly `burst` requests pass at once.
    #[test]
    fn a_quiet_spell_refills_the_whole_burst(
        rps in 1u32..1000, burst in 1u32..100, start in 0i64..1_000_000_000_000, busy in 0usize..300
    ) {
        let rate = quota(rps, burst).rate();
        let flood = admitted(rate, &vec![start; busy]);
        prop_assert_eq!(flood.len(), busy.min(burst as usize));
        let later = start + rate.interval_us() * i64::from(burst);
        let mut all = vec![start; busy];
        all.extend(vec![later; burst as usize + 5]);
        let again = admitted(rate, &all).into_iter().filter(|t| *t == later).count();
        prop_assert_eq!(again, burst as usize);
    }

    /// Every instant belongs to the day that starts at or before it and ends after it.
    #[test]
    fn an_instant_lies_within_its_day(ms in -10_000_000_000_000i64..10_000_000_000_000) {
        let t = Timestamp::from_millis(ms);
        let day = UtcDay::of(t);
        prop_assert!(day.start() <= t && t < day.end());
        let wait = until_next_day(t);
        prop_assert!(wait > Duration::ZERO && wait <= Duration::from_millis(86_400_000));
    }
}
