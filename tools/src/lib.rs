//! LeviBot's operator tools: `levictl`, `levibotd`'s binary and demo, `levibot-exporter`
//! (issue 7) and `venue-sim`.
//!
//! - [`capture_check`]: replays a recorded capture through the decoder and the books.
//! - [`tail`], [`stat`], [`export`]: `levictl`'s journal and counter readers.
//! - [`demo`]: `levibotd demo`, the daemon against the in-process venue.
//! - [`control_cli`]: `levictl`'s requests on the daemon's control socket.
//! - [`venue_cli`]: `levictl venue exchange-info`, a venue's exchangeInfo fetched and checked.
//! - [`venue`]: the simulated venue: matching engine, Binance-format feed, synthetic flow, FIX
//!   acceptor, market-data server (`venue-sim` is its binary).

pub mod capture_check;
pub mod control_cli;
pub mod demo;
pub mod export;
pub mod exporter;
pub mod journal_view;
pub mod stat;
pub mod tail;
pub mod venue;
pub mod venue_cli;
