//! What a soak sends: the mix of request kinds (`--mix templates=70,text=15,...`), and
//! the request of each kind, drawn from a seeded generator so a run can be repeated.

use serde::Serialize;
use serde_json::{Value, json};

/// The kinds of request a soak sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A template message (`order_shipped`) to one of many recipients.
    Template,
    /// A free-form text to a recipient whose service window the soak opened.
    Text,
    /// An earlier request again, same idempotency key and body: must answer 200 with
    /// the same id.
    Replay,
    /// A request intake must refuse with a given 4xx.
    Invalid,
}

impl Kind {
    /// Its name in `--mix` and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Template => "templates",
            Kind::Text => "text",
            Kind::Replay => "replay",
            Kind::Invalid => "invalid",
        }
    }
}

/// Shares of each kind (weights; they need not add up to 100).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mix {
    /// `(kind, weight)`, weights > 0 only.
    pub weights: Vec<(Kind, u32)>,
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            weights: vec![
                (Kind::Template, 70),
                (Kind::Text, 15),
                (Kind::Replay, 10),
                (Kind::Invalid, 5),
            ],
        }
    }
}

impl Mix {
    /// Parse `templates=70,text=15,replay=10,invalid=5` (kinds left out get 0).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut weights = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected KIND=WEIGHT"))?;
            let kind = match name.trim() {
                "templates" | "template" => Kind::Template,
                "text" => Kind::Text,
                "replay" | "replays" => Kind::Replay,
                "invalid" => Kind::Invalid,
                other => {
                    return Err(format!(
                        "unknown kind {other:?} (templates, text, replay, invalid)"
                    ));
                }
            };
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: the weight is not a whole number"))?;
            if weights.iter().any(|(k, _)| *k == kind) {
                return Err(format!("{name} is given twice"));
            }
            if weight > 0 {
                weights.push((kind, weight));
            }
        }
        if !weights
            .iter()
            .any(|(k, _)| matches!(k, Kind::Template | Kind::Text))
        {
            return Err("the mix needs templates or text (something to deliver)".into());
        }
        Ok(Self { weights })
    }

    /// The kind for a roll in `0..1`.
    pub fn pick(&self, roll: f64) -> Kind {
        let total: u32 = self.weights.iter().map(|(_, w)| *w).sum();
        let mut edge = 0.0;
        for (kind, weight) in &self.weights {
            edge += f64::from(*weight) / f64::from(total.max(1));
            if roll < edge {
                return *kind;
            }
        }
        self.weights.last().map_or(Kind::Template, |(k, _)| *k)
    }

    /// `templates=70,text=15,...`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .weights
            .iter()
            .map(|(k, w)| format!("{}={w}", k.as_str()))
            .collect();
        parts.join(",")
    }
}

/// The requests intake must refuse, and the status each must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidKind {
    /// The body is not JSON: 400.
    NotJson,
    /// A template that does not exist: 422.
    UnknownTemplate,
    /// A `to` that is not a phone number: 422.
    BadRecipient,
    /// An API key nobody has: 401.
    UnknownKey,
    /// An idempotency key already used, with another body: 409.
    KeyConflict,
}

impl InvalidKind {
    /// Every kind, in the order they are cycled through.
    pub const ALL: [InvalidKind; 5] = [
        InvalidKind::NotJson,
        InvalidKind::UnknownTemplate,
        InvalidKind::BadRecipient,
        InvalidKind::UnknownKey,
        InvalidKind::KeyConflict,
    ];

    /// The status intake must answer.
    pub fn expected_status(self) -> u16 {
        match self {
            InvalidKind::NotJson => 400,
            InvalidKind::UnknownTemplate | InvalidKind::BadRecipient => 422,
            InvalidKind::UnknownKey => 401,
            InvalidKind::KeyConflict => 409,
        }
    }

    /// Its name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidKind::NotJson => "not_json",
            InvalidKind::UnknownTemplate => "unknown_template",
            InvalidKind::BadRecipient => "bad_recipient",
            InvalidKind::UnknownKey => "unknown_key",
            InvalidKind::KeyConflict => "key_conflict",
        }
    }
}

/// SplitMix64: a tiny seeded generator (the soak needs repeatable rolls, not crypto).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..1`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }
}

/// The `order_shipped` template request to `to`.
pub fn template_body(to: &str, n: usize) -> Value {
    json!({"to": to, "template": {"name": "order_shipped", "language": "en_US",
        "body": ["Ana", format!("#{n}")], "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]},
        "metadata": {"soak": n.to_string()}})
}

/// A free-form text to `to`.
pub fn text_body(to: &str, n: usize) -> Value {
    json!({"to": to, "text": {"body": format!("Soak message {n}: your driver is outside.")}})
}

/// Recipient of template message `n` (10,000 numbers; `+14155550199` is among them,
/// which the sandbox fails with 131026, so some messages fail for Meta's reasons).
pub fn template_recipient(n: usize) -> String {
    format!("+1415555{:04}", n % 10_000)
}

/// Recipient `i` of the text messages (its window is opened before the run).
pub fn text_recipient(i: usize) -> String {
    format!("+1415666{:04}", i % 10_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_parses_and_picks_by_weight() {
        let mix = Mix::parse("templates=50, text=50").unwrap_or_default();
        assert_eq!(mix.pick(0.1), Kind::Template);
        assert_eq!(mix.pick(0.9), Kind::Text);
        assert_eq!(mix.describe(), "templates=50,text=50");
        assert!(Mix::parse("replay=10").is_err(), "nothing to deliver");
        assert!(Mix::parse("bogus=1").is_err());
        assert!(Mix::parse("templates=x").is_err());
        let mut rng = Rng::new(7);
        let default = Mix::default();
        let n = 10_000;
        let invalid = (0..n)
            .filter(|_| default.pick(rng.unit()) == Kind::Invalid)
            .count();
        assert!((300..700).contains(&invalid), "{invalid}");
    }
}
