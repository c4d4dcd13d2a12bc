//! The simulated venue's tests: matching with the venue's filters, the Binance-format feed a
//! client rebuilds a book from, FIX order entry, the market-data server and its faults, and the
//! committed synthetic recording.
//!
//! One test binary for the whole crate (`autotests = false` in Cargo.toml): a 2-core machine
//! links one binary here instead of one per file. Each file below is a module; nextest runs
//! each test in its own process, as before.

mod testdata;
mod venue_feed;
mod venue_fix;
mod venue_matching;
mod venue_sim_fix;
mod venue_sim_md;
