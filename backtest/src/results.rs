//! What a backtest measures: the events the simulated venue and the engine report
//! ([`ResultEvent`]), folded as they come by [`Results`] into a [`Summary`] (the `--json`
//! object) and the series the HTML report draws ([`crate::report::ReportData`]). Memory is
//! bounded whatever the run's length: sums and histograms, curves sampled at a fixed interval
//! and thinned when they grow past a fixed number of points, fills kept for their markouts
//! only until their horizons pass (and no more than a fixed number at once), the fills drawn
//! thinned past a fixed number. The same events give the same output to the bit.
//!
//! Money is computed exactly in the instrument's integer units (`i128`): cash in notional
//! units (one price unit times one quantity unit of the quote asset), fees and PnL in fee
//! units (a notional unit over [`FEE_SCALE`]), sums over instruments in the finest of their
//! fee units. It is converted to the nearest `f64` of the quote asset only for output.
//!
//! Times are the venue's, ns since the Unix epoch, except [`LatencyEvent`]'s (the engine's
//! local clock), which do not move the results' clock.

mod instrument;
mod latency;
mod markout;
mod numbers;
mod output;
mod series;
mod summary;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use levibot_shm::records::order_kind;

pub use summary::{
    EquitySummary, InstrumentSummary, LatencyStats, LatencySummary, MarkoutSummary, OrderCounts,
    QueueAheadSummary, Summary, TotalMarkout, Totals,
};

/// A fill of one of our orders, as the simulated venue made it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FillEvent {
    /// Venue time of the fill, ns since the Unix epoch.
    pub t_ns: u64,
    pub instrument_id: u32,
    pub client_order_id: u64,
    /// `levibot_shm::records::side::BUY` or `SELL`.
    pub side: u8,
    /// Price in price units of the instrument (`price_scale`: quote asset per base asset).
    pub px: i64,
    /// Quantity filled in quantity units of the instrument (`qty_scale`: base asset), > 0.
    pub qty: i64,
    /// Fee charged for this fill in fee units: one fee unit is one notional unit (a price unit
    /// times a quantity unit, of the quote asset) over [`FEE_SCALE`], so a fee of
    /// `rate_ppm` millionths of the notional is exactly `px x qty x rate_ppm` (see
    /// [`fee_scaled`]). Negative: a rebate received.
    pub fee_scaled: i128,
    /// Maker (rested, then filled) or taker (crossed on arrival).
    pub maker: bool,
    /// Market quantity (units) ahead of the order in its price level's queue when it joined
    /// that queue (0 for a taker fill).
    pub queue_ahead: i64,
    /// This is the first fill of its order (the order had filled nothing before): counts the
    /// orders filled at least in part (the fill ratio) without remembering every order.
    pub order_first_fill: bool,
}

/// One order's round trip as the engine saw it: sent at local time, answered (ack or
/// reject) at local time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyEvent {
    pub kind: RequestKind,
    /// Local time the request left, and the first answer came back, ns.
    pub sent_ns: u64,
    pub answered_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    New,
    Cancel,
    /// Cancel an order and place another in its stead (a new order, with its own first fill).
    Replace,
}

impl RequestKind {
    /// The kind of an `OrderRequest::kind` (`order_kind`), if it is one of these.
    pub fn of(kind: u8) -> Option<RequestKind> {
        match kind {
            order_kind::NEW => Some(RequestKind::New),
            order_kind::CANCEL => Some(RequestKind::Cancel),
            order_kind::REPLACE => Some(RequestKind::Replace),
            _ => None,
        }
    }
}

