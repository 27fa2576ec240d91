//! Injected failures, all drawn from seeded generators so a run can be replayed.
//!
//! Two independent generators: one for send answers (drawn once per send request, in
//! arrival order) and one for webhooks (drawn once per status, in acceptance order),
//! so changing a webhook rate does not change which sends fail.

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Every fault knob; all rates are probabilities in `0..=1`, all off by default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Synchronous error answers by class, e.g. `{code = 131000, http_status = 500, rate = 0.05}`.
    pub errors: Vec<ErrorFault>,
    /// Share of sends that are accepted (recorded, webhooks flow) but never answered in time.
    pub accept_then_timeout_rate: f64,
    /// How long such an answer is held before it is sent anyway (default 120 s, far past
    /// any sane client timeout); the held answer is the success the client never saw.
    pub accept_then_timeout_hold_ms: Option<u64>,
    /// Extra latency before every answer.
    pub latency: LatencyConfig,
    /// Faults of status webhooks.
    pub webhook: WebhookFaults,
}

/// One class of synchronous error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorFault {
    /// Graph error code in the envelope (`131000`, `130429`, `131016`, `1`, `2`, ...).
    pub code: i64,
    /// HTTP status; Meta's usual one for the code when absent.
    #[serde(default)]
    pub http_status: Option<u16>,
    /// Probability per send.
    pub rate: f64,
}

/// Added latency: `fixed_ms` plus a random jitter.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LatencyConfig {
    /// Always added.
    pub fixed_ms: u64,
    /// Random part.
    pub jitter: Jitter,
}

/// The random part of the latency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Jitter {
    /// None.
    #[default]
    None,
    /// Uniform in `0..=max_ms`.
    Uniform {
        /// Upper bound.
        max_ms: u64,
    },
    /// Exponential with this mean (a long tail like a real network's).
    Exponential {
        /// Mean.
        mean_ms: f64,
    },
}

/// Faults of status webhooks, drawn per status.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookFaults {
    /// The status is posted twice (in separate POSTs).
    pub duplicate_rate: f64,
    /// The status trades its time with the next status of the same message, so it
    /// arrives after it (`delivered` before `sent`).
    pub reorder_rate: f64,
    /// The status is held back by `delay_ms` more.
    pub delay_rate: f64,
    /// Extra delay of a delayed status.
    pub delay_ms: u64,
    /// The status is never posted (Meta gave up, or lost it).
    pub drop_rate: f64,
}

impl FaultConfig {
    /// Check that rates are probabilities and that the send faults add up to at most 1.
    pub fn validate(&self) -> Result<(), String> {
        let w = &self.webhook;
        let rates = self
            .errors
            .iter()
            .map(|e| e.rate)
            .chain([self.accept_then_timeout_rate])
            .chain([w.duplicate_rate, w.reorder_rate, w.delay_rate, w.drop_rate]);
        for r in rates {
            if !(0.0..=1.0).contains(&r) {
                return Err(format!("fault rate {r} is not in 0..=1"));
            }
        }
        let send_total: f64 =
            self.errors.iter().map(|e| e.rate).sum::<f64>() + self.accept_then_timeout_rate;
        if send_total > 1.0 + 1e-9 {
            return Err(format!("send fault rates add up to {send_total} > 1"));
        }
        if let Jitter::Exponential { mean_ms } = self.latency.jitter
            && !(mean_ms >= 0.0 && mean_ms.is_finite())
        {
            return Err("exponential jitter mean must be >= 0".to_owned());
        }
        Ok(())
    }

    /// How long an accept-then-timeout answer is held.
    pub fn hold(&self) -> Duration {
        Duration::from_millis(self.accept_then_timeout_hold_ms.unwrap_or(120_000))
    }
}

/// What happens to one send, decided before it is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFault {
    /// Nothing injected: the sandbox answers what Meta would.
    None,
    /// Answer this error instead (nothing accepted).
    Error {
        /// Graph error code.
        code: i64,
        /// HTTP status.
        http_status: u16,
    },
    /// Accept, then hold the answer.
    AcceptThenTimeout,
}

/// What happens to one status webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusFault {
    /// Never posted.
    pub drop: bool,
    /// Posted twice.
    pub duplicate: bool,
    /// Swapped in time with the next status of its message.
    pub reorder: bool,
    /// Extra delay.
    pub delay: Option<Duration>,
}

/// The seeded decision maker.
#[derive(Debug)]
pub struct Faults {
    config: FaultConfig,
    sends: ChaCha8Rng,
    webhooks: ChaCha8Rng,
}

impl Faults {
    /// Generators seeded from `seed`.
    pub fn new(config: FaultConfig, seed: u64) -> Self {
        Self {
            config,
            sends: ChaCha8Rng::seed_from_u64(seed),
            webhooks: ChaCha8Rng::seed_from_u64(seed ^ 0x0005_eed0_f3eb_4005),
        }
    }

    /// The fault of the next send and its added latency. Always draws the same number
    /// of values, so the sequence depends only on the seed and the count of sends.
    pub fn next_send(&mut self) -> (SendFault, Duration) {
        let roll: f64 = self.sends.random();
        let jitter_roll: f64 = self.sends.random();
        let mut edge = 0.0;
        let mut fault = SendFault::None;
        for e in &self.config.errors {
            edge += e.rate;
            if roll < edge {
                fault = SendFault::Error {
                    code: e.code,
                    http_status: e.http_status.unwrap_or_else(|| default_http_status(e.code)),
                };
                break;
            }
        }
        if fault == SendFault::None && roll < edge + self.config.accept_then_timeout_rate {
            fault = SendFault::AcceptThenTimeout;
        }
        (fault, self.latency(jitter_roll))
    }

