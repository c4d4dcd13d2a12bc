//! `--report DIR`: one self-contained HTML file (no network, no script or font from elsewhere)
//! with the run's equity, position and drawdown curves, its fills drawn on the mid, the order
//! latency histogram and the summary table.

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
