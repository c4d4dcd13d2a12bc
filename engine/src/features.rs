//! Incremental features of one instrument, each updated in O(1) per event without allocating.
//!
//! Inputs are integer ticks (prices) and lots (quantities), as in the records; features are
//! `f64` in the same units: microprice, mid, EWMA of the mid and ATR are in ticks, imbalances are
//! unitless in `[-1, 1]`. Timestamps are event times in nanoseconds, non-decreasing per
//! instrument; a stamp earlier than the previous one counts as no time passing.
//!
//! - Microprice: the top of book's size-weighted mid,
//!   `(bid_px * ask_qty + ask_px * bid_qty) / (bid_qty + ask_qty)`.
//! - Top-of-book imbalance: `(bid_qty - ask_qty) / (bid_qty + ask_qty)`.
//! - EWMA of the mid with a half-life in time: the mid is a step function of time (each value
//!   holds until the next top), and the EWMA of that function is exact for irregular events:
//!   `ewma += alpha * (previous_mid - ewma)`, `alpha = 1 - exp(-dt * ln 2 / half_life)`. Tops
//!   that share a timestamp only replace the current mid, and any split of an interval gives
//!   the same value as one step.
//! - ATR: time bars of `atr_bar_ns` (aligned to multiples of it) from the mid or from trade
//!   prices; true range `max(high - low, |high - prev_close|, |low - prev_close|)` (the first bar:
//!   `high - low`); the first value is the mean of the first `atr_bars` true ranges, then
//!   Wilder's smoothing `atr = (atr * (K - 1) + tr) / K`. A bar closes when a price arrives in a
//!   later bar; intervals without prices make no bar (a feed outage does not read as a calm
//!   market).
//! - Trade-flow imbalance: time-decayed sums (same half-life form) of signed volume (aggressor
//!   buys positive, sells negative; Binance's "buyer is maker" means the seller aggressed) over
//!   total volume.

use std::f64::consts::LN_2;

use levibot_shm::records::{FEATURE_NAMES, Level, TRADE_FLAG_BUYER_IS_MAKER, Trade};

/// What the ATR's bars are built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BarSource {
    /// The mid of each book top.
    Mid,
    /// Each trade's price.
    Trade,
}

/// Parameters of [`Features`], checked by [`FeatureConfig::validate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeatureConfig {
    /// Half-life of the mid's EWMA, in nanoseconds of event time.
    pub mid_half_life_ns: u64,
    /// Half-life of the trade-flow sums, in nanoseconds of event time.
    pub trade_flow_half_life_ns: u64,
    /// Length of one ATR bar, in nanoseconds.
    pub atr_bar_ns: u64,
    /// Bars the ATR averages over (Wilder's `K`); no ATR until that many bars are complete.
    pub atr_bars: u32,
    /// What the bars are built from.
    pub atr_source: BarSource,
}

impl FeatureConfig {
    /// Mid EWMA half-life 1 s, trade-flow half-life 5 s, ATR over 14 one-minute bars of the mid.
    pub const DEFAULT: FeatureConfig = FeatureConfig {
        mid_half_life_ns: 1_000_000_000,
        trade_flow_half_life_ns: 5_000_000_000,
        atr_bar_ns: 60_000_000_000,
        atr_bars: 14,
        atr_source: BarSource::Mid,
    };

    /// Checks every duration and count is positive, naming the first that is not.
    pub fn validate(&self) -> Result<(), FeatureConfigError> {
        let parameters = [
            ("mid_half_life_ns", self.mid_half_life_ns),
            ("trade_flow_half_life_ns", self.trade_flow_half_life_ns),
            ("atr_bar_ns", self.atr_bar_ns),
            ("atr_bars", u64::from(self.atr_bars)),
        ];
        for (parameter, value) in parameters {
            if value == 0 {
                return Err(FeatureConfigError::NotPositive { parameter, value });
            }
        }
        Ok(())
    }
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig::DEFAULT
    }
}

