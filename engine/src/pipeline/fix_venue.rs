//! The real venue: a FIX 4.4 session ([`FixSession`]) on its connection ([`FixConnection`],
//! plain TCP or TLS), behind the [`Venue`] seam. The session encodes each order at its next
//! MsgSeqNum into its outbound buffer ([`Venue::send`]); the gateway journals the order, then
//! [`Venue::flush`] lets the bytes leave and reads what came back. Reports wait in a fixed ring
//! until the gateway takes them.
//!
//! **No report is dropped.** A flush hands the session only as many messages as the ring has
//! room for the reports they make ([`FixConnection::poll_bounded`]); the rest wait in the
//! connection's read buffer and the socket, and the session's own queued reports (orders lost
//! in flight) wait in the session, until the gateway takes reports. A report that still finds
//! the ring full is counted in `venue.order_entry.reports_dropped`, and an inbound gap the venue
//! does not fill ([`SessionEvent::GapUnfilled`]) in `venue.order_entry.gaps_unfilled`: a fill
//! may be missing, so the daemon watches both, halts and asks for a mass status.

use std::collections::VecDeque;
use std::net::SocketAddr;

use levibot_gateway::fix::{
    ConnectionError, ConnectionStatus, FixConnection, FixSession, SessionEvent, SessionState,
};
use std::path::Path;

use levibot_gateway::fix::SessionSeqNums;
use levibot_gateway::tls::TlsConfig;
use levibot_gateway::ws::Backoff;
use levibot_shm::codes::{counter_type, label, reject_reason};
use levibot_shm::counters::{Counter, CountersWriter};
use levibot_shm::records::{
    ExecutionReport, FixSeqNums, OrderRequest, Record, SentOrder, exec_type,
};
use levibot_shm::{Appender, ShmError, StartAt, Tailer};

use super::venue::{Queued, Venue, VenueSendError};

/// Execution reports held for the gateway; when they are all taken, the venue's next messages
/// wait in the socket (see the module doc).
pub const FIX_VENUE_REPORTS_MAX: usize = 4096;

/// What happened to the session, for the operator and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FixVenueStats {
    pub logons: u64,
    pub reports: u64,
    /// Reports of fills (exec type TRADE), partial or whole.
    pub fills: u64,
    /// Reports dropped because the ring was full (the last-resort signal: backpressure makes it
    /// impossible in normal operation).
    pub reports_dropped: u64,
    /// Inbound gaps given up ([`SessionEvent::GapUnfilled`]): messages never received.
    pub gaps_unfilled: u64,
    /// Session Rejects of our non-order messages, and reports we could not read.
    pub rejects: u64,
    /// The session ended (logout, disconnect, or an I/O error).
    pub disconnects: u64,
    /// Connections made again after a drop.
    pub reconnects: u64,
    /// Orders the venue never received (gap-filled after it asked for a resend): reported
    /// REJECTED, so that risk and the strategy let them go.
    pub lost_in_flight: u64,
}

/// A FIX session as the pipeline's venue.
pub struct FixVenue {
    session: FixSession,
    connection: Option<FixConnection>,
    /// Where to reconnect after a drop (`None`: no reconnect), and over TLS with this server
    /// name and configuration if set.
    addr: Option<SocketAddr>,
    tls: Option<(String, TlsConfig)>,
    backoff: Backoff,
    /// When the next connect is due, while disconnected.
    reconnect_at_ns: Option<u64>,
    /// Where the sequence numbers are journaled when they change (a restart resumes there).
    journal: Option<(Appender, SessionSeqNums)>,
    reports: VecDeque<ExecutionReport>,
    stats: FixVenueStats,
    last_error: Option<ConnectionError>,
    /// Where the stats and whether the session is up are published, and what was last.
    gauges: Option<(VenueGauges, FixVenueStats, bool)>,
}

