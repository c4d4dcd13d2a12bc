//! `--report DIR`: one self-contained HTML file (no network, no script or font from elsewhere)
//! with the run's equity, position and drawdown curves, its fills drawn on the mid, the order
//! latency histogram and the summary table.
//!
//! The page is HTML5 with inline CSS and inline SVG drawn here (`chart`, on the axes of
//! `axis`): it opens offline, prints, and needs no script (tooltips are SVG `<title>`s).
//! It is deterministic: the same [`ReportData`] gives the same bytes (no generation time,
//! floats formatted with fixed decimals or as their shortest round-trip form), which the
//! backtest's golden test relies on. Every string from the data is escaped.

mod axis;
mod chart;

use std::fmt;
use std::path::{Path, PathBuf};

use axis::TimeRange;
use chart::{Shape, TimeChart};

/// `write!` to a `String`, which cannot fail.
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = write!($out, $($arg)*);
    }};
}
pub(crate) use put;

/// A curve: points `(t_ns, value)` in time order.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Curve {
    pub name: String,
    /// What the values are in (`USDT`, `NKN`, ...).
    pub unit: String,
    pub points: Vec<(u64, f64)>,
}

/// A fill as the report draws it on the mid.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ReportFill {
    pub t_ns: u64,
    pub px: f64,
    pub qty: f64,
    pub buy: bool,
    pub maker: bool,
}

/// One instrument's part of the report.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct InstrumentReport {
    pub symbol: String,
    pub mid: Curve,
    pub fills: Vec<ReportFill>,
    pub position: Curve,
}

/// Everything the report shows.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ReportData {
    pub title: String,
    /// `(label, value)` rows of the summary table, in order.
    pub summary: Vec<(String, String)>,
    pub equity: Curve,
    pub drawdown: Curve,
    pub instruments: Vec<InstrumentReport>,
    /// Order round trips: `(upper bound of the bucket in µs, count)`, ascending.
    pub latency_us: Vec<(f64, u64)>,
}

/// The whole page.
pub fn render_html(data: &ReportData) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = if data.title.is_empty() {
        "Backtest report"
    } else {
        data.title.as_str()
    };
    put!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{t}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n<h1>{t}</h1>\n",
        t = Esc(title)
    );
    let span = time_span(data);
    if let Some((first, last)) = span {
        put!(
            out,
            "<p class=\"span\">{} {} to {} {} UTC</p>\n",
            axis::date(first),
            axis::clock(first, axis::precision(first)),
            axis::date(last),
            axis::clock(last, axis::precision(last)),
        );
    }
    let time = span.and_then(|(first, last)| TimeRange::of([first, last]));

    out.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n");
    summary_table(&mut out, &data.summary);
    out.push_str("</section>\n");

    out.push_str("<section id=\"account\">\n<h2>Equity and drawdown</h2>\n");
    let equity = TimeChart {
        title: or(&data.equity.name, "Equity"),
        curve: &data.equity,
        class: "equity",
        shape: Shape::Line,
        area: false,
        fills: None,
    };
    chart::time_chart(&mut out, &equity, time);
    let drawdown = TimeChart {
        title: or(&data.drawdown.name, "Drawdown"),
        curve: &data.drawdown,
        class: "drawdown",
        shape: Shape::Line,
        area: true,
        fills: None,
    };
    chart::time_chart(&mut out, &drawdown, time);
    out.push_str("</section>\n");

    for instrument in &data.instruments {
        let symbol = instrument.symbol.as_str();
        put!(
            out,
            "<section class=\"instrument\">\n<h2>{}</h2>\n",
            Esc(symbol)
        );
        let mid_title = format!("{symbol}: {}", or(&instrument.mid.name, "mid"));
        let mid = TimeChart {
            title: &mid_title,
            curve: &instrument.mid,
            class: "mid",
            shape: Shape::Line,
            area: false,
            fills: Some(&instrument.fills),
        };
        chart::time_chart(&mut out, &mid, time);
        let position_title = format!("{symbol}: {}", or(&instrument.position.name, "position"));
        let position = TimeChart {
            title: &position_title,
            curve: &instrument.position,
            class: "position",
            shape: Shape::Steps,
            area: true,
            fills: None,
        };
        chart::time_chart(&mut out, &position, time);
        out.push_str("</section>\n");
    }

    out.push_str("<section id=\"latency\">\n<h2>Order latency</h2>\n");
    chart::latency_chart(&mut out, "Order round trip", &data.latency_us);
    out.push_str("</section>\n</main>\n</body>\n</html>\n");
    out
}