/// A [`FeatureConfig`] parameter out of range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FeatureConfigError {
    /// The parameter must be greater than zero.
    #[error("feature parameter {parameter} must be positive, got {value}")]
    NotPositive { parameter: &'static str, value: u64 },
}

/// `ln 2 / half_life`: the decay rate per nanosecond.
fn decay_per_ns(half_life_ns: u64) -> f64 {
    LN_2 / half_life_ns as f64
}

/// EWMA of a step function of time: the last input holds until the next one.
#[derive(Clone, Copy, Debug)]
struct StepEwma {
    decay_per_ns: f64,
    value: f64,
    /// The input in force since `last_ts_ns`.
    current: f64,
    last_ts_ns: u64,
    seeded: bool,
}

impl StepEwma {
    fn new(half_life_ns: u64) -> Self {
        StepEwma {
            decay_per_ns: decay_per_ns(half_life_ns),
            value: 0.0,
            current: 0.0,
            last_ts_ns: 0,
            seeded: false,
        }
    }

    #[inline]
    fn update(&mut self, x: f64, ts_ns: u64) {
        if !self.seeded {
            (self.value, self.current, self.last_ts_ns, self.seeded) = (x, x, ts_ns, true);
            return;
        }
        let dt_ns = ts_ns.saturating_sub(self.last_ts_ns) as f64;
        // 1 - exp(-k dt), via exp_m1 to keep precision when dt is a tiny fraction of the half-life.
        let alpha = -(-dt_ns * self.decay_per_ns).exp_m1();
        self.value += alpha * (self.current - self.value);
        self.current = x;
        self.last_ts_ns = self.last_ts_ns.max(ts_ns);
    }

    fn value(&self) -> Option<f64> {
        self.seeded.then_some(self.value)
    }
}

/// One time bar in progress.
#[derive(Clone, Copy, Debug)]
struct Bar {
    /// `ts_ns / atr_bar_ns`.
    index: u64,
    high: f64,
    low: f64,
    close: f64,
}

/// Average true range over time bars, Wilder-smoothed.
#[derive(Clone, Copy, Debug)]
struct Atr {
    bar_ns: u64,
    bars_k: u32,
    bar: Option<Bar>,
    prev_close: Option<f64>,
    bars_completed: u64,
    /// Sum of the first `bars_k` true ranges.
    tr_sum: f64,
    atr: Option<f64>,
}

impl Atr {
    fn new(bar_ns: u64, bars_k: u32) -> Self {
        Atr {
            bar_ns,
            bars_k,
            bar: None,
            prev_close: None,
            bars_completed: 0,
            tr_sum: 0.0,
            atr: None,
        }
    }

    #[inline]
    fn on_price(&mut self, px: f64, ts_ns: u64) {
        let index = ts_ns / self.bar_ns;
        match &mut self.bar {
            // The bar in progress (an out-of-order stamp stays in it).
            Some(bar) if index <= bar.index => {
                bar.high = bar.high.max(px);
                bar.low = bar.low.min(px);
                bar.close = px;
                return;
            }
            Some(bar) => {
                let done = *bar;
                self.close_bar(done);
            }
            None => {}
        }
        self.bar = Some(Bar {
            index,
            high: px,
            low: px,
            close: px,
        });
    }

    fn close_bar(&mut self, bar: Bar) {
        let range = bar.high - bar.low;
        let tr = match self.prev_close {
            None => range,
            Some(pc) => range.max((bar.high - pc).abs()).max((bar.low - pc).abs()),
        };
        self.prev_close = Some(bar.close);
        self.bars_completed += 1;
        let k = f64::from(self.bars_k);
        match self.atr {
            Some(atr) => self.atr = Some((atr * (k - 1.0) + tr) / k),
            None => {
                self.tr_sum += tr;
                if self.bars_completed == u64::from(self.bars_k) {
                    self.atr = Some(self.tr_sum / k);
                }
            }
        }
    }
}

