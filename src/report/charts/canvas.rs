//! The one place that talks to plotters: draws an XY chart (lines, dashed
//! lines, points, vertical markers, optional right-hand axis) into an SVG
//! string, or an explicit "no data" panel. Chart files only prepare data.
//!
//! Text is emitted as SVG `<text>` (plotters' naive font metrics), so no
//! system font or fontconfig is needed to render.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor;
/// Series colours are plotters colours; re-exported so chart files need
/// not name plotters.
pub use plotters::style::RGBColor;

/// Native size of every chart; CSS scales it to the page width.
const WIDTH: u32 = 900;
const HEIGHT: u32 = 400;
const FONT: &str = "sans-serif";
// plotters' SVG backend writes font sizes divided by 1.24; these are
// chosen so the emitted sizes are about 18, 13, 14 and 13 px.
const TITLE_SIZE: f64 = 22.0;
const TICK_SIZE: f64 = 16.0;
const AXIS_SIZE: f64 = 17.0;
const LEGEND_SIZE: f64 = 16.0;
const NOTE_SIZE: f64 = 15.0;

/// Colour-blind-safe palette (Okabe-Ito), in the order series take them.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // green
    RGBColor(230, 159, 0),   // orange
    RGBColor(204, 121, 167), // purple
    RGBColor(86, 180, 233),  // sky
    RGBColor(0, 0, 0),       // black
    RGBColor(120, 120, 120), // grey
];

/// Colour of the `i`-th series (wraps around).
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stroke {
    Line(u32),
    Dashed(u32),
    Points(u32),
}

/// Which y axis a series is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    Left,
    Right,
}

/// One legend entry: possibly several disjoint segments (gaps where a
/// second had no samples are not bridged by a line).
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub color: RGBColor,
    pub stroke: Stroke,
    pub axis: Axis,
    pub segments: Vec<Vec<(f64, f64)>>,
}

impl Series {
    /// Builds a series from points, dropping non-finite values and
    /// splitting the line wherever a `None` (or non-finite) value appears.
    pub fn from_points(
        label: impl Into<String>,
        color: RGBColor,
        stroke: Stroke,
        points: impl IntoIterator<Item = (f64, Option<f64>)>,
    ) -> Self {
        let mut segments = vec![Vec::new()];
        for (x, y) in points {
            match y {
                Some(y) if x.is_finite() && y.is_finite() => {
                    if let Some(last) = segments.last_mut() {
                        last.push((x, y));
                    }
                }
                _ => {
                    if segments.last().is_some_and(|s| !s.is_empty()) {
                        segments.push(Vec::new());
                    }
                }
            }
        }
        segments.retain(|s| !s.is_empty());
        let segments = segments.into_iter().map(decimate).collect();
        Self {
            label: label.into(),
            color,
            stroke,
            axis: Axis::Left,
            segments,
        }
    }

    pub fn on_right_axis(mut self) -> Self {
        self.axis = Axis::Right;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// How to draw one segment: a lone point draws no line, so it becomes
    /// a dot.
    fn stroke_for(&self, segment: &[(f64, f64)]) -> Stroke {
        match self.stroke {
            Stroke::Line(w) | Stroke::Dashed(w) if segment.len() == 1 => Stroke::Points(w + 2),
            other => other,
        }
    }

    fn points(&self) -> impl Iterator<Item = &(f64, f64)> {
        self.segments.iter().flatten()
    }
}

/// Most points one segment keeps; a day-long soak has 86,400 seconds.
const MAX_SEGMENT_POINTS: usize = 2000;

/// Thins a long segment to at most [`MAX_SEGMENT_POINTS`] by keeping each
/// bucket's lowest and highest point, so spikes survive (unlike averaging).
fn decimate(seg: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if seg.len() <= MAX_SEGMENT_POINTS {
        return seg;
    }
    let bucket = seg.len().div_ceil(MAX_SEGMENT_POINTS / 2);
    let mut out = Vec::with_capacity(MAX_SEGMENT_POINTS);
    for chunk in seg.chunks(bucket) {
        let by_y = |a: &&(f64, f64), b: &&(f64, f64)| a.1.total_cmp(&b.1);
        let (Some(lo), Some(hi)) = (chunk.iter().min_by(by_y), chunk.iter().max_by(by_y)) else {
            continue;
        };
        if lo.0 <= hi.0 {
            out.extend([*lo, *hi]);
        } else {
            out.extend([*hi, *lo]);
        }
    }
    out.dedup_by(|a, b| a == b);
    out
}

/// A labelled vertical line, e.g. a stage boundary.
#[derive(Debug, Clone)]
pub struct Marker {
    pub x: f64,
    pub label: String,
}

/// How x values are laid out and labelled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum XScale {
    /// Plain numbers with "nice" ticks.
    Linear,
    /// x is `-log10(1 - q)` for quantile q; ticks at 50 %, 90 %, 99 %, ...
    PercentileLog,
}

