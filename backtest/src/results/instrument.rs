//! One instrument's books: position, cash, fees and PnL exact in integer units, counts, queue
//! position at fill, markouts, and the fills the report draws.
//!
//! Units: quantities in the instrument's quantity units, cash and turnover in notional units
//! (a price unit times a quantity unit), fees and net PnL in fee units (a notional unit over
//! `FEE_SCALE`), mids and marks doubled (`bid + ask`) to stay integral.

use hdrhistogram::Histogram;
use levibot_gateway::instrument::Instrument;
use levibot_shm::records::side;

use super::markout::Markouts;
use super::numbers::Unit;
use super::series::Thinned;
use super::summary::{InstrumentSummary, MarkoutSummary, OrderCounts, QueueAheadSummary};
use super::{FEE_SCALE, FEE_SCALE_DIGITS, FillEvent, RequestKind};
use crate::report::ReportFill;

#[derive(Clone, Debug)]
pub(super) struct InstrumentState {
    pub symbol: String,
    pub base_asset: String,
    pub quote_asset: String,
    pub price_unit: Unit,
    pub qty_unit: Unit,
    /// A price unit times a quantity unit (`None`: its mantissa overflows 128 bits, and amounts
    /// convert approximately).
    pub notional_unit: Option<Unit>,
    pub orders: OrderCounts,
    pub orders_filled: u64,
    pub fills: u64,
    pub fills_maker: u64,
    pub position: i128,
    /// Sells' notional minus buys'.
    cash: i128,
    pub fees_scaled: i128,
    bought: i128,
    sold: i128,
    maker_qty: i128,
    turnover: i128,
    /// The last mid, doubled.
    pub mid2: Option<i64>,
    /// The price positions are marked at, doubled: the last mid, or the last fill's price
    /// before any mid.
    mark2: Option<i64>,
    /// Net PnL, fee units (kept to report how much each event changed it).
    pub net_scaled: i128,
    queue_ahead: Histogram<u64>,
    queue_ahead_sum: i128,
    /// Least and greatest queue ahead (units), exact.
    queue_ahead_range: (i64, i64),
    pub markouts: Markouts,
    pub fills_drawn: Thinned<ReportFill>,
    /// The last fill (converted for drawing only at the end).
    last_fill: Option<FillEvent>,
}

impl InstrumentState {
    pub fn new(
        instrument: &Instrument,
        horizons_ns: &[u64],
        pending_max: usize,
        fills_drawn_max: usize,
    ) -> InstrumentState {
        let price_unit = Unit::of(instrument.price_scale);
        let qty_unit = Unit::of(instrument.qty_scale);
        InstrumentState {
            symbol: instrument.symbol.to_string(),
            base_asset: instrument.base_asset.clone(),
            quote_asset: instrument.quote_asset.clone(),
            price_unit,
            qty_unit,
            notional_unit: price_unit.times(qty_unit),
            orders: OrderCounts::default(),
            orders_filled: 0,
            fills: 0,
            fills_maker: 0,
            position: 0,
            cash: 0,
            fees_scaled: 0,
            bought: 0,
            sold: 0,
            maker_qty: 0,
            turnover: 0,
            mid2: None,
            mark2: None,
            net_scaled: 0,
            queue_ahead: Histogram::new(3).expect("3 significant digits is a valid histogram"),
            queue_ahead_sum: 0,
            queue_ahead_range: (i64::MAX, 0),
            markouts: Markouts::new(horizons_ns, pending_max),
            fills_drawn: Thinned::new(fills_drawn_max),
            last_fill: None,
        }
    }

    /// Gross PnL, doubled notional units: `2 x cash + position x 2 x mark`.
    fn gross2(&self) -> i128 {
        2 * self.cash + self.position * self.mark2.map_or(0, i128::from)
    }

    fn net(&self) -> i128 {
        self.gross2() * (FEE_SCALE / 2) - self.fees_scaled
    }

    /// Recomputes the net PnL; returns by how much it changed (fee units).
    fn renet(&mut self) -> i128 {
        let net = self.net();
        let delta = net - self.net_scaled;
        self.net_scaled = net;
        delta
    }

    pub fn on_order(&mut self, kind: RequestKind) {
        match kind {
            RequestKind::New => self.orders.new += 1,
            RequestKind::Cancel => self.orders.cancel += 1,
            RequestKind::Replace => self.orders.replace += 1,
        }
    }

    /// The mid became `bid_plus_ask / 2` at `t_ns`; returns the change of net PnL.
    pub fn on_mid(&mut self, t_ns: u64, bid_plus_ask: i64) -> i128 {
        if let Some(before) = t_ns.checked_sub(1) {
            self.markouts.resolve_through(before, self.mid2);
        }
        self.mid2 = Some(bid_plus_ask);
        self.mark2 = Some(bid_plus_ask);
        self.renet()
    }

