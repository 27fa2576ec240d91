//! `#charts`: the tenants' traffic over the last hour by minute or the last day by
//! hour, all tenants or one (`?range=hour|day&tenant=<id>`): transitions to accepted,
//! delivered, read, failed and suppressed; failures by class; suppressions by reason;
//! latency percentiles queued→accepted and accepted→delivered; webhook lag; who is on
//! hold and why.
//!
//! The series come from the store's per-minute counters
//! ([`wa_shared::ports::TrafficSeries`], one indexed read per tenant), never from
//! messages. Each figure carries its series' totals in `data-*` attributes (the
//! tests, and anyone scripting the page, read them there).

use super::charts_svg::{ChartError, Line, Scale, line_chart};
use super::html::{Esc, Time};
use std::collections::BTreeMap;
use std::fmt::{self, Write};
use std::sync::Arc;
use wa_shared::domain::series::{Folded, Grid, SeriesMetric, Span};
use wa_shared::domain::tenant::TenantProfile;
use wa_shared::domain::{TenantId, Timestamp};
use wa_shared::ports::{SeriesError, TrafficSeries};

/// The time range of the charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Range {
    /// The last hour, by minute.
    #[default]
    Hour,
    /// The last day, by hour.
    Day,
}

impl Range {
    fn as_str(self) -> &'static str {
        match self {
            Range::Hour => "hour",
            Range::Day => "day",
        }
    }

    fn grid(self, now: Timestamp) -> Grid {
        match self {
            Range::Hour => Grid::hour_by_minute(now),
            Range::Day => Grid::day_by_hour(now),
        }
    }
}

/// What the page's query string asks of the charts (unknown values: the defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ChartQuery {
    /// Hour by minute or day by hour.
    pub range: Range,
    /// One tenant, or all.
    pub tenant: Option<TenantId>,
}

impl ChartQuery {
    /// From the raw query parameters `range` and `tenant`.
    pub(super) fn parse(params: &BTreeMap<String, String>) -> Self {
        Self {
            range: match params.get("range").map(String::as_str) {
                Some("day") => Range::Day,
                _ => Range::Hour,
            },
            tenant: params
                .get("tenant")
                .filter(|t| !t.is_empty())
                .and_then(|t| TenantId::parse(t).ok()),
        }
    }

    /// The query string of this query with `range` and `tenant` replaced.
    fn href(range: Range, tenant: Option<&TenantId>) -> String {
        match tenant {
            Some(t) => format!("/?range={}&tenant={}#charts", range.as_str(), t.as_str()),
            None => format!("/?range={}#charts", range.as_str()),
        }
    }
}

/// The charts' data: the grid and every counter in it, folded over the tenants asked.
pub(super) struct Charts {
    grid: Grid,
    folded: Folded,
}

/// Read the counters of `tenants` (or only the one asked) over the query's range,
/// one read per tenant, all at once (the pool serves them in parallel).
pub(super) async fn load(
    series: &Arc<dyn TrafficSeries>,
    tenants: &[TenantId],
    query: &ChartQuery,
    now: Timestamp,
) -> Result<Charts, PageChartError> {
    let grid = query.range.grid(now);
    let mut reads = tokio::task::JoinSet::new();
    for tenant in tenants {
        if query.tenant.as_ref().is_none_or(|t| t == tenant) {
            let (series, tenant) = (series.clone(), tenant.clone());
            reads.spawn(async move {
                series
                    .read(&tenant, grid.from, grid.until(), grid.step)
                    .await
            });
        }
    }
    let mut points = Vec::new();
    while let Some(read) = reads.join_next().await {
        points.extend(read??);
    }
    Ok(Charts {
        folded: grid.fold(&points),
        grid,
    })
}

/// Colours of the transition lines, and a palette for classes and reasons.
const ACCEPTED: (u8, u8, u8) = (130, 80, 223);
const DELIVERED: (u8, u8, u8) = (26, 127, 55);
const READ: (u8, u8, u8) = (17, 99, 41);
const FAILED: (u8, u8, u8) = (207, 34, 46);
const SUPPRESSED: (u8, u8, u8) = (188, 76, 0);
const PALETTE: [(u8, u8, u8); 8] = [
    (207, 34, 46),
    (9, 105, 218),
    (188, 76, 0),
    (130, 80, 223),
    (27, 124, 131),
    (125, 78, 0),
    (191, 57, 137),
    (87, 96, 106),
];
const P50: (u8, u8, u8) = (26, 127, 55);
const P95: (u8, u8, u8) = (212, 167, 44);
const P99: (u8, u8, u8) = (207, 34, 46);