/// `venue.order_entry.*` counters: `up` (1 while logged on) and the [`FixVenueStats`].
struct VenueGauges {
    up: Counter,
    logons: Counter,
    reports: Counter,
    fills: Counter,
    reports_dropped: Counter,
    gaps_unfilled: Counter,
    rejects: Counter,
    disconnects: Counter,
    reconnects: Counter,
    lost_in_flight: Counter,
}

impl std::fmt::Debug for FixVenue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixVenue")
            .field("state", &self.session.state())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl FixVenue {
    /// Connects to `addr` (plain TCP) and starts logging on with `session`. After a drop it
    /// connects again (backoff with jitter between attempts) and logs on with the same sequence
    /// numbers, so the session continues; orders sent while it is down are refused.
    pub fn connect(addr: SocketAddr, session: FixSession) -> Result<FixVenue, ConnectionError> {
        let mut venue = FixVenue::over(FixConnection::connect(addr)?, session);
        venue.addr = Some(addr);
        Ok(venue)
    }

    /// [`connect`](Self::connect) over TLS: the venue's certificate checked against `tls` for
    /// `server_name`; reconnects over TLS too.
    pub fn connect_tls(
        addr: SocketAddr,
        server_name: &str,
        tls: &TlsConfig,
        session: FixSession,
    ) -> Result<FixVenue, ConnectionError> {
        let connection = FixConnection::connect_tls(addr, server_name, tls)?;
        let mut venue = FixVenue::over(connection, session);
        venue.addr = Some(addr);
        venue.tls = Some((server_name.to_owned(), tls.clone()));
        Ok(venue)
    }

    /// A venue on an existing connection; it does not reconnect by itself.
    pub fn over(connection: FixConnection, session: FixSession) -> FixVenue {
        FixVenue {
            session,
            connection: Some(connection),
            addr: None,
            tls: None,
            backoff: Backoff::new(u64::from(std::process::id())),
            reconnect_at_ns: None,
            journal: None,
            reports: VecDeque::with_capacity(FIX_VENUE_REPORTS_MAX),
            stats: FixVenueStats::default(),
            last_error: None,
            gauges: None,
        }
    }

    /// Publishes whether the session is up and its stats as `venue.order_entry.*` counters
    /// (updated when they change, from the gateway's duty cycle).
    pub fn with_counters(mut self, counters: &CountersWriter) -> Result<FixVenue, ShmError> {
        let events = |label: &str| counters.allocate(label, counter_type::EVENTS);
        let gauges = VenueGauges {
            up: counters.allocate(label::ORDER_ENTRY_UP, counter_type::STATE)?,
            logons: events(label::ORDER_ENTRY_LOGONS)?,
            reports: events(label::ORDER_ENTRY_REPORTS)?,
            fills: events(label::ORDER_ENTRY_FILLS)?,
            reports_dropped: events(label::ORDER_ENTRY_REPORTS_DROPPED)?,
            gaps_unfilled: events(label::ORDER_ENTRY_GAPS_UNFILLED)?,
            rejects: events(label::ORDER_ENTRY_REJECTS)?,
            disconnects: events(label::ORDER_ENTRY_DISCONNECTS)?,
            reconnects: events(label::ORDER_ENTRY_RECONNECTS)?,
            lost_in_flight: events(label::ORDER_ENTRY_LOST_IN_FLIGHT)?,
        };
        self.gauges = Some((gauges, FixVenueStats::default(), false));
        self.publish();
        Ok(self)
    }

    /// Publishes what changed since the last call.
    #[inline]
    fn publish(&mut self) {
        let up = self.is_up();
        let Some((g, last, last_up)) = self.gauges.as_mut() else {
            return;
        };
        if *last == self.stats && *last_up == up {
            return;
        }
        let s = &self.stats;
        g.up.set(i64::from(up));
        g.logons.set(s.logons as i64);
        g.reports.set(s.reports as i64);
        g.fills.set(s.fills as i64);
        g.reports_dropped.set(s.reports_dropped as i64);
        g.gaps_unfilled.set(s.gaps_unfilled as i64);
        g.rejects.set(s.rejects as i64);
        g.disconnects.set(s.disconnects as i64);
        g.reconnects.set(s.reconnects as i64);
        g.lost_in_flight.set(s.lost_in_flight as i64);
        (*last, *last_up) = (self.stats, up);
    }

    /// Journals the session's sequence numbers (a [`FixSeqNums`] record) whenever they change,
    /// through `appender` (its own writer id), so that [`recover_seq_nums`] finds them after a
    /// restart.
    pub fn with_journal(mut self, appender: Appender) -> FixVenue {
        self.journal = Some((appender, SessionSeqNums::default()));
        self
    }

    pub fn session(&self) -> &FixSession {
        &self.session
    }

    pub fn stats(&self) -> FixVenueStats {
        self.stats
    }

    /// Whether the session is logged on.
    pub fn is_up(&self) -> bool {
        self.connection.is_some() && self.session.state() == SessionState::Active
    }

    /// The error that ended the connection, if one did.
    pub fn last_error(&self) -> Option<&ConnectionError> {
        self.last_error.as_ref()
    }

    /// Logs out (cold path); [`flush`](Venue::flush) completes it.
    pub fn logout(&mut self, now_ns: u64) {
        let _ = self.session.logout(now_ns);
    }
}

