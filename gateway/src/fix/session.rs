//! The FIX 4.4 initiator session: [`FixSession`], a sans-IO state machine (bytes in, bytes
//! out, time passed in as `now_ns`), and [`FixConnection`], its thin non-blocking mio transport.
//!
//! ```text
//!            logon()            peer Logon            logout()            peer Logout
//! Disconnected -----> LogonSent -----------> Active ----------> LogoutSent ----------> Closed
//!                         |                    |   peer Logout (answered) ------------> Closed
//!                         +--------------------+-- fatal (seq too low, timeout) ------> Closed
//! ```
//!
//! **Binance** signs the Logon with Ed25519: set [`SessionConfig::binance_logon`] (see
//! [`BinanceLogon`] for the payload).
//!
//! **Driving it.** The caller (the transport) hands received bytes to [`FixSession::handle`],
//! which takes at most one message from their start and says how many bytes it consumed and
//! what happened ([`SessionEvent`]); [`FixSession::poll_timers`] runs the heartbeat clock;
//! [`FixSession::take_event`] hands on what waits in the queue (see "Queued events");
//! [`FixSession::send_order`] encodes an order with the existing [`OrderEncoder`]. Everything
//! the session writes goes into one fixed outbound buffer that the transport drains
//! ([`FixSession::outbound`], [`FixSession::consume_outbound`]).
//!
//! **Sequence numbers** ([`SessionSeqNums`], saved and restored by the caller):
//!
//! - an inbound MsgSeqNum equal to the expected one is processed and consumed;
//! - higher: a gap. We send one ResendRequest (7 = expected, 16 = 0, "everything after") and
//!   drop messages beyond the gap until the peer's resend or GapFill closes it (a Logon or
//!   Logout is still acted on);
//! - lower without PossDupFlag (43) = Y: fatal, a Logout naming both numbers, then close;
//!   lower with PossDupFlag = Y: a duplicate, ignored;
//! - SequenceReset-GapFill (123 = Y) moves the expected number to NewSeqNo (36) like any
//!   in-order message; SequenceReset-Reset (no 123 or 123 = N) sets it whatever its MsgSeqNum;
//! - garbled input (bad checksum, BodyLength, framing) is skipped up to the next `8=FIX.4.4`
//!   without consuming a sequence number; a valid message missing a required field consumes
//!   its number and gets a session Reject (35=3 with 45, 371, 372, 373).
//!
//! **Sequence-number arithmetic.** Every sequence number (MsgSeqNum 34, BeginSeqNo 7, EndSeqNo
//! 16 unless 0, NewSeqNo 36, ours and the venue's) is in `1..=`[`SEQ_NUM_MAX`] (`i64::MAX`), so
//! that the number after any valid one is a `u64` and fits a signed counter: `n + 1` is only
//! ever computed on a checked number, and nothing wraps. An inbound MsgSeqNum above the
//! maximum ends the session (a Reject naming tag 34, a Logout saying why,
//! [`DisconnectReason::SeqNumOutOfRange`]); a BeginSeqNo, EndSeqNo or NewSeqNo out of range
//! (or going backwards) gets a session Reject naming its tag (373 = 5) and changes nothing
//! else. Our own next number out of range refuses to send
//! ([`SessionError::SeqNumOutOfRange`]).
//!
//! **Gaps that cannot be filled.** Our inbound gap `[expected, highest number received]` ends
//! normally when the resent messages or a GapFill bring the expected number past it. It is
//! given up, with one [`SessionEvent::GapUnfilled`] naming the numbers never received, when:
//!
//! - the venue answers with a SequenceReset-Reset past numbers of the gap
//!   ([`GapUnfilledReason::SequenceReset`]);
//! - a GapFill skips a number at which the venue sent an application message that we dropped
//!   because it came after the gap ([`GapUnfilledReason::GapFillOverApplication`]); a GapFill
//!   over session messages, the normal answer, is not unfillable;
//! - [`GAP_FILL_TIMEOUT_HEART_BT_INTS`] HeartBtInts pass without progress (no inbound number
//!   closer to closing it; [`GapUnfilledReason::Timeout`]): the session then expects the number
//!   after the highest received, so that new messages are processed again;
//! - the session ends with the gap open: our close, the venue's Logout, the connection dropping
//!   ([`GapUnfilledReason::Disconnected`]); the next session asks again from the same number.
//!
//! A fill may have been in the numbers never received: the caller halts and asks the venue for
//! its orders' state (mass status).
//!
//! **The peer's ResendRequest** is always answered with one SequenceReset-GapFill over the part
//! of its range `[7, 16]` (16 = 0: up to our last) that we sent, never with the original
//! messages: an order re-sent seconds or minutes late would trade on a market that has moved,
//! and risk checked it against the state of that moment. The strategy decides again from the
//! reports it has; the venue learns that those numbers are used. An order in the range becomes a
//! REJECTED report ([`LOST_IN_FLIGHT`](levibot_shm::codes::reject_reason::LOST_IN_FLIGHT)) only if the venue never said anything
//! about it (no execution report, cancel reject, mass cancel report or session Reject naming
//! it): one it acknowledged or filled is not lost, whatever the venue asks for after its own
//! restart or twice; and an order is reported lost once. Only the last [`ORDER_SEQ_MAP_LEN`]
//! numbers are remembered, which also bounds the work of a request for a huge range.
//!
//! **Queued events.** The lost orders' reports, and a [`SessionEvent::GapUnfilled`] that comes
//! with a close, wait in a fixed queue for [`FixSession::take_event`]; while any waits,
//! [`FixSession::handle`] takes nothing (`consumed` 0), so that one message never produces more
//! than the queue holds. [`FixConnection::poll`] hands them on after each message.
//!
//! **Orders** go out with the session's next MsgSeqNum, and the session remembers which order
//! each outbound number carried in a fixed table of [`ORDER_SEQ_MAP_LEN`] entries indexed by
//! the number, so that a session Reject (35=3) whose RefSeqNum (45) is one of our orders becomes
//! a REJECTED [`ExecutionReport`] for that order, with `reject_reason` =
//! [`SESSION_BASE`](levibot_shm::codes::reject_reason::SESSION_BASE) + SessionRejectReason (373). A ClOrdID index over the same
//! table marks each order the venue answers (`session/sent.rs`).
//!
//! Hot path ([`FixSession::send_order`], and [`FixSession::handle`] of an ExecutionReport): no
//! allocation, no formatting, no syscall. Session messages (heartbeats and the rest) are
//! written with the same field writer; only the text of a fatal Logout is formatted.