/// What the venue and the engine report to the results, in venue time order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ResultEvent {
    /// A market message was replayed (venue time).
    Message {
        t_ns: u64,
    },
    /// The mid price of an instrument changed (price units, times 2 to stay integral:
    /// `bid + ask`), venue time. Sent when the best bid or ask changes while the book has
    /// both; the mid holds until the next one (no mid while a side is empty).
    Mid {
        t_ns: u64,
        instrument_id: u32,
        bid_plus_ask: i64,
    },
    /// An order request reached the venue (new, cancel or replace).
    Order {
        t_ns: u64,
        instrument_id: u32,
        kind: RequestKind,
    },
    Fill(FillEvent),
    /// The venue refused a request; `reason` is a short stable name (`post_only_would_cross`,
    /// `price_off_tick`, ...), or risk refused it (`risk.<check>`).
    Reject {
        t_ns: u64,
        reason: &'static str,
    },
    /// Not in venue time order (its times are the engine's local clock).
    Latency(LatencyEvent),
}

impl ResultEvent {
    /// Venue time of the event (`None` for [`ResultEvent::Latency`]).
    pub fn t_ns(&self) -> Option<u64> {
        match *self {
            ResultEvent::Message { t_ns }
            | ResultEvent::Mid { t_ns, .. }
            | ResultEvent::Order { t_ns, .. }
            | ResultEvent::Reject { t_ns, .. } => Some(t_ns),
            ResultEvent::Fill(f) => Some(f.t_ns),
            ResultEvent::Latency(_) => None,
        }
    }
}

/// Fee units per notional unit: a fee rate in millionths of the notional stays exact.
pub const FEE_SCALE: i128 = 1_000_000;
/// `FEE_SCALE = 10^FEE_SCALE_DIGITS`.
pub const FEE_SCALE_DIGITS: u32 = 6;
const _: () = assert!(10i128.pow(FEE_SCALE_DIGITS) == FEE_SCALE);

/// The fee of a fill of `qty` at `px` (the instrument's units) at `rate_ppm` millionths of its
/// notional (10 bps = 1,000; a rebate is negative), in fee units: `px x qty x rate_ppm`.
pub fn fee_scaled(px: i64, qty: i64, rate_ppm: i64) -> i128 {
    i128::from(px) * i128::from(qty) * i128::from(rate_ppm)
}

/// What the results keep and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultsConfig {
    /// Interval of the equity, position and mid samples, and of the Sharpe and Sortino ratios'
    /// returns (at least 1).
    pub sample_interval_ns: u64,
    /// Markout horizons (sorted and deduplicated when used).
    pub markout_horizons_ns: Vec<u64>,
    /// Most points of a curve (at least 3): past it, every other point is dropped.
    pub curve_points_max: usize,
    /// Most fills drawn per instrument (at least 2): past it, every other one is dropped.
    pub fills_drawn_max: usize,
    /// Most fills per instrument waiting for their markout horizons; fills beyond are left
    /// out of the markouts and counted (`markout_fills_dropped`).
    pub markout_pending_max: usize,
    /// The report's title (`None`: the instruments' symbols).
    pub title: Option<String>,
}

impl Default for ResultsConfig {
    fn default() -> Self {
        ResultsConfig {
            sample_interval_ns: 1_000_000_000,
            markout_horizons_ns: vec![100_000_000, 1_000_000_000, 10_000_000_000],
            curve_points_max: 2_000,
            fills_drawn_max: 5_000,
            markout_pending_max: 100_000,
            title: None,
        }
    }
}

/// The instruments' shared quote asset and the finest of their fee units, in which equity is
/// summed exactly.
#[derive(Clone, Debug)]
struct Common {
    quote_asset: String,
    /// `10^-exp` of the quote asset.
    unit: numbers::Unit,
    /// Per instrument: common units per fee unit.
    per_fee_unit: Vec<i128>,
}

