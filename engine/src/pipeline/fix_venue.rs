//! The real venue: a FIX 4.4 session ([`FixSession`]) on its connection ([`FixConnection`],
//! plain TCP or TLS), behind the [`Venue`] seam. The session encodes each order at its next
//! MsgSeqNum into its outbound buffer ([`Venue::send`]); the gateway journals the order, then
//! [`Venue::flush`] lets the bytes leave and reads what came back. Reports wait in a fixed ring
//! until the gateway takes them.

use std::collections::VecDeque;
use std::net::SocketAddr;

use levibot_gateway::fix::{
    ConnectionError, ConnectionStatus, FixConnection, FixSession, REJECT_REASON_LOST_IN_FLIGHT,
    SessionEvent, SessionState,
};
use std::path::Path;

use levibot_gateway::fix::SessionSeqNums;
use levibot_gateway::tls::TlsConfig;
use levibot_gateway::ws::Backoff;
use levibot_shm::counters::{Counter, CountersWriter};
use levibot_shm::records::{
    ExecutionReport, FixSeqNums, OrderRequest, Record, SentOrder, exec_type,
};
use levibot_shm::{Appender, ShmError, StartAt, Tailer};

use super::venue::{Queued, Venue, VenueSendError};

/// Execution reports held for the gateway; a venue that sends more between two duty cycles
/// would be dropped by the session before this fills (it is counted if it does).
pub const FIX_VENUE_REPORTS_MAX: usize = 4096;

/// What happened to the session, for the operator and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FixVenueStats {
    pub logons: u64,
    pub reports: u64,
    /// Reports of fills (exec type TRADE), partial or whole.
    pub fills: u64,
    /// Reports dropped because the ring was full.
    pub reports_dropped: u64,
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
        let events = |name: &str| {
            counters.allocate(
                &format!("venue.order_entry.{name}"),
                super::stages::counter_type::EVENTS,
            )
        };
        let gauges = VenueGauges {
            up: counters.allocate("venue.order_entry.up", super::stages::counter_type::STATE)?,
            logons: events("logons")?,
            reports: events("reports")?,
            fills: events("fills")?,
            reports_dropped: events("reports_dropped")?,
            rejects: events("rejects")?,
            disconnects: events("disconnects")?,
            reconnects: events("reconnects")?,
            lost_in_flight: events("lost_in_flight")?,
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
        self.session.on_disconnected();
        if self.addr.is_some() {
            self.reconnect_at_ns = Some(now_ns + self.backoff.next_delay().as_nanos() as u64);
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
                self.reconnect_at_ns = Some(now_ns + self.backoff.next_delay().as_nanos() as u64);
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
    /// The I/O of one flush: reconnect when due, send what is queued, read what arrived.
    #[inline]
    fn poll_connection(&mut self, now_ns: u64) {
        if self.connection.is_none() {
            self.reconnect(now_ns);
        }
        let Some(connection) = self.connection.as_mut() else {
            return;
        };
        let (reports, stats, backoff) = (&mut self.reports, &mut self.stats, &mut self.backoff);
        let polled = connection.poll(&mut self.session, now_ns, |event| match event {
            SessionEvent::Report(report) => {
                stats.lost_in_flight +=
                    u64::from(report.reject_reason == REJECT_REASON_LOST_IN_FLIGHT);
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
            SessionEvent::GapDetected { .. } => {}
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
    }
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
                next_sender: last.next_sender.max(sent.map_or(1, |s| s + 1)),
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