/// Time-decayed sums of signed and total trade volume.
#[derive(Clone, Copy, Debug)]
struct TradeFlow {
    decay_per_ns: f64,
    signed_lots: f64,
    total_lots: f64,
    last_ts_ns: u64,
}

impl TradeFlow {
    #[inline]
    fn on_trade(&mut self, qty_lots: i64, is_sell_aggressor: bool, ts_ns: u64) {
        let dt_ns = ts_ns.saturating_sub(self.last_ts_ns) as f64;
        let decay = (-dt_ns * self.decay_per_ns).exp();
        let qty = qty_lots as f64;
        let signed = if is_sell_aggressor { -qty } else { qty };
        self.signed_lots = self.signed_lots * decay + signed;
        self.total_lots = self.total_lots * decay + qty;
        self.last_ts_ns = self.last_ts_ns.max(ts_ns);
    }

    fn imbalance(&self) -> Option<f64> {
        (self.total_lots > 0.0).then(|| (self.signed_lots / self.total_lots).clamp(-1.0, 1.0))
    }
}

/// The features of one instrument (see the module doc). Feed it every book top and trade.
#[derive(Clone, Debug)]
pub struct Features {
    config: FeatureConfig,
    top: Option<(Level, Level)>,
    mid_ewma: StepEwma,
    atr: Atr,
    trade_flow: TradeFlow,
}

impl Features {
    /// Features with nothing seen yet; fails if `config` does not validate.
    pub fn new(config: FeatureConfig) -> Result<Features, FeatureConfigError> {
        config.validate()?;
        Ok(Features {
            config,
            top: None,
            mid_ewma: StepEwma::new(config.mid_half_life_ns),
            atr: Atr::new(config.atr_bar_ns, config.atr_bars),
            trade_flow: TradeFlow {
                decay_per_ns: decay_per_ns(config.trade_flow_half_life_ns),
                signed_lots: 0.0,
                total_lots: 0.0,
                last_ts_ns: 0,
            },
        })
    }

    /// The parameters.
    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// A new top of book (best bid and best ask, prices in ticks, quantities in lots) at event
    /// time `ts_ns`.
    #[inline]
    pub fn on_book_top(&mut self, bid: Level, ask: Level, ts_ns: u64) {
        self.top = Some((bid, ask));
        let mid = mid_ticks(bid, ask);
        self.mid_ewma.update(mid, ts_ns);
        if self.config.atr_source == BarSource::Mid {
            self.atr.on_price(mid, ts_ns);
        }
    }

    /// A trade of `qty_lots` at `px_ticks`; `is_sell_aggressor` when the taker sold.
    #[inline]
    pub fn on_trade(&mut self, px_ticks: i64, qty_lots: i64, is_sell_aggressor: bool, ts_ns: u64) {
        self.trade_flow.on_trade(qty_lots, is_sell_aggressor, ts_ns);
        if self.config.atr_source == BarSource::Trade {
            self.atr.on_price(px_ticks as f64, ts_ns);
        }
    }

    /// A trade record ([`TRADE_FLAG_BUYER_IS_MAKER`] set: the taker sold) at event time `ts_ns`.
    #[inline]
    pub fn on_trade_record(&mut self, trade: &Trade, ts_ns: u64) {
        let is_sell_aggressor = trade.flags & TRADE_FLAG_BUYER_IS_MAKER != 0;
        self.on_trade(trade.px, trade.qty, is_sell_aggressor, ts_ns);
    }

    /// The last top of book, `(bid, ask)`.
    pub fn top(&self) -> Option<(Level, Level)> {
        self.top
    }

    /// Mid of the last top, in ticks.
    pub fn mid(&self) -> Option<f64> {
        self.top.map(|(bid, ask)| mid_ticks(bid, ask))
    }

