//! LeviBot's engine, the hot path: the agent runtime (pinned threads, idle strategies, SPSC
//! rings), incremental features, strategies, pre-trade risk and the pipeline. The daemon around
//! it is `levibot-daemon`.
//!
//! - [`book`]: the L2 order book of one instrument (the `levibot-book` crate, re-exported), kept
//!   from a REST snapshot and depth diffs with Binance's sequencing procedure, with fixed
//!   capacities and no allocation after construction.
//! - [`features`]: incremental per-instrument features (microprice, top-of-book imbalance, EWMA
//!   of the mid, ATR over time bars, trade-flow imbalance), O(1) per event.
//! - [`recorder`]: journals market data: the venue's raw bytes and the decoded events.
//! - [`agent`], [`idle`], [`ring`], [`runner`]: the agent runtime: the `Agent` trait and fused
//!   composites, idle strategies, SPSC rings with the full-ring policy, pinned runner threads
//!   with duty-cycle counters, layout validation and the draining stop.
//! - [`strategy`]: the `Strategy` trait, the order sink, the parameter mailbox, and the
//!   `maker` and `signal` strategies.
//! - [`pipeline`]: the hot path assembled: feed, strategy, risk and gateway stages and agents,
//!   joined by rings in the fused or spread layout; the live feed and the venue seam.
//! - [`risk`]: pre-trade risk: every check an order passes before the gateway, in tens of ns.
//!
//! See ARCHITECTURE.md.

pub mod agent;
pub mod features;
pub mod idle;
pub mod pipeline;
pub mod recorder;
pub mod ring;
pub mod risk;
pub mod runner;
pub mod strategy;

/// The L2 order book is a crate of its own (`levibot-book`), so that `levictl capture check`
/// replays captures through the same book without linking the engine.
pub use levibot_book as book;
