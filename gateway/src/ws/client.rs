//! The transport: a [`WsCodec`] over a non-blocking mio `TcpStream`, plain (`ws://`,
//! [`WsClient::connect`]) or under TLS (`wss://`, [`WsClient::connect_tls`], through
//! [`Transport`]: the handshake, frames, ping/pong and close are the same on top). Every socket
//! call is non-blocking; waiting is `mio::Poll` with a deadline, and a zero timeout never waits at
//! all (for a busy-spinning feed agent). The TLS handshake runs inside the connect's deadline.
//!
//! Hot path ([`WsClient::read_message`]): one `read` per burst of bytes into the codec's fixed
//! buffer, messages handed out in place, a `write` only when a pong or close is pending. No
//! allocation, no formatting (errors carry only `Copy` data until shown, except the peer's close
//! reason, at the end of the connection). Over TLS, rustls allocates per received record: see
//! [`crate::tls`].

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs as _};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::tls::{TlsConfig, TlsError, Transport, server_name_of_host};

use super::codec::{CodecState, CodecStats, FrameError, MessageKind, RawEvent, SendError};
use super::handshake::{Handshake, HandshakeError, random_nonce};
use super::{
    CONTROL_FRAMES_PER_READ_MAX, HANDSHAKE_RESPONSE_LEN_MAX, POLL_EVENTS_CAPACITY, WsCodec,
    WsConfig,
};

const SOCKET: Token = Token(0);

/// How long a client leaving waits for the server's answer to its Close
/// ([`WsClient::close`]'s `timeout` as the feed uses it on shutdown and after a rollover): long
/// enough for a server across the world to echo, short enough that a stop is never held by a
/// server that does not answer.
pub const CLOSE_WAIT_MAX: Duration = Duration::from_secs(1);

/// A whole data message and when its last bytes were read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub kind: MessageKind,
    /// Valid until the next call on the client.
    pub payload: &'a [u8],
    /// The stamp taken right after the `read` that brought the message's last bytes.
    pub recv_tsc: u64,
}

/// Why a connection failed or ended. Any of them ends the connection: reconnect (see
/// [`Backoff`](super::Backoff)).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("WebSocket {addr}: {op}: {source}")]
    Io {
        addr: SocketAddr,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("WebSocket {addr}: {what} took longer than {timeout:?}")]
    Timeout {
        addr: SocketAddr,
        what: &'static str,
        timeout: Duration,
    },
    #[error("WebSocket {addr}: {source}")]
    Handshake {
        addr: SocketAddr,
        source: HandshakeError,
    },
    #[error("WebSocket {addr}: the connection closed during the handshake after {got} bytes")]
    HandshakeEof { addr: SocketAddr, got: usize },
    #[error("WebSocket {addr}: {source}")]
    Frame {
        addr: SocketAddr,
        source: FrameError,
    },
    #[error(
        "WebSocket {addr}: the server closed the connection (code {code:?}, reason {reason:?})"
    )]
    Closed {
        addr: SocketAddr,
        code: Option<u16>,
        reason: String,
    },
    #[error("WebSocket {addr}: the TCP connection ended at stream byte {offset} without a Close")]
    Eof { addr: SocketAddr, offset: u64 },
    #[error("WebSocket {addr}: the connection is closed")]
    NotOpen { addr: SocketAddr },
    #[error("WebSocket {addr}: {source}")]
    Send { addr: SocketAddr, source: SendError },
    #[error("WebSocket {addr}: the OS random source failed: {source}")]
    Random {
        addr: SocketAddr,
        source: getrandom::Error,
    },
    /// A URL given to [`WsClient::connect_url`] was refused.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// A URL's host name did not resolve.
    #[error("WebSocket {host}: resolving the host: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    /// TLS failed: the handshake (certificate, alert, a close during it) or a record after it.
    /// (Boxed: rustls' errors are large, and this enum is on the read path's return.)
    #[error("WebSocket {addr}: {source}")]
    Tls {
        addr: SocketAddr,
        source: Box<TlsError>,
    },
}

/// A socket error from the transport: a TLS failure becomes [`ClientError::Tls`].
fn transport_error(addr: SocketAddr, op: &'static str, error: std::io::Error) -> ClientError {
    match TlsError::from_io(error) {
        Ok(source) => ClientError::Tls {
            addr,
            source: Box::new(source),
        },
        Err(source) => ClientError::Io { addr, op, source },
    }
}