/// One named series of a figure: its label, values per slot, colour and total.
struct Named {
    name: String,
    values: Vec<Option<f64>>,
    color: (u8, u8, u8),
    total: u64,
}

fn counts(name: &str, row: &[u64], color: (u8, u8, u8)) -> Named {
    Named {
        name: name.into(),
        values: row.iter().map(|n| Some(*n as f64)).collect(),
        color,
        total: row.iter().sum(),
    }
}

fn sum_rows(rows: &[(String, Vec<u64>)], slots: usize) -> Vec<u64> {
    let mut sum = vec![0u64; slots];
    for (_, row) in rows {
        for (s, n) in sum.iter_mut().zip(row) {
            *s += n;
        }
    }
    sum
}

/// The section: range switch, tenant filter, the figures, and who is on hold.
pub(super) fn charts(
    out: &mut String,
    data: &Charts,
    query: &ChartQuery,
    tenant_ids: &[TenantId],
    profiles: &[TenantProfile],
) -> Result<(), PageChartError> {
    let (grid, f) = (&data.grid, &data.folded);
    let slots = grid.slots;
    let label = |slot: usize| {
        let t = grid.slot_start(slot).start().to_rfc3339();
        t.get(11..16).unwrap_or("").to_owned()
    };
    write!(
        out,
        "<section id=\"charts\" data-range=\"{range}\" data-tenant=\"{tenant}\">\
         <div class=\"panel-head\"><h2>Traffic · {what}{who}</h2><nav class=\"switch\">",
        range = query.range.as_str(),
        tenant = Esc(query.tenant.as_ref().map_or("", |t| t.as_str())),
        what = match query.range {
            Range::Hour => "last hour by minute",
            Range::Day => "last day by hour",
        },
        who = match &query.tenant {
            Some(t) => format!(" · {}", Esc(t.as_str())),
            None => " · all tenants".into(),
        },
    )?;
    for range in [Range::Hour, Range::Day] {
        let class = if range == query.range {
            " class=\"on\""
        } else {
            ""
        };
        write!(
            out,
            "<a{class} data-range=\"{r}\" href=\"{href}\">{r}</a>",
            r = range.as_str(),
            href = Esc(&ChartQuery::href(range, query.tenant.as_ref()))
        )?;
    }
    out.write_str(" · ")?;
    let class = if query.tenant.is_none() {
        " class=\"on\""
    } else {
        ""
    };
    write!(
        out,
        "<a{class} data-tenant=\"\" href=\"{}\">all</a>",
        Esc(&ChartQuery::href(query.range, None))
    )?;
    for t in tenant_ids {
        let class = if query.tenant.as_ref() == Some(t) {
            " class=\"on\""
        } else {
            ""
        };
        write!(
            out,
            "<a{class} data-tenant=\"{id}\" href=\"{href}\">{id}</a>",
            id = Esc(t.as_str()),
            href = Esc(&ChartQuery::href(query.range, Some(t)))
        )?;
    }
    out.write_str("</nav></div><div class=\"charts\">")?;

    let failed = f.by_label(false);
    let suppressed = f.by_label(true);
    figure(
        out,
        "transitions",
        "Transitions",
        slots,
        &[
            counts("accepted", &f.row(&SeriesMetric::Accepted), ACCEPTED),
            counts("delivered", &f.row(&SeriesMetric::Delivered), DELIVERED),
            counts("read", &f.row(&SeriesMetric::Read), READ),
            counts("failed", &sum_rows(&failed, slots), FAILED),
            counts("suppressed", &sum_rows(&suppressed, slots), SUPPRESSED),
        ],
        Scale::Counts,
        &label,
    )?;
    let by = |rows: &[(String, Vec<u64>)]| -> Vec<Named> {
        rows.iter()
            .enumerate()
            .map(|(i, (name, row))| counts(name, row, PALETTE[i % PALETTE.len()]))
            .collect()
    };
    figure(
        out,
        "failed",
        "Failed by class",
        slots,
        &by(&failed),
        Scale::Counts,
        &label,
    )?;
    figure(
        out,
        "suppressed",
        "Suppressed by reason",
        slots,
        &by(&suppressed),
        Scale::Counts,
        &label,
    )?;
    for (id, title, span) in [
        (
            "latency-queued-accepted",
            "Latency queued → accepted",
            Span::QueuedAccepted,
        ),
        (
            "latency-accepted-delivered",
            "Latency accepted → delivered",
            Span::AcceptedDelivered,
        ),
        (
            "webhook-lag",
            "Webhook lag (Meta's status time → stored)",
            Span::WebhookLag,
        ),
    ] {
        let observed = f.observations(span);
        let lines: Vec<Named> = [("p50", 0.5, P50), ("p95", 0.95, P95), ("p99", 0.99, P99)]
            .into_iter()
            .map(|(name, q, color)| Named {
                name: name.into(),
                values: f
                    .percentiles(span, q)
                    .into_iter()
                    .map(|v| v.map(|ms| ms as f64))
                    .collect(),
                color,
                total: observed,
            })
            .collect();
        figure(out, id, title, slots, &lines, Scale::Millis, &label)?;
    }
    out.write_str("</div>")?;
    holds(out, profiles, query.tenant.as_ref())?;
    out.write_str(
        "<p class=\"muted\">Counted as transitions are stored (per-minute counters, two \
         days kept); percentiles are bucket bounds (log-spaced, 50 ms to 1 h).</p></section>",
    )?;
    Ok(())
}

