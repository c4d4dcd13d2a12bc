//! LeviBot's venue wire formats and sessions. The only crate that knows a venue's bytes.
//!
//! - [`decimal`]: exact decimal strings <-> integer ticks and lots.
//! - [`instrument`]: instruments and filters from Binance's `exchangeInfo`; the symbol table.
//! - [`capture`]: the corpus capture file format (`<epoch>: <json>` lines).
//! - [`binance`]: the Binance Spot market-data decoder (fast scanner + simd-json general path).
//!
//! To come: the Binance market-data decoder (issue 3); the WebSocket client, FIX 4.4 session and
//! TLS (issue 5). See ARCHITECTURE.md.

pub mod binance;
pub mod capture;
pub mod decimal;
pub mod instrument;