/// A `ws://` or `wss://` URL split into what a connection needs. Cold path (allocates).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsUrl {
    /// `wss://`: TLS.
    pub tls: bool,
    /// The host name or IP address (an IPv6 literal without its brackets).
    pub host: String,
    /// The port: the URL's, else 443 for `wss://` and 80 for `ws://`.
    pub port: u16,
    /// The path and query; `/` when the URL has none.
    pub path: String,
}

/// Why a URL was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("URL {url:?}: the scheme is not {expected}")]
    Scheme { url: String, expected: &'static str },
    #[error("URL {url:?}: no host")]
    NoHost { url: String },
    #[error("URL {url:?}: the port is not a number in 1..=65535")]
    Port { url: String },
    #[error("URL {url:?}: user info and fragments are not supported")]
    Unsupported { url: String },
}

impl WsUrl {
    /// Splits `url` (`ws[s]://host[:port][/path][?query]`, the scheme in any case).
    pub fn parse(url: &str) -> Result<WsUrl, UrlError> {
        WsUrl::parse_schemes(url, ("wss", "ws"), "ws:// or wss://")
    }

    /// Splits an `http[s]://host[:port][/path][?query]` URL (a venue's REST endpoint) the same
    /// way: `tls` for `https://`, the port 443 or 80 by default.
    pub fn parse_http(url: &str) -> Result<WsUrl, UrlError> {
        WsUrl::parse_schemes(url, ("https", "http"), "http:// or https://")
    }

    /// `schemes`: (the TLS one, the plain one).
    fn parse_schemes(
        url: &str,
        schemes: (&str, &str),
        expected: &'static str,
    ) -> Result<WsUrl, UrlError> {
        let err = |make: fn(String) -> UrlError| make(url.to_owned());
        let scheme_err = || UrlError::Scheme {
            url: url.to_owned(),
            expected,
        };
        let scheme_end = url.find("://").ok_or_else(scheme_err)?;
        let scheme = url[..scheme_end].to_ascii_lowercase();
        let tls = match scheme.as_str() {
            s if s == schemes.0 => true,
            s if s == schemes.1 => false,
            _ => return Err(scheme_err()),
        };
        let rest = &url[scheme_end + 3..];
        if rest.contains('#') {
            return Err(err(|url| UrlError::Unsupported { url }));
        }
        let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        if authority.contains('@') {
            return Err(err(|url| UrlError::Unsupported { url }));
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| err(|url| UrlError::NoHost { url }))?;
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(err(|url| UrlError::Port { url })),
                },
            }
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(err(|url| UrlError::NoHost { url }));
        }
        let port = match port {
            None => {
                if tls {
                    443
                } else {
                    80
                }
            }
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| err(|url| UrlError::Port { url }))?,
        };
        let path = match path {
            "" => "/".to_owned(),
            query if query.starts_with('?') => format!("/{query}"),
            path => path.to_owned(),
        };
        Ok(WsUrl {
            tls,
            host: host.to_owned(),
            port,
            path,
        })
    }

    /// The `Host` header: the host (an IPv6 literal in brackets), and the port unless it is the
    /// scheme's default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// A connected WebSocket client.
pub struct WsClient {
    addr: SocketAddr,
    stream: Transport,
    poll: Poll,
    events: Events,
    codec: WsCodec,
    last_read_tsc: u64,
    /// Pongs received (answers to our keepalive pings).
    pongs_received: u64,
}

impl std::fmt::Debug for WsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsClient")
            .field("addr", &self.addr)
            .field("stream", &self.stream)
            .field("codec", &self.codec)
            .finish_non_exhaustive()
    }
}

/// What is left of a deadline; `None` once it passed.
fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

impl WsClient {
    /// Connects to `addr`, sends the upgrade request for `path` with `Host: host`, and checks the
    /// answer, all within `timeout`. `stamp` gives the receive stamp of the bytes read (a raw TSC
    /// reading, e.g. `|| clock.raw()` with a `quanta::Clock`): frames that came with the
    /// handshake response carry the stamp of that read.
    pub fn connect(
        addr: SocketAddr,
        host: &str,
        path: &str,
        config: WsConfig,
        timeout: Duration,
        stamp: impl FnMut() -> u64,
    ) -> Result<WsClient, ClientError> {
        WsClient::open(addr, host, path, config, None, timeout, stamp)
    }

