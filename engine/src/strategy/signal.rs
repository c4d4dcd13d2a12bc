//! `signal`: a weighted ensemble of the instrument's features (the seed's "weighted model
//! voting"). When the vote passes a threshold it enters with size = risk budget / (k x ATR),
//! rounded down to the lot, then brackets the fill: a resting take-profit, and a stop-loss it
//! watches itself (an IOC exit when the mid crosses it).

use levibot_shm::records::{ExecutionReport, FEATURE_IS_PRICE, exec_type, side, time_in_force};

use super::maker::{StrategyParamsError, signed};
use super::model::SignalModel;
use super::{Grid, MarketView, OrderSink, Strategy};
use crate::book::BookState;

/// The features voted on, in this order in [`SignalParams::weights`].
pub const SIGNAL_INPUTS: usize = 4;
/// Names of the inputs (for config keys and logs).
pub const SIGNAL_INPUT_NAMES: [&str; SIGNAL_INPUTS] = [
    "top_imbalance",
    "trade_flow_imbalance",
    "microprice_premium",
    "mid_momentum",
];

/// The signal strategy's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SignalParams {
    /// Weight of each input: top imbalance and trade-flow imbalance (both in [-1, 1]), the
    /// microprice premium over the mid and the mid over its EWMA (both in ticks).
    pub weights: [f64; SIGNAL_INPUTS],
    /// |vote| above which it enters.
    pub entry_threshold: f64,
    /// Risk per trade, in price units x quantity units: size = budget / (k x ATR).
    pub risk_budget: f64,
    /// The k of the sizing rule.
    pub atr_multiple: f64,
    /// Take-profit distance from the entry, in ATRs.
    pub take_profit_atr: f64,
    /// Stop-loss distance from the entry, in ATRs.
    pub stop_loss_atr: f64,
    /// Largest entry, quantity units.
    pub qty_max: i64,
    /// A tree model that votes instead of the weights (`[instruments.signal] model`).
    pub model: Option<&'static SignalModel>,
    /// One price unit in the quote asset (`10^-quoteAssetPrecision`): the model's price
    /// features are in the asset's price, as datasets give them.
    pub price_unit: f64,
}

impl SignalParams {
    pub fn validate(&self) -> Result<(), StrategyParamsError> {
        let positive = |name: &'static str, value: f64| {
            (value.is_finite() && value > 0.0)
                .then_some(())
                .ok_or(StrategyParamsError {
                    name,
                    value: value.to_string(),
                    reason: "must be a positive number",
                })
        };
        for (w, name) in self.weights.iter().zip(SIGNAL_INPUT_NAMES) {
            if !w.is_finite() {
                return Err(StrategyParamsError {
                    name,
                    value: w.to_string(),
                    reason: "weight must be finite",
                });
            }
        }
        positive("entry_threshold", self.entry_threshold)?;
        positive("risk_budget", self.risk_budget)?;
        positive("atr_multiple", self.atr_multiple)?;
        positive("take_profit_atr", self.take_profit_atr)?;
        positive("stop_loss_atr", self.stop_loss_atr)?;
        positive("price_unit", self.price_unit)?;
        positive("qty_max", self.qty_max as f64)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    Flat,
    /// An IOC entry is out.
    Entering {
        client_order_id: u64,
        side: u8,
    },
    /// In a position, bracketed.
    InPosition,
    /// An IOC exit is out (the stop was hit).
    Exiting {
        client_order_id: u64,
    },
}

/// The signal strategy for one instrument.
#[derive(Debug)]
pub struct Signal {
    instrument_id: u32,
    params: SignalParams,
    phase: Phase,
    position: i64,
    /// ATR when the entry was sent: sets the bracket.
    entry_atr: f64,
    /// The instrument's grid when the entry was sent: the take-profit's price is put on it.
    entry_grid: Grid,
    /// The last entry was refused (risk or the venue): no new one until the vote has fallen
    /// back below the threshold, so that a refusal that holds (a notional minimum, a limit)
    /// is not asked again at every event.
    entry_refused: bool,
    stop_px: i64,
    take_profit_id: Option<u64>,
    /// The vote at the last market event (NaN until every input exists): the output the
    /// feature journal records.
    last_vote: f64,
}

impl Signal {
    pub fn new(instrument_id: u32, params: SignalParams) -> Result<Self, StrategyParamsError> {
        params.validate()?;
        Ok(Signal {
            instrument_id,
            params,
            phase: Phase::Flat,
            position: 0,
            entry_atr: 0.0,
            entry_grid: Grid {
                tick_units: 1,
                lot_units: 1,
            },
            entry_refused: false,
            stop_px: 0,
            take_profit_id: None,
            last_vote: f64::NAN,
        })
    }

    pub fn position(&self) -> i64 {
        self.position
    }

    /// The stop-loss price while in a position.
    pub fn stop_px(&self) -> Option<i64> {
        (self.phase == Phase::InPosition).then_some(self.stop_px)
    }

    /// The vote on the current features: the model's, or the weighted sum of the inputs
    /// (`None` until every input exists; a model takes missing features as XGBoost does).
    pub fn vote(&self, view: &MarketView<'_>) -> Option<f64> {
        let f = view.features;
        if let Some(model) = self.params.model {
            // As the snapshot journals them and the dataset gives them: prices in the asset's.
            let mut features = f.values();
            for (value, is_price) in features.iter_mut().zip(FEATURE_IS_PRICE) {
                if is_price {
                    *value *= self.params.price_unit;
                }
            }
            let vote = model.vote(&features);
            return vote.is_finite().then_some(vote);
        }
        let tick = view.grid.tick_units as f64;
        let mid = f.mid()?;
        let inputs = [
            f.top_imbalance()?,
            f.trade_flow_imbalance().unwrap_or(0.0),
            (f.microprice()? - mid) / tick,
            (mid - f.ewma_mid()?) / tick,
        ];
        Some(
            inputs
                .iter()
                .zip(self.params.weights)
                .map(|(x, w)| x * w)
                .sum(),
        )
    }
}

