//! LeviBot's venue wire formats and sessions. The only crate that knows a venue's bytes.
//!
//! - [`decimal`]: exact decimal strings <-> integer ticks and lots.
//! - [`instrument`]: instruments and filters from Binance's `exchangeInfo`; the symbol table.
//! - [`capture`]: the corpus capture file format (`<epoch>: <json>` lines).
//! - [`binance`]: the Binance Spot market-data decoder (fast scanner + simd-json general path).
//! - [`fix`]: FIX 4.4 order entry: the allocation-free order encoder, a zero-copy reader, and
//!   the initiator session with its mio transport.
//!
//! - [`ws`]: the WebSocket market-data client (RFC 6455) and the REST depth snapshot fetch.
//! - [`tls`]: TLS with rustls for `wss://` and FIX: the non-blocking [`tls::Transport`].
//!
//! See ARCHITECTURE.md.

pub mod binance;
pub mod capture;
pub mod decimal;
pub mod fix;
pub mod instrument;
pub mod source;
pub mod tls;
pub mod ws;
