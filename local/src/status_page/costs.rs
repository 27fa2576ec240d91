//! `#costs`: what each tenant's messages cost over the last [`DAYS`] UTC days, from
//! the cost ledger the webhook keeps (issue 17 point 2): per category the messages
//! Meta priced, the billable and free ones, and the spend estimated by the built-in
//! rate card (labelled sample on the page when the card says so).
//!
//! [`router_with_costs`] is the status page with this panel (and the charts when a
//! series is given); the page's other routers leave it out.

use super::html::Esc;
use super::{PageState, routes};
use crate::events::DeliveryStore;
use axum::Router;
use std::fmt::{self, Write};
use std::sync::Arc;
use wa_shared::adapters::SqliteMessageStore;
use wa_shared::domain::costs::{CostError, CostSummary, RateCard, format_amount, next_day};
use wa_shared::domain::quota::UtcDay;
use wa_shared::domain::{TenantId, Timestamp};
use wa_shared::ports::{CostLedger, CostLedgerError, Directory, TrafficSeries};

/// Days the panel covers, today included.
pub const DAYS: i64 = 30;

/// Why the panel could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CostPanelError {
    /// The ledger failed.
    #[error("reading the cost ledger failed")]
    Ledger(#[from] CostLedgerError),
    /// The built-in rate card is unreadable (a build defect).
    #[error("the built-in rate card is unreadable")]
    Rates(#[from] CostError),
    /// Writing the HTML failed.
    #[error("rendering the costs panel failed")]
    Render(#[from] fmt::Error),
}

/// The status page of [`super::router_with_events`], with the charts of `series`
/// when given, and the `#costs` panel read from `costs`.
pub fn router_with_costs(
    store: Arc<SqliteMessageStore>,
    deliveries: DeliveryStore,
    directory: Arc<dyn Directory>,
    series: Option<Arc<dyn TrafficSeries>>,
    costs: Arc<dyn CostLedger>,
) -> Router {
    routes(PageState {
        store,
        deliveries: Some(deliveries),
        directory: Some(directory),
        series,
        costs: Some(costs),
    })
}

/// One tenant's period, summed and priced.
struct TenantCosts {
    tenant: TenantId,
    summary: CostSummary,
}

/// The panel for `tenants` (each once), over the [`DAYS`] days up to `now`'s.
pub(super) async fn panel(
    ledger: &dyn CostLedger,
    tenants: &[TenantId],
    now: Timestamp,
) -> Result<String, CostPanelError> {
    let card = RateCard::builtin()?;
    let today = UtcDay::of(now);
    let (since, until) = (today.minus_days(DAYS - 1), next_day(today));
    let mut rows = Vec::new();
    for tenant in tenants {
        let counts = ledger.cost_totals(tenant, since, until).await?;
        if !counts.is_empty() {
            rows.push(TenantCosts {
                tenant: tenant.clone(),
                summary: CostSummary::compute(&counts, &card),
            });
        }
    }
    let mut out = String::with_capacity(4 * 1024);
    render(&mut out, &rows, &card, since, today)?;
    Ok(out)
}

fn render(
    out: &mut String,
    rows: &[TenantCosts],
    card: &RateCard,
    since: UtcDay,
    today: UtcDay,
) -> fmt::Result {
    write!(
        out,
        "<section id=\"costs\"><h2>Costs</h2><p class=\"muted\">Messages Meta priced \
         (status webhooks' <code>pricing</code>, each message once per category), {} to {} \
         (UTC), and their spend estimated with the rate card effective {} in {}.",
        since.key(),
        today.key(),
        Esc(&card.effective),
        Esc(&card.currency)
    )?;
    if card.sample {
        out.write_str(
            " <span class=\"flag\" data-rates=\"sample\">sample rates</span> \
             not Meta's price list: <code>wa costs --rates FILE</code> prices with yours.",
        )?;
    }
    out.write_str("</p>")?;
    if rows.is_empty() {
        out.write_str(
            "<p class=\"muted\" data-costs=\"none\">No priced messages yet.</p></section>",
        )?;
        return Ok(());
    }
    out.write_str(
        "<table><thead><tr><th>tenant</th><th>category</th><th>messages</th>\
         <th>billable</th><th>free</th><th>est. spend</th></tr></thead><tbody>",
    )?;
    for t in rows {
        for c in &t.summary.categories {
            write!(
                out,
                "<tr data-tenant=\"{tenant}\" data-category=\"{category}\">\
                 <th scope=\"row\">{tenant}</th><td class=\"mono\">{category}</td>\
                 <td data-messages=\"{messages}\">{messages}</td><td>{billable}</td>\
                 <td>{free}</td><td class=\"mono\">{spend}{unpriced}</td></tr>",
                tenant = Esc(t.tenant.as_str()),
                category = Esc(&c.category),
                messages = c.billable + c.free,
                billable = c.billable,
                free = c.free,
                spend = format_amount(c.spend_micros),
                unpriced = if c.unpriced > 0 {
                    format!(" <span class=\"muted\">(+{} unpriced)</span>", c.unpriced)
                } else {
                    String::new()
                },
            )?;
        }
        write!(
            out,
            "<tr data-tenant=\"{tenant}\" data-total=\"{spend}\"><th scope=\"row\">{tenant}</th>\
             <td>total</td><td>{messages}</td><td>{billable}</td><td>{free}</td>\
             <td class=\"mono\"><strong>{spend} {currency}</strong></td></tr>",
            tenant = Esc(t.tenant.as_str()),
            messages = t.summary.billable + t.summary.free,
            billable = t.summary.billable,
            free = t.summary.free,
            spend = format_amount(t.summary.spend_micros),
            currency = Esc(&card.currency),
        )?;
    }
    out.write_str("</tbody></table></section>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa_shared::adapters::SqliteCostLedger;
    use wa_shared::adapters::sqlite::SqliteDb;
    use wa_shared::domain::MessageId;
    use wa_shared::domain::costs::{CallingCode, PricedStatus};

    async fn count(l: &SqliteCostLedger, tenant: &str, day: UtcDay, category: &str) {
        let status = PricedStatus {
            tenant: TenantId::parse(tenant).unwrap(),
            message_id: MessageId::generate(),
            day,
            category: category.into(),
            billable: category != "service",
            calling_code: CallingCode::parse("1415").unwrap(),
        };
        assert!(l.record_pricing(&status).await.unwrap());
    }

    #[tokio::test]
    async fn the_panel_sums_the_last_30_days_per_tenant_and_category_and_flags_sample_rates() {
        let l = SqliteCostLedger::new(SqliteDb::open_in_memory().await.unwrap())
            .await
            .unwrap();
        let now = Timestamp::from_millis(1_780_481_730_000); // 2026-06-03
        let today = UtcDay::of(now);
        count(&l, "acme", today, "marketing").await;
        count(&l, "acme", today.minus_days(29), "marketing").await;
        count(&l, "acme", today.minus_days(30), "marketing").await; // too old
        count(&l, "acme", today, "service").await;
        count(&l, "beta", today, "utility").await;
        let tenants = ["acme", "quiet"].map(|t| TenantId::parse(t).unwrap());
        let html = panel(&l, &tenants, now).await.unwrap();
        assert!(html.contains("2026-05-05 to 2026-06-03"), "{html}");
        assert!(html.contains("data-rates=\"sample\""), "{html}");
        assert!(html.contains("effective 2025-07-01 in USD"), "{html}");
        assert!(
            html.contains(
                "data-tenant=\"acme\" data-category=\"marketing\"><th scope=\"row\">acme</th>\
                 <td class=\"mono\">marketing</td><td data-messages=\"2\">2</td><td>2</td>\
                 <td>0</td><td class=\"mono\">0.0500</td>"
            ),
            "{html}"
        );
        assert!(html.contains("data-category=\"service\""), "{html}");
        assert!(html.contains("data-total=\"0.0500\""), "{html}");
        assert!(
            !html.contains("quiet"),
            "a tenant without costs has no rows"
        );
        let none = panel(&l, &tenants[1..], now).await.unwrap();
        assert!(none.contains("data-costs=\"none\""), "{none}");
    }
}
