//! The cost ledger's pure part (issue 17 point 2): what a status webhook's `pricing`
//! counts as, the recipient's market, and Meta's rates turning counts into an
//! estimated spend.
//!
//! - A status with `pricing` is counted once per message and category
//!   ([`PricedStatus`]): on the tenant, the UTC day of the status, the category, whether
//!   it is billable, and the recipient's country calling code ([`CallingCode`]). The
//!   ledger (`ports::CostLedger`) makes a repeated or reordered status count nothing.
//! - A [`RateCard`] (a JSON file: `rates/meta-rates.json` is the built-in sample)
//!   maps calling codes to Meta's markets and prices each market's categories; a
//!   [`CostSummary`] applies it to the counted rows. Only billable messages are priced.

use super::quota::UtcDay;
use super::webhook::Pricing;
use super::{MessageId, PhoneNumber, TenantId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The built-in rate card: sample rates, labelled as such in the file itself.
pub const BUILTIN_RATES: &str = include_str!("../../../rates/meta-rates.json");

/// The category counted when `pricing` names none (or an unusable one).
pub const UNKNOWN_CATEGORY: &str = "unknown";

/// Longest category kept (Meta's are under 30 characters).
const MAX_CATEGORY_LEN: usize = 40;

/// Why a rate card, a day or a stored code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CostError {
    /// The rate card is not JSON of the expected shape.
    #[error("the rate card is not valid: {0}")]
    RateCard(String),
    /// A day is not `YYYY-MM-DD`.
    #[error("{0:?} is not a day (YYYY-MM-DD)")]
    Day(String),
    /// A calling code is not 1 to 4 digits.
    #[error("{0:?} is not a country calling code (1-4 digits)")]
    CallingCode(String),
    /// A category is not lower-case letters, digits and underscores.
    #[error("{0:?} is not a pricing category")]
    Category(String),
}

/// `YYYY-MM-DD` as a UTC day.
pub fn parse_day(text: &str) -> Result<UtcDay, CostError> {
    let date = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| CostError::Day(text.to_owned()))?;
    let midnight = date
        .and_hms_opt(0, 0, 0)
        .ok_or_else(|| CostError::Day(text.to_owned()))?;
    Ok(UtcDay::of(Timestamp::from_millis(
        midnight.and_utc().timestamp_millis(),
    )))
}

/// The day after `day`.
pub fn next_day(day: UtcDay) -> UtcDay {
    UtcDay::of(day.end())
}

/// The days from `since` (inclusive) to `until` (exclusive), oldest first.
pub fn days(since: UtcDay, until: UtcDay) -> Vec<UtcDay> {
    let mut out = Vec::new();
    let mut day = since;
    while day < until {
        out.push(day);
        day = next_day(day);
    }
    out
}

/// The category a `pricing` counts under: Meta's `category`, lower-cased, or
/// [`UNKNOWN_CATEGORY`] when absent or not a plain word (it becomes part of a key).
pub fn category_of(pricing: &Pricing) -> String {
    pricing
        .category
        .as_deref()
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| valid_category(c))
        .unwrap_or_else(|| UNKNOWN_CATEGORY.to_owned())
}

/// A category as stored: 1-40 of `a-z`, `0-9`, `_`.
pub fn parse_category(text: &str) -> Result<String, CostError> {
    if valid_category(text) {
        Ok(text.to_owned())
    } else {
        Err(CostError::Category(text.to_owned()))
    }
}

fn valid_category(c: &str) -> bool {
    !c.is_empty()
        && c.len() <= MAX_CATEGORY_LEN
        && c.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether Meta charges for it: `billable` when present (Meta is deprecating it),
/// else `type` `regular` (the `free_*` types are free); nothing said: not billable.
pub fn billable_of(pricing: &Pricing) -> bool {
    match (pricing.billable, pricing.pricing_type.as_deref()) {
        (Some(billable), _) => billable,
        (None, Some(kind)) => kind == "regular",
        (None, None) => false,
    }
}

/// The recipient's country calling code, as Meta prices by it: the ITU code (1 to 3
/// digits), and for the North American Numbering Plan (`+1`) also the area code
/// (`1876` is Jamaica, `1415` the US), since `+1` spans several of Meta's markets.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallingCode(String);

/// ITU zones 2-9 whose codes have two digits; every other code of those zones has three.
const TWO_DIGIT_CODES: &[&str] = &[
    "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47",
    "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65",
    "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
];

impl CallingCode {
    /// The calling code of an E.164 number.
    pub fn of(number: &PhoneNumber) -> Self {
        Self::of_digits(number.digits())
    }

    /// The calling code of international digits (no `+`).
    pub fn of_digits(digits: &str) -> Self {
        let len = match digits.as_bytes().first() {
            // NANP: the country code and the area code.
            Some(b'1') => 4,
            Some(b'7') => 1,
            _ if digits
                .get(..2)
                .is_some_and(|two| TWO_DIGIT_CODES.contains(&two)) =>
            {
                2
            }
            _ => 3,
        };
        Self(digits.chars().take(len).collect())
    }

    /// A stored code: 1 to 4 digits.
    pub fn parse(text: &str) -> Result<Self, CostError> {
        let ok = (1..=4).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(CostError::CallingCode(text.to_owned()))
        }
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CallingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "+{}", self.0)
    }
}

