//! LeviBot's venue wire formats and sessions. The only crate that knows a venue's bytes:
//! Binance Spot market data (combined streams, bookTicker, depthUpdate, trade, aggTrade, REST
//! depth snapshots), the RFC 6455 WebSocket client, the FIX 4.4 order-entry session, and TLS.
//!
//! Empty until issues 3 (decoder) and 5 (network sessions); see ARCHITECTURE.md.
