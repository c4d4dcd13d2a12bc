//! The backtest's integration tests, one binary: each file is a module.

mod cli;
mod determinism;
mod features;
mod feed_time;
mod hftbacktest;
mod parquet;
mod report;
mod research_loop;
mod retrain;
mod sweep;
mod versus_live;
mod window;
