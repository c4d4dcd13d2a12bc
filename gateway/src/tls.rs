//! TLS for the venue connections: `wss://` market data and FIX over TLS, with rustls (ring as
//! the crypto provider).
//!
//! - [`TlsConfig`]: the client configuration: the public roots for real venues
//!   ([`TlsConfig::webpki_roots`], Mozilla's set from `webpki-roots`, compiled in: no file on the
//!   host to go stale or missing), or one private CA given as PEM or DER
//!   ([`TlsConfig::with_ca_pem`], [`TlsConfig::with_ca_der`]) for tests and private venues.
//! - [`Transport`]: what [`WsClient`](crate::ws::WsClient) and
//!   [`FixConnection`](crate::fix::FixConnection) read and write: a non-blocking mio
//!   [`TcpStream`], either plain or under a rustls [`ClientConnection`].
//! - [`TlsError`]: what failed, typed: the server's certificate, the handshake, the connection
//!   closing during the handshake, a protocol error after it, or the configuration.
//!
//! # Why TLS is in the gateway
//!
//! Venues publish market data on `wss://` only and offer FIX order entry over TLS; the gateway is
//! the one crate that knows a venue's bytes, and TLS is the layer those bytes arrive in. Keeping
//! it in-process (no stunnel or proxy in front) saves a loopback hop and a second process on the
//! feed's path, and keeps the receive stamp on the read that brought the encrypted bytes.
//!
//! # Non-blocking, in the caller's poll loop
//!
//! [`Transport`] implements [`Read`] and [`Write`] and never blocks in the kernel: it makes only
//! non-blocking socket calls and returns [`WouldBlock`](io::ErrorKind::WouldBlock) when the
//! socket has nothing more. The handshake has
//! no call of its own: it progresses inside the same reads and writes (rustls' `wants_write` is
//! served first on every call, then `read_tls` and `process_new_packets`), so the caller's loop
//! is the same for plain and TLS:
//!
//! - `write` hands plaintext to rustls (queued until the handshake finishes, then encrypted) and
//!   pushes the records out until the socket would block; `Ok(n)` means rustls took `n` bytes.
//!   When rustls' own buffer is full, `write` returns `WouldBlock`, never `Ok(0)`.
//!   [`Transport::send_pending`] pushes records still waiting (call it after a writable event,
//!   or simply on the next read: `read` does it first).
//! - `read` returns plaintext rustls already decrypted, else reads the socket and decrypts.
//!   It returns `WouldBlock` only when rustls holds no plaintext and the socket is drained, so
//!   waiting for an edge-triggered readable event after it is correct. The end of the stream is
//!   `Ok(0)` whether the server sent `close_notify` or just closed TCP (the protocols above are
//!   self-delimiting: a cut message shows there). A close during the handshake is
//!   [`TlsError::HandshakeEof`].
//! - TLS failures come out of `read`/`write` as an [`io::Error`] (of kind `InvalidData`,
//!   `UnexpectedEof` for [`TlsError::HandshakeEof`], the socket error's kind for
//!   [`TlsError::HandshakeIo`]) carrying a [`TlsError`]: [`TlsError::from_io`] takes it back.
//!   The clients do so and report a typed TLS error.
//!
//! # What it costs
//!
//! Every received record is decrypted (AES-GCM or ChaCha20-Poly1305, whichever the server picks)
//! on the feed's read path before the WebSocket codec sees a byte, and every order is encrypted
//! on its way out: a pass over the bytes each way, plus 22 bytes per record on the wire (TLS
//! 1.3: a 5-byte header, the inner content type and a 16-byte AEAD tag). rustls reads the socket
//! 4 KiB at a time at most, so a 16 KiB record takes four `read` calls where plain TCP takes one
//! read into the codec's buffer. The receive stamp (`recv_tsc`) is taken when `read` returns,
//! after decryption: the decrypt time lies before the stamp, so the pipeline's stage latencies
//! (measured from `recv_tsc`) do not show it; it needs a measurement of its own.
//!
//! Allocation: rustls decrypts each record in place in its receive buffer (one `Vec`: 4 KiB,
//! grown to hold a larger record, up to 16 KiB + 325 bytes, and shrunk back to 4 KiB when it runs
//! empty, so a burst of large records costs a reallocation too), **then copies the record's
//! plaintext into a new `Vec`** (its `received_plaintext` queue), which our `read` copies into
//! the caller's buffer and frees. Sending encrypts each record into a new `Vec` too.
//! Measured with the counting allocator (`gateway/tests/tls.rs`, `tls_allocations_per_record`,
//! 2000 records each way after a warm-up): 1.00 allocation per record sent and 1.01 per record
//! received, where plain TCP makes none. So over TLS the feed's read path and the order path
//! are not allocation-free: one `malloc`/`free` pair of the record's size per record. rustls
//! 0.23's unbuffered API does not avoid it (its `ReadTraffic::next_record` pops the same
//! per-record `Vec`); in-place decryption into the caller's buffer is in rustls' next major
//! version (0.24, in development), the way to remove it.

