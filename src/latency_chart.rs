//! The Latency view's picture: a connector's call-duration histogram as SVG, drawn from the
//! numbers [`Metrics::histogram`](crate::metrics::Metrics::histogram) keeps (data and picture
//! apart, so the picture is a pure function).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::metrics::LatencyHistogram;

/// Colours for the window's light or dark theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    Light,
    Dark,
}

struct Palette {
    background: RGBColor,
    text: RGBColor,
    grid: RGBColor,
    bar: RGBColor,
    marker: RGBColor,
}

impl Theme {
    fn palette(self) -> Palette {
        match self {
            Self::Light => Palette {
                background: RGBColor(255, 255, 255),
                text: RGBColor(31, 41, 55),
                grid: RGBColor(229, 231, 235),
                bar: RGBColor(37, 99, 235),
                marker: RGBColor(220, 38, 38),
            },
            Self::Dark => Palette {
                background: RGBColor(24, 24, 27),
                text: RGBColor(228, 228, 231),
                grid: RGBColor(63, 63, 70),
                bar: RGBColor(96, 165, 250),
                marker: RGBColor(248, 113, 113),
            },
        }
    }
}

pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 300;

/// `histogram` drawn as bars over its buckets, with a marker at the bucket holding p95; `None`
/// (no calls yet) gives a frame that says so.
pub fn render(connector: &str, histogram: Option<&LatencyHistogram>, theme: Theme) -> String {
    let mut svg = String::new();
    // Drawing into a String cannot fail for I/O reasons; a layout error leaves a partial picture.
    if let Err(error) = draw(&mut svg, connector, histogram, theme) {
        tracing::warn!(%error, connector, "latency chart incomplete");
    }
    svg
}

fn draw(
    svg: &mut String,
    connector: &str,
    histogram: Option<&LatencyHistogram>,
    theme: Theme,
) -> Result<(), Box<dyn std::error::Error>> {
    let palette = theme.palette();
    let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&palette.background)?;
    let text = |size| ("sans-serif", size).into_font().color(&palette.text);
    let Some(histogram) = histogram else {
        root.draw(&Text::new(
            format!("{connector}: no calls yet"),
            (20, (HEIGHT / 2) as i32),
            text(16),
        ))?;
        root.present()?;
        return Ok(());
    };
    let buckets = &histogram.buckets;
    let tallest = buckets.iter().map(|b| b.count).max().unwrap_or(1).max(1);
    // Room above the tallest bar for the p95 label.
    let top = tallest + (tallest / 4).max(1);
    let summary = &histogram.summary;
    let caption = format!(
        "{connector}: {} calls · p50 {} · p95 {} · p99 {}",
        summary.calls,
        duration(summary.p50_ms),
        duration(summary.p95_ms),
        duration(summary.p99_ms)
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, text(15))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(52)
        .build_cartesian_2d(0..buckets.len(), 0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(palette.grid)
        .bold_line_style(palette.grid)
        .axis_style(palette.text)
        .x_labels(buckets.len())
        .x_label_formatter(&|i| {
            buckets
                .get(*i)
                .map(|b| format!("≤{}", bound(b.upper_ms)))
                .unwrap_or_default()
        })
        .x_desc("call duration (upper bound of each bucket)")
        .y_desc("calls")
        .label_style(text(11))
        .axis_desc_style(text(12))
        .draw()?;
    chart.draw_series(buckets.iter().enumerate().map(|(i, b)| {
        let mut bar = Rectangle::new([(i, 0), (i + 1, b.count)], palette.bar.filled());
        bar.set_margin(0, 0, 3, 3);
        bar
    }))?;
    // The bucket p95 falls in: the first whose upper bound reaches it.
    let p95 = buckets
        .iter()
        .position(|b| summary.p95_ms <= b.upper_ms)
        .unwrap_or(buckets.len() - 1);
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(p95 + 1, 0), (p95 + 1, top)],
        palette.marker.stroke_width(2),
    )))?;
    // The label sits on the side of the marker with room for it.
    let anchor = if 2 * (p95 + 1) > buckets.len() {
        Pos::new(HPos::Right, VPos::Top)
    } else {
        Pos::new(HPos::Left, VPos::Top)
    };
    chart.draw_series(std::iter::once(Text::new(
        format!(" p95 {} ", duration(summary.p95_ms)),
        (p95 + 1, top),
        text(12).color(&palette.marker).pos(anchor),
    )))?;
    root.present()?;
    Ok(())
}

/// A bucket bound: "0.5 ms", "20 ms", "2 s", "∞".
fn bound(ms: f64) -> String {
    if ms.is_infinite() {
        "∞".into()
    } else if ms >= 1e3 {
        format!("{} s", ms / 1e3)
    } else {
        format!("{ms} ms")
    }
}

/// A measured duration with sensible precision: "840 µs", "12.3 ms", "1.25 s".
fn duration(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.0} µs", ms * 1e3)
    } else if ms < 1e3 {
        format!("{:.1} ms", ms)
    } else {
        format!("{:.2} s", ms / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{LatencyBucket, LatencySummary};

    fn histogram() -> LatencyHistogram {
        LatencyHistogram {
            buckets: vec![
                LatencyBucket {
                    upper_ms: 5.0,
                    count: 40,
                },
                LatencyBucket {
                    upper_ms: 10.0,
                    count: 55,
                },
                LatencyBucket {
                    upper_ms: 20.0,
                    count: 5,
                },
            ],
            summary: LatencySummary {
                calls: 100,
                errors: 0,
                p50_ms: 6.2,
                p95_ms: 12.5,
                p99_ms: 19.0,
            },
        }
    }

    #[test]
    fn the_chart_has_bars_axes_with_units_and_a_p95_marker() {
        let svg = render("docs", Some(&histogram()), Theme::Light);
        assert!(svg.starts_with("<svg"), "an SVG document: {svg:.80}");
        assert_eq!(
            svg.matches("fill=\"#2563EB\"").count(),
            3,
            "one bar per bucket:\n{svg}"
        );
        for text in [
            "≤5 ms",
            "≤20 ms",
            "call duration",
            "calls",
            "p95 12.5 ms",
            "100 calls",
        ] {
            assert!(svg.contains(text), "the chart says {text:?}:\n{svg}");
        }
    }

    #[test]
    fn the_dark_theme_changes_the_colours_not_the_content() {
        let light = render("docs", Some(&histogram()), Theme::Light);
        let dark = render("docs", Some(&histogram()), Theme::Dark);
        assert_ne!(light, dark);
        assert!(dark.contains("#18181B"), "dark background");
        assert!(dark.contains("p95 12.5 ms"));
    }

    #[test]
    fn no_calls_says_so() {
        let svg = render("docs", None, Theme::Dark);
        assert!(svg.contains("docs: no calls yet"), "{svg}");
    }
}
