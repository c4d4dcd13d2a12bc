//! The WebSocket client (RFC 6455) for venue market data: handshake, frames, ping/pong, close,
//! the combined-stream path, reconnect backoff, and the REST depth snapshot fetch.
//!
//! - [`codec`]: [`WsCodec`], the sans-IO connection (bytes in, events and bytes out), fixed
//!   buffers, every protocol violation a typed [`FrameError`] with its byte offset.
//! - [`frame`]: frame headers, parsing and masked writing.
//! - [`handshake`]: the HTTP/1.1 upgrade request and the check of the response
//!   (`Sec-WebSocket-Accept` = base64(sha1(key + GUID))).
//! - [`client`]: [`WsClient`], the codec over a non-blocking mio stream, plain `ws://` or
//!   `wss://` through [`crate::tls`].
//! - [`path`]: `/stream?streams=...` from symbols and stream kinds; the depth snapshot path.
//! - [`backoff`]: [`Backoff`], exponential with jitter, and how to reconnect.
//! - [`http`]: the blocking REST GET of the cold path ([`fetch_depth_snapshot`]).
//!
//! A feed's life: `stream_path` -> `WsClient::connect` -> `fetch_depth_snapshot` per symbol
//! (`Decoder::decode_snapshot`, `OrderBook::apply_snapshot`) -> `read_message` in a loop
//! (`Decoder::decode` with the message's `recv_tsc`) -> on error, [`backoff`]'s procedure:
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use levibot_gateway::ws::{
//!     BACKOFF_RESET_AFTER, Backoff, Stream, WsClient, WsConfig, fetch_depth_snapshot, stream_path,
//! };
//!
//! let addr = "127.0.0.1:9443".parse().unwrap();
//! let timeout = Duration::from_secs(10);
//! let path = stream_path(&["NKNUSDT"], &[Stream::Depth100ms, Stream::BookTicker]).unwrap();
//! let mut backoff = Backoff::from_os().unwrap();
//! loop {
//!     // (Every book of the connection: mark_needs_resync.)
//!     let (host, config) = ("127.0.0.1:9443", WsConfig::default());
//!     let mut client = match WsClient::connect(addr, host, &path, config, timeout, || 0) {
//!         Ok(client) => client,
//!         Err(e) => {
//!             eprintln!("{e}");
//!             std::thread::sleep(backoff.next_delay());
//!             continue;
//!         }
//!     };
//!     // Subscribed (the path is the subscription): diffs wait in the socket (or the book's
//!     // buffer) while the snapshot is fetched; the book drops the stale ones when it applies it.
//!     let _body = fetch_depth_snapshot(addr, "127.0.0.1:9443", "NKNUSDT", 1000, timeout);
//!     let up = Instant::now();
//!     loop {
//!         match client.read_message(None, || 0) {
//!             Ok(Some(_message)) => {
//!                 // decoder.decode(message.payload, message.recv_tsc) -> the book.
//!                 if up.elapsed() > BACKOFF_RESET_AFTER {
//!                     backoff.reset();
//!                 }
//!             }
//!             Ok(None) => {}
//!             Err(e) => {
//!                 eprintln!("{e}");
//!                 break;
//!             }
//!         }
//!     }
//!     std::thread::sleep(backoff.next_delay());
//! }
//! ```

pub mod backoff;
pub mod client;
pub mod codec;
pub mod frame;
pub mod handshake;
pub mod http;
pub mod path;

pub use backoff::{BACKOFF_MAX, BACKOFF_MIN, BACKOFF_RESET_AFTER, Backoff};
pub use client::{ClientError, Message, WsClient};
pub use codec::{
    CloseFrame, CodecState, CodecStats, Event, FrameError, FrameErrorKind, MaskKeys, MessageKind,
    SendError, WsCodec, WsConfig, close_code,
};
pub use handshake::{Handshake, HandshakeError, accept_key};
pub use http::{
    HttpError, RestEndpoint, fetch_depth_snapshot, fetch_depth_snapshot_over, http_get, https_get,
    read_response, read_response_bytes,
};
pub use path::{PathError, Stream, depth_snapshot_path, stream_path};

/// Longest data message, whole or reassembled: the decoder's limit.
pub const WS_MESSAGE_LEN_MAX: usize = crate::binance::MESSAGE_LEN_MAX;
/// Longest frame payload accepted.
pub const FRAME_PAYLOAD_LEN_MAX: usize = WS_MESSAGE_LEN_MAX;
/// Longest frame header: 2 bytes, a 64-bit length, a mask key.
pub const FRAME_HEADER_LEN_MAX: usize = 2 + 8 + 4;
/// Longest control frame payload (RFC 6455 5.5).
pub const CONTROL_PAYLOAD_LEN_MAX: usize = 125;
/// The receive buffer: room for one whole frame of the largest size.
pub const RX_BUFFER_LEN: usize = FRAME_PAYLOAD_LEN_MAX + FRAME_HEADER_LEN_MAX;
/// The receive buffer is compacted (its partial frame moved to the front) when less than this is
/// free at its end.
pub const RX_COMPACT_FREE_MIN: usize = 64 * 1024;
/// The output buffer (our frames waiting for the socket).
pub const TX_BUFFER_LEN: usize = 16 * 1024;
/// Longest data message we send (one frame in an otherwise empty output buffer).
pub const SEND_PAYLOAD_LEN_MAX: usize = TX_BUFFER_LEN - FRAME_HEADER_LEN_MAX;
/// Mask keys fetched from the OS at once (4 bytes a frame).
pub const MASK_POOL_LEN: usize = 256;
/// Longest handshake response head.
pub const HANDSHAKE_RESPONSE_LEN_MAX: usize = 8 * 1024;
/// Most headers in a handshake response.
pub const HANDSHAKE_HEADERS_MAX: usize = 32;
/// Longest REST response head.
pub const HTTP_HEAD_LEN_MAX: usize = 16 * 1024;
/// Most headers in a REST response.
pub const HTTP_HEADERS_MAX: usize = 64;
/// Largest REST body (a depth snapshot): the decoder's limit.
pub const HTTP_BODY_LEN_MAX: usize = crate::binance::MESSAGE_LEN_MAX;
/// Longest chunk size line of a chunked REST body, in bytes, CRLF and chunk extensions
/// included (a size is at most 16 hex digits; servers send no extensions we use).
pub const HTTP_CHUNK_LINE_LEN_MAX: usize = 1024;
/// Most chunks in a chunked REST body, the last (empty) one included: with
/// [`HTTP_CHUNK_LINE_LEN_MAX`] it bounds the framing bytes read for one body.
pub const HTTP_CHUNKS_MAX: usize = 16 * 1024;
/// Control frames (ping, pong) [`WsClient::read_message`] handles in one call before it returns
/// `Ok(None)` to its caller: a peer flooding pings cannot hold the (fused) hot thread.
pub const CONTROL_FRAMES_PER_READ_MAX: usize = 64;
/// Readiness events taken per `epoll_wait` (one socket).
pub const POLL_EVENTS_CAPACITY: usize = 4;

const _: () = assert!(RX_BUFFER_LEN >= FRAME_PAYLOAD_LEN_MAX + FRAME_HEADER_LEN_MAX);
const _: () = assert!(RX_COMPACT_FREE_MIN < RX_BUFFER_LEN);
const _: () = assert!(TX_BUFFER_LEN >= 4 * (CONTROL_PAYLOAD_LEN_MAX + FRAME_HEADER_LEN_MAX));
const _: () = assert!(MASK_POOL_LEN.is_multiple_of(4));