/// One `<figure>`: title, the SVG, and a legend with each series' total.
fn figure(
    out: &mut String,
    id: &str,
    title: &str,
    slots: usize,
    series: &[Named],
    scale: Scale,
    label: &dyn Fn(usize) -> String,
) -> Result<(), PageChartError> {
    let total: u64 = match scale {
        Scale::Counts => series.iter().map(|s| s.total).sum(),
        Scale::Millis => series.first().map_or(0, |s| s.total),
    };
    write!(
        out,
        "<figure class=\"chart\" id=\"chart-{id}\" data-total=\"{total}\" data-points=\"{points}\">\
         <figcaption>{title}</figcaption>",
        points = series
            .iter()
            .map(|s| s.values.iter().flatten().filter(|v| **v > 0.0).count())
            .sum::<usize>(),
    )?;
    let lines: Vec<Line<'_>> = series
        .iter()
        .map(|s| Line {
            values: &s.values,
            color: s.color,
        })
        .collect();
    out.push_str(&line_chart(slots, &lines, scale, label)?);
    out.write_str("<ul class=\"legend\">")?;
    if series.is_empty() {
        out.write_str("<li class=\"muted\">none</li>")?;
    }
    for s in series {
        let (r, g, b) = s.color;
        let shown = match scale {
            Scale::Counts => s.total.to_string(),
            Scale::Millis => match s
                .values
                .iter()
                .flatten()
                .fold(None::<f64>, |a, v| Some(a.map_or(*v, |a| a.max(*v))))
            {
                Some(max) => format!("≤ {}", super::charts_svg::millis_label(max)),
                None => "–".into(),
            },
        };
        write!(
            out,
            "<li data-series=\"{name}\" data-total=\"{total}\"><span class=\"swatch\" \
             style=\"background:#{r:02x}{g:02x}{b:02x}\"></span>{name} <b>{shown}</b></li>",
            name = Esc(&s.name),
            total = s.total,
        )?;
    }
    out.write_str("</ul></figure>")?;
    Ok(())
}

/// Who is on hold now, and why (all tenants, or only the one asked).
fn holds(out: &mut String, profiles: &[TenantProfile], only: Option<&TenantId>) -> fmt::Result {
    let held: Vec<&TenantProfile> = profiles
        .iter()
        .filter(|p| p.hold.is_some() && only.is_none_or(|t| *t == p.id))
        .collect();
    write!(
        out,
        "<div id=\"holds\" data-held=\"{}\"><h3>On hold</h3>",
        held.len()
    )?;
    if held.is_empty() {
        return out.write_str("<p class=\"muted\">No tenant is on hold.</p></div>");
    }
    out.write_str("<ul>")?;
    for p in held {
        if let Some(h) = &p.hold {
            write!(
                out,
                "<li data-tenant=\"{id}\"><b>{id}</b> since {since}: {code}{reason} · next probe {probe}</li>",
                id = Esc(p.id.as_str()),
                since = Time(h.since),
                code = h.code.map(|c| format!("{c} ")).unwrap_or_default(),
                reason = Esc(&h.reason),
                probe = Time(h.probe_at),
            )?;
        }
    }
    out.write_str("</ul></div>")
}