/// Everything needed to draw one XY chart.
#[derive(Debug, Clone)]
pub struct XyChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Label of the right-hand axis; `None` when no series uses it.
    pub y2_label: Option<String>,
    pub x_scale: XScale,
    pub series: Vec<Series>,
    pub markers: Vec<Marker>,
    /// Start the x axis at 0 even when data starts later.
    pub x_from_zero: bool,
}

impl XyChart {
    pub fn new(title: impl Into<String>, x_label: &str, y_label: &str) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            y2_label: None,
            x_scale: XScale::Linear,
            series: Vec::new(),
            markers: Vec::new(),
            x_from_zero: true,
        }
    }

    /// True when at least one series has a point to draw.
    pub fn has_data(&self) -> bool {
        self.series.iter().any(|s| !s.is_empty())
    }

    /// Renders the chart, or a "no data" panel when there is nothing to plot
    /// or plotters fails; never panics on odd data.
    pub fn to_svg(&self) -> String {
        if !self.has_data() {
            return no_data_svg(&self.title, "no data recorded for this chart");
        }
        match self.draw() {
            Ok(svg) => svg,
            Err(e) => no_data_svg(&self.title, &format!("chart could not be drawn: {e}")),
        }
    }

    fn draw(&self) -> Result<String, String> {
        let drawn: Vec<&Series> = self.series.iter().filter(|s| !s.is_empty()).collect();
        let left: Vec<&Series> = drawn
            .iter()
            .copied()
            .filter(|s| s.axis == Axis::Left)
            .collect();
        let right: Vec<&Series> = drawn
            .iter()
            .copied()
            .filter(|s| s.axis == Axis::Right)
            .collect();
        let has_right = !right.is_empty();

        let (xmin, xmax) = extent(drawn.iter().flat_map(|s| s.points().map(|p| p.0)))
            .ok_or("no finite x values")?;
        let (x_lo, x_hi, x_ticks) = match self.x_scale {
            XScale::Linear => {
                let lo = if self.x_from_zero {
                    xmin.min(0.0)
                } else {
                    xmin
                };
                nice_axis(lo, xmax.max(lo), true)
            }
            XScale::PercentileLog => percentile_axis(xmax),
        };
        let (y_lo, y_hi, y_ticks) = axis_for(&left);
        let (y2_lo, y2_hi, y2_ticks) = axis_for(&right);

        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| e.to_string())?;
            let root = title(&root, &self.title).map_err(|e| e.to_string())?;
            let legend_h = legend_height(&drawn);
            let (legend_area, plot_area) = root.split_vertically(legend_h);
            draw_legend(&legend_area, &drawn).map_err(|e| e.to_string())?;

            let x_axis = Ticked::new(x_lo, x_hi, x_ticks);
            let y_axis = Ticked::new(y_lo, y_hi, y_ticks);
            let y2_axis = Ticked::new(y2_lo, y2_hi, y2_ticks);
            let mut chart = ChartBuilder::on(&plot_area)
                .margin_left(8)
                .margin_right(if has_right { 8 } else { 36 })
                .margin_top(6)
                .margin_bottom(4)
                .x_label_area_size(46)
                .y_label_area_size(72)
                .right_y_label_area_size(if has_right { 72 } else { 0 })
                .build_cartesian_2d(x_axis, y_axis)
                .map_err(|e| e.to_string())?
                .set_secondary_coord(Ticked::new(x_lo, x_hi, Vec::new()), y2_axis);

            let x_fmt = |v: &f64| match self.x_scale {
                XScale::Linear => short_number(*v),
                XScale::PercentileLog => percentile_label(*v),
            };
            let y_fmt = |v: &f64| short_number(*v);
            chart
                .configure_mesh()
                .x_desc(self.x_label.as_str())
                .y_desc(self.y_label.as_str())
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&y_fmt)
                .label_style((FONT, TICK_SIZE))
                .axis_desc_style((FONT, AXIS_SIZE))
                .bold_line_style(RGBColor(225, 225, 225))
                .draw()
                .map_err(|e| e.to_string())?;
            if has_right {
                chart
                    .configure_secondary_axes()
                    .y_desc(self.y2_label.as_deref().unwrap_or(""))
                    .y_label_formatter(&y_fmt)
                    .label_style((FONT, TICK_SIZE))
                    .axis_desc_style((FONT, AXIS_SIZE))
                    .draw()
                    .map_err(|e| e.to_string())?;
            }

            for m in &self.markers {
                if m.x < x_lo || m.x > x_hi {
                    continue;
                }
                let grey = RGBColor(110, 110, 110);
                // At the left edge the y axis already is the boundary line.
                if m.x > x_lo {
                    chart
                        .draw_series(DashedLineSeries::new(
                            [(m.x, y_lo), (m.x, y_hi)],
                            4,
                            4,
                            grey.stroke_width(1),
                        ))
                        .map_err(|e| e.to_string())?;
                }
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!(" {}", m.label),
                        (m.x, y_hi),
                        (FONT, NOTE_SIZE).into_font().color(&grey),
                    )))
                    .map_err(|e| e.to_string())?;
            }

            for s in &left {
                for seg in &s.segments {
                    match s.stroke_for(seg) {
                        Stroke::Line(w) => chart
                            .draw_series(LineSeries::new(seg.clone(), s.color.stroke_width(w)))
                            .map(|_| ()),
                        Stroke::Dashed(w) => chart
                            .draw_series(DashedLineSeries::new(
                                seg.clone(),
                                8,
                                5,
                                s.color.stroke_width(w),
                            ))
                            .map(|_| ()),
                        Stroke::Points(r) => chart
                            .draw_series(
                                seg.iter()
                                    .map(|p| Circle::new(*p, r, s.color.mix(0.75).filled())),
                            )
                            .map(|_| ()),
                    }
                    .map_err(|e| e.to_string())?;
                }
            }
            for s in &right {
                for seg in &s.segments {
                    match s.stroke_for(seg) {
                        Stroke::Line(w) => chart
                            .draw_secondary_series(LineSeries::new(
                                seg.clone(),
                                s.color.stroke_width(w),
                            ))
                            .map(|_| ()),
                        Stroke::Dashed(w) => chart
                            .draw_secondary_series(DashedLineSeries::new(
                                seg.clone(),
                                8,
                                5,
                                s.color.stroke_width(w),
                            ))
                            .map(|_| ()),
                        Stroke::Points(r) => chart
                            .draw_secondary_series(
                                seg.iter()
                                    .map(|p| Circle::new(*p, r, s.color.mix(0.75).filled())),
                            )
                            .map(|_| ()),
                    }
                    .map_err(|e| e.to_string())?;
                }
            }
            root.present().map_err(|e| e.to_string())?;
        }
        Ok(svg)
    }
}

