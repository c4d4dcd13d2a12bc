//! The WebSocket client (RFC 6455) for venue market data (issue 5): handshake, frames, ping/pong,
//! close, reconnect. Work in progress.
