//! [`FixConnection`]: a [`FixSession`] over a non-blocking mio [`TcpStream`], plain
//! ([`FixConnection::connect`]) or under TLS ([`FixConnection::connect_tls`], through
//! [`Transport`]).
//!
//! The connection owns the socket and one fixed read buffer; the session owns the outbound
//! buffer. [`FixConnection::poll`] never blocks in the kernel: it finishes a pending connect
//! (and then writes the Logon), writes what the session has queued until the socket would
//! block, reads until it would block, and hands each complete message to the session; a
//! partial message stays in the buffer until the rest arrives. The caller decides how to
//! wait between polls (spin, sleep, or a mio `Poll` with [`FixConnection::stream_mut`]
//! registered).
//!
//! **Backpressure.** [`FixConnection::poll_bounded`] takes how many reports the caller has room
//! for: it hands the session a message only while the caller can take what one message makes
//! (one report, and the session's queued events, which wait in the session), and otherwise
//! leaves the bytes in the read buffer; a full read buffer is not read into, so the rest waits
//! in the kernel and TCP slows the venue down. Nothing is dropped for lack of room. A peer that
//! closed while messages wait is closed only once they are handed over.
//!
//! Over TLS the Logon is written as soon as TCP connects: rustls holds it until its handshake is
//! done, and the handshake progresses inside the same polls (reads and writes drive it), so the
//! session's logon timeout bounds the TLS handshake too. A TLS failure is
//! [`ConnectionError::Tls`].

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpStream;

use super::{FixSession, SessionError, SessionEvent, SessionState};
use crate::fix::FIX_INBOUND_LEN_MAX;
use crate::tls::{TlsConfig, TlsError, Transport};

/// Size of the read buffer, in bytes: room for the longest message the reader accepts
/// (a body of [`FIX_INBOUND_LEN_MAX`] and its header and trailer) several times over.
pub const CONNECTION_READ_BUF_LEN: usize = 64 * 1024;
const _: () = assert!(CONNECTION_READ_BUF_LEN >= 2 * (FIX_INBOUND_LEN_MAX + 64));

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionStatus {
    /// The TCP connect is in progress.
    Connecting,
    /// Connected; the session is in the state it says.
    Open,
    /// The peer closed, or the session finished and its last bytes were sent: drop the
    /// connection (the session keeps its sequence numbers for the next one).
    Closed,
}

/// Why the connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("connect to {addr}: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error("socket I/O: {0}")]
    Io(io::Error),
    #[error(transparent)]
    Session(#[from] SessionError),
    /// TLS failed: the handshake (certificate, alert, a close during it) or a record after it.
    #[error(transparent)]
    Tls(TlsError),
}

impl From<io::Error> for ConnectionError {
    /// A transport error: a TLS failure becomes [`ConnectionError::Tls`].
    fn from(error: io::Error) -> ConnectionError {
        match TlsError::from_io(error) {
            Ok(tls) => ConnectionError::Tls(tls),
            Err(io) => ConnectionError::Io(io),
        }
    }
}

/// A [`FixSession`]'s TCP transport (see the module doc).
pub struct FixConnection {
    stream: Transport,
    addr: SocketAddr,
    status: ConnectionStatus,
    read_buf: Box<[u8]>,
    /// Received bytes not yet handed to the session: `read_buf[read_start..read_end]`.
    read_start: usize,
    read_end: usize,
    /// The peer closed its side (messages may still wait in the buffer).
    peer_closed: bool,
}