    /// A fill of a known side; returns the change of net PnL.
    pub fn on_fill(&mut self, fill: &FillEvent) -> i128 {
        let buy = fill.side == side::BUY;
        debug_assert!(buy || fill.side == side::SELL);
        if let Some(before) = fill.t_ns.checked_sub(1) {
            self.markouts.resolve_through(before, self.mid2);
        }
        let qty = i128::from(fill.qty);
        let notional = i128::from(fill.px) * qty;
        if buy {
            self.position += qty;
            self.cash -= notional;
            self.bought += qty;
        } else {
            self.position -= qty;
            self.cash += notional;
            self.sold += qty;
        }
        self.turnover += notional;
        self.fees_scaled += fill.fee_scaled;
        self.fills += 1;
        if fill.order_first_fill {
            self.orders_filled += 1;
        }
        if fill.maker {
            self.fills_maker += 1;
            self.maker_qty += qty;
            let ahead = fill.queue_ahead.max(0);
            // The histogram grows to i64::MAX / 2; beyond is no queue a book holds.
            let _ = self
                .queue_ahead
                .record((ahead as u64).min(i64::MAX as u64 / 2));
            self.queue_ahead_sum += i128::from(ahead);
            let (least, greatest) = self.queue_ahead_range;
            self.queue_ahead_range = (least.min(ahead), greatest.max(ahead));
        }
        if self.mid2.is_none() {
            self.mark2 = Some(fill.px.saturating_mul(2));
        }
        self.markouts.push(fill.t_ns, fill.px, fill.qty, buy);
        let n = self.fills - 1;
        if self.fills_drawn.wants(n) {
            self.fills_drawn.push(n, self.drawn(fill));
        }
        self.last_fill = Some(*fill);
        self.renet()
    }

    /// A fill as the report draws it.
    fn drawn(&self, fill: &FillEvent) -> ReportFill {
        ReportFill {
            t_ns: fill.t_ns,
            px: self.price_unit.to_f64(i128::from(fill.px)),
            qty: self.qty_unit.to_f64(i128::from(fill.qty)),
            buy: fill.side == side::BUY,
            maker: fill.maker,
        }
    }

    /// The last fill and its number, for the drawn fills to end with.
    pub fn last_fill(&self) -> Option<(u64, ReportFill)> {
        self.last_fill.map(|f| (self.fills - 1, self.drawn(&f)))
    }

    /// Notional units as a quote amount.
    fn notional_f64(&self, units: i128) -> f64 {
        match self.notional_unit {
            Some(unit) => unit.to_f64(units),
            None => self.price_unit.to_f64(units) * self.qty_unit.to_f64(1),
        }
    }

    /// Fee units as a quote amount.
    fn fee_units_f64(&self, units: i128) -> f64 {
        match self.notional_unit {
            Some(unit) => unit.shifted(FEE_SCALE_DIGITS).to_f64(units),
            None => self.notional_f64(units) / FEE_SCALE as f64,
        }
    }

    pub fn mid_f64(&self) -> Option<f64> {
        // The mid is `mid2 / 2`: half a price unit is exact one decimal further.
        let half = Unit {
            mantissa: self.price_unit.mantissa * 5,
            exp: self.price_unit.exp + 1,
        };
        self.mid2.map(|m| half.to_f64(i128::from(m)))
    }

    pub fn position_f64(&self) -> f64 {
        self.qty_unit.to_f64(self.position)
    }

    /// Amounts in fee units (for the totals): turnover, fees, gross and net PnL.
    pub fn fee_unit_amounts(&self) -> [i128; 4] {
        [
            self.turnover * FEE_SCALE,
            self.fees_scaled,
            self.gross2() * (FEE_SCALE / 2),
            self.net_scaled,
        ]
    }

    /// The markout totals per horizon in fee units.
    pub fn markout_fee_units(&self) -> impl Iterator<Item = (u64, i128)> + '_ {
        self.markouts
            .sums
            .iter()
            .map(|s| (s.fills_marked, s.total_half_units * (FEE_SCALE / 2)))
    }

    pub fn summary(&self) -> InstrumentSummary {
        let placed = self.orders.new + self.orders.replace;
        let traded = self.bought + self.sold;
        let ahead = &self.queue_ahead;
        let maker = self.fills_maker;
        let (least, greatest) = self.queue_ahead_range;
        let ahead_at = |q: f64| {
            (maker > 0).then(|| {
                let units = (ahead.value_at_quantile(q) as i64).clamp(least, greatest);
                self.qty_unit.to_f64(i128::from(units))
            })
        };
        let markouts = self
            .markouts
            .horizons_ns()
            .iter()
            .zip(&self.markouts.sums)
            .map(|(&horizon_ns, s)| MarkoutSummary {
                horizon_ns,
                fills_marked: s.fills_marked,
                qty_marked_base: self.qty_unit.to_f64(s.qty_marked),
                mean_bps: s.mean_bps(),
                total_quote: self.fee_units_f64(s.total_half_units * (FEE_SCALE / 2)),
                fills_past_end: s.fills_past_end,
                fills_without_mid: s.fills_without_mid,
            })
            .collect();
        InstrumentSummary {
            symbol: self.symbol.clone(),
            base_asset: self.base_asset.clone(),
            quote_asset: self.quote_asset.clone(),
            orders: self.orders,
            orders_filled: self.orders_filled,
            fill_ratio: (placed > 0).then(|| self.orders_filled as f64 / placed as f64),
            fills: self.fills,
            fills_maker: self.fills_maker,
            position_base: self.position_f64(),
            bought_base: self.qty_unit.to_f64(self.bought),
            sold_base: self.qty_unit.to_f64(self.sold),
            traded_base: self.qty_unit.to_f64(traded),
            maker_share: (traded > 0).then(|| self.maker_qty as f64 / traded as f64),
            turnover_quote: self.notional_f64(self.turnover),
            fees_quote: self.fee_units_f64(self.fees_scaled),
            gross_pnl_quote: self.fee_units_f64(self.gross2() * (FEE_SCALE / 2)),
            net_pnl_quote: self.fee_units_f64(self.net_scaled),
            last_mid_px: self.mid_f64(),
            queue_ahead: QueueAheadSummary {
                maker_fills: maker,
                mean_base: (maker > 0)
                    .then(|| self.qty_unit.to_f64(self.queue_ahead_sum) / maker as f64),
                p50_base: ahead_at(0.50),
                p90_base: ahead_at(0.90),
            },
            markouts,
            markout_fills_dropped: self.markouts.dropped,
        }
    }
}
