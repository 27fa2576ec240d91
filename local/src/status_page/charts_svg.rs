//! One line chart as inline SVG, drawn on the server with `plotters` (SVG backend
//! only: no JavaScript, nothing loaded from elsewhere, the browser picks the font).
//!
//! A line may have gaps (`None`: nothing was timed in that slot); each run of values
//! is its own polyline and a lone value is a dot.

use plotters::coord::combinators::IntoLogRange;
use plotters::prelude::*;
use std::ops::Range;

/// Size of every chart, in CSS pixels (the SVG scales to its figure's width).
pub(super) const SIZE: (u32, u32) = (560, 220);

/// Why a chart could not be drawn (plotters' error, as text).
#[derive(Debug, thiserror::Error)]
#[error("drawing a chart failed: {0}")]
pub(super) struct ChartError(String);

fn err(e: impl std::fmt::Display) -> ChartError {
    ChartError(e.to_string())
}

/// One line: its values per slot (`None`: a gap) and its colour.
pub(super) struct Line<'a> {
    /// Values per slot.
    pub values: &'a [Option<f64>],
    /// `#rrggbb` as three bytes.
    pub color: (u8, u8, u8),
}

/// How the y axis is scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scale {
    /// Counts from zero.
    Counts,
    /// Milliseconds on a log axis (percentiles span 50 ms to an hour).
    Millis,
}

/// The SVG of `lines` over `slots` slots, x labels from `label(slot)`.
pub(super) fn line_chart(
    slots: usize,
    lines: &[Line<'_>],
    scale: Scale,
    label: &dyn Fn(usize) -> String,
) -> Result<String, ChartError> {
    let mut svg = String::with_capacity(16 * 1024);
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let x_max = slots.saturating_sub(1).max(1) as f64;
        let y_max = lines
            .iter()
            .flat_map(|l| l.values.iter().flatten())
            .fold(0.0f64, |a, b| a.max(*b));
        let mut builder = ChartBuilder::on(&root);
        builder
            .margin_top(8)
            .margin_right(12)
            .x_label_area_size(22)
            .y_label_area_size(52);
        let x_fmt = |x: &f64| label(x.round().max(0.0) as usize);
        let axis = ("sans-serif", 11).into_font().color(&RGBColor(87, 96, 106));
        let grid_style = RGBColor(234, 238, 242);
        match scale {
            Scale::Counts => {
                let mut chart = builder
                    .build_cartesian_2d(0f64..x_max, 0f64..(y_max * 1.15).max(1.0))
                    .map_err(err)?;
                chart
                    .configure_mesh()
                    .x_labels(7)
                    .y_labels(5)
                    .x_label_formatter(&x_fmt)
                    .y_label_formatter(&|y: &f64| format!("{y:.0}"))
                    .label_style(axis.clone())
                    .light_line_style(WHITE)
                    .bold_line_style(grid_style)
                    .draw()
                    .map_err(err)?;
                for line in lines {
                    draw(&mut chart, line)?;
                }
            }
            Scale::Millis => {
                let top = (y_max * 2.0).max(1_000.0);
                let y: Range<f64> = 10.0..top;
                let mut chart = builder
                    .build_cartesian_2d(0f64..x_max, y.log_scale())
                    .map_err(err)?;
                chart
                    .configure_mesh()
                    .x_labels(7)
                    .y_labels(6)
                    .x_label_formatter(&x_fmt)
                    .y_label_formatter(&|y: &f64| millis_label(*y))
                    .label_style(axis.clone())
                    .light_line_style(WHITE)
                    .bold_line_style(grid_style)
                    .draw()
                    .map_err(err)?;
                for line in lines {
                    draw(&mut chart, line)?;
                }
            }
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The chart area of one chart (x: slots as `f64`; y: linear or log).
type Area<'a, 'b, Y> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>;

/// `line` as polylines over its runs of values, a dot for a lone value.
fn draw<Y>(chart: &mut Area<'_, '_, Y>, line: &Line<'_>) -> Result<(), ChartError>
where
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    let color = RGBColor(line.color.0, line.color.1, line.color.2);
    let mut run: Vec<(f64, f64)> = Vec::new();
    for (i, v) in line.values.iter().enumerate() {
        match v {
            Some(v) => run.push((i as f64, *v)),
            None => flush(chart, &mut run, color)?,
        }
    }
    flush(chart, &mut run, color)
}

/// Draw and empty one run of values.
fn flush<Y>(
    chart: &mut Area<'_, '_, Y>,
    run: &mut Vec<(f64, f64)>,
    color: RGBColor,
) -> Result<(), ChartError>
where
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    match run.len() {
        0 => {}
        1 => {
            chart
                .draw_series(run.iter().map(|p| Circle::new(*p, 3, color.filled())))
                .map_err(err)?;
        }
        _ => {
            chart
                .draw_series(LineSeries::new(run.iter().copied(), color.stroke_width(2)))
                .map_err(err)?;
        }
    }
    run.clear();
    Ok(())
}

/// A y tick of a log millisecond axis: `50 ms`, `2.5 s`, `5 min`.
pub(super) fn millis_label(ms: f64) -> String {
    if ms < 1_000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        let s = ms / 1_000.0;
        if (s - s.round()).abs() < 0.05 {
            format!("{s:.0} s")
        } else {
            format!("{s:.1} s")
        }
    } else {
        format!("{:.0} min", ms / 60_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_one_svg_with_a_polyline_per_run_and_a_dot_for_a_lone_value() {
        let values = [Some(1.0), Some(3.0), None, Some(2.0), None, None];
        let svg = line_chart(
            values.len(),
            &[Line {
                values: &values,
                color: (207, 34, 46),
            }],
            Scale::Counts,
            &|i| format!("t{i}"),
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        let ours = |tag: &str| {
            svg.split('<')
                .filter(|e| e.starts_with(tag) && e.to_uppercase().contains("#CF222E"))
                .count()
        };
        assert_eq!(ours("polyline"), 1, "{svg}");
        assert_eq!(ours("circle"), 1, "{svg}");
        assert!(svg.contains("t0"));
    }

    #[test]
    fn a_millisecond_axis_is_logarithmic_and_reads_in_units() {
        let values = [Some(100.0), Some(2_500.0), Some(300_000.0)];
        let svg = line_chart(
            3,
            &[Line {
                values: &values,
                color: (130, 80, 223),
            }],
            Scale::Millis,
            &|i| i.to_string(),
        )
        .unwrap();
        assert!(svg.contains("<polyline"));
        assert_eq!(millis_label(50.0), "50 ms");
        assert_eq!(millis_label(2_500.0), "2.5 s");
        assert_eq!(millis_label(10_000.0), "10 s");
        assert_eq!(millis_label(300_000.0), "5 min");
    }
}