    /// Size-weighted mid of the last top, in ticks (`None` if both quantities are 0).
    pub fn microprice(&self) -> Option<f64> {
        let (bid, ask) = self.top?;
        let qty = bid.qty as f64 + ask.qty as f64;
        (qty > 0.0).then(|| (bid.px as f64 * ask.qty as f64 + ask.px as f64 * bid.qty as f64) / qty)
    }

    /// `(bid_qty - ask_qty) / (bid_qty + ask_qty)` of the last top, in `[-1, 1]`.
    pub fn top_imbalance(&self) -> Option<f64> {
        let (bid, ask) = self.top?;
        let qty = bid.qty as f64 + ask.qty as f64;
        (qty > 0.0).then(|| (bid.qty as f64 - ask.qty as f64) / qty)
    }

    /// EWMA of the mid as of the last top's timestamp, in ticks.
    pub fn ewma_mid(&self) -> Option<f64> {
        self.mid_ewma.value()
    }

    /// Average true range in ticks, once `atr_bars` bars are complete.
    pub fn atr(&self) -> Option<f64> {
        self.atr.atr
    }

    /// ATR bars completed so far.
    pub fn atr_bars_completed(&self) -> u64 {
        self.atr.bars_completed
    }

    /// Decayed signed over total trade volume, in `[-1, 1]`; `None` before any volume.
    pub fn trade_flow_imbalance(&self) -> Option<f64> {
        self.trade_flow.imbalance()
    }

    /// Every feature in [`FEATURE_NAMES`] order (what a feature snapshot journals and a
    /// model takes), prices in price units, NaN for one that does not exist yet.
    ///
    /// [`FEATURE_NAMES`]: levibot_shm::records::FEATURE_NAMES
    #[inline]
    pub fn values(&self) -> [f64; FEATURE_NAMES.len()] {
        let nan = f64::NAN;
        let (mid, ewma_mid) = (self.mid().unwrap_or(nan), self.ewma_mid().unwrap_or(nan));
        [
            mid,
            self.microprice().unwrap_or(nan),
            self.top_imbalance().unwrap_or(nan),
            ewma_mid,
            self.atr().unwrap_or(nan),
            self.trade_flow_imbalance().unwrap_or(nan),
            mid - ewma_mid,
        ]
    }
}