/// One status's pricing, as the ledger counts it (once per message and category).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedStatus {
    /// The message's tenant.
    pub tenant: TenantId,
    /// The message.
    pub message_id: MessageId,
    /// The UTC day of the status (its time, else when it arrived).
    pub day: UtcDay,
    /// [`category_of`] the pricing.
    pub category: String,
    /// [`billable_of`] the pricing.
    pub billable: bool,
    /// The recipient's calling code (from the message's `to`).
    pub calling_code: CallingCode,
}

impl PricedStatus {
    /// What a status of message `message_id` to `to`, at `at`, with `pricing`, counts as.
    pub fn new(
        tenant: &TenantId,
        message_id: &MessageId,
        to: &PhoneNumber,
        pricing: &Pricing,
        at: Timestamp,
    ) -> Self {
        Self {
            tenant: tenant.clone(),
            message_id: message_id.clone(),
            day: UtcDay::of(at),
            category: category_of(pricing),
            billable: billable_of(pricing),
            calling_code: CallingCode::of(to),
        }
    }
}

/// A counter of the ledger: messages of one tenant's day in one category, billable or
/// not, to one calling code.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CostCount {
    /// The UTC day.
    pub day: UtcDay,
    /// The category.
    pub category: String,
    /// Billable or free.
    pub billable: bool,
    /// The recipients' calling code.
    pub calling_code: CallingCode,
    /// Messages counted.
    pub messages: u64,
}

/// Millionths of the rate card's currency (prices have at most 4-6 decimals).
pub type Micros = u64;

/// One market of a rate card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Market {
    /// Meta's name of the market (`India`, `Rest of Africa`, `Other`).
    pub name: String,
    /// Price per delivered message by category, in micros.
    pub rates: BTreeMap<String, Micros>,
}