impl FixVenue {
    /// Appends the sequence numbers if they moved since the last append.
    #[inline]
    fn journal_seq_nums(&mut self) {
        let now = self.session.seq_nums();
        if let Some((appender, last)) = self.journal.as_mut()
            && *last != now
        {
            let record = FixSeqNums {
                next_sender: now.next_sender,
                next_target: now.next_target,
            };
            if appender
                .append(FixSeqNums::RECORD_TYPE, record.to_bytes())
                .is_ok()
            {
                *last = now;
            }
        }
    }

    /// The connection is gone: the session keeps its sequence numbers; a reconnect is due
    /// after the backoff.
    fn dropped(&mut self, now_ns: u64) {
        self.connection = None;
        // Queues an open gap as unfilled; taken by the next `take_queued`.
        self.session.on_disconnected();
        if self.addr.is_some() {
            self.reconnect_at_ns = Some(now_ns.saturating_add(delay_ns(&mut self.backoff)));
        }
    }

    /// Connects again when the backoff allows (a non-blocking connect: it completes, and the
    /// Logon goes out, in the following polls). Cold path.
    fn reconnect(&mut self, now_ns: u64) {
        let (Some(addr), Some(at)) = (self.addr, self.reconnect_at_ns) else {
            return;
        };
        if now_ns < at {
            return;
        }
        let connected = match &self.tls {
            None => FixConnection::connect(addr),
            Some((name, tls)) => FixConnection::connect_tls(addr, name, tls),
        };
        match connected {
            Ok(connection) => {
                self.connection = Some(connection);
                self.reconnect_at_ns = None;
                self.stats.reconnects += 1;
            }
            Err(e) => {
                self.last_error = Some(e);
                self.reconnect_at_ns = Some(now_ns.saturating_add(delay_ns(&mut self.backoff)));
            }
        }
    }
}

impl Venue for FixVenue {
    #[inline]
    fn send(&mut self, order: &OrderRequest, now_ns: u64) -> Result<Queued, VenueSendError> {
        if !self.is_up() {
            return Err(VenueSendError::NotConnected);
        }
        let before = self.session.outbound().len();
        let msg_seq_num = self
            .session
            .send_order(order, now_ns)
            .map_err(|_| VenueSendError::NotConnected)?;
        Ok(Queued {
            msg_seq_num,
            encoded_len: (self.session.outbound().len() - before) as u32,
        })
    }

    #[inline]
    fn flush(&mut self, now_ns: u64) {
        self.poll_connection(now_ns);
        self.publish();
    }