/// A linear f64 axis whose ticks are exactly the ones we computed, so
/// percentile and "nice" ticks share one coordinate type.
#[derive(Debug, Clone)]
struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ticked {
    fn new(lo: f64, hi: f64, ticks: Vec<f64>) -> Self {
        let hi = if hi > lo { hi } else { lo + 1.0 };
        Self { lo, hi, ticks }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let frac = (value - self.lo) / (self.hi - self.lo);
        let px = f64::from(limit.0) + frac * f64::from(limit.1 - limit.0);
        // Clamp so wild values cannot overflow the i32 pixel space.
        px.clamp(-1e6, 1e6).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Bold grid lines only: light lines would double the same ticks.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// A panel of the same size as a chart saying why there is nothing to show.
fn no_data_svg(title: &str, message: &str) -> String {
    let mut svg = String::new();
    let drawn: Result<(), String> = (|| {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT / 2)).into_drawing_area();
        root.fill(&RGBColor(248, 248, 248))
            .map_err(|e| e.to_string())?;
        let root = self::title(&root, title).map_err(|e| e.to_string())?;
        let (w, h) = root.dim_in_pixel();
        let style = (FONT, AXIS_SIZE)
            .into_font()
            .color(&RGBColor(90, 90, 90))
            .pos(text_anchor::Pos::new(
                text_anchor::HPos::Center,
                text_anchor::VPos::Center,
            ));
        root.draw_text(message, &style, (w as i32 / 2, h as i32 / 2))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())
    })();
    if drawn.is_err() {
        // Last resort: an empty, well-formed SVG so the page still renders.
        return format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="40" viewBox="0 0 {WIDTH} 40"></svg>"#
        );
    }
    svg
}

