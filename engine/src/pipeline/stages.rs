//! The four stages as plain single-threaded values: each takes one input and hands its outputs
//! to a closure. The agents (`agents.rs`) join them with rings; tests and replays may call them
//! directly. Every stage journals what it produces, stamped with the TSC at its edge, and
//! counts into shm counters. Hot path: no allocation, no lock, no syscall, no formatting.
//!
//! One file per stage (`stages/feed.rs`, `strategy.rs`, `risk.rs`, `gateway.rs`); this file
//! keeps what they share: the [`StageClock`] they stamp with, the counter helpers, and the
//! REJECTED report an order that did not go out comes back as.

mod feature_journal;
mod feed;
mod gateway;
mod risk;
mod strategy;

pub use feature_journal::{
    FEATURE_INTERVAL_NS_MAX, FEATURE_INTERVAL_NS_MIN, FEATURES_PENDING_MAX, FeatureCadence,
};
pub use feed::FeedStage;
pub use gateway::GatewayStage;
pub use risk::RiskStage;
pub use strategy::{REQUESTS_PENDING_MAX, StageError, StrategyStage, TradedInstrument};

use levibot_shm::codes::counter_type;
use levibot_shm::counters::{Counter, CountersWriter};
use levibot_shm::records::{ExecutionReport, OrderRequest, exec_type};
use levibot_shm::{ShmError, TscCalibration};

fn gauge(counters: &CountersWriter, label: &str) -> Result<Counter, ShmError> {
    counters.allocate(label, counter_type::GAUGE)
}

fn counter(counters: &CountersWriter, label: &str) -> Result<Counter, ShmError> {
    counters.allocate(label, counter_type::EVENTS)
}

/// The clock every stage stamps with, and what turns its stamps into time.
#[derive(Clone, Debug)]
pub struct StageClock {
    pub clock: quanta::Clock,
    pub calibration: TscCalibration,
}

impl StageClock {
    /// The raw stamp (TSC where the machine has an invariant one).
    #[inline]
    pub fn now_tsc(&self) -> u64 {
        self.clock.raw()
    }

    /// Wall-clock ns of a stamp: monotonic within a run (one calibration).
    #[inline]
    pub fn unix_ns(&self, tsc: u64) -> u64 {
        self.calibration.to_unix_ns(tsc)
    }
}

/// The report that tells a strategy its order did not go out (`reject_reason`: why).
fn rejected_report(order: &OrderRequest, reject_reason: u32, recv_tsc: u64) -> ExecutionReport {
    ExecutionReport {
        recv_tsc,
        client_order_id: order.client_order_id,
        px: order.px,
        instrument_id: order.instrument_id,
        exec_type: exec_type::REJECTED,
        ord_status: b'8',
        side: order.side,
        reject_reason,
        ..ExecutionReport::default()
    }
}