    #[inline]
    fn poll_report(&mut self) -> Option<ExecutionReport> {
        self.reports.pop_front()
    }

    fn retract(&mut self, queued: &Queued) -> bool {
        self.session
            .retract_order(queued.msg_seq_num, queued.encoded_len as usize)
    }
}

impl FixVenue {
    /// The I/O of one flush: reconnect when due, send what is queued, read what arrived, as
    /// far as the report ring has room.
    #[inline]
    fn poll_connection(&mut self, now_ns: u64) {
        self.take_queued();
        if self.connection.is_none() {
            self.reconnect(now_ns);
        }
        let Some(connection) = self.connection.as_mut() else {
            return;
        };
        let room = FIX_VENUE_REPORTS_MAX.saturating_sub(self.reports.len());
        let (reports, stats, backoff) = (&mut self.reports, &mut self.stats, &mut self.backoff);
        let polled = connection.poll_bounded(&mut self.session, now_ns, room, |event| {
            on_event(reports, stats, backoff, event);
        });
        self.journal_seq_nums();
        match polled {
            Ok(ConnectionStatus::Closed) => self.dropped(now_ns),
            Ok(_) => {}
            Err(e) => {
                self.last_error = Some(e);
                self.stats.disconnects += 1;
                self.dropped(now_ns);
            }
        }
        self.take_queued();
    }

    /// Takes the session's queued events (lost orders' reports, a gap given up when the
    /// connection went) while the ring has room for reports, in order.
    #[inline]
    fn take_queued(&mut self) {
        while let Some(next) = self.session.peek_event() {
            if matches!(next, SessionEvent::Report(_))
                && self.reports.len() >= FIX_VENUE_REPORTS_MAX
            {
                return;
            }
            let Some(event) = self.session.take_event() else {
                return;
            };
            on_event(&mut self.reports, &mut self.stats, &mut self.backoff, event);
        }
    }
}

/// One session event: a report into the ring (counted dropped if it has no room), the rest
/// into the stats.
#[inline]
fn on_event(
    reports: &mut VecDeque<ExecutionReport>,
    stats: &mut FixVenueStats,
    backoff: &mut Backoff,
    event: SessionEvent,
) {
    match event {
        SessionEvent::Report(report) => {
            stats.lost_in_flight +=
                u64::from(report.reject_reason == reject_reason::LOST_IN_FLIGHT);
            if reports.len() < FIX_VENUE_REPORTS_MAX {
                reports.push_back(report);
                stats.reports += 1;
                stats.fills += u64::from(report.exec_type == exec_type::TRADE);
            } else {
                stats.reports_dropped += 1;
            }
        }
        SessionEvent::LoggedOn { .. } => {
            stats.logons += 1;
            backoff.reset();
        }
        SessionEvent::Rejected { .. } | SessionEvent::BadReport(_) => stats.rejects += 1,
        SessionEvent::LoggedOut { .. } | SessionEvent::Disconnected(_) => {
            stats.disconnects += 1;
        }
        SessionEvent::GapUnfilled { .. } => stats.gaps_unfilled += 1,
        SessionEvent::GapDetected { .. } => {}
    }
}

/// The backoff's next delay, in nanoseconds (saturating).
fn delay_ns(backoff: &mut Backoff) -> u64 {
    u64::try_from(backoff.next_delay().as_nanos()).unwrap_or(u64::MAX)
}

