//! `venue-sim`, the simulated venue (issue 5): a matching engine with the instruments' exchange
//! filters; its market-data and FIX order-entry servers come next.
//!
//! - [`matching`]: price-time-priority books, order entry to owner notices and feed updates.
//! - [`feed`]: the venue's market data as Binance combined-stream messages and REST snapshots.
//! - [`flow`]: synthetic traders that move prices.
//! - [`fix_acceptor`]: FIX 4.4 order entry, acceptor side (sans-IO).

pub mod feed;
pub mod fix_acceptor;
pub mod flow;
pub mod matching;