mod binance;
mod fields;
mod inbound;
mod outbound;
mod report;
mod resend;
mod sent;
mod transport;

pub use binance::{
    API_KEY_LEN_MAX, BinanceLogon, BinanceLogonError, MessageHandling, SIGNATURE_BASE64_LEN,
};
pub use report::{
    INSTRUMENT_UNKNOWN, ReportError, decode_execution_report, decode_order_cancel_reject,
};
pub use resend::{GAP_APP_WINDOW_LEN, GAP_FILL_TIMEOUT_HEART_BT_INTS, GapUnfilledReason};
pub use transport::{CONNECTION_READ_BUF_LEN, ConnectionError, ConnectionStatus, FixConnection};

use std::collections::VecDeque;

use levibot_shm::records::{ExecutionReport, OrderRequest};

use outbound::{Outbound, write_header};
use resend::Gap;
use sent::SentOrders;

use crate::instrument::InstrumentTable;

use super::encode::{FixConfigError, FixEncodeError, OrderEncoder};
use super::time::UtcTimestampCache;
use super::writer::FixWriter;
use super::{SOH, msg_type, tag};

/// Capacity of the outbound buffer, in bytes: what the session may have written and the
/// transport not yet sent. A full buffer refuses orders ([`SessionError::OutboundFull`]).
pub const OUTBOUND_BUF_LEN: usize = 64 * 1024;

/// Entries of the outbound MsgSeqNum -> order table (a power of two; the table is indexed by
/// `seq & (ORDER_SEQ_MAP_LEN - 1)`, so it remembers the last this many orders' numbers).
pub const ORDER_SEQ_MAP_LEN: usize = 4096;
const _: () = assert!(ORDER_SEQ_MAP_LEN.is_power_of_two());

