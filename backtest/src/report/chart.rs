//! The charts, as inline SVG: curves over UTC time (lines, steps, areas to zero, fills drawn
//! as markers on the mid) and the latency histogram. Each is one `<svg>` with a `viewBox`
//! of a fixed size; the page's CSS scales it to the width available and colours it by class.

use super::axis::{Range, TimeRange, short_label};
use super::{Esc, put};
use crate::report::{Curve, ReportFill};

/// The viewBox: every chart is this wide, and this high.
const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 310.0;
/// The plot inside it; the margins hold the title and legend (top), value labels (left),
/// time labels, dates and the axis caption (bottom).
const LEFT: f64 = 88.0;
const RIGHT: f64 = 48.0;
const TOP: f64 = 52.0;
const BOTTOM: f64 = 62.0;
const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
const PLOT_H: f64 = HEIGHT - TOP - BOTTOM;

/// A coordinate as the SVG holds it: one decimal, never `NaN`, `inf` or `-0.0`.
struct Px(f64);

impl std::fmt::Display for Px {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = if self.0.is_finite() {
            self.0.clamp(-1e5, 1e5)
        } else {
            0.0
        };
        // Rounded first, then + 0.0 turns -0.0 (from -0.04, say) into 0.0.
        write!(f, "{:.1}", (v * 10.0).round() / 10.0 + 0.0)
    }
}

/// A number for a tooltip: the shortest form that reads back as the same f64 (stable), or
/// `?` for NaN and infinities.
struct Num(f64);

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_finite() {
            // + 0.0: -0.0 reads 0.
            write!(f, "{}", self.0 + 0.0)
        } else {
            f.write_str("?")
        }
    }
}

fn x_of(time: &TimeRange, t: u64) -> f64 {
    LEFT + PLOT_W * time.fraction(t).clamp(0.0, 1.0)
}

fn y_of(range: &Range, v: f64) -> f64 {
    TOP + PLOT_H * (1.0 - range.fraction(v).clamp(0.0, 1.0))
}

/// How a curve is drawn.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Straight lines between points (prices, equity).
    Line,
    /// Each value held until the next point (a position changes only on a fill).
    Steps,
}

/// One chart over time.
pub(crate) struct TimeChart<'a> {
    pub title: &'a str,
    pub curve: &'a Curve,
    /// The CSS class that colours it.
    pub class: &'static str,
    pub shape: Shape,
    /// Shaded down (or up) to zero, and zero always in the value range (drawdown, position).
    pub area: bool,
    /// Drawn as markers over the curve, with a legend (the mid).
    pub fills: Option<&'a [ReportFill]>,
}

/// Appends one chart: `time` is the range shared by every chart over time, so that they line
/// up on the page.
pub(crate) fn time_chart(out: &mut String, chart: &TimeChart<'_>, time: Option<TimeRange>) {
    let unit = chart.curve.unit.as_str();
    open(out, chart.title, unit, unit);
    let fills = chart.fills.unwrap_or(&[]);
    let fill_px = fills.iter().map(|fill| fill.px);
    let range = Range::of(
        chart.curve.points.iter().map(|&(_, v)| v).chain(fill_px),
        chart.area,
    );
    if let Some(range) = range {
        y_axis(out, &range, false);
    }
    if let Some(time) = time {
        time_axis(out, &time);
    }
    match (range, time) {
        (Some(range), Some(time)) => {
            draw_curve(out, chart, &range, &time);
            if let Some(fills) = chart.fills {
                draw_fills(out, fills, &range, &time);
            }
        }
        _ => no_data(out, "no data"),
    }
    if chart.fills.is_some() {
        fill_legend(out, chart.class, fills);
    }
    out.push_str("</svg>\n");
}

/// The `<svg>` element, its frame, its title (with the unit of its values, if any) and the
/// label of its value axis.
fn open(out: &mut String, title: &str, unit: &str, y_label: &str) {
    put!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" \
         aria-label=\"{t}\">\n<rect class=\"frame\" x=\"{l}\" y=\"{top}\" width=\"{pw}\" \
         height=\"{ph}\"/>\n<text class=\"title\" x=\"{l}\" y=\"22\">{t}",
        w = WIDTH,
        h = HEIGHT,
        t = Esc(title),
        l = LEFT,
        top = TOP,
        pw = PLOT_W,
        ph = PLOT_H,
    );
    if !unit.is_empty() {
        put!(out, " ({})", Esc(unit));
    }
    out.push_str("</text>\n");
    if !y_label.is_empty() {
        put!(
            out,
            "<text class=\"unit\" transform=\"rotate(-90)\" x=\"{}\" y=\"16\">{}</text>\n",
            Px(-(TOP + PLOT_H / 2.0)),
            Esc(y_label)
        );
    }
}