/// The sequence numbers a restarted session resumes from, read from the journal in `dir`: the
/// last journaled [`FixSeqNums`], and past every order journaled as sent (a `SentOrder` is
/// journaled before its bytes leave, so a crash between the two cannot reuse its number).
/// `None` if the journal holds neither. An inbound number that is behind only makes the session
/// ask for a resend, the safe direction.
pub fn recover_seq_nums(dir: &Path) -> Result<Option<SessionSeqNums>, ShmError> {
    let mut tailer = Tailer::open(dir, StartAt::Beginning)?;
    let mut last: Option<FixSeqNums> = None;
    let mut sent_max: Option<u64> = None;
    while tailer
        .poll(4096, |frame| {
            if frame.record_type == FixSeqNums::RECORD_TYPE {
                last = FixSeqNums::from_bytes(frame.payload).or(last);
            } else if frame.record_type == SentOrder::RECORD_TYPE
                && let Some(sent) = SentOrder::from_bytes(frame.payload)
            {
                sent_max = Some(sent_max.map_or(sent.msg_seq_num, |m| m.max(sent.msg_seq_num)));
            }
        })?
        .frames
        > 0
    {}
    Ok(match (last, sent_max) {
        (None, None) => None,
        (last, sent) => {
            let last = last.unwrap_or(FixSeqNums {
                next_sender: 1,
                next_target: 1,
            });
            Some(SessionSeqNums {
                next_sender: last
                    .next_sender
                    .max(sent.map_or(1, |s| s.saturating_add(1))),
                next_target: last.next_target,
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use levibot_shm::records::OrderRequest;
    use levibot_shm::{Journal, JournalConfig, RetentionPolicy};

    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use levibot_gateway::capture::Recording;
    use levibot_gateway::decimal::parse_units;
    use levibot_gateway::fix::{SessionConfig, checksum, parse_message};
    use levibot_gateway::instrument::InstrumentTable;
    use levibot_shm::records::{ord_type, order_kind, side, time_in_force};

    /// 2024-02-29T12:00:00Z: the clock stands still, so no timer fires.
    const T0: u64 = 1_709_208_000_000_000_000;

    /// A message from the venue (EXEC -> LEVI); `body` is `tag=value|..`.
    fn venue_message(msg_type: &str, seq: u64, body: &str) -> Vec<u8> {
        let body =
            format!("35={msg_type}|34={seq}|49=EXEC|52=20240229-12:00:00.000|56=LEVI|{body}")
                .replace('|', "\x01");
        let mut msg = format!("8=FIX.4.4\x019={}\x01{body}", body.len()).into_bytes();
        let sum = checksum(&msg);
        msg.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
        msg
    }

    fn session_config() -> SessionConfig {
        SessionConfig {
            sender_comp_id: "LEVI".into(),
            target_comp_id: "EXEC".into(),
            heart_bt_int_s: 30,
            reset_seq_num: false,
            binance_logon: None,
        }
    }

    fn corpus_table() -> InstrumentTable {
        InstrumentTable::new(Recording::testdata().unwrap().instruments().unwrap()).unwrap()
    }

    /// Flushes `venue` until `peer` has read bytes containing `wanted`.
    fn flush_until_peer_reads(venue: &mut FixVenue, peer: &mut TcpStream, wanted: &[u8]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut received = Vec::new();
        while !received.windows(wanted.len()).any(|w| w == wanted) {
            assert!(Instant::now() < deadline, "the peer did not get {wanted:?}");
            venue.flush(T0);
            let mut buf = [0u8; 1024];
            if let Ok(n) = peer.read(&mut buf) {
                received.extend_from_slice(&buf[..n]);
            }
        }
    }

    #[test]
    fn a_gap_open_when_the_connection_drops_is_counted_unfilled() {
        let dir = tempfile::tempdir().unwrap();
        let counters = CountersWriter::create(dir.path().join("counters.lvc"), 64, 1).unwrap();
        let session =
            FixSession::new(session_config(), corpus_table(), SessionSeqNums::default()).unwrap();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let connection = FixConnection::connect(listener.local_addr().unwrap()).unwrap();
        let mut venue = FixVenue::over(connection, session)
            .with_counters(&counters)
            .unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        peer.set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        flush_until_peer_reads(&mut venue, &mut peer, b"\x0135=A\x01");
        peer.write_all(&venue_message("A", 1, "98=0|108=30|"))
            .unwrap();
        // The venue's 3 arrives when 2 is expected: our ResendRequest goes out. Then the
        // connection drops before the resend.
        peer.write_all(&venue_message("0", 3, "")).unwrap();
        flush_until_peer_reads(&mut venue, &mut peer, b"\x0135=2\x01");
        assert!(venue.is_up());
        assert_eq!(venue.stats().gaps_unfilled, 0);
        drop(peer);
        let deadline = Instant::now() + Duration::from_secs(30);
        while venue.is_up() {
            assert!(Instant::now() < deadline, "no disconnect");
            venue.flush(T0);
            std::thread::sleep(Duration::from_millis(1));
        }
        venue.flush(T0);
        assert_eq!(venue.stats().gaps_unfilled, 1);
        let published = levibot_shm::counters::CountersReader::open(counters.path())
            .unwrap()
            .counters()
            .into_iter()
            .find(|c| c.label == label::ORDER_ENTRY_GAPS_UNFILLED)
            .map(|c| c.value);
        assert_eq!(published, Some(1));
    }

    /// The venue floods more reports than the ring holds, with a ResendRequest that loses our
    /// orders in the middle, while the gateway takes none; then the gateway takes a few per
    /// flush. Every report arrives, in order, and none is dropped: the rest waited in the
    /// socket and in the session.
    #[test]
    fn a_flood_of_reports_waits_in_the_socket_and_none_is_dropped() {
        const FLOOD: u64 = FIX_VENUE_REPORTS_MAX as u64 + 1000;
        const ORDERS: u64 = 10;
        const TIMEOUT: Duration = Duration::from_secs(60);
        let table = corpus_table();
        let nknusdt = table.find(b"NKNUSDT").unwrap().clone();
        let session = FixSession::new(session_config(), table, SessionSeqNums::default()).unwrap();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let connection = FixConnection::connect(listener.local_addr().unwrap()).unwrap();
        let mut venue = FixVenue::over(connection, session);

        // The venue: answers the Logon, waits for our orders, then floods.
        let (go, flood) = mpsc::channel::<()>();
        let venue_side = std::thread::spawn(move || -> TcpStream {
            let (mut stream, _) = listener.accept().unwrap();
            let mut received = Vec::new();
            while parse_message(&received).is_err() {
                let mut buf = [0u8; 1024];
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "no Logon");
                received.extend_from_slice(&buf[..n]);
            }
            stream
                .write_all(&venue_message("A", 1, "98=0|108=30|"))
                .unwrap();
            flood.recv().unwrap();
            let report = |seq: u64, id: u64| {
                venue_message(
                    "8",
                    seq,
                    &format!(
                        "11={id}|37={id}|17={id}|150=F|39=2|54=1|55=NKNUSDT|31=0.3513|32=1|14=1|151=0|"
                    ),
                )
            };
            let mut seq = 2;
            for id in 0..FLOOD {
                if id == FLOOD - 500 {
                    // Our orders are numbers 2 ..= 1 + ORDERS.
                    stream
                        .write_all(&venue_message("2", seq, "7=2|16=0|"))
                        .unwrap();
                    seq += 1;
                }
                stream.write_all(&report(seq, id)).unwrap();
                seq += 1;
            }
            // Our side stays open (unread bytes would make a close a reset).
            stream.shutdown(Shutdown::Write).unwrap();
            stream
        });

        let deadline = Instant::now() + TIMEOUT;
        while !venue.is_up() {
            assert!(Instant::now() < deadline, "no logon");
            venue.flush(T0);
            std::thread::sleep(Duration::from_millis(1));
        }
        let px = parse_units(b"0.3513", nknusdt.price_scale).unwrap();
        let qty = parse_units(b"1", nknusdt.qty_scale).unwrap();
        for i in 0..ORDERS {
            let order = OrderRequest {
                client_order_id: 1_000_000 + i,
                px,
                qty,
                instrument_id: nknusdt.id,
                kind: order_kind::NEW,
                side: side::BUY,
                ord_type: ord_type::LIMIT,
                time_in_force: time_in_force::GTC,
                ..OrderRequest::default()
            };
            venue.send(&order, T0).unwrap();
        }
        venue.flush(T0);
        go.send(()).unwrap();

        // The gateway takes nothing: the ring fills, and nothing more is read or dropped.
        while venue.stats().reports < FIX_VENUE_REPORTS_MAX as u64 {
            assert!(Instant::now() < deadline, "the ring did not fill");
            venue.flush(T0);
        }
        for _ in 0..200 {
            venue.flush(T0);
            std::thread::sleep(Duration::from_micros(200));
        }
        assert_eq!(venue.stats().reports, FIX_VENUE_REPORTS_MAX as u64);
        assert_eq!(venue.stats().reports_dropped, 0);

        // The gateway takes three a flush: everything arrives, in order.
        let (mut filled, mut lost) = (Vec::new(), Vec::new());
        while (filled.len() + lost.len()) < (FLOOD + ORDERS) as usize {
            assert!(
                Instant::now() < deadline,
                "{} fills and {} lost orders of {FLOOD} and {ORDERS}",
                filled.len(),
                lost.len()
            );
            venue.flush(T0);
            for _ in 0..3 {
                let Some(report) = venue.poll_report() else {
                    break;
                };
                if report.reject_reason == reject_reason::LOST_IN_FLIGHT {
                    lost.push(report.client_order_id);
                } else {
                    filled.push(report.client_order_id);
                }
            }
        }
        for _ in 0..100 {
            venue.flush(T0);
        }
        assert_eq!(venue.poll_report(), None);
        assert_eq!(filled, (0..FLOOD).collect::<Vec<_>>());
        assert_eq!(lost, (1_000_000..1_000_000 + ORDERS).collect::<Vec<_>>());
        let stats = venue.stats();
        assert_eq!(stats.reports_dropped, 0);
        assert_eq!(stats.reports, FLOOD + ORDERS);
        assert_eq!(stats.fills, FLOOD);
        assert_eq!(stats.lost_in_flight, ORDERS);
        assert_eq!(stats.gaps_unfilled, 0);
        assert_eq!(venue.session().seq_nums().next_target, FLOOD + 3);
        drop(venue_side.join().unwrap());
    }

    #[test]
    fn sequence_numbers_are_recovered_past_every_sent_order() {
        let dir = tempfile::tempdir().unwrap();
        let config = JournalConfig {
            dir: dir.path().to_owned(),
            segment_size: 1 << 20,
            prefault: false,
            retention: RetentionPolicy::keep_all(),
        };
        let journal = Journal::open(&config).unwrap();
        assert_eq!(
            recover_seq_nums(dir.path()).unwrap(),
            None,
            "nothing journaled"
        );
        let mut appender = journal.appender(5).unwrap();
        let seq = |next_sender, next_target| FixSeqNums {
            next_sender,
            next_target,
        };
        appender
            .append(FixSeqNums::RECORD_TYPE, seq(5, 3).to_bytes())
            .unwrap();
        appender
            .append(FixSeqNums::RECORD_TYPE, seq(10, 7).to_bytes())
            .unwrap();
        let sent = SentOrder {
            request: OrderRequest::default(),
            msg_seq_num: 12,
            ..SentOrder::default()
        };
        appender
            .append(SentOrder::RECORD_TYPE, sent.to_bytes())
            .unwrap();
        // The last record says 10, but order 12 was journaled as sent (its bytes may have left
        // before the crash): resume at 13.
        assert_eq!(
            recover_seq_nums(dir.path()).unwrap(),
            Some(SessionSeqNums {
                next_sender: 13,
                next_target: 7
            })
        );
    }
}