use std::io::{self, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

/// Why TLS failed. The handshake variants name the server name we asked for.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The server's certificate was refused (unknown issuer, wrong name, expired...).
    #[error("TLS handshake with {server_name}: the server's certificate was refused: {source}")]
    Certificate {
        server_name: String,
        source: rustls::Error,
    },
    /// The handshake failed otherwise (an alert from the server, no common version or cipher
    /// suite, a malformed message).
    #[error("TLS handshake with {server_name}: {source}")]
    Handshake {
        server_name: String,
        source: rustls::Error,
    },
    /// The server closed the connection before the handshake finished.
    #[error(
        "TLS handshake with {server_name}: the connection closed after {bytes_in} bytes from the server"
    )]
    HandshakeEof { server_name: String, bytes_in: u64 },
    /// A socket error during the handshake (after it, socket errors are plain `io::Error`s).
    #[error("TLS handshake with {server_name}: {op}: {source}")]
    HandshakeIo {
        server_name: String,
        op: &'static str,
        source: io::Error,
    },
    /// A TLS protocol error after the handshake (a bad record, an alert).
    #[error("TLS connection with {server_name}: {source}")]
    Protocol {
        server_name: String,
        source: rustls::Error,
    },
    /// The host is neither a DNS name nor an IP address.
    #[error("TLS: {name:?} is not a valid server name (DNS name or IP address)")]
    ServerName { name: String },
    /// The CA certificate's PEM could not be read.
    #[error("TLS CA certificate: bad PEM: {source}")]
    CaPem {
        source: rustls::pki_types::pem::Error,
    },
    /// The CA PEM holds no certificate.
    #[error("TLS CA certificate: the PEM holds no CERTIFICATE section")]
    NoCaCertificate,
    /// A CA certificate could not be used as a trust anchor.
    #[error("TLS CA certificate {index}: {source}")]
    CaCertificate { index: usize, source: rustls::Error },
    /// rustls refused the configuration.
    #[error("TLS configuration: {source}")]
    Config { source: rustls::Error },
}

impl TlsError {
    /// Whether the error happened before the handshake finished.
    pub fn is_handshake(&self) -> bool {
        matches!(
            self,
            TlsError::Certificate { .. }
                | TlsError::Handshake { .. }
                | TlsError::HandshakeEof { .. }
                | TlsError::HandshakeIo { .. }
        )
    }

    /// Takes the [`TlsError`] out of an `io::Error` that [`Transport`] returned, or gives the
    /// `io::Error` back when it is a plain socket error.
    pub fn from_io(error: io::Error) -> Result<TlsError, io::Error> {
        if error.get_ref().is_some_and(|e| e.is::<TlsError>()) {
            let inner = error.into_inner().expect("checked above");
            Ok(*inner.downcast::<TlsError>().expect("checked above"))
        } else {
            Err(error)
        }
    }

    fn into_io(self) -> io::Error {
        let kind = match &self {
            TlsError::HandshakeEof { .. } => ErrorKind::UnexpectedEof,
            TlsError::HandshakeIo { source, .. } => source.kind(),
            _ => ErrorKind::InvalidData,
        };
        io::Error::new(kind, self)
    }
}

/// A TLS client configuration, cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct TlsConfig {
    config: Arc<ClientConfig>,
}

impl TlsConfig {
    /// For real venues: Mozilla's root certificates (`webpki-roots`).
    pub fn webpki_roots() -> Result<TlsConfig, TlsError> {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        TlsConfig::with_roots(roots)
    }