/// Meta's prices by market and category, with the day they took effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateCard {
    /// `YYYY-MM-DD` the prices took effect.
    pub effective: String,
    /// The currency (`USD`).
    pub currency: String,
    /// Where the figures come from.
    pub source: String,
    /// The figures are samples, not a copy of Meta's card.
    pub sample: bool,
    markets: Vec<Market>,
    /// Calling-code prefix -> index into `markets`.
    prefixes: BTreeMap<String, usize>,
    default: Market,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateFile {
    #[serde(default)]
    sample: bool,
    effective: String,
    currency: String,
    #[serde(default)]
    source: String,
    markets: Vec<MarketRow>,
    default: DefaultRow,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarketRow {
    market: String,
    calling_codes: Vec<String>,
    rates: BTreeMap<String, f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultRow {
    market: String,
    rates: BTreeMap<String, f64>,
}

fn micros_of(category: &str, price: f64) -> Result<Micros, CostError> {
    if !price.is_finite() || !(0.0..=1_000.0).contains(&price) {
        return Err(CostError::RateCard(format!(
            "the price of {category} must be between 0 and 1000, not {price}"
        )));
    }
    // In range and rounded: the cast cannot truncate.
    Ok((price * 1_000_000.0).round() as Micros)
}

fn market_of_row(name: String, rates: BTreeMap<String, f64>) -> Result<Market, CostError> {
    let mut out = BTreeMap::new();
    for (category, price) in rates {
        let category = parse_category(&category).map_err(|e| CostError::RateCard(e.to_string()))?;
        let micros = micros_of(&category, price)?;
        out.insert(category, micros);
    }
    Ok(Market { name, rates: out })
}

impl RateCard {
    /// The built-in sample card (`rates/meta-rates.json`).
    pub fn builtin() -> Result<Self, CostError> {
        Self::parse(BUILTIN_RATES)
    }

    /// Read a rate card: `effective` (`YYYY-MM-DD`), `currency`, `markets` (each a
    /// name, its calling-code prefixes and a price per category) and a `default`
    /// market for every other code. A prefix listed twice is refused.
    pub fn parse(json: &str) -> Result<Self, CostError> {
        let file: RateFile =
            serde_json::from_str(json).map_err(|e| CostError::RateCard(e.to_string()))?;
        parse_day(&file.effective).map_err(|e| CostError::RateCard(e.to_string()))?;
        if file.currency.trim().is_empty() {
            return Err(CostError::RateCard("currency is empty".into()));
        }
        let mut markets = Vec::with_capacity(file.markets.len());
        let mut prefixes = BTreeMap::new();
        for row in file.markets {
            let index = markets.len();
            for code in &row.calling_codes {
                CallingCode::parse(code).map_err(|e| CostError::RateCard(e.to_string()))?;
                if prefixes.insert(code.clone(), index).is_some() {
                    return Err(CostError::RateCard(format!(
                        "calling code {code} is listed in two markets"
                    )));
                }
            }
            markets.push(market_of_row(row.market, row.rates)?);
        }
        Ok(Self {
            effective: file.effective,
            currency: file.currency,
            source: file.source,
            sample: file.sample,
            markets,
            prefixes,
            default: market_of_row(file.default.market, file.default.rates)?,
        })
    }

    /// The market of a calling code: the market listing its longest prefix, else the
    /// default market.
    pub fn market(&self, code: &CallingCode) -> &Market {
        let digits = code.as_str();
        (1..=digits.len())
            .rev()
            .find_map(|n| self.prefixes.get(digits.get(..n)?))
            .and_then(|&i| self.markets.get(i))
            .unwrap_or(&self.default)
    }

    /// The price of one `category` message in `market`: its own rate, else the default
    /// market's for that category; `None` when neither lists it.
    pub fn price(&self, market: &Market, category: &str) -> Option<Micros> {
        market
            .rates
            .get(category)
            .or_else(|| self.default.rates.get(category))
            .copied()
    }
}

/// One category over a period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CategoryTotal {
    /// The category.
    pub category: String,
    /// Billable messages.
    pub billable: u64,
    /// Messages Meta did not charge for.
    pub free: u64,
    /// Estimated spend of the billable ones, in micros.
    pub spend_micros: Micros,
    /// Billable messages the card has no price for (not in the spend).
    pub unpriced: u64,
}

/// One market and category over a period (billable messages only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MarketTotal {
    /// The market's name on the card.
    pub market: String,
    /// The category.
    pub category: String,
    /// Billable messages.
    pub billable: u64,
    /// The card's price of one, in micros (`None`: not priced).
    pub price_micros: Option<Micros>,
    /// Estimated spend, in micros.
    pub spend_micros: Micros,
}

/// Counted rows turned into totals and an estimated spend by a rate card.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CostSummary {
    /// Per category, by name.
    pub categories: Vec<CategoryTotal>,
    /// Per market and category with billable messages, by market then category.
    pub markets: Vec<MarketTotal>,
    /// Billable messages.
    pub billable: u64,
    /// Free messages.
    pub free: u64,
    /// Estimated spend, in micros.
    pub spend_micros: Micros,
}

impl CostSummary {
    /// Sum `counts` (any days) and price the billable ones with `card`.
    pub fn compute(counts: &[CostCount], card: &RateCard) -> Self {
        let mut categories: BTreeMap<String, CategoryTotal> = BTreeMap::new();
        let mut markets: BTreeMap<(String, String), MarketTotal> = BTreeMap::new();
        for count in counts {
            let total = categories
                .entry(count.category.clone())
                .or_insert_with(|| CategoryTotal {
                    category: count.category.clone(),
                    ..CategoryTotal::default()
                });
            if !count.billable {
                total.free += count.messages;
                continue;
            }
            total.billable += count.messages;
            let market = card.market(&count.calling_code);
            let price = card.price(market, &count.category);
            let spend = price.map_or(0, |p| p.saturating_mul(count.messages));
            match price {
                Some(_) => total.spend_micros += spend,
                None => total.unpriced += count.messages,
            }
            let row = markets
                .entry((market.name.clone(), count.category.clone()))
                .or_insert_with(|| MarketTotal {
                    market: market.name.clone(),
                    category: count.category.clone(),
                    price_micros: price,
                    ..MarketTotal::default()
                });
            row.billable += count.messages;
            row.spend_micros += spend;
        }
        let categories: Vec<CategoryTotal> = categories.into_values().collect();
        Self {
            billable: categories.iter().map(|c| c.billable).sum(),
            free: categories.iter().map(|c| c.free).sum(),
            spend_micros: categories.iter().map(|c| c.spend_micros).sum(),
            categories,
            markets: markets.into_values().collect(),
        }
    }
}

