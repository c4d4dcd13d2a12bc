//! Where the gateway stage's orders go, and where execution reports come from: the `Venue`
//! seam. [`FixVenue`](super::fix_venue::FixVenue) is a FIX 4.4 session over TCP or TLS;
//! [`AckVenue`] an in-process stand-in for benchmarks and tests.

use std::collections::VecDeque;

use levibot_gateway::fix::{FixEncodeError, OrderEncoder};
use levibot_shm::records::{ExecutionReport, OrderRequest, exec_type, order_kind};

/// An order the venue has encoded and queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queued {
    /// The session's MsgSeqNum for it.
    pub msg_seq_num: u64,
    /// Bytes of its message.
    pub encoded_len: u32,
}

/// Why a venue could not take an order (it is reported back as REJECTED).
#[derive(Debug, thiserror::Error)]
pub enum VenueSendError {
    #[error("encoding: {0}")]
    Encode(#[from] FixEncodeError),
    #[error("the venue session is not up")]
    NotConnected,
}

/// The venue side of the gateway. Hot path: no allocation, no lock; only `flush` does I/O, and
/// only on its socket.
pub trait Venue: Send {
    /// Encodes `order` and queues its bytes: they are ready when this returns (the gateway
    /// journals the order then), and leave on the next [`flush`](Self::flush).
    fn send(
        &mut self,
        order: &OrderRequest,
        sending_time_unix_ns: u64,
    ) -> Result<Queued, VenueSendError>;
    /// Socket I/O and timers: writes what is queued, reads what arrived.
    fn flush(&mut self, _now_ns: u64) {}
    /// The next execution report the venue sent, if any. Reports wait in the venue (a socket's
    /// buffer) while the gateway cannot pass them on.
    fn poll_report(&mut self) -> Option<ExecutionReport>;
    /// Whether [`poll_report`](Self::poll_report) may have a report now; `true` when the venue
    /// cannot tell without reading (a socket).
    fn may_have_report(&self) -> bool {
        true
    }
    /// Takes back the order [`send`](Self::send) just queued, before any flush: its bytes
    /// never leave. `false` if it cannot (they may leave). Cold path: the gateway calls it when
    /// the order's write-ahead journal append failed.
    fn retract(&mut self, _queued: &Queued) -> bool {
        false
    }
}

/// What an in-process venue keeps between [`Venue::send`] and [`Venue::flush`]: orders
/// encoded by the live FIX encoder and numbered as a session numbers them, waiting to "leave";
/// the last one can be taken back ([`Venue::retract`]). [`AckVenue`] and the backtest's venue
/// share it.
#[derive(Debug)]
pub struct EncodedQueue {
    encoder: OrderEncoder,
    next_msg_seq_num: u64,
    /// Orders encoded and not flushed yet.
    unsent: VecDeque<OrderRequest>,
    capacity: usize,
}

impl EncodedQueue {
    /// Encodes with `encoder`, numbering messages from `first_msg_seq_num`; holds at most
    /// `capacity` orders between two flushes.
    pub fn new(encoder: OrderEncoder, first_msg_seq_num: u64, capacity: usize) -> EncodedQueue {
        EncodedQueue {
            encoder,
            next_msg_seq_num: first_msg_seq_num.max(1),
            unsent: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Encodes and numbers `order` and holds it until [`pop`](Self::pop); returns its
    /// [`Queued`] and its bytes (valid until the next call).
    ///
    /// # Panics
    ///
    /// With `capacity` orders held: the venue stands in for a socket, and a caller that never
    /// flushes is a bug.
    pub fn push(
        &mut self,
        order: &OrderRequest,
        sending_time_unix_ns: u64,
    ) -> Result<(Queued, &[u8]), VenueSendError> {
        assert!(
            self.unsent.len() < self.capacity,
            "{} orders encoded and not flushed",
            self.capacity
        );
        let msg_seq_num = self.next_msg_seq_num;
        let bytes = self
            .encoder
            .encode(order, msg_seq_num, sending_time_unix_ns)?;
        self.next_msg_seq_num += 1;
        self.unsent.push_back(*order);
        let queued = Queued {
            msg_seq_num,
            encoded_len: bytes.len() as u32,
        };
        Ok((queued, bytes))
    }

    /// Takes back the order [`push`](Self::push) just queued (its number is used again);
    /// `false` if `queued` is not the last one pushed and still held.
    pub fn retract(&mut self, queued: &Queued) -> bool {
        if queued.msg_seq_num + 1 != self.next_msg_seq_num || self.unsent.pop_back().is_none() {
            return false;
        }
        self.next_msg_seq_num = queued.msg_seq_num;
        true
    }

    /// The oldest order held: its bytes "leave".
    pub fn pop(&mut self) -> Option<OrderRequest> {
        self.unsent.pop_front()
    }
}

/// Reports an [`AckVenue`] can hold before a report would be lost: it panics then, since it
/// stands in for a socket and a test that outruns it is wrong.
pub const ACK_VENUE_REPORTS_MAX: usize = 1 << 16;

/// A venue that accepts every order at once and never fills: a new order is acknowledged
/// (`exec_type` NEW), a replace is REPLACED (reported under the new id), a cancel is CANCELED
/// (reported under the cancelled order's id), a mass cancel is acknowledged under its own id.
/// Orders are encoded as FIX 4.4, as a real session would (the cost is the same); it keeps the
/// last message's bytes, for tests.
#[derive(Debug)]
pub struct AckVenue {
    orders: EncodedQueue,
    reports: VecDeque<ExecutionReport>,
    /// Orders sent.
    pub sent: u64,
    last: [u8; 512],
    last_len: usize,
    next_venue_order_id: u64,
}

impl AckVenue {
    /// Encodes with `encoder`, numbering messages from `first_msg_seq_num`.
    pub fn new(encoder: OrderEncoder, first_msg_seq_num: u64) -> AckVenue {
        AckVenue {
            orders: EncodedQueue::new(encoder, first_msg_seq_num, ACK_VENUE_REPORTS_MAX),
            reports: VecDeque::with_capacity(ACK_VENUE_REPORTS_MAX),
            sent: 0,
            last: [0; 512],
            last_len: 0,
            next_venue_order_id: 1,
        }
    }

    /// The bytes of the last message sent (up to 512).
    pub fn last_message(&self) -> &[u8] {
        &self.last[..self.last_len]
    }
}

impl Venue for AckVenue {
    /// Encodes and queues; the acknowledgement is made in `flush`, when the bytes "leave", so
    /// that the simulation's own bookkeeping is not counted as encoding.
    fn send(
        &mut self,
        order: &OrderRequest,
        sending_time_unix_ns: u64,
    ) -> Result<Queued, VenueSendError> {
        let (queued, bytes) = self.orders.push(order, sending_time_unix_ns)?;
        self.last_len = bytes.len().min(self.last.len());
        self.last[..self.last_len].copy_from_slice(&bytes[..self.last_len]);
        Ok(queued)
    }

    fn retract(&mut self, queued: &Queued) -> bool {
        self.orders.retract(queued)
    }

    fn flush(&mut self, _now_ns: u64) {
        while let Some(order) = self.orders.pop() {
            self.sent += 1;
            self.acknowledge(&order);
        }
    }

    fn poll_report(&mut self) -> Option<ExecutionReport> {
        self.reports.pop_front()
    }
}

impl AckVenue {
    /// Queues the venue's answer to `order`.
    fn acknowledge(&mut self, order: &OrderRequest) {
        let (client_order_id, exec, ord_status, leaves_qty) = match order.kind {
            order_kind::NEW => (order.client_order_id, exec_type::NEW, b'0', order.qty),
            order_kind::REPLACE => (order.client_order_id, exec_type::REPLACED, b'5', order.qty),
            order_kind::CANCEL => (order.orig_client_order_id, exec_type::CANCELED, b'4', 0),
            // It keeps no book of working orders to report: refused, as a venue without
            // OrderMassStatusRequest would.
            order_kind::MASS_STATUS => (order.client_order_id, exec_type::REJECTED, b'8', 0),
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
}
