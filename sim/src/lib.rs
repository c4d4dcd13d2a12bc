//! `venue-sim`, the simulated venue (issue 5): a matching engine with the instruments' exchange
//! filters, its market data over WebSocket and REST, and FIX 4.4 order entry.
//!
//! - [`filters`]: the exchange filters in an instrument's units, and a venue's reject reasons
//!   (the backtest's venue checks orders with them too).
//! - [`matching`]: price-time-priority books, order entry to owner notices and feed updates.
//! - [`feed`]: the venue's market data as Binance combined-stream messages and REST snapshots.
//! - [`flow`]: synthetic traders that move prices.
//! - [`md_server`]: the market-data server (WebSocket streams, REST snapshot, fault switches),
//!   the venue core it shares with the FIX side, and capture replay.
//! - [`fix_acceptor`]: FIX 4.4 order entry, acceptor side (sans-IO).
//! - [`fix_server`]: the FIX listener: one acceptor per connection on the shared venue core.
//! - [`sim`]: all of it started as one `SimVenue` (`venue-sim run`, the demo, the daemon tests).
//! - [`synth`]: a seeded recording in the corpus format (`venue-sim synth`, `testdata/`).

pub mod demo;
pub mod feed;
pub mod filters;
pub mod fix_acceptor;
pub mod fix_server;
pub mod flow;
pub mod matching;
pub mod md_server;
pub mod sim;
pub mod synth;