/// Largest sequence number (MsgSeqNum and the fields that name one), ours or the venue's: the
/// number after it is still a `u64`, and every number fits an `i64` counter. See the module
/// doc's rule.
pub const SEQ_NUM_MAX: u64 = i64::MAX as u64;

/// Events the session queues for [`FixSession::take_event`]: the lost orders' reports of one
/// ResendRequest ([`ORDER_SEQ_MAP_LEN`] at most) and a few more.
pub const QUEUED_EVENTS_MAX: usize = ORDER_SEQ_MAP_LEN + 8;

/// Largest HeartBtInt (108) we send, in seconds.
pub const HEART_BT_INT_S_MAX: u32 = 3600;

/// The margin over HeartBtInt before we send a TestRequest (and again before we give up on
/// its answer), in percent of HeartBtInt: FIX suggests "a reasonable transmission time", a
/// fifth of the interval here.
pub const TEST_REQUEST_MARGIN_PERCENT: u64 = 20;

/// Longest Text (58) the session writes, in bytes.
const TEXT_LEN_MAX: usize = 128;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// SessionRejectReason (373) values the session sends.
pub mod session_reject_reason {
    pub const REQUIRED_TAG_MISSING: u32 = 1;
    pub const VALUE_INCORRECT: u32 = 5;
    pub const INCORRECT_DATA_FORMAT: u32 = 6;
    pub const COMP_ID_PROBLEM: u32 = 9;
}

/// The next MsgSeqNum we send and the next we expect. Saved by the caller (the journal, issue
/// 6) and given back to [`FixSession::new`] or [`FixSession::set_seq_nums`]: logging on again
/// with the same value continues the session where it stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionSeqNums {
    pub next_sender: u64,
    pub next_target: u64,
}

impl Default for SessionSeqNums {
    fn default() -> Self {
        SessionSeqNums {
            next_sender: 1,
            next_target: 1,
        }
    }
}

/// What the session needs to know, checked by [`FixSession::new`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our SenderCompID (49).
    pub sender_comp_id: String,
    /// The venue's CompID, our TargetCompID (56).
    pub target_comp_id: String,
    /// HeartBtInt (108), in seconds: 1 to [`HEART_BT_INT_S_MAX`].
    pub heart_bt_int_s: u32,
    /// Send ResetSeqNumFlag (141) = Y in the Logon and start both sides at 1.
    pub reset_seq_num: bool,
    /// Sign the Logon the way Binance's FIX API requires (see [`BinanceLogon`]).
    pub binance_logon: Option<BinanceLogon>,
}

/// Where the session is (see the module doc's diagram).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    /// No connection, or not logged on yet: [`FixSession::logon`] starts.
    Disconnected,
    LogonSent,
    Active,
    LogoutSent,
    /// Finished: the transport sends what is left in the outbound buffer and closes.
    Closed,
}

/// Why the session closed on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// An inbound MsgSeqNum lower than expected without PossDupFlag (43) = Y.
    SeqNumTooLow { expected: u64, received: u64 },
    /// A message without MsgSeqNum (34).
    MissingSeqNum,
    /// An inbound MsgSeqNum (34) above [`SEQ_NUM_MAX`].
    SeqNumOutOfRange { received: u64 },
    /// Our next MsgSeqNum is not in `1..=SEQ_NUM_MAX` when the session had to answer.
    SenderSeqNumOutOfRange,
    /// SenderCompID (49) or TargetCompID (56) is not the configured pair.
    CompIdMismatch,
    /// The venue answered our Logon with a Logout.
    LogonRefused,
    /// The first message after our Logon was neither a Logon nor a Logout.
    NotLogon,
    /// No answer to our Logon in time.
    LogonTimeout,
    /// No message for HeartBtInt + margin, and no answer to the TestRequest after as long.
    HeartbeatTimeout,
    /// No answer to our Logout in time.
    LogoutTimeout,
    /// The outbound buffer was full when the session had to answer.
    OutboundFull,
}