    fn latency(&self, roll: f64) -> Duration {
        let l = &self.config.latency;
        let jitter_ms = match l.jitter {
            Jitter::None => 0.0,
            Jitter::Uniform { max_ms } => roll * max_ms as f64,
            // Inverse transform sampling; 1 - roll is in (0, 1], so ln is finite.
            Jitter::Exponential { mean_ms } => -(1.0 - roll).ln() * mean_ms,
        };
        Duration::from_millis(l.fixed_ms) + Duration::from_secs_f64(jitter_ms.max(0.0) / 1000.0)
    }

    /// The fault of the next status webhook (four draws each, whatever the rates).
    pub fn next_status(&mut self) -> StatusFault {
        let w = &self.config.webhook;
        let rolls: [f64; 4] = [
            self.webhooks.random(),
            self.webhooks.random(),
            self.webhooks.random(),
            self.webhooks.random(),
        ];
        StatusFault {
            drop: rolls[0] < w.drop_rate,
            duplicate: rolls[1] < w.duplicate_rate,
            reorder: rolls[2] < w.reorder_rate,
            delay: (rolls[3] < w.delay_rate).then(|| Duration::from_millis(w.delay_ms)),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FaultConfig {
        &self.config
    }
}

/// Meta's usual HTTP status for an error code (reference §3); 400 when not listed.
pub fn default_http_status(code: i64) -> u16 {
    match code {
        0 | 190 => 401,
        2 | 133004 => 503,
        3 | 131000 | 131016 | 131045 | 131057 | 133000 => 500,
        10 | 200..=299 | 368 | 130497 | 131005 | 131031 => 403,
        132001 => 404,
        _ => 400,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rate_500: f64, timeout: f64) -> FaultConfig {
        FaultConfig {
            errors: vec![ErrorFault {
                code: 131000,
                http_status: None,
                rate: rate_500,
            }],
            accept_then_timeout_rate: timeout,
            ..FaultConfig::default()
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let mut a = Faults::new(config(0.3, 0.2), 7);
        let mut b = Faults::new(config(0.3, 0.2), 7);
        let mut c = Faults::new(config(0.3, 0.2), 8);
        let run = |f: &mut Faults| (0..200).map(|_| f.next_send().0).collect::<Vec<_>>();
        let (ra, rb, rc) = (run(&mut a), run(&mut b), run(&mut c));
        assert_eq!(ra, rb);
        assert_ne!(ra, rc);
    }

    #[test]
    fn observed_rates_follow_the_configured_ones() {
        let mut f = Faults::new(config(0.05, 0.02), 1);
        let n = 100_000;
        let (mut errors, mut timeouts) = (0, 0);
        for _ in 0..n {
            match f.next_send().0 {
                SendFault::Error { http_status, .. } => {
                    assert_eq!(http_status, 500);
                    errors += 1;
                }
                SendFault::AcceptThenTimeout => timeouts += 1,
                SendFault::None => {}
            }
        }
        assert!((errors as f64 / n as f64 - 0.05).abs() < 0.005, "{errors}");
        assert!(
            (timeouts as f64 / n as f64 - 0.02).abs() < 0.003,
            "{timeouts}"
        );
    }

    #[test]
    fn latency_is_fixed_plus_bounded_jitter() {
        let cfg = FaultConfig {
            latency: LatencyConfig {
                fixed_ms: 5,
                jitter: Jitter::Uniform { max_ms: 10 },
            },
            ..FaultConfig::default()
        };
        let mut f = Faults::new(cfg, 3);
        for _ in 0..1000 {
            let (_, d) = f.next_send();
            assert!(
                d >= Duration::from_millis(5) && d <= Duration::from_millis(15),
                "{d:?}"
            );
        }
    }

    #[test]
    fn exponential_jitter_has_its_mean_and_an_exponential_tail() {
        let mean_ms = 40.0;
        let cfg = FaultConfig {
            latency: LatencyConfig {
                fixed_ms: 5,
                jitter: Jitter::Exponential { mean_ms },
            },
            ..FaultConfig::default()
        };
        let draw = |seed| {
            let mut f = Faults::new(cfg.clone(), seed);
            (0..100_000)
                .map(|_| (f.next_send().1.as_secs_f64() * 1000.0) - 5.0)
                .collect::<Vec<f64>>()
        };
        let jitter = draw(11);
        assert_eq!(jitter, draw(11), "seeded: the same draws again");
        assert!(
            jitter.iter().all(|j| *j >= 0.0),
            "never below the fixed part"
        );
        let n = jitter.len() as f64;
        let mean = jitter.iter().sum::<f64>() / n;
        // The standard error of the mean is mean / sqrt(n) = 0.13 ms: four of them.
        assert!((mean - mean_ms).abs() < 0.5, "mean {mean}");
        // Exponential, not uniform or constant: P(X > m) = e^-1 and P(X > 3m) = e^-3
        // (four standard deviations each), and the median is m ln 2.
        let above = |k: f64| jitter.iter().filter(|j| **j > k * mean_ms).count() as f64 / n;
        assert!(
            (above(1.0) - (-1.0f64).exp()).abs() < 0.006,
            "{}",
            above(1.0)
        );
        assert!(
            (above(3.0) - (-3.0f64).exp()).abs() < 0.003,
            "{}",
            above(3.0)
        );
        let mut sorted = jitter.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        assert!(
            (median - mean_ms * std::f64::consts::LN_2).abs() < 0.6,
            "median {median}"
        );
    }

    #[test]
    fn rates_outside_zero_to_one_or_summing_past_one_are_refused() {
        assert!(config(1.5, 0.0).validate().is_err());
        assert!(config(0.7, 0.4).validate().is_err());
        assert!(config(0.6, 0.4).validate().is_ok());
    }
}
