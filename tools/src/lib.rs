//! LeviBot's operator tools: `levictl` (today: `capture check`; later tail, stat, export,
//! status, kill, resume, reload), `levibot-exporter` (issue 7) and `venue-sim` (issue 5).
//!
//! - [`capture_check`]: replays a recorded capture through the decoder and the books.
//! - [`venue`]: the simulated venue: matching engine, Binance-format feed, synthetic flow, FIX
//!   acceptor, market-data server (`venue-sim` is its binary).

pub mod capture_check;
pub mod venue;