impl Common {
    /// `Err(reason)` when the instruments have no common quote asset or unit.
    fn of(instruments: &[instrument::InstrumentState]) -> Result<Common, String> {
        let Some(first) = instruments.first() else {
            return Err("no instruments".to_string());
        };
        let quotes: std::collections::BTreeSet<&str> =
            instruments.iter().map(|i| i.quote_asset.as_str()).collect();
        if quotes.len() > 1 {
            let list: Vec<&str> = quotes.into_iter().collect();
            return Err(format!(
                "the instruments quote in different assets ({})",
                list.join(", ")
            ));
        }
        let too_fine = || "the instruments' units are too fine to add in 128 bits".to_string();
        let fee_units = instruments
            .iter()
            .map(|i| i.notional_unit.map(|u| u.shifted(FEE_SCALE_DIGITS)))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(too_fine)?;
        let exp = fee_units.iter().map(|u| u.exp).max().unwrap_or(0);
        let per_fee_unit = fee_units
            .iter()
            .map(|u| {
                10i128
                    .checked_pow(exp - u.exp)
                    .and_then(|p| p.checked_mul(u.mantissa))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(too_fine)?;
        Ok(Common {
            quote_asset: first.quote_asset.clone(),
            unit: numbers::Unit { mantissa: 1, exp },
            per_fee_unit,
        })
    }

    /// `amount` fee units of instrument `i` in common units.
    fn of_fee_units(&self, i: usize, amount: i128) -> Option<i128> {
        amount.checked_mul(self.per_fee_unit[i])
    }
}

/// Equity in common units, exact: its running value, drawdown, and the interval returns.
#[derive(Clone, Debug)]
struct Equity {
    common: Common,
    value: i128,
    drawdown: series::Drawdown,
    last_sample: i128,
    returns: series::ReturnStats,
    curve: series::GridCurve,
    drawdown_curve: series::GridCurve,
}

/// Folds a run's events into its [`Summary`] and [`ReportData`](crate::report::ReportData).
#[derive(Clone, Debug)]
pub struct Results {
    config: ResultsConfig,
    instruments: Vec<instrument::InstrumentState>,
    /// `(instrument id, index in instruments)`, by id.
    by_id: Vec<(u32, usize)>,
    /// `Err(reason)` when equity is not defined (no shared quote asset, or it overflowed).
    equity: Result<Equity, String>,
    start_ns: Option<u64>,
    now_ns: u64,
    /// `floor(start / interval) x interval`, once the first event came.
    origin_ns: Option<u64>,
    /// The next grid point to sample.
    next_k: u64,
    grid: series::Grid,
    mid_curves: Vec<series::GridCurve>,
    position_curves: Vec<series::GridCurve>,
    messages: u64,
    rejects: BTreeMap<&'static str, u64>,
    events_ignored: u64,
    events_out_of_order: u64,
    latency: latency::Latency,
}

impl Results {
    /// Results over `instruments` (events name them by [`Instrument::id`]; of two with the same
    /// id the first is kept). Takes a slice, a `Vec` or [`InstrumentTable::iter`].
    ///
    /// [`Instrument::id`]: levibot_gateway::instrument::Instrument::id
    /// [`InstrumentTable::iter`]: levibot_gateway::instrument::InstrumentTable::iter
    pub fn new<'a>(
        instruments: impl IntoIterator<Item = &'a levibot_gateway::instrument::Instrument>,
        mut config: ResultsConfig,
    ) -> Results {
        config.sample_interval_ns = config.sample_interval_ns.max(1);
        config.markout_horizons_ns.sort_unstable();
        config.markout_horizons_ns.dedup();
        config.curve_points_max = config.curve_points_max.max(3);
        config.fills_drawn_max = config.fills_drawn_max.max(2);
        let mut states = Vec::new();
        let mut by_id: Vec<(u32, usize)> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for instrument in instruments {
            if !seen.insert(instrument.id) {
                continue;
            }
            by_id.push((instrument.id, states.len()));
            states.push(instrument::InstrumentState::new(
                instrument,
                &config.markout_horizons_ns,
                config.markout_pending_max,
                config.fills_drawn_max,
            ));
        }
        by_id.sort_unstable();
        let equity = Common::of(&states).map(|common| Equity {
            common,
            value: 0,
            drawdown: series::Drawdown::new(0),
            last_sample: 0,
            returns: series::ReturnStats::default(),
            curve: series::GridCurve::default(),
            drawdown_curve: series::GridCurve::default(),
        });
        Results {
            grid: series::Grid::new(config.curve_points_max),
            mid_curves: vec![series::GridCurve::default(); states.len()],
            position_curves: vec![series::GridCurve::default(); states.len()],
            config,
            instruments: states,
            by_id,
            equity,
            start_ns: None,
            now_ns: 0,
            origin_ns: None,
            next_k: 0,
            messages: 0,
            rejects: BTreeMap::new(),
            events_ignored: 0,
            events_out_of_order: 0,
            latency: latency::Latency::new(),
        }
    }

    fn index(&self, instrument_id: u32) -> Option<usize> {
        self.by_id
            .binary_search_by_key(&instrument_id, |&(id, _)| id)
            .ok()
            .map(|at| self.by_id[at].1)
    }

    /// One event, in venue time order (an earlier one than the last is taken at the last's
    /// time, and counted).
    pub fn on_event(&mut self, event: &ResultEvent) {
        let Some(t) = event.t_ns() else {
            if let ResultEvent::Latency(l) = event {
                self.latency.record(l);
            }
            return;
        };
        let t = self.advance(t);
        match *event {
            ResultEvent::Message { .. } => self.messages += 1,
            ResultEvent::Mid {
                instrument_id,
                bid_plus_ask,
                ..
            } => match self.index(instrument_id) {
                Some(i) => {
                    let delta = self.instruments[i].on_mid(t, bid_plus_ask);
                    self.equity_moved(t, i, delta);
                }
                None => self.events_ignored += 1,
            },
            ResultEvent::Order {
                instrument_id,
                kind,
                ..
            } => match self.index(instrument_id) {
                Some(i) => self.instruments[i].on_order(kind),
                None => self.events_ignored += 1,
            },
            ResultEvent::Fill(fill) => match self.index(fill.instrument_id) {
                Some(i)
                    if fill.side == levibot_shm::records::side::BUY
                        || fill.side == levibot_shm::records::side::SELL =>
                {
                    let delta = self.instruments[i].on_fill(&FillEvent { t_ns: t, ..fill });
                    self.equity_moved(t, i, delta);
                }
                _ => self.events_ignored += 1,
            },
            ResultEvent::Reject { reason, .. } => *self.rejects.entry(reason).or_default() += 1,
            ResultEvent::Latency(_) => {}
        }
    }

    /// Moves the clock to `t_ns` (not back), sampling the grid points before it.
    fn advance(&mut self, t_ns: u64) -> u64 {
        if self.start_ns.is_none() {
            self.start_ns = Some(t_ns);
            self.now_ns = t_ns;
            let interval = self.config.sample_interval_ns;
            self.origin_ns = Some(t_ns / interval * interval);
            if let Ok(equity) = &mut self.equity {
                equity.drawdown = series::Drawdown::new(t_ns);
            }
        }
        if t_ns < self.now_ns {
            self.events_out_of_order += 1;
        }
        self.now_ns = self.now_ns.max(t_ns);
        let t = self.now_ns;
        let origin = self.origin_ns.unwrap_or(0);
        // Grid points strictly before t: every event at a point's time is in its sample.
        if t > origin {
            self.sample_through((t - 1 - origin) / self.config.sample_interval_ns);
        }
        t
    }

    /// Equity changed by `delta` fee units of instrument `i` at `t_ns`.
    fn equity_moved(&mut self, t_ns: u64, i: usize, delta: i128) {
        if delta == 0 {
            return;
        }
        let Ok(equity) = &mut self.equity else {
            return;
        };
        match equity
            .common
            .of_fee_units(i, delta)
            .and_then(|d| equity.value.checked_add(d))
        {
            Some(value) => {
                equity.value = value;
                equity.drawdown.update(t_ns, value);
            }
            None => {
                self.equity = Err("the equity overflowed 128 bits".to_string());
            }
        }
    }

    /// Samples the grid points `next_k..=last_k` (the state is the same at all of them).
    fn sample_through(&mut self, last_k: u64) {
        if last_k < self.next_k {
            return;
        }
        let first_k = self.next_k;
        self.next_k = last_k + 1;
        if let Ok(equity) = &mut self.equity {
            // Each point after point 0 closes an interval; the state is the same at all of
            // these points, so only the first of them can close one with a change.
            if first_k == 0 {
                equity.returns.push_zeros(last_k);
            } else {
                let change = equity.value - equity.last_sample;
                equity.returns.push(equity.common.unit.to_f64(change));
                equity.returns.push_zeros(last_k - first_k);
            }
            equity.last_sample = equity.value;
        }
        let origin = self.origin_ns.unwrap_or(0);
        let interval = self.config.sample_interval_ns;
        let mut k = self.grid.next_kept(first_k);
        while let Some(kept) = k.filter(|&k| k <= last_k) {
            self.push_sample(origin + kept * interval);
            if let Some(stride) = self.grid.pushed() {
                self.thin(stride);
            }
            k = kept.checked_add(1).and_then(|n| self.grid.next_kept(n));
        }
    }

    /// Every curve's point at `t_ns` (the current state).
    fn push_sample(&mut self, t_ns: u64) {
        if let Ok(equity) = &mut self.equity {
            let unit = equity.common.unit;
            equity.curve.points.push((t_ns, unit.to_f64(equity.value)));
            let fall = equity.value - equity.drawdown.peak;
            equity.drawdown_curve.points.push((t_ns, unit.to_f64(fall)));
        }
        for (i, state) in self.instruments.iter().enumerate() {
            if let Some(mid) = state.mid_f64() {
                self.mid_curves[i].points.push((t_ns, mid));
            }
            self.position_curves[i]
                .points
                .push((t_ns, state.position_f64()));
        }
    }

    fn thin(&mut self, stride: u64) {
        let origin = self.origin_ns.unwrap_or(0);
        let interval = self.config.sample_interval_ns;
        let curves = self.mid_curves.iter_mut().chain(&mut self.position_curves);
        let equity = self
            .equity
            .iter_mut()
            .flat_map(|e| [&mut e.curve, &mut e.drawdown_curve]);
        for curve in curves.chain(equity) {
            curve.thin(origin, interval, stride);
        }
    }
}

impl Results {
    /// The run ended at `end_t_ns` (venue time; taken as at least the last event's): samples
    /// the grid through it, marks the markouts due by then (the rest are past the end), and
    /// returns the summary and the report's data.
    pub fn finish(mut self, end_t_ns: u64) -> (Summary, crate::report::ReportData) {
        let end = match self.start_ns {
            Some(_) => end_t_ns.max(self.now_ns),
            None => end_t_ns,
        };
        let interval = self.config.sample_interval_ns;
        let origin = *self.origin_ns.get_or_insert(end / interval * interval);
        self.sample_through((end - origin) / interval);
        for state in &mut self.instruments {
            let mid2 = state.mid2;
            state.markouts.finish(end, mid2);
        }
        if let Ok(equity) = &mut self.equity {
            let unit = equity.common.unit;
            equity.curve.end_at(end, unit.to_f64(equity.value));
            let fall = equity.value - equity.drawdown.peak;
            equity.drawdown_curve.end_at(end, unit.to_f64(fall));
        }
        for (i, state) in self.instruments.iter().enumerate() {
            if let Some(mid) = state.mid_f64() {
                self.mid_curves[i].end_at(end, mid);
            }
            self.position_curves[i].end_at(end, state.position_f64());
        }
        output::build(self, end)
    }
}
