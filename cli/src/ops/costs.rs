//! `wa costs`: what a tenant's messages cost, from the cost ledger the webhook keeps
//! (issue 17 point 2): per UTC day and category the messages Meta priced, the billable
//! ones, and an estimated spend from a rate card (the built-in sample, or `--rates`).
//!
//! The estimate is only as good as the card: the built-in one is labelled sample, and
//! the output says so on every run that uses it.

use super::backend::{Backend, Open};
use super::config::BackendArgs;
use super::output::Table;
use super::since::parse_since;
use anyhow::Context;
use clap::Args;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use wa_shared::domain::costs::{
    CostCount, CostSummary, RateCard, format_amount, next_day, parse_day,
};
use wa_shared::domain::quota::UtcDay;
use wa_shared::domain::{TenantId, Timestamp};
use wa_shared::ports::CostLedger;

/// `wa costs`.
#[derive(Debug, Args)]
pub struct CostsArgs {
    /// Backend and stack outputs (on AWS: the quotas table holds the counters).
    #[command(flatten)]
    pub backend: BackendArgs,
    /// The tenant.
    #[arg(long)]
    pub tenant: String,
    /// First UTC day: YYYY-MM-DD, or a duration back from now (7d, 1w, 24h).
    #[arg(long)]
    pub since: String,
    /// Last UTC day shown, included: YYYY-MM-DD or a duration back from now [default: today].
    #[arg(long)]
    pub until: Option<String>,
    /// Rate card (JSON, the shape of rates/meta-rates.json) [default: the built-in sample].
    #[arg(long, value_name = "FILE")]
    pub rates: Option<PathBuf>,
    /// One JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// A `--since`/`--until` value as a UTC day: `YYYY-MM-DD`, else an RFC 3339 time or
/// a duration back from `now` (the day it falls on).
pub fn parse_day_arg(value: &str, now: Timestamp) -> anyhow::Result<UtcDay> {
    if let Ok(day) = parse_day(value) {
        return Ok(day);
    }
    let at = parse_since(value, now)
        .with_context(|| format!("{value:?} is not a day (YYYY-MM-DD) either"))?;
    Ok(UtcDay::of(at))
}

/// Run `wa costs`, printing to stdout.
pub async fn run(args: CostsArgs) -> anyhow::Result<()> {
    let tenant = TenantId::parse(&args.tenant).context("invalid tenant id")?;
    let now = super::now();
    let since = parse_day_arg(&args.since, now)?;
    let last = match &args.until {
        Some(until) => parse_day_arg(until, now)?,
        None => UtcDay::of(now),
    };
    let card = match &args.rates {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            RateCard::parse(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => RateCard::builtin()?,
    };
    let backend = Backend::open(&args.backend, Open::Existing).await?;
    let ledger = backend.costs()?;
    let mut out = std::io::stdout().lock();
    report(
        ledger.as_ref(),
        &tenant,
        since,
        next_day(last),
        &card,
        args.json,
        &mut out,
    )
    .await
}

/// The warning printed with a sample card.
pub const SAMPLE_WARNING: &str = "WARNING: sample rates, not Meta's price list: the spend below is an illustration. Pass --rates FILE with Meta's current rates (same shape as rates/meta-rates.json) for an estimate.";

/// Print the counters of `tenant` from `since` to `until` (exclusive), priced by
/// `card`: tables, or one JSON document.
pub async fn report(
    ledger: &dyn CostLedger,
    tenant: &TenantId,
    since: UtcDay,
    until: UtcDay,
    card: &RateCard,
    json_output: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let counts = ledger
        .cost_totals(tenant, since, until)
        .await
        .context("reading the cost ledger")?;
    let summary = CostSummary::compute(&counts, card);
    let days = by_day(&counts, card);
    let last = UtcDay::of(until.start().plus_millis(-1));
    if json_output {
        let rows: Vec<_> = days
            .iter()
            .flat_map(|(day, s)| {
                s.categories.iter().map(move |c| {
                    json!({"day": day, "category": c.category,
                        "messages": c.billable + c.free, "billable": c.billable, "free": c.free,
                        "unpriced": c.unpriced, "spend_micros": c.spend_micros,
                        "spend": format_amount(c.spend_micros)})
                })
            })
            .collect();
        let doc = json!({
            "tenant": tenant.as_str(),
            "since": since.key(),
            "until": last.key(),
            "rates": {"effective": card.effective, "currency": card.currency,
                      "source": card.source, "sample": card.sample},
            "days": rows,
            "markets": summary.markets,
            "categories": summary.categories,
            "billable": summary.billable,
            "free": summary.free,
            "spend_micros": summary.spend_micros,
            "spend": format_amount(summary.spend_micros),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "Costs of {tenant}, {} to {} (UTC days, both included)",
        since.key(),
        last.key()
    )?;
    writeln!(
        out,
        "Rates: effective {}, {}",
        card.effective, card.currency
    )?;
    if !card.source.is_empty() {
        writeln!(out, "Source: {}", card.source)?;
    }
    if card.sample {
        writeln!(out, "{SAMPLE_WARNING}")?;
    }
    writeln!(out)?;
    if counts.is_empty() {
        writeln!(out, "no priced messages")?;
        return Ok(());
    }
    // Amounts are in the card's currency, named on the rates line and the total.
    let spend_header = "EST. SPEND";
    let mut table = Table::new(&[
        "DAY",
        "CATEGORY",
        "MESSAGES",
        "BILLABLE",
        "FREE",
        spend_header,
    ]);
    for (day, s) in &days {
        for c in &s.categories {
            table.row(vec![
                day.clone(),
                c.category.clone(),
                (c.billable + c.free).to_string(),
                c.billable.to_string(),
                c.free.to_string(),
                spend_cell(c.spend_micros, c.unpriced),
            ]);
        }
    }
    table.write(out)?;
    writeln!(out)?;
    if !summary.markets.is_empty() {
        let mut markets = Table::new(&["MARKET", "CATEGORY", "BILLABLE", "PRICE", spend_header]);
        for m in &summary.markets {
            markets.row(vec![
                m.market.clone(),
                m.category.clone(),
                m.billable.to_string(),
                m.price_micros
                    .map_or_else(|| "not on the card".to_owned(), format_amount),
                format_amount(m.spend_micros),
            ]);
        }
        markets.write(out)?;
        writeln!(out)?;
    }
    let unpriced: u64 = summary.categories.iter().map(|c| c.unpriced).sum();
    writeln!(
        out,
        "Total: {} billable, {} free, estimated spend {} {}{}",
        summary.billable,
        summary.free,
        format_amount(summary.spend_micros),
        card.currency,
        if unpriced > 0 {
            format!(" ({unpriced} billable messages have no price on the card)")
        } else {
            String::new()
        }
    )?;
    Ok(())
}

/// The counts summed and priced per day, by day.
fn by_day(counts: &[CostCount], card: &RateCard) -> BTreeMap<String, CostSummary> {
    let mut days: BTreeMap<String, Vec<CostCount>> = BTreeMap::new();
    for c in counts {
        days.entry(c.day.key()).or_default().push(c.clone());
    }
    days.into_iter()
        .map(|(day, rows)| (day, CostSummary::compute(&rows, card)))
        .collect()
}

fn spend_cell(micros: u64, unpriced: u64) -> String {
    if unpriced > 0 {
        format!("{} (+{unpriced} unpriced)", format_amount(micros))
    } else {
        format_amount(micros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa_shared::adapters::SqliteCostLedger;
    use wa_shared::adapters::sqlite::SqliteDb;
    use wa_shared::domain::costs::{CallingCode, PricedStatus};
    use wa_shared::domain::{MessageId, PhoneNumber};

    async fn ledger() -> SqliteCostLedger {
        let db = SqliteDb::open_in_memory().await.unwrap();
        SqliteCostLedger::new(db).await.unwrap()
    }

    async fn count(l: &SqliteCostLedger, day: &str, category: &str, billable: bool, to: &str) {
        let status = PricedStatus {
            tenant: TenantId::parse("acme").unwrap(),
            message_id: MessageId::generate(),
            day: parse_day(day).unwrap(),
            category: category.into(),
            billable,
            calling_code: CallingCode::of(&PhoneNumber::parse(to).unwrap()),
        };
        assert!(l.record_pricing(&status).await.unwrap());
    }

    #[test]
    fn days_are_dates_or_durations_back_from_now() {
        let now = Timestamp::from_millis(1_780_481_730_000); // 2026-06-03T10:15:30Z
        assert_eq!(
            parse_day_arg("2026-05-01", now).unwrap().key(),
            "2026-05-01"
        );
        assert_eq!(parse_day_arg("7d", now).unwrap().key(), "2026-05-27");
        assert_eq!(parse_day_arg("1w", now).unwrap().key(), "2026-05-27");
        assert_eq!(
            parse_day_arg("2026-06-02T23:00:00-02:00", now)
                .unwrap()
                .key(),
            "2026-06-03"
        );
        let err = parse_day_arg("last month", now).unwrap_err();
        assert!(format!("{err:#}").contains("YYYY-MM-DD"), "{err:#}");
    }

    #[tokio::test]
    async fn the_report_prices_each_day_and_category_and_warns_of_sample_rates() {
        let l = ledger().await;
        count(&l, "2026-06-01", "marketing", true, "+14155550123").await;
        count(&l, "2026-06-01", "marketing", true, "+14155550124").await;
        count(&l, "2026-06-01", "service", false, "+447911123456").await;
        count(&l, "2026-06-02", "utility", true, "+919876543210").await;
        count(&l, "2026-06-02", "marketing_lite", true, "+447911123456").await;
        let card = RateCard::builtin().unwrap();
        let acme = TenantId::parse("acme").unwrap();
        let (since, until) = (
            parse_day("2026-06-01").unwrap(),
            parse_day("2026-06-03").unwrap(),
        );
        let mut out = Vec::new();
        report(&l, &acme, since, until, &card, false, &mut out)
            .await
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("2026-06-01 to 2026-06-02"), "{text}");
        assert!(text.contains("effective 2025-07-01, USD"), "{text}");
        assert!(text.contains(SAMPLE_WARNING), "{text}");
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.starts_with(needle))
                .unwrap_or_else(|| panic!("no {needle:?} in {text}"))
                .split_whitespace()
                .collect::<Vec<_>>()
        };
        // Two marketing messages to the US at 0.025.
        assert_eq!(
            line("2026-06-01  marketing"),
            ["2026-06-01", "marketing", "2", "2", "0", "0.0500"]
        );
        assert_eq!(
            line("2026-06-01  service"),
            ["2026-06-01", "service", "1", "0", "1", "0.0000"]
        );
        assert_eq!(
            line("2026-06-02  marketing_lite")[5..],
            ["0.0000", "(+1", "unpriced)"]
        );
        assert!(line("India").contains(&"utility"), "{text}");
        assert!(text.contains("Total: 4 billable, 1 free"), "{text}");
        assert!(text.contains("1 billable messages have no price"), "{text}");

        let mut out = Vec::new();
        report(&l, &acme, since, until, &card, true, &mut out)
            .await
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc["rates"]["sample"], true);
        assert_eq!(doc["until"], "2026-06-02");
        assert_eq!(doc["billable"], 4);
        assert_eq!(doc["days"].as_array().unwrap().len(), 4);
        assert_eq!(doc["days"][0]["spend_micros"], 50_000);

        let own = RateCard::parse(
            r#"{"effective": "2026-01-01", "currency": "EUR", "source": "ours",
                "markets": [], "default": {"market": "All", "rates": {"marketing": 0.1}}}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        report(&l, &acme, since, until, &own, false, &mut out)
            .await
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("WARNING"), "{text}");
        assert!(
            text.contains("effective 2026-01-01, EUR\nSource: ours"),
            "{text}"
        );
        assert!(text.contains("estimated spend 0.2000 EUR"), "{text}");
        assert!(text.contains("0.2000"), "{text}");

        let mut out = Vec::new();
        let other = TenantId::parse("other").unwrap();
        report(&l, &other, since, until, &card, false, &mut out)
            .await
            .unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("no priced messages")
        );
    }
}
