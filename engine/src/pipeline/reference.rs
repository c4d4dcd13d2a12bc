//! The reference configuration: the `maker` strategy on one instrument with risk limits sized
//! for it, over the corpus recording or the synthetic stream. `levibot-bench tick-to-trade` and
//! the pipeline tests run it; the demo (issue 6) starts from it. Every figure is in the
//! instrument's own ticks and lots, so it fits any instrument.

use levibot_gateway::binance::Decoder;
use levibot_gateway::capture::Recording;
use levibot_gateway::instrument::{Instrument, InstrumentTable};

use super::{FeatureCadence, PipelineSpec, RingCapacities, TradedInstrument};
use crate::book::BookLimits;
use crate::features::FeatureConfig;
use crate::risk::limits::{RateLimit, quote};
use crate::risk::{RiskLimits, RiskLimitsError, TradingState};
use crate::strategy::Grid;
use crate::strategy::maker::{Maker, MakerParams, StrategyParamsError};
use levibot_gateway::source::OwnedSnapshot;

/// The symbol the reference configuration trades in the corpus (the one with the most data).
pub const CORPUS_SYMBOL: &str = "NKNUSDT";
/// Lots the maker quotes on each side.
pub const QUOTE_LOTS: i64 = 100;
/// The synthetic stream's starting mid, in ticks (0.35 USDT for NKNUSDT).
pub const SYNTHETIC_MID_TICKS: i64 = 3_500;

/// Why the reference configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("recording: {0}")]
    Recording(#[from] levibot_gateway::capture::RecordingError),
    #[error("the recording has no instrument {0}")]
    NoInstrument(String),
    #[error("the recording has no snapshot of {0}")]
    NoSnapshot(String),
    #[error("snapshot of {symbol}: {reason}")]
    Snapshot { symbol: String, reason: String },
    #[error(transparent)]
    Risk(#[from] RiskLimitsError),
    #[error("maker parameters: {0}")]
    Maker(#[from] StrategyParamsError),
}

/// The maker's parameters for `instrument`: quotes two ticks either side of the microprice,
/// [`QUOTE_LOTS`] lots, skewed one tick per quote held, requoted on every tick the target moves,
/// at most ten quotes' worth of inventory.
pub fn maker_params(instrument: &Instrument) -> MakerParams {
    let (tick, lot) = (instrument.tick_units, instrument.lot_units);
    MakerParams {
        half_spread_units: 2 * tick,
        quote_qty: QUOTE_LOTS * lot,
        skew_units_per_qty: tick as f64 / (QUOTE_LOTS * lot) as f64,
        requote_threshold_units: 0,
        inventory_max: 10 * QUOTE_LOTS * lot,
        post_only: false,
    }
}

/// Risk limits for the maker on `instrument` (its filters from `exchangeInfo`): a 5% collar,
/// orders up to ten quotes, positions up to twenty, 10,000 quote units per order, rates up to
/// 100,000 orders and messages a second, a 1,000 quote-unit loss limit (then reduce-only).
pub fn risk_limits(instrument: &Instrument) -> Result<RiskLimits, RiskLimitsError> {
    let mut limits = RiskLimits::for_instruments(&[instrument])?;
    let lot = instrument.lot_units;
    for each in limits.instruments_mut() {
        each.collar_bps = 500;
        each.order_qty_max_units = 10 * QUOTE_LOTS * lot;
        each.order_notional_max = quote(10_000);
        each.position_max_units = 20 * QUOTE_LOTS * lot;
        each.open_orders_max = 16;
    }
    limits.open_orders_max = 64;
    limits.gross_exposure_max = quote(100_000);
    limits.net_exposure_max = quote(100_000);
    limits.loss_max = quote(1_000);
    limits.loss_state = TradingState::ReduceOnly;
    limits.order_rate = RateLimit {
        count_max: 1_000,
        window_ns: 10_000_000,
    };
    limits.message_rate = RateLimit {
        count_max: 1_000,
        window_ns: 10_000_000,
    };
    limits.fill_rate = RateLimit {
        count_max: 100,
        window_ns: 1_000_000_000,
    };
    limits.duplicate_window_ns = 50_000;
    limits.validate()?;
    Ok(limits)
}

/// The spec of the maker on `instrument` (an entry of `instruments`), starting from `snapshot`.
pub fn maker_spec(
    instruments: InstrumentTable,
    instrument: &Instrument,
    snapshot: OwnedSnapshot,
) -> Result<PipelineSpec<Maker>, ReferenceError> {
    let strategy = Maker::new(instrument.id, maker_params(instrument))?;
    Ok(PipelineSpec {
        risk_limits: risk_limits(instrument)?,
        traded: vec![TradedInstrument {
            grid: Grid {
                tick_units: instrument.tick_units,
                lot_units: instrument.lot_units,
            },
            snapshot,
            strategy,
        }],
        instruments,
        sender_comp_id: "LEVIBOT".to_owned(),
        target_comp_id: "VENUE".to_owned(),
        rings: RingCapacities::default(),
        book_limits: BookLimits::DEFAULT,
        feature_config: FeatureConfig::DEFAULT,
        feature_journal: FeatureCadence::Off,
        strategy_id: 1,
        first_client_order_id: 1,
        first_msg_seq_num: 1,
    })
}

/// The recording's instruments (those it has snapshots of), its [`CORPUS_SYMBOL`] instrument and
/// that instrument's snapshot.
pub fn recording_parts(
    recording: &Recording,
) -> Result<(InstrumentTable, Instrument, OwnedSnapshot), ReferenceError> {
    let instruments = recording.snapshot_instruments()?;
    let instrument = instruments
        .find(CORPUS_SYMBOL.as_bytes())
        .cloned()
        .ok_or_else(|| ReferenceError::NoInstrument(CORPUS_SYMBOL.to_owned()))?;
    let line = recording
        .snapshot_lines()?
        .into_iter()
        .find(|s| s.symbol.eq_ignore_ascii_case(CORPUS_SYMBOL))
        .ok_or_else(|| ReferenceError::NoSnapshot(CORPUS_SYMBOL.to_owned()))?;
    let mut decoder = Decoder::new(instruments.clone());
    let snapshot = decoder
        .decode_snapshot(line.line.body, instrument.id)
        .map_err(|e| ReferenceError::Snapshot {
            symbol: CORPUS_SYMBOL.to_owned(),
            reason: e.to_string(),
        })?;
    let snapshot = OwnedSnapshot::from_snapshot(&snapshot);
    Ok((instruments, instrument, snapshot))
}