/// Value ticks on the left, with grid lines across the plot; `counts`: integers only.
fn y_axis(out: &mut String, range: &Range, counts: bool) {
    out.push_str("<g class=\"axis y\">\n");
    for (v, label) in range.ticks(5.0) {
        if counts && v.fract() != 0.0 {
            continue;
        }
        let y = Px(y_of(range, v));
        put!(
            out,
            "<line class=\"grid\" x1=\"{l}\" x2=\"{r}\" y1=\"{y}\" y2=\"{y}\"/>\
             <text x=\"{lx}\" y=\"{y}\" dy=\"0.32em\">{label}</text>\n",
            l = LEFT,
            r = LEFT + PLOT_W,
            lx = LEFT - 8.0,
            label = if counts { format!("{v:.0}") } else { label },
        );
    }
    out.push_str("</g>\n");
}

/// Time ticks along the bottom: `HH:MM:SS`, the date under the first tick of a new day, and
/// the caption with the date.
fn time_axis(out: &mut String, time: &TimeRange) {
    out.push_str("<g class=\"axis x\">\n");
    for (t, label, date) in time.ticks(8) {
        let x = Px(x_of(time, t));
        put!(
            out,
            "<line class=\"grid\" x1=\"{x}\" x2=\"{x}\" y1=\"{top}\" y2=\"{bottom}\"/>\
             <text x=\"{x}\" y=\"{ly}\">{label}</text>",
            top = TOP,
            bottom = TOP + PLOT_H,
            ly = TOP + PLOT_H + 16.0,
        );
        if let Some(date) = date {
            put!(
                out,
                "<text x=\"{x}\" y=\"{dy}\">{date}</text>",
                dy = TOP + PLOT_H + 30.0
            );
        }
        out.push('\n');
    }
    caption(out, &time.caption());
    out.push_str("</g>\n");
}

fn caption(out: &mut String, text: &str) {
    put!(
        out,
        "<text class=\"caption\" x=\"{}\" y=\"{}\">{}</text>\n",
        LEFT + PLOT_W / 2.0,
        HEIGHT - 8.0,
        Esc(text)
    );
}

fn no_data(out: &mut String, text: &str) {
    put!(
        out,
        "<text class=\"empty\" x=\"{}\" y=\"{}\">{}</text>\n",
        LEFT + PLOT_W / 2.0,
        TOP + PLOT_H / 2.0,
        text
    );
}

/// The curve as one path, broken where a value is NaN or infinite; a lone point between two
/// breaks (or a curve of one point) is a dot. With `area`, each run is also shaded to zero.
fn draw_curve(out: &mut String, chart: &TimeChart<'_>, range: &Range, time: &TimeRange) {
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for &(t, v) in &chart.curve.points {
        match runs.last_mut() {
            Some(run) if v.is_finite() => run.push((x_of(time, t), y_of(range, v))),
            Some(run) if !run.is_empty() => runs.push(Vec::new()),
            _ => {}
        }
    }
    runs.retain(|run| !run.is_empty());
    if runs.is_empty() {
        return;
    }
    let zero = Px(y_of(range, 0.0));
    let class = chart.class;
    if chart.area {
        put!(out, "<path class=\"{class} area\" d=\"");
        for run in &runs {
            let (x0, y0) = run[0];
            put!(out, "M{} {zero}V{}", Px(x0), Px(y0));
            trace(out, run, chart.shape);
            put!(out, "V{zero}H{}Z", Px(x0));
        }
        out.push_str("\"/>\n");
    }
    put!(out, "<path class=\"{class} line\" d=\"");
    for run in &runs {
        put!(out, "M{} {}", Px(run[0].0), Px(run[0].1));
        trace(out, run, chart.shape);
    }
    out.push_str("\"/>\n");
    for run in runs.iter().filter(|run| run.len() == 1) {
        put!(
            out,
            "<circle class=\"{class} dot\" cx=\"{}\" cy=\"{}\" r=\"2.5\"/>\n",
            Px(run[0].0),
            Px(run[0].1)
        );
    }
}

/// The path from a run's first point (already moved to) through the others.
fn trace(out: &mut String, run: &[(f64, f64)], shape: Shape) {
    for &(x, y) in &run[1..] {
        match shape {
            Shape::Line => put!(out, "L{} {}", Px(x), Px(y)),
            Shape::Steps => put!(out, "H{}V{}", Px(x), Px(y)),
        }
    }
}

/// The four kinds of fill, in the legend's order: (buy, maker, class, label).
const FILL_KINDS: [(bool, bool, &str, &str); 4] = [
    (true, false, "buy taker", "buy, taker"),
    (true, true, "buy maker", "buy, maker"),
    (false, false, "sell taker", "sell, taker"),
    (false, true, "sell maker", "sell, maker"),
];