impl Strategy for Signal {
    type Params = SignalParams;

    fn name(&self) -> &str {
        "signal"
    }

    fn output(&self) -> f64 {
        self.last_vote
    }

    fn model_id(&self) -> u64 {
        self.params.model.map_or(0, |m| m.id)
    }

    fn on_market(&mut self, view: &MarketView<'_>, out: &mut OrderSink) {
        if view.instrument_id != self.instrument_id {
            return;
        }
        // A model's vote costs up to microseconds: only when it is used, to enter (flat) or
        // for the feature journal.
        let vote = if self.phase == Phase::Flat || view.output_wanted {
            self.vote(view)
        } else {
            None
        };
        self.last_vote = vote.unwrap_or(f64::NAN);
        if view.book.state() != BookState::Synced {
            return;
        }
        let (Some(bid), Some(ask)) = (view.book.best_bid(), view.book.best_ask()) else {
            return;
        };
        let p = self.params;
        match self.phase {
            Phase::Flat => {
                let (Some(vote), Some(atr)) = (vote, view.features.atr()) else {
                    return;
                };
                if vote.abs() < p.entry_threshold {
                    self.entry_refused = false;
                    return;
                }
                if atr <= 0.0 || self.entry_refused {
                    return;
                }
                let qty = view
                    .grid
                    .floor_qty((p.risk_budget / (p.atr_multiple * atr)) as i64)
                    .min(view.grid.floor_qty(p.qty_max));
                if qty <= 0 {
                    return;
                }
                // Take the touch: an IOC at the opposite best.
                let (order_side, px) = if vote > 0.0 {
                    (side::BUY, ask.px)
                } else {
                    (side::SELL, bid.px)
                };
                if let Some(id) =
                    out.limit(self.instrument_id, order_side, px, qty, time_in_force::IOC)
                {
                    self.entry_atr = atr;
                    self.entry_grid = view.grid;
                    self.phase = Phase::Entering {
                        client_order_id: id,
                        side: order_side,
                    };
                }
            }
            Phase::InPosition => {
                let stopped = if self.position > 0 {
                    bid.px <= self.stop_px
                } else {
                    ask.px >= self.stop_px
                };
                if !stopped {
                    return;
                }
                let (order_side, px) = if self.position > 0 {
                    (side::SELL, bid.px)
                } else {
                    (side::BUY, ask.px)
                };
                if let Some(tp) = self.take_profit_id.take() {
                    let tp_side = if self.position > 0 {
                        side::SELL
                    } else {
                        side::BUY
                    };
                    out.cancel(self.instrument_id, tp_side, tp);
                }
                if let Some(id) = out.limit(
                    self.instrument_id,
                    order_side,
                    px,
                    self.position.abs(),
                    time_in_force::IOC,
                ) {
                    self.phase = Phase::Exiting {
                        client_order_id: id,
                    };
                }
            }
            Phase::Entering { .. } | Phase::Exiting { .. } => {}
        }
    }

    fn on_execution(&mut self, report: &ExecutionReport, out: &mut OrderSink) {
        if report.instrument_id != self.instrument_id {
            return;
        }
        if report.exec_type == exec_type::TRADE {
            self.position += signed(report.side, report.last_qty);
        }
        let done = report.leaves_qty == 0
            && matches!(
                report.exec_type,
                exec_type::TRADE | exec_type::CANCELED | exec_type::EXPIRED | exec_type::REJECTED
            );
        match self.phase {
            Phase::Entering {
                client_order_id,
                side: entry_side,
            } if client_order_id == report.client_order_id && done => {
                if self.position == 0 {
                    self.phase = Phase::Flat; // nothing filled
                    self.entry_refused = report.exec_type == exec_type::REJECTED;
                    return;
                }
                // Bracket the fill: take-profit resting, stop-loss watched.
                let entry_px = if report.last_px > 0 {
                    report.last_px
                } else {
                    report.px
                };
                let tp_distance = (self.params.take_profit_atr * self.entry_atr) as i64;
                let sl_distance = (self.params.stop_loss_atr * self.entry_atr) as i64;
                // The take-profit on the tick grid, never nearer than its distance; the stop
                // is only watched, never sent at its price.
                let grid = self.entry_grid;
                let (tp_side, tp_px, stop_px) = if entry_side == side::BUY {
                    let tp = grid.ceil_px(entry_px + tp_distance);
                    (side::SELL, tp, entry_px - sl_distance)
                } else {
                    let tp = grid.floor_px(entry_px - tp_distance);
                    (side::BUY, tp, entry_px + sl_distance)
                };
                self.stop_px = stop_px;
                self.take_profit_id = out.limit(
                    self.instrument_id,
                    tp_side,
                    tp_px,
                    self.position.abs(),
                    time_in_force::GTC,
                );
                self.phase = Phase::InPosition;
            }
            Phase::InPosition if Some(report.client_order_id) == self.take_profit_id && done => {
                self.take_profit_id = None;
                if self.position == 0 {
                    self.phase = Phase::Flat;
                }
            }
            Phase::Exiting { client_order_id }
                if client_order_id == report.client_order_id && done =>
            {
                // Flat, or whatever the IOC left is exited on the next market event.
                self.phase = if self.position == 0 {
                    Phase::Flat
                } else {
                    Phase::InPosition
                };
            }
            _ => {}
        }
    }

    fn params(&self) -> SignalParams {
        self.params
    }

    fn set_params(&mut self, params: SignalParams) {
        self.params = params;
    }
}