impl std::fmt::Debug for FixConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixConnection")
            .field("addr", &self.addr)
            .field("stream", &self.stream)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl FixConnection {
    /// Starts a non-blocking connect to `addr`. [`poll`](Self::poll) completes it and logs on.
    pub fn connect(addr: SocketAddr) -> Result<FixConnection, ConnectionError> {
        let tcp =
            TcpStream::connect(addr).map_err(|source| ConnectionError::Connect { addr, source })?;
        Ok(FixConnection::over(addr, Transport::plain(tcp)))
    }

    /// [`connect`](Self::connect) with TLS: the venue's certificate is verified against `tls`'s
    /// roots for `server_name` (a DNS name, also sent as SNI, or an IP address).
    pub fn connect_tls(
        addr: SocketAddr,
        server_name: &str,
        tls: &TlsConfig,
    ) -> Result<FixConnection, ConnectionError> {
        let tcp =
            TcpStream::connect(addr).map_err(|source| ConnectionError::Connect { addr, source })?;
        let stream = Transport::tls(tcp, tls, server_name).map_err(ConnectionError::Tls)?;
        Ok(FixConnection::over(addr, stream))
    }

    fn over(addr: SocketAddr, stream: Transport) -> FixConnection {
        FixConnection {
            stream,
            addr,
            status: ConnectionStatus::Connecting,
            read_buf: vec![0; CONNECTION_READ_BUF_LEN].into_boxed_slice(),
            read_start: 0,
            read_end: 0,
            peer_closed: false,
        }
    }

    /// The socket, to register with a mio `Poll` (readable and writable interest). Under TLS,
    /// only for registration and socket options: reading or writing it would break the stream.
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        self.stream.tcp_mut()
    }

    /// The byte stream: plain TCP or TLS (its version, whether the handshake is done).
    pub fn transport(&self) -> &Transport {
        &self.stream
    }

    /// Where the connection is.
    pub fn status(&self) -> ConnectionStatus {
        self.status
    }

    /// One round of work: connect, write, read, hand messages to `session` (each event to
    /// `on_event`), run its timers. `now_ns` is the caller's clock (Unix nanoseconds: it is
    /// also SendingTime). Returns the status after the round.
    pub fn poll(
        &mut self,
        session: &mut FixSession,
        now_ns: u64,
        on_event: impl FnMut(SessionEvent),
    ) -> Result<ConnectionStatus, ConnectionError> {
        self.poll_bounded(session, now_ns, usize::MAX, on_event)
    }

    /// [`poll`](Self::poll) that hands `on_event` at most `reports_room`
    /// [`SessionEvent::Report`]s (see the module doc's backpressure): messages and queued
    /// events that would exceed it wait for a later poll, in order.
    pub fn poll_bounded(
        &mut self,
        session: &mut FixSession,
        now_ns: u64,
        mut reports_room: usize,
        mut on_event: impl FnMut(SessionEvent),
    ) -> Result<ConnectionStatus, ConnectionError> {
        if self.status == ConnectionStatus::Connecting {
            if let Some(error) = self.stream.tcp().take_error()? {
                return Err(ConnectionError::Connect {
                    addr: self.addr,
                    source: error,
                });
            }
            match self.stream.tcp().peer_addr() {
                Ok(_) => {
                    self.status = ConnectionStatus::Open;
                    self.stream.tcp().set_nodelay(true)?;
                    session.on_disconnected();
                    session.logon(now_ns)?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    return Ok(self.status);
                }
                Err(source) => {
                    return Err(ConnectionError::Connect {
                        addr: self.addr,
                        source,
                    });
                }
            }
        }
        if self.status == ConnectionStatus::Closed {
            return Ok(self.status);
        }
        if let Some(event) = session.poll_timers(now_ns) {
            deliver(event, &mut reports_room, &mut on_event);
        }
        let mut waiting = !deliver_queued(session, &mut reports_room, &mut on_event);
        if !self.peer_closed {
            self.flush(session)?;
            self.peer_closed = self.read()?;
        }
        while !waiting && self.read_start < self.read_end {
            // One message makes at most one report; its queued events wait in the session.
            if reports_room == 0 {
                waiting = true;
                break;
            }
            let handled = session.handle(&self.read_buf[self.read_start..self.read_end], now_ns);
            self.read_start += handled.consumed;
            if let Some(event) = handled.event {
                deliver(event, &mut reports_room, &mut on_event);
            }
            waiting = !deliver_queued(session, &mut reports_room, &mut on_event);
            if handled.consumed == 0 {
                break;
            }
        }
        if self.read_start == self.read_end {
            self.read_start = 0;
            self.read_end = 0;
        }
        if !self.peer_closed {
            self.flush(session)?;
        } else {
            // Best effort (an answer to its Logout, say): the peer may be gone.
            let _ = self.flush(session);
        }
        // Closed, its last bytes sent (or nobody left to read them): what still waits would
        // be ignored by the session anyway.
        let finished = session.state() == SessionState::Closed
            && (session.outbound().is_empty() || self.peer_closed);
        if (self.peer_closed && !waiting) || finished {
            self.status = ConnectionStatus::Closed;
            session.on_disconnected();
            deliver_queued(session, &mut reports_room, &mut on_event);
            let _ = self.stream.shutdown(std::net::Shutdown::Both);
        }
        Ok(self.status)
    }

    /// Writes the session's outbound bytes until done or the socket would block.
    fn flush(&mut self, session: &mut FixSession) -> Result<(), ConnectionError> {
        while !session.outbound().is_empty() {
            match self.stream.write(session.outbound()) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(n) => session.consume_outbound(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        // TLS records rustls still holds (a no-op on plain TCP).
        self.stream.send_pending()?;
        Ok(())
    }

    /// Reads until the socket would block or the buffer is full; `true` if the peer closed.
    fn read(&mut self) -> Result<bool, ConnectionError> {
        if self.read_start > 0 {
            self.read_buf.copy_within(self.read_start..self.read_end, 0);
            self.read_end -= self.read_start;
            self.read_start = 0;
        }
        while self.read_end < self.read_buf.len() {
            match self.stream.read(&mut self.read_buf[self.read_end..]) {
                Ok(0) => return Ok(true),
                Ok(n) => self.read_end += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A reset is the peer going away, as a close is; not during a TLS handshake,
                // where it is a failed handshake (a `TlsError` inside the `io::Error`).
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset && e.get_ref().is_none() => {
                    return Ok(true);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(false)
    }
}

/// Hands `event` on, counting a report against `reports_room`.
#[inline]
fn deliver(event: SessionEvent, reports_room: &mut usize, on_event: &mut impl FnMut(SessionEvent)) {
    if matches!(event, SessionEvent::Report(_)) {
        *reports_room = reports_room.saturating_sub(1);
    }
    on_event(event);
}

/// Hands on the session's queued events, in order, while there is room for reports. `false`
/// if some wait.
#[inline]
fn deliver_queued(
    session: &mut FixSession,
    reports_room: &mut usize,
    on_event: &mut impl FnMut(SessionEvent),
) -> bool {
    while let Some(next) = session.peek_event() {
        if matches!(next, SessionEvent::Report(_)) && *reports_room == 0 {
            return false;
        }
        if let Some(event) = session.take_event() {
            deliver(event, reports_room, on_event);
        }
    }
    true
}
