//! The SVG plot: throughput (offered, achieved) and latency percentiles per second.

use std::path::Path;

use plotters::prelude::*;

use crate::report::Report;
use crate::stats::SecondPoint;

/// A plotted line: its label, colour and value per second.
type Line = (&'static str, RGBColor, fn(&SecondPoint) -> f64);

/// Draws the report's time series into an SVG file.
///
/// # Errors
/// The file cannot be written.
pub fn write_svg(report: &Report, path: &Path) -> Result<(), String> {
    let error = |error: &dyn std::fmt::Display| format!("plot {}: {error}", path.display());
    let series = &report.series;
    let last_t = series.last().map_or(1.0, |point| point.t as f64 + 1.0);
    let max_rate = series
        .iter()
        .map(|point| point.offered.max(point.achieved))
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.1;
    let max_latency = series
        .iter()
        .map(|point| point.ack_p99_ms.max(point.bot_reply_p99_ms))
        .fold(1.0, f64::max)
        * 1.1;

    let root = SVGBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| error(&e))?;
    let title = format!(
        "crest-loadtest {} — {} offered, {} acked, ack p99 {:.1} ms, bot reply p99 {:.1} ms, lost {}, duplicated {}",
        report.profile.name,
        report.offered,
        report.acked,
        report.ack.p99_ms,
        report.bot_reply.p99_ms,
        report.loss.lost,
        report.loss.duplicated,
    );
    let root = root
        .titled(&title, ("sans-serif", 18))
        .map_err(|e| error(&e))?;
    let (upper, lower) = root.split_vertically(380);

    let mut chart = ChartBuilder::on(&upper)
        .caption("Throughput (messages per second)", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..last_t, 0.0..max_rate)
        .map_err(|e| error(&e))?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("msg/s")
        .draw()
        .map_err(|e| error(&e))?;
    let lines: [Line; 2] = [
        ("offered", BLUE, |p| p.offered as f64),
        ("achieved (acked)", GREEN, |p| p.achieved as f64),
    ];
    for (label, color, value) in lines {
        chart
            .draw_series(LineSeries::new(
                series
                    .iter()
                    .map(|point| (point.t as f64 + 0.5, value(point))),
                color.stroke_width(2),
            ))
            .map_err(|e| error(&e))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| error(&e))?;

    let mut chart = ChartBuilder::on(&lower)
        .caption("Latency per second (ms)", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..last_t, 0.0..max_latency)
        .map_err(|e| error(&e))?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("ms")
        .draw()
        .map_err(|e| error(&e))?;
    let lines: [Line; 4] = [
        ("ack p50", RGBColor(31, 119, 180), |p| p.ack_p50_ms),
        ("ack p99", RGBColor(214, 39, 40), |p| p.ack_p99_ms),
        ("bot reply p50", RGBColor(44, 160, 44), |p| {
            p.bot_reply_p50_ms
        }),
        ("bot reply p99", RGBColor(255, 127, 14), |p| {
            p.bot_reply_p99_ms
        }),
    ];
    for (label, color, value) in lines {
        chart
            .draw_series(LineSeries::new(
                series
                    .iter()
                    .filter(|point| point.achieved > 0 || value(point) > 0.0)
                    .map(|point| (point.t as f64 + 0.5, value(point))),
                color.stroke_width(2),
            ))
            .map_err(|e| error(&e))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| error(&e))?;
    root.present().map_err(|e| error(&e))?;
    Ok(())
}