/// Draws the title left-aligned (visible without scrolling on narrow
/// screens) and returns the area below it.
fn title<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    text: &str,
) -> Result<DrawingArea<DB, plotters::coord::Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let (head, rest) = root.split_vertically(36);
    let style = (FONT, TITLE_SIZE)
        .into_font()
        .style(FontStyle::Bold)
        .into_text_style(&head)
        .pos(text_anchor::Pos::new(
            text_anchor::HPos::Left,
            text_anchor::VPos::Center,
        ));
    head.draw_text(text, &style, (16, 20))?;
    Ok(rest)
}

fn legend_height(series: &[&Series]) -> u32 {
    let rows = legend_layout(series)
        .last()
        .map_or(1, |(_, row, _)| row + 1);
    8 + 20 * rows as u32
}

/// (series index, row, x offset) of each legend entry, wrapping rows.
fn legend_layout(series: &[&Series]) -> Vec<(usize, usize, i32)> {
    let max_w = WIDTH as i32 - 40;
    let (mut row, mut x) = (0usize, 0i32);
    let mut out = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let w = 34 + (s.label.chars().count() as i32) * 7 + 18;
        if x > 0 && x + w > max_w {
            row += 1;
            x = 0;
        }
        out.push((i, row, x));
        x += w;
    }
    out
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    series: &[&Series],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let left = 16;
    for (i, row, x) in legend_layout(series) {
        let s = series[i];
        let y = 12 + 20 * row as i32;
        let x = left + x;
        match s.stroke {
            Stroke::Points(r) => area.draw(&Circle::new(
                (x + 12, y),
                r.max(3),
                s.color.mix(0.75).filled(),
            ))?,
            Stroke::Dashed(w) => {
                area.draw(&PathElement::new(
                    [(x, y), (x + 9, y)],
                    s.color.stroke_width(w.max(2)),
                ))?;
                area.draw(&PathElement::new(
                    [(x + 15, y), (x + 24, y)],
                    s.color.stroke_width(w.max(2)),
                ))?;
            }
            Stroke::Line(w) => area.draw(&PathElement::new(
                [(x, y), (x + 24, y)],
                s.color.stroke_width(w.max(2)),
            ))?,
        }
        let style =
            (FONT, LEGEND_SIZE)
                .into_font()
                .into_text_style(area)
                .pos(text_anchor::Pos::new(
                    text_anchor::HPos::Left,
                    text_anchor::VPos::Center,
                ));
        area.draw_text(&s.label, &style, (x + 30, y))?;
    }
    Ok(())
}