/// `micros` with four decimals (`0.0250`), rounded half up.
pub fn format_amount(micros: Micros) -> String {
    let hundredths_of_cents = micros.saturating_add(50) / 100;
    format!(
        "{}.{:04}",
        hundredths_of_cents / 10_000,
        hundredths_of_cents % 10_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pricing(category: Option<&str>, billable: Option<bool>, kind: Option<&str>) -> Pricing {
        Pricing {
            billable,
            pricing_model: Some("PMP".into()),
            pricing_type: kind.map(str::to_owned),
            category: category.map(str::to_owned),
        }
    }

    fn code(number: &str) -> String {
        CallingCode::of(&PhoneNumber::parse(number).unwrap())
            .as_str()
            .to_owned()
    }

    #[test]
    fn calling_codes_follow_the_itu_lengths_and_keep_the_nanp_area_code() {
        assert_eq!(code("+14155550123"), "1415");
        assert_eq!(code("+18765550123"), "1876");
        assert_eq!(code("+447911123456"), "44");
        assert_eq!(code("+919876543210"), "91");
        assert_eq!(code("+5511987654321"), "55");
        assert_eq!(code("+2348031234567"), "234");
        assert_eq!(code("+971501234567"), "971");
        assert_eq!(code("+79123456789"), "7");
        assert_eq!(CallingCode::of_digits("263771234567").as_str(), "263");
        assert!(CallingCode::parse("12345").is_err());
        assert!(CallingCode::parse("4a").is_err());
        assert_eq!(CallingCode::parse("44").unwrap().to_string(), "+44");
    }

    #[test]
    fn category_and_billable_come_from_the_pricing() {
        let p = pricing(Some("Marketing"), Some(true), Some("regular"));
        assert_eq!(
            (category_of(&p), billable_of(&p)),
            ("marketing".into(), true)
        );
        let p = pricing(Some("service"), None, Some("free_customer_service"));
        assert_eq!(
            (category_of(&p), billable_of(&p)),
            ("service".into(), false)
        );
        let p = pricing(Some("utility"), None, Some("regular"));
        assert!(billable_of(&p));
        let p = pricing(None, Some(false), None);
        assert_eq!(category_of(&p), UNKNOWN_CATEGORY);
        assert!(!billable_of(&pricing(Some("utility"), None, None)));
        // Not a plain word: it would break a key.
        assert_eq!(
            category_of(&pricing(Some("a#b"), None, None)),
            UNKNOWN_CATEGORY
        );
    }

    #[test]
    fn days_parse_and_run_from_since_to_until() {
        let d = parse_day("2026-06-03").unwrap();
        assert_eq!(d.key(), "2026-06-03");
        assert_eq!(next_day(d).key(), "2026-06-04");
        assert_eq!(
            days(d, parse_day("2026-06-05").unwrap())
                .iter()
                .map(|d| d.key())
                .collect::<Vec<_>>(),
            ["2026-06-03", "2026-06-04"]
        );
        assert!(days(d, d).is_empty());
        assert!(parse_day("2026-13-01").is_err());
        assert!(parse_day("yesterday").is_err());
    }

    #[test]
    fn the_builtin_card_is_a_labelled_sample_and_maps_codes_to_markets() {
        let card = RateCard::builtin().unwrap();
        assert!(card.sample);
        assert_eq!(card.effective, "2025-07-01");
        assert_eq!(card.currency, "USD");
        assert!(card.source.starts_with("SAMPLE RATES"));
        let market = |digits: &str| {
            card.market(&CallingCode::parse(digits).unwrap())
                .name
                .clone()
        };
        assert_eq!(market("1415"), "North America");
        assert_eq!(market("1876"), "Rest of Latin America");
        assert_eq!(market("91"), "India");
        assert_eq!(market("234"), "Other");
        assert_eq!(market("254"), "Rest of Africa");
        let na = card.market(&CallingCode::parse("1415").unwrap());
        assert_eq!(card.price(na, "marketing"), Some(25_000));
        assert_eq!(card.price(na, "service"), Some(0));
        assert_eq!(card.price(na, "marketing_lite"), None);
    }

    #[test]
    fn a_rate_card_names_what_is_wrong() {
        let bad = |json: &str| match RateCard::parse(json) {
            Err(CostError::RateCard(why)) => why,
            other => panic!("{other:?}"),
        };
        let card = |markets: &str, default: &str| {
            format!(
                r#"{{"effective": "2026-01-01", "currency": "USD", "markets": [{markets}],
                    "default": {{"market": "Other", "rates": {{{default}}}}}}}"#
            )
        };
        assert!(bad("{").contains("EOF"));
        assert!(
            bad(&card(
                r#"{"market": "A", "calling_codes": ["44"], "rates": {}},
                   {"market": "B", "calling_codes": ["44"], "rates": {}}"#,
                ""
            ))
            .contains("two markets")
        );
        assert!(bad(&card("", r#""marketing": -1"#)).contains("between 0 and 1000"));
        assert!(bad(&card("", r#""Mark eting": 1"#)).contains("pricing category"));
        assert!(
            bad(&card(
                r#"{"market": "A", "calling_codes": ["+44"], "rates": {}}"#,
                ""
            ))
            .contains("calling code")
        );
        let ok = RateCard::parse(&card(
            r#"{"market": "UK", "calling_codes": ["44"], "rates": {"marketing": 0.05}}"#,
            r#""marketing": 0.01, "utility": 0.002"#,
        ))
        .unwrap();
        assert!(!ok.sample);
    }

    #[test]
    fn a_summary_prices_only_billable_messages_by_market_and_category() {
        let card = RateCard::builtin().unwrap();
        let day = parse_day("2026-06-03").unwrap();
        let row = |category: &str, billable: bool, code: &str, messages: u64| CostCount {
            day,
            category: category.into(),
            billable,
            calling_code: CallingCode::parse(code).unwrap(),
            messages,
        };
        let summary = CostSummary::compute(
            &[
                row("marketing", true, "1415", 10),   // 10 x 0.025
                row("marketing", true, "91", 100),    // 100 x 0.0107
                row("utility", true, "1415", 3),      // 3 x 0.0034
                row("utility", false, "1415", 5),     // free
                row("service", false, "44", 7),       // free
                row("marketing_lite", true, "44", 2), // no price
            ],
            &card,
        );
        let marketing = &summary.categories[0];
        assert_eq!(marketing.category, "marketing");
        assert_eq!((marketing.billable, marketing.free), (110, 0));
        assert_eq!(marketing.spend_micros, 250_000 + 1_070_000);
        let lite = &summary.categories[1];
        assert_eq!(
            (lite.category.as_str(), lite.unpriced),
            ("marketing_lite", 2)
        );
        let utility = &summary.categories[3];
        assert_eq!((utility.billable, utility.free), (3, 5));
        assert_eq!(utility.spend_micros, 10_200);
        assert_eq!(summary.billable, 115);
        assert_eq!(summary.free, 12);
        assert_eq!(summary.spend_micros, 1_330_200);
        assert_eq!(format_amount(summary.spend_micros), "1.3302");
        let india = summary
            .markets
            .iter()
            .find(|m| m.market == "India")
            .unwrap();
        assert_eq!(india.price_micros, Some(10_700));
        assert_eq!(india.billable, 100);
        assert!(summary.markets.iter().all(|m| m.billable > 0));
    }

    #[test]
    fn amounts_show_four_decimals() {
        assert_eq!(format_amount(0), "0.0000");
        assert_eq!(format_amount(25_000), "0.0250");
        assert_eq!(format_amount(1_234_567), "1.2346");
        assert_eq!(format_amount(12_000_000), "12.0000");
    }

    #[test]
    fn a_priced_status_counts_on_its_day_category_and_recipient_code() {
        let tenant = TenantId::parse("acme").unwrap();
        let id = MessageId::parse("msg_01").unwrap_or_else(|_| MessageId::generate());
        let to = PhoneNumber::parse("+447911123456").unwrap();
        let at = Timestamp::from_millis(1_780_481_730_000);
        let p = PricedStatus::new(
            &tenant,
            &id,
            &to,
            &pricing(Some("utility"), Some(true), Some("regular")),
            at,
        );
        assert_eq!(p.day.key(), "2026-06-03");
        assert_eq!(p.category, "utility");
        assert!(p.billable);
        assert_eq!(p.calling_code.as_str(), "44");
    }
}
