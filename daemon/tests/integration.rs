//! levibotd's tests: the config, recovery and checkpoints against the live engine and the
//! venue's own view, and the binary against venue-sim (signals, kill and resume, faults, a
//! hostile venue, the exporter beside it, the demo).
//!
//! One test binary for the whole crate (`autotests = false` in Cargo.toml): a 2-core machine
//! links one binary here instead of one per file. Each file below is a module; nextest runs
//! each test in its own process, as before.

#[allow(dead_code)] // each test module uses part of it
mod common;

mod archive_retention;
mod checkpoint;
mod config;
mod daemon;
mod daemon_faults;
mod exporter_live;
mod hostile_venue;
mod recovery;
mod research_live;
mod retrain;