fn extent(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

fn axis_for(series: &[&Series]) -> (f64, f64, Vec<f64>) {
    match extent(series.iter().flat_map(|s| s.points().map(|p| p.1))) {
        Some((lo, hi)) => nice_axis(lo.min(0.0), hi, true),
        None => nice_axis(0.0, 1.0, true),
    }
}

/// A range covering `[lo, hi]` rounded out to "nice" steps, and its ticks.
/// `pad_top` rounds the top up to the next tick so lines do not touch the frame.
fn nice_axis(lo: f64, hi: f64, pad_top: bool) -> (f64, f64, Vec<f64>) {
    let (lo, mut hi) = (lo, hi);
    if hi - lo < f64::EPSILON * hi.abs().max(1.0) {
        hi = if hi == 0.0 { 1.0 } else { lo + hi.abs() * 0.1 };
    }
    let step = nice_step((hi - lo) / 6.0);
    let lo_n = (lo / step).floor() * step;
    let hi_n = if pad_top {
        (hi / step).ceil() * step
    } else {
        hi
    };
    let hi_n = if hi_n <= lo_n { lo_n + step } else { hi_n };
    let mut ticks = Vec::new();
    let mut k = 0;
    loop {
        let v = lo_n + step * k as f64;
        if v > hi_n + step * 1e-9 || k > 50 {
            break;
        }
        ticks.push(v);
        k += 1;
    }
    (lo_n, hi_n, ticks)
}

fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm < 1.5 {
        1.0
    } else if norm < 3.0 {
        2.0
    } else if norm < 7.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// x position of quantile `percent` (0–100) on a [`XScale::PercentileLog`] axis.
pub fn percentile_x(percent: f64) -> Option<f64> {
    let rest = 1.0 - percent / 100.0;
    if !(0.0..1.0).contains(&(percent / 100.0)) || rest <= 0.0 {
        return None;
    }
    Some(-rest.log10())
}

/// Axis from 0 (the minimum) to at least 99.99 %, ticks at 50, 90, 99, ...
fn percentile_axis(xmax: f64) -> (f64, f64, Vec<f64>) {
    // A little slack so float noise at exactly 99.999 % adds no empty decade.
    let nines = (xmax - 1e-6).ceil().clamp(4.0, 7.0);
    // No tick at 0: its label would collide with 50 %.
    let mut ticks = vec![2f64.log10()];
    ticks.extend((1..=nines as i32).map(f64::from));
    (0.0, nines, ticks)
}

fn percentile_label(x: f64) -> String {
    if x <= 0.0 {
        return "0%".into();
    }
    let pct = 100.0 * (1.0 - 10f64.powf(-x));
    let digits = (x.round() as usize).saturating_sub(2);
    format!("{pct:.digits$}%")
}

/// Compact axis/table number: `1.5k`, `2.3M`, `0.25`, `12`.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    let (scaled, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = if scaled == scaled.trunc() || scaled.abs() >= 100.0 {
        format!("{scaled:.0}")
    } else if scaled.abs() >= 10.0 {
        format!("{scaled:.1}")
    } else if scaled.abs() >= 1.0 {
        format!("{scaled:.2}")
    } else {
        format!("{scaled:.3}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_axis_covers_the_data() {
        let (lo, hi, ticks) = nice_axis(0.0, 937.0, true);
        assert_eq!(lo, 0.0);
        assert!(hi >= 937.0);
        assert!(ticks.len() >= 4 && ticks.len() <= 12, "{ticks:?}");
        let (lo, hi, _) = nice_axis(5.0, 5.0, true);
        assert!(hi > lo);
    }

    #[test]
    fn percentile_axis_labels() {
        assert_eq!(percentile_label(2f64.log10()), "50%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        assert_eq!(percentile_label(4.0), "99.99%");
        assert_eq!(percentile_x(100.0), None);
        assert_eq!(percentile_x(90.0).map(|x| (x * 1e9).round()), Some(1e9));
    }

    #[test]
    fn short_numbers() {
        assert_eq!(short_number(0.0), "0");
        assert_eq!(short_number(1500.0), "1500");
        assert_eq!(short_number(25_000.0), "25k");
        assert_eq!(short_number(2_500_000.0), "2.5M");
        assert_eq!(short_number(0.25), "0.25");
    }

    #[test]
    fn long_series_are_thinned_but_keep_their_spikes() {
        let points = (0..100_000).map(|i| {
            let y = if i == 54_321 { 1000.0 } else { (i % 7) as f64 };
            (f64::from(i), Some(y))
        });
        let s = Series::from_points("s", color(0), Stroke::Line(1), points);
        let seg = &s.segments[0];
        assert!(seg.len() <= MAX_SEGMENT_POINTS, "{}", seg.len());
        assert!(seg.iter().any(|p| p.1 == 1000.0), "spike lost");
        assert!(seg.windows(2).all(|w| w[0].0 <= w[1].0), "x order kept");
    }

    #[test]
    fn a_single_snapshot_still_draws_a_mark() {
        let mut c = XyChart::new("t", "x", "y");
        c.series.push(Series::from_points(
            "s",
            color(0),
            Stroke::Line(2),
            [(1.0, Some(5.0))],
        ));
        assert!(c.to_svg().contains("<circle"));
    }

    #[test]
    fn empty_and_non_finite_data_give_a_no_data_panel() {
        let mut c = XyChart::new("t", "x", "y");
        c.series.push(Series::from_points(
            "s",
            color(0),
            Stroke::Line(2),
            [(0.0, Some(f64::NAN)), (1.0, None)],
        ));
        let svg = c.to_svg();
        assert!(svg.contains("no data"), "{svg}");
    }
}
