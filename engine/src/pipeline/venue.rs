//! Where the gateway stage's order bytes go, and where execution reports come from. Issue 5's
//! FIX session over TCP is the real venue; here are the seam and an in-process stand-in for
//! benchmarks and tests.

use std::collections::VecDeque;

use levibot_shm::records::{ExecutionReport, OrderRequest, exec_type, order_kind};

/// The venue side of the gateway. Hot path: neither call may allocate or lock; `send` may do
/// socket I/O.
pub trait Venue: Send {
    /// The order's venue bytes are ready: send them.
    fn send(&mut self, order: &OrderRequest, bytes: &[u8]);
    /// The next execution report the venue sent, if any. Reports wait in the venue (a socket's
    /// buffer) while the gateway cannot pass them on.
    fn poll_report(&mut self) -> Option<ExecutionReport>;
}

/// Reports an [`AckVenue`] can hold before a report would be lost: it panics then, since it
/// stands in for a socket and a test that outruns it is wrong.
pub const ACK_VENUE_REPORTS_MAX: usize = 1 << 16;

/// A venue that accepts every order at once and never fills: a new order is acknowledged
/// (`exec_type` NEW), a replace is REPLACED (reported under the new id), a cancel is CANCELED
/// (reported under the cancelled order's id), a mass cancel is acknowledged under its own id.
/// It counts what it was sent and keeps the last message's bytes, for tests.
#[derive(Debug)]
pub struct AckVenue {
    reports: VecDeque<ExecutionReport>,
    /// Orders sent.
    pub sent: u64,
    /// Bytes sent.
    pub bytes: u64,
    last: [u8; 512],
    last_len: usize,
    next_venue_order_id: u64,
}

impl Default for AckVenue {
    fn default() -> Self {
        AckVenue {
            reports: VecDeque::with_capacity(ACK_VENUE_REPORTS_MAX),
            sent: 0,
            bytes: 0,
            last: [0; 512],
            last_len: 0,
            next_venue_order_id: 1,
        }
    }
}

impl AckVenue {
    /// The bytes of the last message sent (up to 512).
    pub fn last_message(&self) -> &[u8] {
        &self.last[..self.last_len]
    }
}

impl Venue for AckVenue {
    fn send(&mut self, order: &OrderRequest, bytes: &[u8]) {
        self.sent += 1;
        self.bytes += bytes.len() as u64;
        self.last_len = bytes.len().min(self.last.len());
        self.last[..self.last_len].copy_from_slice(&bytes[..self.last_len]);
        let (client_order_id, exec, ord_status, leaves_qty) = match order.kind {
            order_kind::NEW => (order.client_order_id, exec_type::NEW, b'0', order.qty),
            order_kind::REPLACE => (order.client_order_id, exec_type::REPLACED, b'5', order.qty),
            order_kind::CANCEL => (order.orig_client_order_id, exec_type::CANCELED, b'4', 0),
            _ => (order.client_order_id, exec_type::NEW, b'0', 0),
        };
        assert!(
            self.reports.len() < ACK_VENUE_REPORTS_MAX,
            "AckVenue: {ACK_VENUE_REPORTS_MAX} reports not taken; the gateway stopped polling"
        );
        self.reports.push_back(ExecutionReport {
            recv_tsc: 0,
            client_order_id,
            venue_order_id: self.next_venue_order_id,
            px: order.px,
            leaves_qty,
            instrument_id: order.instrument_id,
            exec_type: exec,
            ord_status,
            side: order.side,
            ..ExecutionReport::default()
        });
        self.next_venue_order_id += 1;
    }

    fn poll_report(&mut self) -> Option<ExecutionReport> {
        self.reports.pop_front()
    }
}