    /// Trusts only the CA certificates in `pem` (every `CERTIFICATE` section): for tests and
    /// private venues.
    pub fn with_ca_pem(pem: &[u8]) -> Result<TlsConfig, TlsError> {
        let mut roots = RootCertStore::empty();
        for (index, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
            let cert = cert.map_err(|source| TlsError::CaPem { source })?;
            roots
                .add(cert)
                .map_err(|source| TlsError::CaCertificate { index, source })?;
        }
        if roots.is_empty() {
            return Err(TlsError::NoCaCertificate);
        }
        TlsConfig::with_roots(roots)
    }

    /// Trusts only the one CA certificate `der`.
    pub fn with_ca_der(der: &[u8]) -> Result<TlsConfig, TlsError> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(der.to_vec()))
            .map_err(|source| TlsError::CaCertificate { index: 0, source })?;
        TlsConfig::with_roots(roots)
    }

    /// A configuration built by the caller (client certificates, ALPN, pinned versions...).
    pub fn from_client_config(config: Arc<ClientConfig>) -> TlsConfig {
        TlsConfig { config }
    }

    /// The rustls configuration.
    pub fn client_config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// TLS 1.2 and 1.3 with ring's cipher suites (named explicitly, so that another crate
    /// enabling a second provider in the same build cannot make the choice ambiguous), no client
    /// certificate.
    fn with_roots(roots: RootCertStore) -> Result<TlsConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsError::Config { source })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsConfig {
            config: Arc::new(config),
        })
    }
}

/// The server name to verify and send (SNI) from a `Host` value: the port is dropped, and the
/// brackets of an IPv6 literal (`[::1]:443` -> `::1`).
pub fn server_name_of_host(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        // One colon: host:port. More would be a bare IPv6 literal, kept whole.
        Some((name, port))
            if !name.contains(':')
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            name
        }
        _ => host,
    }
}

/// A rustls client connection over a non-blocking mio socket (see [`Transport`]).
pub struct TlsStream {
    tcp: TcpStream,
    conn: ClientConnection,
    server_name: Box<str>,
    /// TLS bytes read from the socket.
    bytes_in: u64,
}

enum Inner {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

/// A client connection's byte stream: a plain non-blocking TCP socket, or TLS over one.
/// See the module doc for how reads and writes behave.
pub struct Transport {
    inner: Inner,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Inner::Plain(tcp) => f.debug_tuple("Transport::Plain").field(tcp).finish(),
            Inner::Tls(tls) => f
                .debug_struct("Transport::Tls")
                .field("server_name", &tls.server_name)
                .field("handshaking", &tls.conn.is_handshaking())
                .field("bytes_in", &tls.bytes_in)
                .finish_non_exhaustive(),
        }
    }
}

impl Transport {
    /// Plain TCP.
    pub fn plain(tcp: TcpStream) -> Transport {
        Transport {
            inner: Inner::Plain(tcp),
        }
    }

    /// TLS over `tcp` (connected or still connecting: nothing is sent until the first call),
    /// verifying the server's certificate for `server_name` (a DNS name, sent as SNI, or an IP
    /// address, matched against the certificate's IP addresses).
    pub fn tls(
        tcp: TcpStream,
        config: &TlsConfig,
        server_name: &str,
    ) -> Result<Transport, TlsError> {
        let name =
            ServerName::try_from(server_name.to_owned()).map_err(|_| TlsError::ServerName {
                name: server_name.to_owned(),
            })?;
        let conn = ClientConnection::new(config.config.clone(), name)
            .map_err(|source| TlsError::Config { source })?;
        Ok(Transport {
            inner: Inner::Tls(Box::new(TlsStream {
                tcp,
                conn,
                server_name: server_name.into(),
                bytes_in: 0,
            })),
        })
    }