    /// [`connect`](Self::connect) over TLS (`wss://`): the server's certificate is verified
    /// against `tls`'s roots for `host` without its port (sent as SNI when it is a DNS name).
    /// The TLS handshake, the upgrade and its answer all happen within `timeout`; a TLS failure
    /// is [`ClientError::Tls`].
    pub fn connect_tls(
        addr: SocketAddr,
        host: &str,
        path: &str,
        config: WsConfig,
        tls: &TlsConfig,
        timeout: Duration,
        stamp: impl FnMut() -> u64,
    ) -> Result<WsClient, ClientError> {
        WsClient::open(addr, host, path, config, Some(tls), timeout, stamp)
    }

    /// Connects to a `ws://` or `wss://` URL: resolves its host (the system resolver: blocking,
    /// cold path) and tries each address in turn within `timeout` in all. For `wss://`, `tls` is
    /// the configuration, or `None` for the public roots ([`TlsConfig::webpki_roots`]); it is
    /// not used for `ws://`. The error is the last address's.
    pub fn connect_url(
        url: &str,
        config: WsConfig,
        tls: Option<&TlsConfig>,
        timeout: Duration,
        mut stamp: impl FnMut() -> u64,
    ) -> Result<WsClient, ClientError> {
        let deadline = Instant::now() + timeout;
        let url = WsUrl::parse(url)?;
        let resolve_error = |source| ClientError::Resolve {
            host: url.host.clone(),
            source,
        };
        let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port)
            .to_socket_addrs()
            .map_err(resolve_error)?
            .collect();
        let Some(&first) = addrs.first() else {
            return Err(resolve_error(std::io::Error::new(
                ErrorKind::NotFound,
                "no address",
            )));
        };
        let roots;
        let tls = match (url.tls, tls) {
            (false, _) => None,
            (true, Some(tls)) => Some(tls),
            (true, None) => {
                roots = TlsConfig::webpki_roots().map_err(|source| ClientError::Tls {
                    addr: first,
                    source: Box::new(source),
                })?;
                Some(&roots)
            }
        };
        let host = url.host_header();
        let mut last = None;
        for addr in addrs {
            let Some(left) = remaining(deadline) else {
                break;
            };
            match WsClient::open(addr, &host, &url.path, config, tls, left, &mut stamp) {
                Ok(client) => return Ok(client),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(ClientError::Timeout {
            addr: first,
            what: "connect",
            timeout,
        }))
    }