/// What one call of [`FixSession::handle`] or [`FixSession::poll_timers`] brought.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// The venue answered our Logon.
    LoggedOn { heart_bt_int_s: u32 },
    /// An execution report, a cancel reject, or a session Reject of one of our orders.
    Report(ExecutionReport),
    /// A session Reject (35=3) of a message of ours that was not an order.
    Rejected {
        ref_seq_num: u64,
        ref_tag: u32,
        reason: u32,
    },
    /// An ExecutionReport or OrderCancelReject we could not read; we answered with a session
    /// Reject.
    BadReport(ReportError),
    /// Inbound MsgSeqNum higher than expected: a ResendRequest is out (or already was).
    GapDetected { expected: u64, received: u64 },
    /// Inbound numbers `from..=to` will never be received (see the module doc's "Gaps that
    /// cannot be filled"; `to` is the highest number known to be missing or dropped): a fill
    /// may be among them.
    GapUnfilled {
        from: u64,
        to: u64,
        reason: GapUnfilledReason,
    },
    /// The Logout handshake is over (`by_peer`: the venue started it and we answered). Close.
    LoggedOut { by_peer: bool },
    /// The session gave up (a Logout was written when there was a session to log out of).
    /// Close.
    Disconnected(DisconnectReason),
}

/// The result of [`FixSession::handle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handled {
    /// Bytes taken from the start of the input: 0 when it holds only part of a message.
    pub consumed: usize,
    pub event: Option<SessionEvent>,
}

/// Why the session could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionConfigError {
    #[error(transparent)]
    Encoder(#[from] FixConfigError),
    #[error("HeartBtInt (108) {heart_bt_int_s} s is not in 1..={HEART_BT_INT_S_MAX}")]
    HeartBtInt { heart_bt_int_s: u32 },
}

/// Why the session refused to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the session is {state:?}, not in a state to send this")]
    NotActive { state: SessionState },
    #[error("outbound buffer full: {len} bytes do not fit in the {free} free")]
    OutboundFull { len: usize, free: usize },
    #[error("our next MsgSeqNum (34) {next_sender} is not in 1..={SEQ_NUM_MAX}")]
    SeqNumOutOfRange { next_sender: u64 },
    #[error(transparent)]
    Encode(#[from] FixEncodeError),
}

/// The FIX 4.4 initiator session state machine (see the module doc).
pub struct FixSession {
    config: SessionConfig,
    /// Send ResetSeqNumFlag = Y in the next Logon only (a daemon with no journal: it has no
    /// sequence numbers to continue from).
    reset_next_logon: bool,
    encoder: OrderEncoder,
    instruments: InstrumentTable,
    writer: FixWriter,
    clock: UtcTimestampCache,
    /// `49=<sender>|56=<target>|`.
    comp_id_fields: Box<[u8]>,
    out: Outbound,
    sent: SentOrders,
    /// Events waiting for [`take_event`](FixSession::take_event): orders lost in flight, a
    /// gap given up on close (capacity [`QUEUED_EVENTS_MAX`], never grown).
    queued: VecDeque<SessionEvent>,
    seq: SessionSeqNums,
    state: SessionState,
    heart_bt_int_ns: u64,
    last_sent_ns: u64,
    last_received_ns: u64,
    /// When the state's deadline counts from: our Logon, our Logout, or our TestRequest.
    pending_since_ns: Option<u64>,
    next_test_req_id: u64,
    /// Our open inbound gap.
    gap: Gap,
    /// Messages skipped because they were garbled.
    garbled_count: u64,
}