    /// Whether this is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.inner, Inner::Tls(_))
    }

    /// Whether the TLS handshake is still going on (`false` for plain TCP).
    pub fn is_handshaking(&self) -> bool {
        match &self.inner {
            Inner::Plain(_) => false,
            Inner::Tls(tls) => tls.conn.is_handshaking(),
        }
    }

    /// The negotiated TLS version, once the handshake is done (`None` for plain TCP).
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        match &self.inner {
            Inner::Plain(_) => None,
            Inner::Tls(tls) => tls.conn.protocol_version(),
        }
    }

    /// Whether encrypted bytes wait for the socket (always `false` for plain TCP).
    pub fn wants_write(&self) -> bool {
        match &self.inner {
            Inner::Plain(_) => false,
            Inner::Tls(tls) => tls.conn.wants_write(),
        }
    }

    /// The socket (to register with a mio `Poll`, read its error or peer address, set options).
    /// Do not read or write it directly under TLS.
    pub fn tcp(&self) -> &TcpStream {
        match &self.inner {
            Inner::Plain(tcp) => tcp,
            Inner::Tls(tls) => &tls.tcp,
        }
    }

    /// The socket, mutably (see [`tcp`](Self::tcp)).
    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        match &mut self.inner {
            Inner::Plain(tcp) => tcp,
            Inner::Tls(tls) => &mut tls.tcp,
        }
    }

    /// Writes the encrypted records rustls holds until done or the socket would block;
    /// `Ok(true)` when nothing is left. A no-op on plain TCP.
    pub fn send_pending(&mut self) -> io::Result<bool> {
        match &mut self.inner {
            Inner::Plain(_) => Ok(true),
            Inner::Tls(tls) => tls.send_pending(),
        }
    }

    /// Shuts the socket down; under TLS, first sends `close_notify` if the socket takes it
    /// (best effort: the connection is ending).
    pub fn shutdown(&mut self, how: Shutdown) -> io::Result<()> {
        if let Inner::Tls(tls) = &mut self.inner
            && matches!(how, Shutdown::Write | Shutdown::Both)
        {
            tls.conn.send_close_notify();
            let _ = tls.send_pending();
        }
        self.tcp().shutdown(how)
    }
}

impl TlsStream {
    fn server_name(&self) -> String {
        self.server_name.to_string()
    }

    /// A rustls error, classified.
    fn rustls_error(&self, source: rustls::Error, handshaking: bool) -> TlsError {
        let server_name = self.server_name();
        match source {
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                TlsError::Certificate {
                    server_name,
                    source,
                }
            }
            source if handshaking => TlsError::Handshake {
                server_name,
                source,
            },
            source => TlsError::Protocol {
                server_name,
                source,
            },
        }
    }

    /// A socket error: under the handshake it becomes [`TlsError::HandshakeIo`]; after it, it
    /// stays a plain `io::Error` (so that a reset reads as it does over plain TCP).
    fn io_error(&self, op: &'static str, source: io::Error) -> io::Error {
        if self.conn.is_handshaking() {
            TlsError::HandshakeIo {
                server_name: self.server_name(),
                op,
                source,
            }
            .into_io()
        } else {
            source
        }
    }

    fn send_pending(&mut self) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.tcp) {
                Ok(0) => return Err(self.io_error("write", ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error("write", e)),
            }
        }
        Ok(true)
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // The server closed TCP without close_notify: the end of the stream, as on
                // plain TCP (see the module doc).
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            // Handshake messages, alerts and key updates go out first.
            self.send_pending()?;
            let handshaking = self.conn.is_handshaking();
            match self.conn.read_tls(&mut self.tcp) {
                Ok(0) if handshaking => {
                    return Err(TlsError::HandshakeEof {
                        server_name: self.server_name(),
                        bytes_in: self.bytes_in,
                    }
                    .into_io());
                }
                // The EOF is recorded by rustls: the reader reports it on the next turn.
                Ok(0) => {}
                Ok(n) => self.bytes_in += n as u64,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Err(e),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_error("read", e)),
            }
            if let Err(source) = self.conn.process_new_packets() {
                // rustls queued an alert for the server: send it if the socket takes it.
                let _ = self.send_pending();
                return Err(self.rustls_error(source, handshaking).into_io());
            }
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.send_pending()?;
        let n = self.conn.writer().write(buf)?;
        if n == 0 {
            // rustls' buffer is full of records the socket has not taken yet.
            return Err(ErrorKind::WouldBlock.into());
        }
        self.send_pending()?;
        Ok(n)
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(tcp) => tcp.read(buf),
            Inner::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(tcp) => tcp.write(buf),
            Inner::Tls(tls) => tls.write(buf),
        }
    }

    /// Pushes what rustls holds; `WouldBlock` if the socket cannot take it all now.
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(tcp) => tcp.flush(),
            Inner::Tls(tls) => {
                if tls.send_pending()? {
                    Ok(())
                } else {
                    Err(ErrorKind::WouldBlock.into())
                }
            }
        }
    }
}
