//! [`FeatureSnapshot`]: the features a strategy saw at one market event and what it made of
//! them, journaled at a configured cadence so that a dataset can be built from a live day (or a
//! backtest) without computing the features again.

use bytemuck::{Pod, Zeroable};

use super::Record;
use super::record_type;
use crate::layout::RecordType;

/// Bits of [`FeatureSnapshot::flags`]. Values are stable: they are journaled.
pub mod feature_flag {
    /// The instrument's order book was in sync with the venue.
    pub const BOOK_SYNCED: u16 = 1;
    /// Trading was paused (halted): the strategy was not asked, `output` is NaN.
    pub const PAUSED: u16 = 2;
}

/// The features of one instrument after one market event, and the strategy's output.
///
/// Prices are in the instrument's price units (as the records' integer prices, here `f64`);
/// imbalances are unitless in `[-1, 1]`. A feature that does not exist yet (no book top, fewer
/// ATR bars than the ATR averages, no trade yet) is NaN.
///
/// ```text
///   0 u64 recv_tsc (the event's receive stamp)   8 u64 ts_ns (its time, Unix ns)
///  16 f64 mid                 24 f64 microprice          32 f64 top_imbalance
///  40 f64 ewma_mid            48 f64 atr                 56 f64 trade_flow_imbalance
///  64 f64 momentum (mid - ewma_mid)                      72 f64 output (vote, prediction)
///  80 u64 model_id (0: none)  88 u32 instrument_id       92 u16 strategy_id
///  94 u16 flags (feature_flag)
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct FeatureSnapshot {
    pub recv_tsc: u64,
    pub ts_ns: u64,
    pub mid: f64,
    pub microprice: f64,
    pub top_imbalance: f64,
    pub ewma_mid: f64,
    pub atr: f64,
    pub trade_flow_imbalance: f64,
    /// The mid over its EWMA: `mid - ewma_mid`.
    pub momentum: f64,
    /// What the strategy made of the features: the `signal` strategy's vote (or its model's
    /// prediction); NaN for a strategy that has none.
    pub output: f64,
    /// The model in force (the first 8 bytes of its file's SHA-256, big-endian), 0 for none.
    pub model_id: u64,
    pub instrument_id: u32,
    pub strategy_id: u16,
    /// [`feature_flag`] bits.
    pub flags: u16,
}

/// The features a [`FeatureSnapshot`] carries, by name, in its order (the names `levictl`
/// and datasets use).
pub const FEATURE_NAMES: [&str; 7] = [
    "mid",
    "microprice",
    "top_imbalance",
    "ewma_mid",
    "atr",
    "trade_flow_imbalance",
    "momentum",
];

/// Whether each of [`FEATURE_NAMES`] is a price (in the instrument's price units; the others
/// are unitless).
pub const FEATURE_IS_PRICE: [bool; 7] = [true, true, false, true, true, false, true];

impl FeatureSnapshot {
    /// The features in [`FEATURE_NAMES`] order.
    pub fn features(&self) -> [f64; 7] {
        [
            self.mid,
            self.microprice,
            self.top_imbalance,
            self.ewma_mid,
            self.atr,
            self.trade_flow_imbalance,
            self.momentum,
        ]
    }
}

impl Record for FeatureSnapshot {
    const RECORD_TYPE: RecordType = record_type::FEATURE_SNAPSHOT;
}

const _: () = assert!(size_of::<FeatureSnapshot>() == 96);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_round_trips_and_names_its_features_in_order() {
        let s = FeatureSnapshot {
            mid: 1.0,
            microprice: 2.0,
            top_imbalance: 3.0,
            ewma_mid: 4.0,
            atr: 5.0,
            trade_flow_imbalance: 6.0,
            momentum: 7.0,
            output: f64::NAN,
            instrument_id: 9,
            ..FeatureSnapshot::default()
        };
        let back = FeatureSnapshot::from_bytes(s.to_bytes()).unwrap();
        assert_eq!(back.features(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        assert!(back.output.is_nan());
        assert_eq!(back.instrument_id, 9);
        assert_eq!(FEATURE_NAMES.len(), back.features().len());
    }
}
