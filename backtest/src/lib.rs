//! `levibot-backtest`: what a strategy, with these parameters and these risk limits, would
//! have done on this data. The live engine's own stages (the decoder, books, features,
//! strategies, risk checks and order encoder of `levibotd`, from the same TOML) run
//! single-threaded on a virtual clock against a simulated venue that replays recorded market
//! data at the venue's time, with latency and queue-position models.
//!
//! - [`input`]: recorded market data, streamed from disk (captures, Tardis CSV).
//! - [`results`]: what the run measures, folded into the summary and the report's series.
//! - [`report`]: the self-contained HTML report.
//! - [`sweep`]: parameter sweeps, one backtest per point of a grid, their summaries in one table.
//! - [`export`]: the input as hftbacktest's event array, for the cross-check against it.
//! - [`window`]: the part of the input a run evaluates (`--trade-from`, `--until`).
//! - [`parquet`]: `--parquet`, a run's journal and summary (a sweep's table) as Parquet.

pub mod clock;
pub mod compare;
pub mod exchange;
pub mod export;
pub mod input;
pub mod latency;
pub mod parquet;
pub mod report;
pub mod results;
pub mod run;
pub mod session;
pub mod sweep;
pub mod venue;
pub mod window;
