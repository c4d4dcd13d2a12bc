//! levictl's tests: the CLI and its help, tail, stat and export read back by DuckDB (the
//! Parquet export by pyarrow too), the control commands, exchangeInfo from venue-sim, capture
//! check against an independent book, and our WebSocket client against Python websockets.
//!
//! One test binary for the whole crate (`autotests = false` in Cargo.toml): a 2-core machine
//! links one binary here instead of one per file. Each file below is a module; nextest runs
//! each test in its own process, as before.

mod corpus_books;
mod levictl_cli;
mod levictl_control;
mod levictl_journal;
mod levictl_parquet;
mod levictl_research;
mod levictl_venue;
mod ws_interop;