/// Why the charts could not be written.
#[derive(Debug, thiserror::Error)]
pub(super) enum PageChartError {
    /// Writing HTML failed.
    #[error("writing the charts failed")]
    Fmt(#[from] fmt::Error),
    /// Drawing a chart failed.
    #[error(transparent)]
    Chart(#[from] ChartError),
    /// Reading the counters failed.
    #[error("reading the traffic series failed")]
    Series(#[from] SeriesError),
    /// A read's task failed (panicked).
    #[error("a traffic series read did not finish")]
    Read(#[from] tokio::task::JoinError),
}

/// CSS of the section (added to the page's).
pub(super) const CSS: &str = "
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:1em}
figure.chart{margin:0;border:1px solid #eaeef2;border-radius:6px;padding:.5em}
figure.chart figcaption{font-weight:600;font-size:13px;margin-bottom:.3em}
figure.chart svg{width:100%;height:auto;display:block}
ul.legend{display:flex;flex-wrap:wrap;gap:.2em 1em;list-style:none;margin:.3em 0 0;padding:0;font-size:12px}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.3em;vertical-align:middle}
nav.switch a{margin-left:.5em;text-decoration:none}nav.switch a.on{font-weight:700;color:#1f2328}
#holds ul{margin:.2em 0;padding-left:1.2em}
";

#[cfg(test)]
mod tests {
    use super::*;
    use wa_shared::domain::series::SeriesPoint;

    fn acme() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    #[test]
    fn the_query_picks_a_range_and_a_tenant_and_ignores_the_rest() {
        let q = |pairs: &[(&str, &str)]| {
            ChartQuery::parse(
                &pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            )
        };
        assert_eq!(q(&[]), ChartQuery::default());
        assert_eq!(q(&[("range", "day")]).range, Range::Day);
        assert_eq!(q(&[("range", "week")]).range, Range::Hour);
        assert_eq!(q(&[("tenant", "acme")]).tenant, Some(acme()));
        assert_eq!(q(&[("tenant", "NOT A TENANT")]).tenant, None);
        assert_eq!(
            ChartQuery::href(Range::Day, Some(&acme())),
            "/?range=day&tenant=acme#charts"
        );
    }

    #[test]
    fn figures_carry_their_totals_and_an_svg_each() {
        let now = Timestamp::from_millis(1_780_481_730_000);
        let grid = Grid::hour_by_minute(now);
        let t = acme();
        let points = [
            SeriesPoint::one(&t, now, SeriesMetric::Accepted),
            SeriesPoint::one(&t, now, SeriesMetric::Accepted),
            SeriesPoint::one(&t, now, SeriesMetric::Failed("recipient".into())),
            SeriesPoint::one(&t, now, SeriesMetric::Suppressed("opted_out".into())),
            SeriesPoint::timed(&t, now, Span::QueuedAccepted, 700),
        ];
        let data = Charts {
            folded: grid.fold(&points),
            grid,
        };
        let mut out = String::new();
        charts(&mut out, &data, &ChartQuery::default(), &[t], &[]).unwrap();
        assert!(
            out.contains("id=\"chart-transitions\" data-total=\"4\""),
            "{out}"
        );
        assert!(out.contains("<li data-series=\"accepted\" data-total=\"2\">"));
        assert!(out.contains("id=\"chart-failed\" data-total=\"1\""));
        assert!(out.contains("<li data-series=\"recipient\" data-total=\"1\">"));
        assert!(out.contains("<li data-series=\"opted_out\" data-total=\"1\">"));
        assert!(out.contains("id=\"chart-latency-queued-accepted\" data-total=\"1\""));
        assert!(
            out.contains("≤ 1 s"),
            "p50..p99 of one 700 ms accept: the 1 s bucket"
        );
        assert!(out.contains("id=\"chart-webhook-lag\" data-total=\"0\""));
        assert_eq!(out.matches("<svg").count(), 6);
        assert!(out.contains("id=\"holds\" data-held=\"0\""));
        assert!(out.contains("href=\"/?range=day#charts\""));
    }
}
