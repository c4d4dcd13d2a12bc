//! `levictl`, the operator's CLI (the binary is `src/main.rs`). It reads the journal and the
//! counters file read-only, speaks the control socket's protocol, and links no engine: the
//! journal's codes come from `shm`, its rendering from `levibot-view`, the book that
//! `capture check` replays through from `levibot-book`.
//!
//! - [`tail`], [`stat`], [`export`]: the journal and counters readers; [`archive`]: their
//!   `--archive`, the journal read back from levibot-archiver's archive.
//! - [`research`]: datasets of feature snapshots and forward returns.
//! - [`capture_check`]: replays a recorded capture through the decoder and the books.
//! - [`control_cli`]: `status`, `kill`, `resume`, `reload`, `set` on the daemon's control socket.
//! - [`venue_cli`]: `levictl venue exchange-info`, a venue's exchangeInfo fetched and checked.

pub mod archive;
pub mod capture_check;
pub mod control_cli;
pub mod export;
pub mod research;
pub mod stat;
pub mod tail;
pub mod venue_cli;
