//! `--since`: an RFC 3339 instant (`2026-06-01T08:00:00Z`, any offset) or a
//! duration back from now (`90s`, `15m`, `1h`, `2d`, `1w`, or sums like `1h30m`).

use wa_shared::domain::Timestamp;

/// Why a `--since` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is neither an RFC 3339 time (2026-06-01T08:00:00Z) nor a duration like 90s, 15m, 1h, 2d, 1w or 1h30m"
)]
pub struct SinceError(String);

/// The instant `value` names, relative durations counted back from `now`.
pub fn parse_since(value: &str, now: Timestamp) -> Result<Timestamp, SinceError> {
    let value = value.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(Timestamp::from_millis(t.timestamp_millis()));
    }
    parse_duration_ms(value)
        .map(|ms| now.plus_millis(-ms))
        .ok_or_else(|| SinceError(value.to_owned()))
}

/// `--send-at`: an RFC 3339 instant, or a duration ahead of `now` (`+10m`, `2h`, `1d`),
/// as the canonical RFC 3339 the API takes.
pub fn parse_send_at(value: &str, now: Timestamp) -> Result<String, SinceError> {
    let value = value.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(Timestamp::from_millis(t.timestamp_millis()).to_rfc3339());
    }
    parse_duration_ms(value.strip_prefix('+').unwrap_or(value))
        .map(|ms| now.plus_millis(ms).to_rfc3339())
        .ok_or_else(|| SinceError(value.to_owned()))
}

/// Milliseconds of `1h30m`-style durations: numbers each followed by one unit.
fn parse_duration_ms(value: &str) -> Option<i64> {
    if value.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    for c in value.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit_ms: i64 = match c {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            'w' => 604_800_000,
            _ => return None,
        };
        let n: i64 = digits.parse().ok()?;
        digits.clear();
        total = total.checked_add(n.checked_mul(unit_ms)?)?;
    }
    // A trailing number without a unit is ambiguous: refuse it.
    digits.is_empty().then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_at_takes_an_instant_or_a_duration_ahead() {
        let now = Timestamp::from_millis(1_780_000_000_000);
        assert_eq!(
            parse_send_at("2026-06-03T11:00:00+02:00", now).unwrap(),
            "2026-06-03T09:00:00.000Z"
        );
        assert_eq!(
            parse_send_at("+10m", now).unwrap(),
            now.plus_millis(600_000).to_rfc3339()
        );
        assert_eq!(
            parse_send_at("1h30m", now).unwrap(),
            now.plus_millis(5_400_000).to_rfc3339()
        );
        assert!(parse_send_at("tomorrow", now).is_err());
    }

    const NOW: Timestamp = Timestamp::from_millis(1_780_000_000_000);

    #[test]
    fn durations_count_back_from_now() {
        let back = |v: &str| NOW.millis_since(parse_since(v, NOW).unwrap());
        assert_eq!(back("90s"), 90_000);
        assert_eq!(back("15m"), 900_000);
        assert_eq!(back("1h"), 3_600_000);
        assert_eq!(back("1h30m"), 5_400_000);
        assert_eq!(back("2d"), 172_800_000);
        assert_eq!(back("1w"), 604_800_000);
        assert_eq!(back(" 0s "), 0);
    }

    #[test]
    fn rfc3339_times_are_absolute_whatever_their_offset() {
        let utc = parse_since("2026-06-01T08:00:00Z", NOW).unwrap();
        assert_eq!(utc.to_rfc3339(), "2026-06-01T08:00:00.000Z");
        let paris = parse_since("2026-06-01T10:00:00.250+02:00", NOW).unwrap();
        assert_eq!(paris.as_millis(), utc.as_millis() + 250);
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "1",
            "h",
            "1x",
            "1.5h",
            "-1h",
            "yesterday",
            "2026-06-01",
            "1h 30m",
        ] {
            assert!(parse_since(bad, NOW).is_err(), "{bad:?} accepted");
        }
        assert!(parse_since("99999999999999999w", NOW).is_err());
    }
}