/// A triangle centred on (x, y): pointing up for a buy, down for a sell.
fn marker(out: &mut String, x: f64, y: f64, buy: bool) {
    if buy {
        put!(out, "M{} {}l5 9h-10z", Px(x), Px(y - 6.0));
    } else {
        put!(out, "M{} {}l5 -9h-10z", Px(x), Px(y + 6.0));
    }
}

/// Fills as markers: buys green triangles up, sells red triangles down; a taker's filled, a
/// maker's hollow. Each has a tooltip (SVG's `<title>`: no script needed).
fn draw_fills(out: &mut String, fills: &[ReportFill], range: &Range, time: &TimeRange) {
    for (buy, maker, class, label) in FILL_KINDS {
        let mut kind = fills
            .iter()
            .filter(|fill| fill.buy == buy && fill.maker == maker && fill.px.is_finite())
            .peekable();
        if kind.peek().is_none() {
            continue;
        }
        put!(out, "<g class=\"fill {class}\">\n");
        for fill in kind {
            out.push_str("<path d=\"");
            marker(out, x_of(time, fill.t_ns), y_of(range, fill.px), buy);
            put!(
                out,
                "\"><title>{label} {} @ {}, {}</title></path>\n",
                Num(fill.qty),
                Num(fill.px),
                super::axis::clock(fill.t_ns, 1_000_000),
            );
        }
        out.push_str("</g>\n");
    }
}

/// The legend of the mid chart, in the top margin: the curve and each kind of fill with its
/// count.
fn fill_legend(out: &mut String, class: &str, fills: &[ReportFill]) {
    let y = 40.0;
    put!(
        out,
        "<g class=\"legend\">\n<line class=\"{class} line\" x1=\"{l}\" x2=\"{l2}\" y1=\"{y0}\" \
         y2=\"{y0}\"/><text x=\"{lt}\" y=\"{y}\">mid</text>\n",
        l = LEFT,
        l2 = LEFT + 18.0,
        y0 = y - 4.0,
        lt = LEFT + 24.0,
    );
    let mut x = LEFT + 70.0;
    for (buy, maker, kind, label) in FILL_KINDS {
        let count = fills
            .iter()
            .filter(|fill| fill.buy == buy && fill.maker == maker)
            .count();
        put!(out, "<path class=\"fill {kind}\" d=\"");
        marker(out, x + 6.0, y - 4.0, buy);
        put!(
            out,
            "\"/><text x=\"{}\" y=\"{y}\">{label} ({count})</text>\n",
            x + 16.0
        );
        x += 150.0;
    }
    if fills.is_empty() {
        put!(out, "<text x=\"{}\" y=\"{y}\">no fills</text>\n", x + 10.0);
    }
    out.push_str("</g>\n");
}

/// The order-latency histogram: one bar per bucket, labelled by its upper bound in µs
/// (1, 10, 100, 1k...), a count axis, each bar's count in its tooltip. NaN bounds are
/// skipped; an infinite one is the overflow bucket, `∞`.
pub(crate) fn latency_chart(out: &mut String, title: &str, buckets: &[(f64, u64)]) {
    open(out, title, "µs", "orders");
    let buckets: Vec<(f64, u64)> = buckets
        .iter()
        .copied()
        .filter(|&(bound, _)| bound.is_finite() || bound == f64::INFINITY)
        .collect();
    let max = buckets.iter().map(|&(_, n)| n).max().unwrap_or(0) as f64;
    if buckets.is_empty() {
        no_data(out, "no latency data");
        out.push_str("</svg>\n");
        return;
    }
    let range = Range {
        lo: 0.0,
        hi: if max > 0.0 { max * 1.05 } else { 1.0 },
    };
    y_axis(out, &range, true);
    let slot = PLOT_W / buckets.len() as f64;
    // At most about a dozen labels: every `every`-th bucket.
    let every = buckets.len().div_ceil(12);
    let zero = y_of(&range, 0.0);
    out.push_str("<g class=\"bars\">\n");
    for (i, &(bound, count)) in buckets.iter().enumerate() {
        let x = LEFT + slot * i as f64;
        let y = y_of(&range, count as f64);
        let label = short_label(bound);
        put!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>≤ {label} µs: {count}\
             </title></rect>\n",
            Px(x + slot * 0.1),
            Px(y),
            Px(slot * 0.8),
            Px(zero - y),
        );
    }
    out.push_str("</g>\n<g class=\"axis x\">\n");
    for (i, &(bound, _)) in buckets.iter().enumerate().step_by(every.max(1)) {
        put!(
            out,
            "<text x=\"{}\" y=\"{}\">{}</text>\n",
            Px(LEFT + slot * (i as f64 + 0.5)),
            TOP + PLOT_H + 16.0,
            short_label(bound)
        );
    }
    caption(out, "round trip, µs (upper bound of the bucket)");
    out.push_str("</g>\n</svg>\n");
}