impl std::fmt::Debug for FixSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixSession")
            .field("config", &self.config)
            .field("state", &self.state)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl FixSession {
    /// Cold path: checks `config`, prepares the order encoder for `instruments` and allocates
    /// the fixed buffers. The session starts [`SessionState::Disconnected`] with `seq`.
    pub fn new(
        config: SessionConfig,
        instruments: InstrumentTable,
        seq: SessionSeqNums,
    ) -> Result<FixSession, SessionConfigError> {
        if !(1..=HEART_BT_INT_S_MAX).contains(&config.heart_bt_int_s) {
            return Err(SessionConfigError::HeartBtInt {
                heart_bt_int_s: config.heart_bt_int_s,
            });
        }
        // Checks both comp ids.
        let encoder =
            OrderEncoder::new(&config.sender_comp_id, &config.target_comp_id, &instruments)?;
        let mut comp_id_fields = Vec::new();
        for part in [
            tag::SENDER_COMP_ID.prefix(),
            config.sender_comp_id.as_bytes(),
            &[SOH],
            tag::TARGET_COMP_ID.prefix(),
            config.target_comp_id.as_bytes(),
            &[SOH],
        ] {
            comp_id_fields.extend_from_slice(part);
        }
        Ok(FixSession {
            reset_next_logon: false,
            heart_bt_int_ns: u64::from(config.heart_bt_int_s) * NANOS_PER_SECOND,
            config,
            encoder,
            instruments,
            writer: FixWriter::new(),
            clock: UtcTimestampCache::new(),
            comp_id_fields: comp_id_fields.into_boxed_slice(),
            out: Outbound {
                buf: vec![0; OUTBOUND_BUF_LEN].into_boxed_slice(),
                start: 0,
                end: 0,
            },
            sent: SentOrders::new(),
            queued: VecDeque::with_capacity(QUEUED_EVENTS_MAX),
            seq,
            state: SessionState::Disconnected,
            last_sent_ns: 0,
            last_received_ns: 0,
            pending_since_ns: None,
            next_test_req_id: 1,
            gap: Gap::NONE,
            garbled_count: 0,
        })
    }

    /// The session's configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The instruments orders and reports refer to.
    pub fn instruments(&self) -> &InstrumentTable {
        &self.instruments
    }

    /// Where the session is.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// The sequence numbers to save (and give back on the next start).
    pub fn seq_nums(&self) -> SessionSeqNums {
        self.seq
    }

    /// Replaces the sequence numbers (recovery); only while disconnected or closed.
    pub fn set_seq_nums(&mut self, seq: SessionSeqNums) -> Result<(), SessionError> {
        match self.state {
            SessionState::Disconnected | SessionState::Closed => {
                self.seq = seq;
                Ok(())
            }
            state => Err(SessionError::NotActive { state }),
        }
    }

    /// Inbound messages skipped as garbled so far.
    pub fn garbled_count(&self) -> u64 {
        self.garbled_count
    }

    /// The connection is gone: back to [`SessionState::Disconnected`], keeping the sequence
    /// numbers. Unsent bytes are dropped; their numbers stay used (the venue will ask for them
    /// and get a GapFill). An open inbound gap is queued as [`SessionEvent::GapUnfilled`]
    /// ([`GapUnfilledReason::Disconnected`]): take it with [`take_event`](Self::take_event).
    pub fn on_disconnected(&mut self) {
        self.state = SessionState::Disconnected;
        self.out.start = 0;
        self.out.end = 0;
        self.pending_since_ns = None;
        self.gap_lost_on_close();
    }

    /// Asks the venue to start both sequences at 1 in the next Logon (141=Y), once: for a
    /// session with no sequence numbers to continue from (the daemon found no journal, e.g.
    /// after a reboot), which a venue that kept the old sequence would otherwise refuse as
    /// "MsgSeqNum too low". Once logged on, reconnects continue the new sequence.
    pub fn reset_sequence_on_next_logon(&mut self) {
        self.reset_next_logon = true;
    }

    /// Writes our Logon (98=0, 108, and 141=Y when configured or asked for once, which
    /// restarts both sequences at 1). From [`SessionState::Disconnected`] or
    /// [`SessionState::Closed`].
    pub fn logon(&mut self, now_ns: u64) -> Result<(), SessionError> {
        if !matches!(
            self.state,
            SessionState::Disconnected | SessionState::Closed
        ) {
            return Err(SessionError::NotActive { state: self.state });
        }
        self.out.start = 0;
        self.out.end = 0;
        let reset = self.config.reset_seq_num || self.reset_next_logon;
        if reset {
            self.seq = SessionSeqNums::default();
            // The old numbers mean nothing to the new sequence.
            self.sent.reset();
        }
        let msg_seq_num = self.sender_seq()?;
        let heart_bt_int_s = u64::from(self.config.heart_bt_int_s);
        let mut signature = [0u8; SIGNATURE_BASE64_LEN];
        if let Some(binance) = &self.config.binance_logon {
            // The same `now_ns` formats to the same SendingTime in write_session.
            let time = self.clock.format(now_ns);
            binance.sign(
                self.config.sender_comp_id.as_bytes(),
                self.config.target_comp_id.as_bytes(),
                msg_seq_num,
                &time,
                &mut signature,
            );
        }
        let binance = self
            .config
            .binance_logon
            .as_ref()
            .map(|b| (b.api_key().as_bytes(), b.message_handling().code()));
        let written = write_header(
            &mut self.writer,
            &mut self.clock,
            &self.comp_id_fields,
            msg_type::LOGON,
            msg_seq_num,
            now_ns,
        )
        .and_then(|()| {
            let w = &mut self.writer;
            if binance.is_some() {
                w.field_u64(tag::RAW_DATA_LENGTH, SIGNATURE_BASE64_LEN as u64)?;
                w.field(tag::RAW_DATA, &signature)?;
            }
            w.field_char(tag::ENCRYPT_METHOD, b'0')?;
            w.field_u64(tag::HEART_BT_INT, heart_bt_int_s)?;
            if reset {
                w.field_char(tag::RESET_SEQ_NUM_FLAG, b'Y')?;
            }
            if let Some((api_key, message_handling)) = binance {
                w.field(tag::USERNAME, api_key)?;
                w.field_char(tag::MESSAGE_HANDLING, message_handling)?;
            }
            Ok(())
        });
        written?;
        self.out.push(self.writer.finish())?;
        // msg_seq_num <= SEQ_NUM_MAX < u64::MAX.
        self.seq.next_sender = msg_seq_num + 1;
        self.last_sent_ns = now_ns;
        self.state = SessionState::LogonSent;
        self.last_received_ns = now_ns;
        self.pending_since_ns = Some(now_ns);
        self.gap.close();
        Ok(())
    }

    /// Writes our Logout and waits for the venue's.
    pub fn logout(&mut self, now_ns: u64) -> Result<(), SessionError> {
        if self.state != SessionState::Active {
            return Err(SessionError::NotActive { state: self.state });
        }
        self.write_logout(now_ns, b"")?;
        self.state = SessionState::LogoutSent;
        self.pending_since_ns = Some(now_ns);
        Ok(())
    }

    /// Encodes `order` with the next MsgSeqNum into the outbound buffer and remembers which
    /// order that number carried. Returns the MsgSeqNum. Hot path: no allocation.
    #[inline]
    pub fn send_order(&mut self, order: &OrderRequest, now_ns: u64) -> Result<u64, SessionError> {
        if self.state != SessionState::Active {
            return Err(SessionError::NotActive { state: self.state });
        }
        let msg_seq_num = self.sender_seq()?;
        let bytes = self.encoder.encode(order, msg_seq_num, now_ns)?;
        self.out.push(bytes)?;
        // msg_seq_num <= SEQ_NUM_MAX < u64::MAX.
        self.seq.next_sender = msg_seq_num + 1;
        self.last_sent_ns = now_ns;
        self.sent.note(order, msg_seq_num);
        Ok(msg_seq_num)
    }

    /// Remembers that our `msg_seq_num` carried `order`, as [`send_order`](Self::send_order)
    /// does (not answered yet). Cold path, before the Logon of a restarted daemon, with the
    /// orders the journal says were sent and are still open: one whose bytes never left
    /// (journaled write-ahead, then a crash) is in the range the venue asks to be resent, so it
    /// is reported REJECTED (lost in flight) like an order lost on a live connection, and risk
    /// lets it go.
    pub fn remember_sent(&mut self, order: &OrderRequest, msg_seq_num: u64) {
        if msg_seq_num == 0 || msg_seq_num >= self.seq.next_sender {
            return; // not a number this session has used
        }
        self.sent.note(order, msg_seq_num);
    }

    /// Remembers that the venue answered the order sent as `client_order_id` (the journal holds
    /// a report of it), so that it is not reported lost if the venue asks for its number again.
    /// Cold path, after [`remember_sent`](Self::remember_sent). `false` if no remembered order
    /// has that id.
    pub fn remember_answered(&mut self, client_order_id: u64) -> bool {
        self.sent.mark_answered_id(client_order_id)
    }

    /// Runs the clocks: a Heartbeat after HeartBtInt of silence from us; a TestRequest after
    /// HeartBtInt + margin of silence from the venue, and a Logout and close after as long
    /// again without an answer; the Logon and Logout deadlines (HeartBtInt + margin); the
    /// deadline of an open inbound gap ([`GapUnfilledReason::Timeout`]). A close with a gap open
    /// also queues a [`SessionEvent::GapUnfilled`] (see [`take_event`](Self::take_event)).
    pub fn poll_timers(&mut self, now_ns: u64) -> Option<SessionEvent> {
        let grace_ns =
            self.heart_bt_int_ns + self.heart_bt_int_ns * TEST_REQUEST_MARGIN_PERCENT / 100;
        let since = |t: u64| now_ns.saturating_sub(t);
        match self.state {
            SessionState::LogonSent => {
                if self.pending_since_ns.is_some_and(|t| since(t) >= grace_ns) {
                    return Some(self.close(DisconnectReason::LogonTimeout));
                }
            }
            SessionState::LogoutSent => {
                if self.pending_since_ns.is_some_and(|t| since(t) >= grace_ns) {
                    return Some(self.close(DisconnectReason::LogoutTimeout));
                }
            }
            SessionState::Active => {
                match self.pending_since_ns {
                    Some(t) if since(t) >= grace_ns => {
                        let _ = self.write_logout(now_ns, b"no answer to TestRequest");
                        return Some(self.close(DisconnectReason::HeartbeatTimeout));
                    }
                    None if since(self.last_received_ns) >= grace_ns => {
                        let id = self.next_test_req_id;
                        self.next_test_req_id = id.wrapping_add(1);
                        if let Err(error) =
                            self.write_session(msg_type::TEST_REQUEST, now_ns, |w| {
                                w.field_u64(tag::TEST_REQ_ID, id)
                            })
                        {
                            return Some(self.failed(error));
                        }
                        self.pending_since_ns = Some(now_ns);
                    }
                    _ => {}
                }
                if since(self.last_sent_ns) >= self.heart_bt_int_ns
                    && let Err(error) = self.write_session(msg_type::HEARTBEAT, now_ns, |_| Ok(()))
                {
                    return Some(self.failed(error));
                }
                return self.gap_timeout(now_ns);
            }
            SessionState::Disconnected | SessionState::Closed => {}
        }
        None
    }

    /// Takes the next queued event: the REJECTED report of an order lost in flight (see
    /// [`LOST_IN_FLIGHT`](levibot_shm::codes::reject_reason::LOST_IN_FLIGHT)), or a gap given up when the session ended
    /// ([`SessionEvent::GapUnfilled`]). Take them all after each [`handle`](Self::handle),
    /// [`poll_timers`](Self::poll_timers) and [`on_disconnected`](Self::on_disconnected):
    /// `handle` takes nothing while one waits. [`FixConnection::poll`] does.
    #[inline]
    pub fn take_event(&mut self) -> Option<SessionEvent> {
        self.queued.pop_front()
    }

    /// The next queued event, left in the queue.
    #[inline]
    pub fn peek_event(&self) -> Option<&SessionEvent> {
        self.queued.front()
    }

    /// How many events wait for [`take_event`](Self::take_event).
    #[inline]
    pub fn queued_events(&self) -> usize {
        self.queued.len()
    }

    /// Ends the session for `reason` (an open gap is queued as unfilled).
    fn close(&mut self, reason: DisconnectReason) -> SessionEvent {
        self.state = SessionState::Closed;
        self.pending_since_ns = None;
        self.gap_lost_on_close();
        SessionEvent::Disconnected(reason)
    }

    /// Ends the session because it could not write a message it had to.
    fn failed(&mut self, error: SessionError) -> SessionEvent {
        self.close(match error {
            SessionError::SeqNumOutOfRange { .. } => DisconnectReason::SenderSeqNumOutOfRange,
            _ => DisconnectReason::OutboundFull,
        })
    }
}
