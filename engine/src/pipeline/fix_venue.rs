//! The real venue: a FIX 4.4 session ([`FixSession`]) on its connection ([`FixConnection`],
//! plain TCP or TLS), behind the [`Venue`] seam. The session encodes each order at its next
//! MsgSeqNum into its outbound buffer ([`Venue::send`]); the gateway journals the order, then
//! [`Venue::flush`] lets the bytes leave and reads what came back. Reports wait in a fixed ring
//! until the gateway takes them.

use std::collections::VecDeque;
use std::net::SocketAddr;

use levibot_gateway::fix::{
    ConnectionError, ConnectionStatus, FixConnection, FixSession, SessionEvent, SessionState,
};
use levibot_shm::records::{ExecutionReport, OrderRequest, exec_type};

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
}

/// A FIX session as the pipeline's venue.
pub struct FixVenue {
    session: FixSession,
    connection: Option<FixConnection>,
    reports: VecDeque<ExecutionReport>,
    stats: FixVenueStats,
    last_error: Option<ConnectionError>,
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
    /// Connects to `addr` (plain TCP) and starts logging on with `session`.
    pub fn connect(addr: SocketAddr, session: FixSession) -> Result<FixVenue, ConnectionError> {
        Ok(FixVenue::over(FixConnection::connect(addr)?, session))
    }

    /// A venue on an existing connection (TLS: [`FixConnection::connect_tls`]).
    pub fn over(connection: FixConnection, session: FixSession) -> FixVenue {
        FixVenue {
            session,
            connection: Some(connection),
            reports: VecDeque::with_capacity(FIX_VENUE_REPORTS_MAX),
            stats: FixVenueStats::default(),
            last_error: None,
        }
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
        let Some(connection) = self.connection.as_mut() else {
            return;
        };
        let (reports, stats) = (&mut self.reports, &mut self.stats);
        let polled = connection.poll(&mut self.session, now_ns, |event| match event {
            SessionEvent::Report(report) => {
                if reports.len() < FIX_VENUE_REPORTS_MAX {
                    reports.push_back(report);
                    stats.reports += 1;
                    stats.fills += u64::from(report.exec_type == exec_type::TRADE);
                } else {
                    stats.reports_dropped += 1;
                }
            }
            SessionEvent::LoggedOn { .. } => stats.logons += 1,
            SessionEvent::Rejected { .. } | SessionEvent::BadReport(_) => stats.rejects += 1,
            SessionEvent::LoggedOut { .. } | SessionEvent::Disconnected(_) => {
                stats.disconnects += 1;
            }
            SessionEvent::GapDetected { .. } => {}
        });
        match polled {
            Ok(ConnectionStatus::Closed) => {
                self.connection = None;
                self.session.on_disconnected();
            }
            Ok(_) => {}
            Err(e) => {
                self.last_error = Some(e);
                self.stats.disconnects += 1;
                self.connection = None;
                self.session.on_disconnected();
            }
        }
    }

    #[inline]
    fn poll_report(&mut self) -> Option<ExecutionReport> {
        self.reports.pop_front()
    }
}
