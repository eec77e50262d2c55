//! PNG line charts with plotters (bitmap backend, DejaVu Sans shipped in `assets/`).
//!
//! One chart per panel: several runs overlaid (one colour per run), the panel's metrics told
//! apart by stroke (solid, dashed, dotted), or a second metric on a secondary y axis when the
//! units differ.

use std::path::Path;
use std::sync::Once;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

/// The font every chart uses (registered once as "sans-serif").
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
static REGISTER_FONT: Once = Once::new();

/// Chart size in pixels.
pub const CHART_SIZE: (u32, u32) = (900, 540);

/// How a line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stroke {
    /// A continuous line.
    Solid,
    /// Long dashes.
    Dashed,
    /// Short dashes.
    Dotted,
}

impl Stroke {
    /// The `(dash, gap)` lengths in pixels; `None` for a solid line.
    fn pattern(self) -> Option<(u32, u32)> {
        match self {
            Stroke::Solid => None,
            Stroke::Dashed => Some((8, 5)),
            Stroke::Dotted => Some((2, 4)),
        }
    }
}

/// One line of a chart.
pub struct Line {
    /// Legend text.
    pub label: String,
    /// Index of the run (picks the colour).
    pub run: usize,
    /// Solid, dashed or dotted.
    pub stroke: Stroke,
    /// `(x, y)` points (x is the step, except where the chart says otherwise).
    pub points: Vec<(f64, f64)>,
}

/// What to draw in one chart.
pub struct ChartSpec<'a> {
    /// Title on top.
    pub title: &'a str,
    /// x-axis description.
    pub x_label: &'a str,
    /// Left y-axis description.
    pub y_label: &'a str,
    /// Lines on the left axis.
    pub lines: Vec<Line>,
    /// Right y-axis description and its lines, when the panel has two units.
    pub secondary: Option<(&'a str, Vec<Line>)>,
}

fn register_font() {
    REGISTER_FONT.call_once(|| {
        // The bytes are a valid TrueType file shipped with hicra; a failure would only mean
        // charts without text, which plotters reports when drawing.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn colour(run: usize) -> RGBColor {
    const COLOURS: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(255, 127, 14),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
    ];
    COLOURS[run % COLOURS.len()]
}

/// (min, max) of x and y over lines, padded so a flat or single-point line still shows.
fn bounds<'a>(lines: impl Iterator<Item = &'a Line>) -> Option<((f64, f64), (f64, f64))> {
    let points: Vec<(f64, f64)> = lines.flat_map(|l| l.points.iter().copied()).collect();
    if points.is_empty() {
        return None;
    }
    let pad = |lo: f64, hi: f64| {
        if (hi - lo).abs() < 1e-12 {
            let d = if lo.abs() > 1e-12 {
                lo.abs() * 0.1
            } else {
                1.0
            };
            (lo - d, hi + d)
        } else {
            let d = (hi - lo) * 0.05;
            (lo - d, hi + d)
        }
    };
    let fold = |f: fn(&(f64, f64)) -> f64| {
        points
            .iter()
            .map(f)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            })
    };
    let (x0, x1) = fold(|p| p.0);
    let (y0, y1) = fold(|p| p.1);
    Some((pad(x0, x1), pad(y0, y1)))
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing chart: {e}")
}

/// Draws a chart to a PNG file. A chart without data says so in its middle.
pub fn draw_chart(path: &Path, spec: &ChartSpec<'_>) -> Result<()> {
    register_font();
    let root = BitMapBackend::new(path, CHART_SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let secondary_lines = spec
        .secondary
        .as_ref()
        .map(|(_, l)| l.as_slice())
        .unwrap_or(&[]);
    let all = spec.lines.iter().chain(secondary_lines);
    let Some(((x0, x1), (y0, y1))) = bounds(spec.lines.iter()).or_else(|| bounds(all)) else {
        let text = format!("{}: no data", spec.title);
        root.draw(&Text::new(
            text,
            (40, CHART_SIZE.1 as i32 / 2),
            ("sans-serif", 22).into_font(),
        ))
        .map_err(err)?;
        root.present()
            .map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
        return Ok(());
    };
    let (sy0, sy1) = bounds(secondary_lines.iter()).map_or((0.0, 1.0), |b| b.1);
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(spec.title, ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70);
    if spec.secondary.is_some() {
        builder.right_y_label_area_size(70);
    }
    let mut chart = builder
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?
        .set_secondary_coord(x0..x1, sy0..sy1);
    chart
        .configure_mesh()
        .x_desc(spec.x_label)
        .y_desc(spec.y_label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    for line in &spec.lines {
        draw_line(&mut chart, line, false)?;
    }
    if let Some((y_label, lines)) = &spec.secondary {
        chart
            .configure_secondary_axes()
            .y_desc(*y_label)
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        for line in lines {
            draw_line(&mut chart, line, true)?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    root.present()
        .map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}

type Chart<'a, 'b> = plotters::chart::DualCoordChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn draw_line(chart: &mut Chart<'_, '_>, line: &Line, secondary: bool) -> Result<()> {
    let c = colour(line.run);
    let style = c.stroke_width(2);
    let points = line.points.clone();
    let annotation = match (line.stroke.pattern(), secondary) {
        (Some((dash, gap)), true) => chart
            .draw_secondary_series(DashedLineSeries::new(points, dash, gap, style))
            .map_err(err)?,
        (None, true) => chart
            .draw_secondary_series(LineSeries::new(points, style))
            .map_err(err)?,
        (Some((dash, gap)), false) => chart
            .draw_series(DashedLineSeries::new(points, dash, gap, style))
            .map_err(err)?,
        (None, false) => chart
            .draw_series(LineSeries::new(points, style))
            .map_err(err)?,
    };
    // The legend sample's length tells the strokes apart: long, short, a dot.
    let length = match line.stroke {
        Stroke::Solid => 18,
        Stroke::Dashed => 7,
        Stroke::Dotted => 2,
    };
    annotation
        .label(line.label.clone())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + length, y)], c.stroke_width(2)));
    Ok(())
}

/// Draws `lines` on one left axis (no secondary axis) into `path`.
pub fn draw_lines(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: Vec<Line>,
) -> Result<()> {
    draw_chart(
        path,
        &ChartSpec {
            title,
            x_label,
            y_label,
            lines,
            secondary: None,
        },
    )
}