    fn open(
        addr: SocketAddr,
        host: &str,
        path: &str,
        config: WsConfig,
        tls: Option<&TlsConfig>,
        timeout: Duration,
        mut stamp: impl FnMut() -> u64,
    ) -> Result<WsClient, ClientError> {
        let deadline = Instant::now() + timeout;
        let io = |op| move |source| transport_error(addr, op, source);
        let timed_out = |what| ClientError::Timeout {
            addr,
            what,
            timeout,
        };
        let nonce = random_nonce().map_err(|source| ClientError::Random { addr, source })?;
        let handshake = Handshake::new(host, path, nonce);

        let mut tcp = TcpStream::connect(addr).map_err(io("connect"))?;
        let poll = Poll::new().map_err(io("epoll_create"))?;
        poll.registry()
            .register(&mut tcp, SOCKET, Interest::READABLE | Interest::WRITABLE)
            .map_err(io("register"))?;
        let stream = match tls {
            None => Transport::plain(tcp),
            Some(tls) => Transport::tls(tcp, tls, server_name_of_host(host)).map_err(|source| {
                ClientError::Tls {
                    addr,
                    source: Box::new(source),
                }
            })?,
        };
        let mut client = WsClient {
            addr,
            stream,
            poll,
            events: Events::with_capacity(POLL_EVENTS_CAPACITY),
            codec: WsCodec::new(config),
            last_read_tsc: 0,
            pongs_received: 0,
        };

        // The non-blocking connect finishes when the socket turns writable (mio's procedure:
        // then take_error, then peer_addr to tell "connected" from a spurious wakeup).
        loop {
            let left = remaining(deadline).ok_or_else(|| timed_out("connect"))?;
            client.wait(Some(left)).map_err(io("poll"))?;
            if let Some(e) = client.stream.tcp().take_error().map_err(io("connect"))? {
                return Err(io("connect")(e));
            }
            match client.stream.tcp().peer_addr() {
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::NotConnected => continue,
                Err(e) => return Err(io("connect")(e)),
            }
        }
        client
            .stream
            .tcp()
            .set_nodelay(true)
            .map_err(io("set_nodelay"))?;

        let mut sent = 0;
        let request = handshake.request();
        while sent < request.len() {
            match client.stream.write(&request[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let left = remaining(deadline).ok_or_else(|| timed_out("the handshake"))?;
                    client.wait(Some(left)).map_err(io("poll"))?;
                }
                Err(e) => return Err(io("write")(e)),
            }
        }

        let mut response = vec![0u8; HANDSHAKE_RESPONSE_LEN_MAX];
        let mut got = 0;
        let head_len = loop {
            match client.stream.read(&mut response[got..]) {
                Ok(0) => return Err(ClientError::HandshakeEof { addr, got }),
                Ok(n) => {
                    client.last_read_tsc = stamp();
                    got += n;
                    match handshake.parse_response(&response[..got]) {
                        Ok(Some(head_len)) => break head_len,
                        Ok(None) => {}
                        Err(source) => return Err(ClientError::Handshake { addr, source }),
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let left = remaining(deadline).ok_or_else(|| timed_out("the handshake"))?;
                    client.wait(Some(left)).map_err(io("poll"))?;
                }
                Err(e) => return Err(io("read")(e)),
            }
        };
        let extra = &response[head_len..got];
        let fed = client.codec.feed(extra);
        debug_assert_eq!(fed, extra.len(), "the receive buffer is larger than a head");
        Ok(client)
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The byte stream: plain TCP or TLS (its version, whether the handshake is done).
    pub fn transport(&self) -> &Transport {
        &self.stream
    }

    pub fn state(&self) -> CodecState {
        self.codec.state()
    }

    pub fn stats(&self) -> CodecStats {
        self.codec.stats()
    }

    /// The next whole data message. Pings are answered, pongs skipped on the way.
    ///
    /// `timeout`: `Some(Duration::ZERO)` returns `Ok(None)` as soon as no whole message is
    /// buffered and the socket has nothing (never waits: for a spinning agent); `Some(t)` waits up
    /// to `t`; `None` waits as long as it takes. `stamp` is called right after each `read` that
    /// returned bytes. Whatever the timeout, a call returns `Ok(None)` after handling
    /// [`CONTROL_FRAMES_PER_READ_MAX`] pings and pongs without a data message, so that a peer
    /// flooding control frames cannot keep the caller's thread: call again.
    ///
    /// Any error ends the connection, the server's Close included ([`ClientError::Closed`], after
    /// our answering Close was sent).
    pub fn read_message(
        &mut self,
        timeout: Option<Duration>,
        mut stamp: impl FnMut() -> u64,
    ) -> Result<Option<Message<'_>>, ClientError> {
        let addr = self.addr;
        let mut deadline = None;
        let mut control_frames = 0usize;
        loop {
            if control_frames >= CONTROL_FRAMES_PER_READ_MAX {
                // A peer flooding pings or pongs: give the thread back to the caller (the pongs
                // are queued; a newer ping replaces an unsent pong, so they stay bounded).
                self.flush()?;
                return Ok(None);
            }
            match self.codec.poll_raw() {
                Ok(Some(RawEvent::Message(kind, span))) => {
                    return Ok(Some(Message {
                        kind,
                        payload: self.codec.span(span),
                        recv_tsc: self.last_read_tsc,
                    }));
                }
                Ok(Some(RawEvent::Ping(_))) => {
                    control_frames += 1;
                    self.flush()?;
                    continue;
                }
                Ok(Some(RawEvent::Pong(_))) => {
                    control_frames += 1;
                    self.pongs_received += 1;
                    continue;
                }
                Ok(Some(RawEvent::Close(code, span))) => {
                    let reason = String::from_utf8_lossy(self.codec.span(span)).into_owned();
                    // Best effort: the peer is going away anyway.
                    let _ = self.flush();
                    let _ = self.stream.shutdown(Shutdown::Write);
                    return Err(ClientError::Closed { addr, code, reason });
                }
                Ok(None) => {}
                Err(source) => {
                    // Send our Close (with the error's status code) if the socket takes it.
                    let _ = self.flush();
                    let _ = self.stream.shutdown(Shutdown::Both);
                    return Err(ClientError::Frame { addr, source });
                }
            }
            if self.codec.state() == CodecState::Closed {
                return Err(ClientError::NotOpen { addr });
            }
            match self.stream.read(self.codec.read_buf()) {
                Ok(0) => {
                    return Err(ClientError::Eof {
                        addr,
                        offset: self.codec.stats().bytes_in,
                    });
                }
                Ok(n) => {
                    self.last_read_tsc = stamp();
                    self.codec.filled(n);
                    if self.codec.wants_write() {
                        self.flush()?;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.flush()?;
                    let wait = match timeout {
                        Some(t) if t.is_zero() => return Ok(None),
                        Some(t) => {
                            let deadline = *deadline.get_or_insert_with(|| Instant::now() + t);
                            match remaining(deadline) {
                                Some(left) => Some(left),
                                None => return Ok(None),
                            }
                        }
                        None => None,
                    };
                    self.wait(wait).map_err(|source| ClientError::Io {
                        addr,
                        op: "poll",
                        source,
                    })?;
                }
                Err(source) => return Err(transport_error(addr, "read", source)),
            }
        }
    }

    /// Sends a Ping (keepalive); the server's Pong shows in [`pongs_received`](Self::pongs_received).
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), ClientError> {
        let addr = self.addr;
        self.codec
            .ping(payload)
            .map_err(|source| ClientError::Send { addr, source })?;
        self.flush()
    }

    /// Pongs received on this connection.
    pub fn pongs_received(&self) -> u64 {
        self.pongs_received
    }

    /// Sends one text message (a single frame; at most [`SEND_PAYLOAD_LEN_MAX`] bytes).
    ///
    /// [`SEND_PAYLOAD_LEN_MAX`]: super::SEND_PAYLOAD_LEN_MAX
    pub fn send_text(&mut self, text: &str) -> Result<(), ClientError> {
        let addr = self.addr;
        self.codec
            .send(MessageKind::Text, text.as_bytes())
            .map_err(|source| ClientError::Send { addr, source })?;
        self.flush()
    }

    /// The close handshake (RFC 6455 7.1.2): sends a Close with `code` (1000, normal closure,
    /// when we are done) and `reason` (at most 123 bytes), then reads (and drops) messages until
    /// the server's Close, the end of the stream or `timeout` ([`CLOSE_WAIT_MAX`] is a good
    /// one); then closes the socket. The whole call takes at most `timeout`. A server that does
    /// not answer in time is not an error: we are leaving anyway. Cold path.
    pub fn close(mut self, code: u16, reason: &str, timeout: Duration) -> Result<(), ClientError> {
        let addr = self.addr;
        let deadline = Instant::now() + timeout;
        // Room for the Close: whatever is queued (a pong) goes first, if the socket takes it.
        let _ = self.flush();
        self.codec
            .close(code, reason.as_bytes())
            .map_err(|source| ClientError::Send { addr, source })?;
        // Write the Close out, waiting for room if the socket is full.
        while self.codec.wants_write() || self.stream.wants_write() {
            self.flush()?;
            if !self.codec.wants_write() && !self.stream.wants_write() {
                break;
            }
            let Some(left) = remaining(deadline) else {
                break;
            };
            self.wait(Some(left)).map_err(|source| ClientError::Io {
                addr,
                op: "poll",
                source,
            })?;
        }
        while let Some(left) = remaining(deadline) {
            match self.read_message(Some(left), || 0) {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(ClientError::Closed { .. } | ClientError::Eof { .. }) => break,
                Err(ClientError::NotOpen { .. }) => break,
                Err(e) => return Err(e),
            }
        }
        let _ = self.stream.shutdown(Shutdown::Both);
        Ok(())
    }

    /// Writes what the codec has queued, until it is sent or the socket is full.
    fn flush(&mut self) -> Result<(), ClientError> {
        let addr = self.addr;
        while self.codec.wants_write() {
            let out = self.codec.output();
            if out.is_empty() {
                break;
            }
            match self.stream.write(out) {
                Ok(0) => {
                    return Err(ClientError::Io {
                        addr,
                        op: "write",
                        source: ErrorKind::WriteZero.into(),
                    });
                }
                Ok(n) => self.codec.consume_output(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(source) => return Err(transport_error(addr, "write", source)),
            }
        }
        // TLS records rustls still holds (a no-op on plain TCP).
        self.stream
            .send_pending()
            .map_err(|source| transport_error(addr, "write", source))?;
        Ok(())
    }

    /// Waits for readiness (edge-triggered: called only after a call returned `WouldBlock`).
    fn wait(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        match self.poll.poll(&mut self.events, timeout) {
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(()),
            other => other,
        }
    }
}