#[inline]
fn mid_ticks(bid: Level, ask: Level) -> f64 {
    (bid.px as f64 + ask.px as f64) * 0.5
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lv(px: i64, qty: i64) -> Level {
        Level { px, qty }
    }

    fn features(config: FeatureConfig) -> Features {
        Features::new(config).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn config_errors_name_the_parameter() {
        assert_eq!(FeatureConfig::DEFAULT.validate(), Ok(()));
        let cases = [
            (
                FeatureConfig {
                    mid_half_life_ns: 0,
                    ..FeatureConfig::DEFAULT
                },
                "mid_half_life_ns",
            ),
            (
                FeatureConfig {
                    trade_flow_half_life_ns: 0,
                    ..FeatureConfig::DEFAULT
                },
                "trade_flow_half_life_ns",
            ),
            (
                FeatureConfig {
                    atr_bar_ns: 0,
                    ..FeatureConfig::DEFAULT
                },
                "atr_bar_ns",
            ),
            (
                FeatureConfig {
                    atr_bars: 0,
                    ..FeatureConfig::DEFAULT
                },
                "atr_bars",
            ),
        ];
        for (config, name) in cases {
            let error = Features::new(config).unwrap_err();
            assert_eq!(
                error,
                FeatureConfigError::NotPositive {
                    parameter: name,
                    value: 0
                }
            );
            assert!(error.to_string().contains(name), "{error}");
        }
    }

    #[test]
    fn microprice_and_imbalance_of_a_known_top() {
        let mut f = features(FeatureConfig::DEFAULT);
        assert_eq!(
            (f.mid(), f.microprice(), f.top_imbalance()),
            (None, None, None)
        );
        // Bid 100 x 3, ask 102 x 1: (100 * 1 + 102 * 3) / 4 = 101.5, leaning to the ask since
        // the bid is heavier; imbalance (3 - 1) / 4 = 0.5.
        f.on_book_top(lv(100, 3), lv(102, 1), 0);
        assert_eq!(f.mid(), Some(101.0));
        assert_eq!(f.microprice(), Some(101.5));
        assert_eq!(f.top_imbalance(), Some(0.5));
        f.on_book_top(lv(100, 1), lv(102, 3), 1);
        assert_eq!(
            (f.microprice(), f.top_imbalance()),
            (Some(100.5), Some(-0.5))
        );
        assert_eq!(f.top(), Some((lv(100, 1), lv(102, 3))));
        f.on_book_top(lv(100, 0), lv(102, 0), 2);
        assert_eq!((f.microprice(), f.top_imbalance()), (None, None));
    }

    fn mid_config(half_life_ns: u64) -> FeatureConfig {
        FeatureConfig {
            mid_half_life_ns: half_life_ns,
            ..FeatureConfig::DEFAULT
        }
    }

    /// A top whose mid is `mid` ticks (an even spread of 2).
    fn top_at(f: &mut Features, mid: i64, ts_ns: u64) {
        f.on_book_top(lv(mid - 1, 1), lv(mid + 1, 1), ts_ns);
    }

    #[test]
    fn ewma_of_the_mid_halves_the_distance_in_one_half_life() {
        let mut f = features(mid_config(1_000));
        assert_eq!(f.ewma_mid(), None);
        top_at(&mut f, 100, 0);
        assert_eq!(f.ewma_mid(), Some(100.0));
        // The mid steps to 200 at t = 0 (same stamp: replaces the mid, no time has passed).
        top_at(&mut f, 200, 0);
        assert_eq!(f.ewma_mid(), Some(100.0));
        top_at(&mut f, 200, 1_000);
        assert!(close(f.ewma_mid().unwrap(), 150.0), "{:?}", f.ewma_mid());
        top_at(&mut f, 200, 2_000);
        assert!(close(f.ewma_mid().unwrap(), 175.0), "{:?}", f.ewma_mid());

        // Time, not event count: 1 or 1,000 events over the same half-life give the same value.
        let mut many = features(mid_config(1_000));
        top_at(&mut many, 100, 0);
        top_at(&mut many, 200, 0);
        for i in 1..=1_000 {
            top_at(&mut many, 200, i);
        }
        assert!(
            close(many.ewma_mid().unwrap(), 150.0),
            "{:?}",
            many.ewma_mid()
        );
    }

    #[test]
    fn ewma_of_the_mid_converges_to_a_constant_mid() {
        let mut f = features(mid_config(1_000_000));
        top_at(&mut f, 5_000, 0);
        top_at(&mut f, 7_000, 1);
        let mut ts = 1;
        let mut previous = f.ewma_mid().unwrap();
        // 40 half-lives in 400 irregular steps: monotone, then within 2^-40 of the mid.
        for i in 0..400u64 {
            ts += 50_000 + (i % 7) * 20_000;
            top_at(&mut f, 7_000, ts);
            let value = f.ewma_mid().unwrap();
            assert!(value >= previous && value <= 7_000.0, "step {i}: {value}");
            previous = value;
        }
        assert!((7_000.0 - previous).abs() < 1e-6, "{previous}");
        // A stamp that goes backwards counts as no time passing.
        top_at(&mut f, 0, ts - 10);
        top_at(&mut f, 0, ts - 10);
        assert!((7_000.0 - f.ewma_mid().unwrap()).abs() < 1e-6);
    }

    fn trade_bars(bar_ns: u64, bars: u32) -> FeatureConfig {
        FeatureConfig {
            atr_bar_ns: bar_ns,
            atr_bars: bars,
            atr_source: BarSource::Trade,
            ..FeatureConfig::DEFAULT
        }
    }

    #[test]
    fn atr_on_crafted_bars() {
        let mut f = features(trade_bars(10, 3));
        let trade = |f: &mut Features, px: i64, ts_ns: u64| f.on_trade(px, 1, false, ts_ns);
        // Bar 0: H 104, L 98, C 102; TR = 104 - 98 = 6 (no previous close).
        for (px, ts) in [(100, 0), (104, 3), (98, 5), (102, 9)] {
            trade(&mut f, px, ts);
        }
        // Bar 1: H 107, L 103, C 107; TR = max(4, |107 - 102|, |103 - 102|) = 5.
        trade(&mut f, 103, 10);
        assert_eq!(f.atr_bars_completed(), 1);
        trade(&mut f, 107, 19);
        // Bar 2: one trade at 101; TR = max(0, |101 - 107|, |101 - 107|) = 6.
        trade(&mut f, 101, 25);
        assert_eq!((f.atr_bars_completed(), f.atr()), (2, None));
        // Bar 3 opens: the first ATR is the mean of 6, 5, 6.
        trade(&mut f, 104, 31);
        assert_eq!(f.atr_bars_completed(), 3);
        assert!(close(f.atr().unwrap(), 17.0 / 3.0), "{:?}", f.atr());
        trade(&mut f, 99, 38);
        // Bar 4 has no trade (no bar); bar 5 closes bar 3: H 104, L 99, C 99 after C 101:
        // TR = max(5, 3, 2) = 5; Wilder: (17/3 * 2 + 5) / 3 = 49/9.
        trade(&mut f, 99, 50);
        assert_eq!(f.atr_bars_completed(), 4);
        assert!(close(f.atr().unwrap(), 49.0 / 9.0), "{:?}", f.atr());
        // Book tops do not feed trade bars.
        f.on_book_top(lv(1, 1), lv(1_000, 1), 70);
        assert_eq!(f.atr_bars_completed(), 4);
    }

    #[test]
    fn atr_from_the_mid() {
        let config = FeatureConfig {
            atr_bar_ns: 100,
            atr_bars: 2,
            atr_source: BarSource::Mid,
            ..FeatureConfig::DEFAULT
        };
        let mut f = features(config);
        // Bar 0: mids 10, 12 -> TR 2. Bar 1: mids 11, 20 -> TR max(9, |20 - 12|, |11 - 12|) = 9.
        top_at(&mut f, 10, 0);
        top_at(&mut f, 12, 50);
        top_at(&mut f, 11, 100);
        top_at(&mut f, 20, 150);
        f.on_trade(1_000, 5, true, 160);
        assert_eq!(f.atr(), None);
        top_at(&mut f, 20, 200);
        assert_eq!(f.atr(), Some(5.5));
    }

    #[test]
    fn trade_flow_imbalance_decays_in_time() {
        let config = FeatureConfig {
            trade_flow_half_life_ns: 1_000,
            ..FeatureConfig::DEFAULT
        };
        let mut f = features(config);
        assert_eq!(f.trade_flow_imbalance(), None);
        f.on_trade(100, 3, false, 0);
        assert_eq!(f.trade_flow_imbalance(), Some(1.0));
        // Buyer is maker: the aggressor sold.
        let sell = Trade {
            px: 100,
            qty: 1,
            flags: TRADE_FLAG_BUYER_IS_MAKER,
            ..Trade::default()
        };
        f.on_trade_record(&sell, 0);
        assert_eq!(f.trade_flow_imbalance(), Some(0.5));
        // One half-life later the sums are halved: (2 / 2 - 2) / (4 / 2 + 2) = -0.25.
        f.on_trade(100, 2, true, 1_000);
        assert!(close(f.trade_flow_imbalance().unwrap(), -0.25));
        // Long after, only recent flow counts.
        f.on_trade(100, 1, false, 100_000);
        assert!(close(f.trade_flow_imbalance().unwrap(), 1.0));
    }
}
