//! The backtest's integration tests, one binary: each file is a module.

mod determinism;
mod report;