/// Creates `dir` (and its parents) and writes `dir/report.html`; returns its path.
pub fn write_report(dir: &Path, data: &ReportData) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("report.html");
    std::fs::write(&path, render_html(data))?;
    Ok(path)
}

fn or<'a>(name: &'a str, default: &'a str) -> &'a str {
    if name.is_empty() { default } else { name }
}

/// The first and last times of anything drawn over time (points with a finite value, fills
/// with a finite price), so that every time chart shares one axis.
fn time_span(data: &ReportData) -> Option<(u64, u64)> {
    let mut span: Option<(u64, u64)> = None;
    let mut see = |t: u64| span = Some(span.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
    let mut curve = |curve: &Curve| {
        let points = curve.points.iter().filter(|(_, v)| v.is_finite());
        points.for_each(|&(t, _)| see(t));
    };
    curve(&data.equity);
    curve(&data.drawdown);
    for instrument in &data.instruments {
        curve(&instrument.mid);
        curve(&instrument.position);
    }
    for instrument in &data.instruments {
        let fills = instrument.fills.iter().filter(|fill| fill.px.is_finite());
        fills.for_each(|fill| see(fill.t_ns));
    }
    span
}

fn summary_table(out: &mut String, rows: &[(String, String)]) {
    if rows.is_empty() {
        out.push_str("<p class=\"empty\">No summary.</p>\n");
        return;
    }
    out.push_str("<table class=\"summary\">\n<tbody>\n");
    for (label, value) in rows {
        put!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>\n",
            Esc(label),
            Esc(value)
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

/// Text escaped for HTML, in content and in quoted attributes alike.
pub(crate) struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

/// The page's style: a white, readable page; charts scale to the width available (up to
/// their 1000 px) and are coloured by class; nothing splits a chart across printed pages.
const CSS: &str = "
body{margin:0;background:#fff;color:#1b1f24;\
font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',Arial,sans-serif}
main{max-width:1000px;margin:0 auto;padding:24px 16px 48px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:28px 0 8px;padding-bottom:4px;border-bottom:1px solid #d0d7de}
p.span{margin:0;color:#57606a}
p.empty{color:#8c959f}
table.summary{border-collapse:collapse;font-variant-numeric:tabular-nums}
table.summary th,table.summary td{padding:3px 0;border-bottom:1px solid #eaeef2;vertical-align:top}
table.summary th{padding-right:32px;text-align:left;font-weight:600;color:#424a53}
table.summary td{text-align:right}
svg.chart{display:block;width:100%;height:auto;max-width:1000px;margin:4px 0 12px;\
font-family:inherit;font-size:12px}
svg text{fill:#424a53}
svg .title{font-size:15px;font-weight:600;fill:#1b1f24}
.frame{fill:#fff;stroke:#d0d7de}
.grid{stroke:#eaeef2}
.axis.y text{text-anchor:end}
.axis.x text,.unit,.caption{text-anchor:middle}
svg .empty{text-anchor:middle;font-size:16px;fill:#8c959f}
.equity,.mid{stroke:#1f77b4;fill:#1f77b4}
.drawdown,.sell{stroke:#d62728;fill:#d62728}
.position{stroke:#9467bd;fill:#9467bd}
.buy{stroke:#2ca02c;fill:#2ca02c}
.maker{fill:#fff}
.line{fill:none;stroke-width:1.5;stroke-linejoin:round}
.area{stroke:none;fill-opacity:.15}
.dot{stroke:none}
.fill{stroke-width:1.3}
.bars rect{fill:#1f77b4}
.bars rect:hover,.fill path:hover{opacity:.6}
@media print{main{max-width:none;padding:0}h2{break-after:avoid}svg.chart{break-inside:avoid}}
";
