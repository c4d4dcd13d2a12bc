//! The simulated venue's FIX 4.4 order entry, acceptor side, sans-IO: bytes from one client in,
//! engine requests out; engine notices in, ExecutionReports and OrderCancelRejects out. The
//! server owns the sockets and routes each notice to the session of its order's owner (fills of
//! a resting order come from someone else's request).
//!
//! Session layer: Logon (answered with the client's HeartBtInt; ResetSeqNumFlag honoured),
//! Heartbeat and TestRequest, Logout, a client's ResendRequest answered with the reports it
//! missed (PossDupFlag) and SequenceReset-GapFill over the rest, SequenceReset in, session Reject
//! (35=3) of malformed messages, MsgSeqNum checks (a gap is accepted and noted; too low is a
//! Logout). Fault switches let tests skip an outbound sequence number, go mute or send garbage.
//!
//! Application: NewOrderSingle (D), OrderCancelRequest (F), OrderCancelReplaceRequest (G),
//! OrderMassCancelRequest (q). ExecutionReports carry 11 (and 41 for cancels and replaces), 37,
//! 17, 150, 39, 55, 54, 38, 44, 31, 32, 14, 151, 6 (AvgPx: the last fill's price; the
//! simulator keeps no average) and 103/58 on rejects.
//!
//! OrderMassStatusRequest (AF; 585=7 all orders, or 585=1 with Symbol 55) is answered with one
//! ExecutionReport (150=I) per working order of the session's owner: 11, 37, 17, 150, 39 (0
//! new or 1 partially filled), 55, 54, 38, 44, 14, 151, 6 (the average of its fills), 584,
//! 911, and 912=Y on the last; without working orders, one report with 37=NONE, 39=8, 911=0
//! and 912=Y. The answer is written at once to this session and not kept for resends (a
//! ResendRequest over it gets a gap fill: the client asks again).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use levibot_gateway::decimal::parse_units;
use levibot_gateway::fix::{
    FixEncodeError, FixMessage, FixParseError, FixWriter, UtcTimestampCache, msg_type,
    parse_message, tag, value_u64,
};
use levibot_gateway::instrument::InstrumentTable;
use levibot_shm::records::{ord_type, side, time_in_force};

use super::matching::{
    MatchingEngine, NewOrder, Notice, OrderEvent, Outcome, RejectReason, WorkingOrder,
};

/// Bytes of inbound data held while a message is incomplete; more is a protocol error.
pub const ACCEPTOR_INBOUND_LEN_MAX: usize = 64 * 1024;
/// Outbound bytes waiting for the socket before the session is dropped as too slow.
pub const ACCEPTOR_OUTBOUND_LEN_MAX: usize = 4 * 1024 * 1024;

/// FIX SessionRejectReason (373) values the acceptor sends.
mod reject_reason {
    pub const REQUIRED_TAG_MISSING: u64 = 1;
    pub const VALUE_INCORRECT: u64 = 5;
    pub const COMP_ID_PROBLEM: u64 = 9;
    pub const INVALID_MSG_TYPE: u64 = 11;
}

/// Where the session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcceptorState {
    AwaitingLogon,
    Active,
    /// Logged out or dropped: the server closes the connection once the outbound is sent.
    Closed,
}

/// What the venue keeps of a client's session across connections: a client that logs on again
/// without ResetSeqNumFlag continues where it stopped, and a ResendRequest gets the reports it
/// missed (the last [`RESEND_NOTICES_MAX`]).
#[derive(Clone, Debug, Default)]
pub struct SessionStore {
    pub next_out: u64,
    pub next_in: u64,
    /// The notices sent, by MsgSeqNum, oldest first.
    pub sent: VecDeque<(u64, Notice)>,
}

/// Sessions kept per client CompID.
pub type SeqStore = Arc<Mutex<HashMap<String, SessionStore>>>;

/// Reports a session keeps for resending.
pub const RESEND_NOTICES_MAX: usize = 4096;

/// Test switches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FixFaults {
    /// The next outbound message skips one MsgSeqNum (the client sees a gap).
    pub skip_seq_num: bool,
    /// Answer nothing at the session level (no heartbeats, no test request answers).
    pub mute: bool,
    /// Write garbage bytes before the next message.
    pub garbage: bool,
    /// Lose the next order message (NewOrderSingle, cancel or replace) as a network would: it
    /// is not processed, its number not used, and the connection is dropped at once.
    pub lose_next_order: bool,
    /// Take cancels, mass cancels and mass status requests in sequence but act on none and
    /// answer nothing (a stuck venue): the client can never confirm them.
    pub ignore_cancels: bool,
    /// Refuse the next new order (an ExecutionReport REJECTED, "the venue refused the order").
    pub reject_next_order: bool,
}

/// One client's FIX session.
#[derive(Debug)]
pub struct FixAcceptor {
    comp_id: String,
    /// The client's CompID, from its Logon.
    client_comp_id: Option<String>,
    owner: u32,
    instruments: InstrumentTable,
    state: AcceptorState,
    next_out: u64,
    next_in: u64,
    heart_bt_int_ns: u64,
    last_out_ns: u64,
    inbound: Vec<u8>,
    outbound: Vec<u8>,
    writer: FixWriter,
    clock: UtcTimestampCache,
    next_exec_id: u64,
    pub faults: FixFaults,
    seq_store: Option<SeqStore>,
    /// The notices written, by MsgSeqNum (for resends).
    sent: VecDeque<(u64, Notice)>,
    /// Inbound messages that could not be read at all (skipped).
    pub garbled: u64,
    /// Inbound sequence gaps seen (each answered with a ResendRequest).
    pub gaps: u64,
    /// The first number of a gap just seen: a ResendRequest goes out after the message.
    resend_from: Option<u64>,
}

/// A field's value as text for an error.
fn text(value: &[u8]) -> String {
    String::from_utf8_lossy(value).into_owned()
}

impl FixAcceptor {
    /// A session of the venue `comp_id` whose orders belong to `owner`.
    pub fn new(comp_id: &str, owner: u32, instruments: InstrumentTable) -> FixAcceptor {
        FixAcceptor {
            comp_id: comp_id.to_owned(),
            client_comp_id: None,
            owner,
            instruments,
            state: AcceptorState::AwaitingLogon,
            next_out: 1,
            next_in: 1,
            heart_bt_int_ns: 30_000_000_000,
            last_out_ns: 0,
            inbound: Vec::with_capacity(ACCEPTOR_INBOUND_LEN_MAX),
            outbound: Vec::new(),
            writer: FixWriter::new(),
            clock: UtcTimestampCache::new(),
            next_exec_id: 1,
            faults: FixFaults::default(),
            seq_store: None,
            sent: VecDeque::new(),
            garbled: 0,
            gaps: 0,
            resend_from: None,
        }
    }

    /// Keeps this session's sequence numbers in `store`, by client CompID.
    pub fn with_seq_store(mut self, store: SeqStore) -> FixAcceptor {
        self.seq_store = Some(store);
        self
    }

    /// Saves the sequence numbers (after each batch of input and output).
    fn save_seq(&self) {
        if let (Some(store), Some(client)) = (&self.seq_store, &self.client_comp_id)
            && self.state != AcceptorState::AwaitingLogon
            && let Ok(mut map) = store.lock()
        {
            let kept = map.entry(client.clone()).or_default();
            kept.next_out = self.next_out;
            kept.next_in = self.next_in;
        }
    }

    /// Keeps the session for the client's next connection: its numbers and the reports it may
    /// ask for again (once, when the connection ends; the numbers are kept as they move).
    pub fn save_session(&self) {
        self.save_seq();
        if let (Some(store), Some(client)) = (&self.seq_store, &self.client_comp_id)
            && self.state != AcceptorState::AwaitingLogon
            && let Ok(mut map) = store.lock()
        {
            map.entry(client.clone()).or_default().sent = self.sent.clone();
        }
    }

    pub fn state(&self) -> AcceptorState {
        self.state
    }

    pub fn owner(&self) -> u32 {
        self.owner
    }

    /// The client's CompID, once it has logged on.
    pub fn client_comp_id(&self) -> Option<&str> {
        self.client_comp_id.as_deref()
    }

    /// Makes the session's orders `owner`'s: the server keeps one owner per client CompID, so a
    /// client that reconnects finds its orders (and hears of what happened to them meanwhile).
    pub fn set_owner(&mut self, owner: u32) {
        self.owner = owner;
    }

    /// Bytes to send to the client.
    pub fn outbound(&self) -> &[u8] {
        &self.outbound
    }

    /// The first `n` bytes of [`outbound`](Self::outbound) were sent.
    pub fn consume_outbound(&mut self, n: usize) {
        self.outbound.drain(..n.min(self.outbound.len()));
    }

    /// Whether the session has more unsent output than a live client would ever leave.
    pub fn is_backed_up(&self) -> bool {
        self.outbound.len() > ACCEPTOR_OUTBOUND_LEN_MAX
    }

    /// Begins an outbound message with the standard header, at the next MsgSeqNum.
    fn begin(&mut self, msg: &[u8], now_ns: u64) -> Result<(), FixEncodeError> {
        if self.faults.skip_seq_num {
            self.faults.skip_seq_num = false;
            self.next_out += 1;
        }
        self.begin_at(msg, self.next_out, now_ns)
    }

    /// Begins an outbound message with the standard header, at MsgSeqNum `seq`.
    fn begin_at(&mut self, msg: &[u8], seq: u64, now_ns: u64) -> Result<(), FixEncodeError> {
        let timestamp = self.clock.format(now_ns);
        let w = &mut self.writer;
        w.begin(msg)?;
        w.field(tag::SENDER_COMP_ID, self.comp_id.as_bytes())?;
        let target = self.client_comp_id.as_deref().unwrap_or("UNKNOWN");
        w.field(tag::TARGET_COMP_ID, target.as_bytes())?;
        w.field_u64(tag::MSG_SEQ_NUM, seq)?;
        w.field_timestamp(tag::SENDING_TIME, &timestamp)
    }

    /// Finishes the message begun and queues it.
    fn finish(&mut self, now_ns: u64) {
        if self.faults.garbage {
            self.faults.garbage = false;
            self.outbound
                .extend_from_slice(b"8=FIX.4.4\x019=5\x01garbage\x01\x01\x01");
        }
        let bytes = self.writer.finish();
        self.outbound.extend_from_slice(bytes);
        self.next_out += 1;
        self.last_out_ns = now_ns;
    }

    /// Writes one message through `body` (after the header); a message that does not fit the
    /// writer is dropped (it cannot happen with the venue's own fields).
    fn send(
        &mut self,
        msg: &[u8],
        now_ns: u64,
        body: impl FnOnce(&mut FixWriter, &InstrumentTable) -> Result<(), FixEncodeError>,
    ) {
        if self.begin(msg, now_ns).is_ok() && body(&mut self.writer, &self.instruments).is_ok() {
            self.finish(now_ns);
        }
    }

    /// [`send`](Self::send), or, with `resend_seq`, the same message again at that number with
    /// PossDupFlag (43) and OrigSendingTime (122), using none of the next numbers.
    fn send_as(
        &mut self,
        resend_seq: Option<u64>,
        msg: &[u8],
        now_ns: u64,
        body: impl FnOnce(&mut FixWriter, &InstrumentTable) -> Result<(), FixEncodeError>,
    ) {
        let Some(seq) = resend_seq else {
            return self.send(msg, now_ns, body);
        };
        let timestamp = self.clock.format(now_ns);
        let ok = self.begin_at(msg, seq, now_ns).is_ok()
            && self.writer.field_char(tag::POSS_DUP_FLAG, b'Y').is_ok()
            && self
                .writer
                .field_timestamp(tag::ORIG_SENDING_TIME, &timestamp)
                .is_ok()
            && body(&mut self.writer, &self.instruments).is_ok();
        if ok {
            let bytes = self.writer.finish();
            self.outbound.extend_from_slice(bytes);
            self.last_out_ns = now_ns;
        }
    }

    fn session_reject(
        &mut self,
        ref_seq_num: u64,
        ref_tag: u32,
        reason: u64,
        why: &str,
        now_ns: u64,
    ) {
        self.send(msg_type::REJECT, now_ns, |w, _| {
            w.field_u64(tag::REF_SEQ_NUM, ref_seq_num)?;
            if ref_tag > 0 {
                w.field_u64(tag::REF_TAG_ID, u64::from(ref_tag))?;
            }
            w.field_u64(tag::SESSION_REJECT_REASON, reason)?;
            w.field(tag::TEXT, why.as_bytes())
        });
    }

    fn logout(&mut self, why: &str, now_ns: u64) {
        self.send(msg_type::LOGOUT, now_ns, |w, _| {
            w.field(tag::TEXT, why.as_bytes())
        });
        self.state = AcceptorState::Closed;
    }

    /// Heartbeats while the client is quiet on our side.
    pub fn poll_timers(&mut self, now_ns: u64) {
        if self.state == AcceptorState::Active
            && !self.faults.mute
            && now_ns.saturating_sub(self.last_out_ns) >= self.heart_bt_int_ns
        {
            self.send(msg_type::HEARTBEAT, now_ns, |_, _| Ok(()));
            self.save_seq();
        }
    }

    /// Takes bytes from the client, handles every complete message (engine requests go to
    /// `engine`), and returns what the requests caused, for the server to route.
    pub fn on_bytes(
        &mut self,
        bytes: &[u8],
        engine: &mut MatchingEngine,
        now_ns: u64,
    ) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        if self.inbound.len() + bytes.len() > ACCEPTOR_INBOUND_LEN_MAX {
            self.logout("inbound message too long", now_ns);
            return outcomes;
        }
        // Taken out while its messages are handled (they borrow it; handling needs `self`).
        let mut inbound = std::mem::take(&mut self.inbound);
        inbound.extend_from_slice(bytes);
        let mut start = 0;
        while start < inbound.len() && self.state != AcceptorState::Closed {
            match parse_message(&inbound[start..]).map(|m| m.as_bytes().len()) {
                Ok(len) => {
                    let message = &inbound[start..start + len];
                    start += len;
                    if let Some(outcome) = self.on_message(message, engine, now_ns) {
                        outcomes.push(outcome);
                    }
                    self.request_resend(now_ns);
                }
                Err(FixParseError::Incomplete { .. }) => break,
                Err(_) => {
                    // Garbled: skip to the next BeginString; no sequence number is used.
                    self.garbled += 1;
                    start += next_message_start(&inbound[start + 1..])
                        .map_or(inbound.len() - start, |at| at + 1);
                }
            }
        }
        inbound.drain(..start);
        self.inbound = inbound;
        self.save_seq();
        outcomes
    }

    fn on_message(
        &mut self,
        bytes: &[u8],
        engine: &mut MatchingEngine,
        now_ns: u64,
    ) -> Option<Outcome> {
        let msg = parse_message(bytes).ok()?;
        let kind = msg.msg_type();
        let Some(seq) = msg.get(34).and_then(value_u64) else {
            self.logout("MsgSeqNum (34) missing", now_ns);
            return None;
        };
        if kind == msg_type::LOGON {
            if self.state != AcceptorState::AwaitingLogon {
                self.session_reject(
                    seq,
                    35,
                    reject_reason::VALUE_INCORRECT,
                    "already logged on",
                    now_ns,
                );
                return None;
            }
            if msg.get(56) != Some(self.comp_id.as_bytes()) {
                self.client_comp_id = msg.get(49).map(text);
                self.logout("TargetCompID (56) is not this venue", now_ns);
                return None;
            }
            self.client_comp_id = msg.get(49).map(text);
            if msg.get(141) == Some(b"Y") {
                self.next_out = 1;
                self.next_in = seq;
            } else if let (Some(store), Some(client)) = (&self.seq_store, &self.client_comp_id)
                && let Some(kept) = store.lock().ok().and_then(|m| m.get(client).cloned())
            {
                self.next_out = kept.next_out;
                self.next_in = kept.next_in;
                self.sent = kept.sent;
            }
            let heart_bt_int_s = msg
                .get(108)
                .and_then(value_u64)
                .unwrap_or(30)
                .clamp(1, 3_600);
            self.heart_bt_int_ns = heart_bt_int_s * 1_000_000_000;
            self.check_seq(seq, now_ns);
            self.state = AcceptorState::Active;
            let reset = msg.get(141) == Some(b"Y");
            self.send(msg_type::LOGON, now_ns, |w, _| {
                w.field_u64(tag::ENCRYPT_METHOD, 0)?;
                w.field_u64(tag::HEART_BT_INT, heart_bt_int_s)?;
                if reset {
                    w.field_char(tag::RESET_SEQ_NUM_FLAG, b'Y')?;
                }
                Ok(())
            });
            return None;
        }
        if self.state != AcceptorState::Active {
            self.logout("first message was not a Logon", now_ns);
            return None;
        }
        if msg.get(49).map(text).as_deref() != self.client_comp_id.as_deref()
            || msg.get(56) != Some(self.comp_id.as_bytes())
        {
            self.session_reject(
                seq,
                49,
                reject_reason::COMP_ID_PROBLEM,
                "CompID problem",
                now_ns,
            );
            self.logout("CompID problem", now_ns);
            return None;
        }
        if kind == msg_type::SEQUENCE_RESET {
            if let Some(new) = msg.get(36).and_then(value_u64) {
                self.next_in = new;
            }
            return None;
        }
        let is_order = matches!(
            kind,
            msg_type::NEW_ORDER_SINGLE
                | msg_type::ORDER_CANCEL_REQUEST
                | msg_type::ORDER_CANCEL_REPLACE_REQUEST
        );
        if is_order && self.faults.lose_next_order {
            // Lost on the wire: not processed, its number not used, the connection gone.
            self.faults.lose_next_order = false;
            self.state = AcceptorState::Closed;
            return None;
        }
        if !self.check_seq(seq, now_ns) {
            return None;
        }
        if self.faults.ignore_cancels
            && matches!(
                kind,
                msg_type::ORDER_CANCEL_REQUEST
                    | msg_type::ORDER_MASS_CANCEL_REQUEST
                    | msg_type::ORDER_MASS_STATUS_REQUEST
            )
        {
            return None;
        }
        match kind {
            msg_type::HEARTBEAT => None,
            msg_type::TEST_REQUEST => {
                if !self.faults.mute {
                    let id = msg.get(112).unwrap_or(b"?").to_vec();
                    self.send(msg_type::HEARTBEAT, now_ns, |w, _| {
                        w.field(tag::TEST_REQ_ID, &id)
                    });
                }
                None
            }
            msg_type::RESEND_REQUEST => {
                let begin = msg
                    .get(7)
                    .and_then(value_u64)
                    .unwrap_or(self.next_out)
                    .min(self.next_out);
                self.resend(begin, now_ns);
                None
            }
            msg_type::LOGOUT => {
                self.logout("logout", now_ns);
                None
            }
            msg_type::NEW_ORDER_SINGLE => self.new_order(&msg, seq, engine, now_ns),
            msg_type::ORDER_CANCEL_REQUEST => {
                let (Some(id), Some(orig)) = (
                    msg.get(11).and_then(value_u64),
                    msg.get(41).and_then(value_u64),
                ) else {
                    self.session_reject(
                        seq,
                        41,
                        reject_reason::REQUIRED_TAG_MISSING,
                        "ClOrdID (11) and OrigClOrdID (41) required",
                        now_ns,
                    );
                    return None;
                };
                Some(engine.cancel(self.owner, id, orig))
            }
            msg_type::ORDER_CANCEL_REPLACE_REQUEST => {
                let Some(orig) = msg.get(41).and_then(value_u64) else {
                    self.session_reject(
                        seq,
                        41,
                        reject_reason::REQUIRED_TAG_MISSING,
                        "OrigClOrdID (41) required",
                        now_ns,
                    );
                    return None;
                };
                let order = self.order_fields(&msg, seq, now_ns)?;
                Some(engine.replace(orig, order))
            }
            msg_type::ORDER_MASS_CANCEL_REQUEST => {
                let instrument = match msg.get(530) {
                    Some(b"7") => None,
                    _ => msg
                        .get(55)
                        .and_then(|s| self.instruments.find(s))
                        .map(|i| i.id),
                };
                Some(engine.mass_cancel(self.owner, instrument))
            }
            msg_type::ORDER_MASS_STATUS_REQUEST => {
                self.mass_status(&msg, seq, engine, now_ns);
                None
            }
            _ => {
                self.session_reject(
                    seq,
                    35,
                    reject_reason::INVALID_MSG_TYPE,
                    "unsupported MsgType",
                    now_ns,
                );
                None
            }
        }
    }

    /// Answers an OrderMassStatusRequest with the status of the owner's working orders (see the
    /// module doc); a session Reject if 584 is missing or 585 and 55 name nothing we know.
    fn mass_status(
        &mut self,
        msg: &FixMessage<'_>,
        seq: u64,
        engine: &MatchingEngine,
        now_ns: u64,
    ) {
        let Some(req_id) = msg.get(584).map(<[u8]>::to_vec) else {
            self.session_reject(
                seq,
                584,
                reject_reason::REQUIRED_TAG_MISSING,
                "MassStatusReqID (584) required",
                now_ns,
            );
            return;
        };
        let instrument = match msg.get(585) {
            Some(b"7") => None,
            Some(b"1") => match msg.get(55).and_then(|s| self.instruments.find(s)) {
                Some(i) => Some(i.id),
                None => {
                    self.session_reject(
                        seq,
                        55,
                        reject_reason::VALUE_INCORRECT,
                        "Symbol (55) missing or unknown",
                        now_ns,
                    );
                    return;
                }
            },
            _ => {
                self.session_reject(
                    seq,
                    585,
                    reject_reason::VALUE_INCORRECT,
                    "MassStatusReqType (585) must be 1 or 7",
                    now_ns,
                );
                return;
            }
        };
        let orders = engine.working_orders_detail_of(self.owner, instrument);
        if orders.is_empty() {
            let exec_id = self.next_exec_id;
            self.next_exec_id += 1;
            self.send(msg_type::EXECUTION_REPORT, now_ns, |w, _| {
                w.field(tag::ORDER_ID, b"NONE")?;
                w.field_u64(tag::EXEC_ID, exec_id)?;
                w.field_char(tag::EXEC_TYPE, b'I')?;
                w.field_char(tag::ORD_STATUS, b'8')?;
                w.field_u64(tag::LEAVES_QTY, 0)?;
                w.field_u64(tag::CUM_QTY, 0)?;
                w.field_u64(tag::AVG_PX, 0)?;
                w.field(tag::MASS_STATUS_REQ_ID, &req_id)?;
                w.field_u64(tag::TOT_NUM_REPORTS, 0)?;
                w.field_char(tag::LAST_RPT_REQUESTED, b'Y')?;
                w.field(tag::TEXT, b"no working orders")
            });
            return;
        }
        let total = orders.len();
        for (i, order) in orders.iter().enumerate() {
            let exec_id = self.next_exec_id;
            self.next_exec_id += 1;
            let last = i + 1 == total;
            self.send(msg_type::EXECUTION_REPORT, now_ns, |w, instruments| {
                write_order_status(w, instruments, order, exec_id)?;
                w.field(tag::MASS_STATUS_REQ_ID, &req_id)?;
                w.field_u64(tag::TOT_NUM_REPORTS, total as u64)?;
                if last {
                    w.field_char(tag::LAST_RPT_REQUESTED, b'Y')?;
                }
                Ok(())
            });
        }
    }

    /// Checks an inbound MsgSeqNum; `false` if the message must be dropped (too low).
    fn check_seq(&mut self, seq: u64, now_ns: u64) -> bool {
        if seq < self.next_in {
            self.logout(
                &format!(
                    "MsgSeqNum too low, expecting {} but received {seq}",
                    self.next_in
                ),
                now_ns,
            );
            return false;
        }
        if seq > self.next_in {
            self.gaps += 1;
            self.resend_from = Some(self.next_in);
        }
        self.next_in = seq + 1;
        true
    }

    /// Asks the client to resend what a gap lost (it answers with a gap fill for orders).
    fn request_resend(&mut self, now_ns: u64) {
        if let Some(from) = self.resend_from.take()
            && self.state == AcceptorState::Active
        {
            self.send(msg_type::RESEND_REQUEST, now_ns, |w, _| {
                w.field_u64(tag::BEGIN_SEQ_NO, from)?;
                w.field_u64(tag::END_SEQ_NO, 0)
            });
        }
    }

    fn new_order(
        &mut self,
        msg: &levibot_gateway::fix::FixMessage<'_>,
        seq: u64,
        engine: &mut MatchingEngine,
        now_ns: u64,
    ) -> Option<Outcome> {
        let order = self.order_fields(msg, seq, now_ns)?;
        if std::mem::take(&mut self.faults.reject_next_order) {
            return Some(engine.refuse(order, RejectReason::Refused));
        }
        Some(engine.submit(order))
    }

    /// An order from D or G fields; a session Reject (and `None`) if one is missing or bad.
    fn order_fields(
        &mut self,
        msg: &levibot_gateway::fix::FixMessage<'_>,
        seq: u64,
        now_ns: u64,
    ) -> Option<NewOrder> {
        let mut missing = |tag_number: u32, what: &str| {
            self.session_reject(
                seq,
                tag_number,
                reject_reason::REQUIRED_TAG_MISSING,
                what,
                now_ns,
            );
            None
        };
        let Some(client_order_id) = msg.get(11).and_then(value_u64) else {
            return missing(11, "ClOrdID (11) missing or not a number");
        };
        let Some(symbol) = msg.get(55) else {
            return missing(55, "Symbol (55) missing");
        };
        let Some(order_side) = msg.get(54) else {
            return missing(54, "Side (54) missing");
        };
        let Some(order_type) = msg.get(40) else {
            return missing(40, "OrdType (40) missing");
        };
        let Some(qty_text) = msg.get(38) else {
            return missing(38, "OrderQty (38) missing");
        };
        let instrument = self.instruments.find(symbol).cloned();
        let (instrument_id, qty, px) = match &instrument {
            Some(i) => {
                let qty = parse_units(qty_text, i.qty_scale).unwrap_or(-1);
                let px = msg
                    .get(44)
                    .map_or(Ok(0), |p| parse_units(p, i.price_scale))
                    .unwrap_or(-1);
                (i.id, qty, px)
            }
            // The engine rejects it (unknown instrument) with an ExecutionReport.
            None => (u32::MAX, 0, 0),
        };
        let byte = |v: &[u8]| if v.len() == 1 { v[0] } else { 0 };
        let side_code = match byte(order_side) {
            b'1' => side::BUY,
            b'2' => side::SELL,
            _ => 0,
        };
        let type_code = match byte(order_type) {
            b'1' => ord_type::MARKET,
            b'2' => ord_type::LIMIT,
            _ => 0,
        };
        let tif = match msg.get(59).map(byte) {
            None | Some(b'0') | Some(b'1') => time_in_force::GTC,
            Some(b'3') => time_in_force::IOC,
            Some(b'4') => time_in_force::FOK,
            Some(_) => 0,
        };
        Some(NewOrder {
            owner: self.owner,
            client_order_id,
            instrument_id,
            side: side_code,
            ord_type: type_code,
            time_in_force: tif,
            px,
            qty,
            // ExecInst is a space-separated list; 6 is "participate, don't initiate".
            post_only: msg
                .get(18)
                .is_some_and(|v| v.split(|b| *b == b' ').any(|x| x == b"6")),
        })
    }

    /// Writes what `notice` tells this session's client; `false` if this session cannot take it
    /// (another owner's, or not logged on: the server keeps it for the owner's next session).
    pub fn deliver(&mut self, notice: &Notice, now_ns: u64) -> bool {
        if notice.owner != self.owner || self.state != AcceptorState::Active {
            return false;
        }
        let before = self.next_out;
        self.deliver_at(notice, None, now_ns);
        if self.next_out > before {
            if self.sent.len() == RESEND_NOTICES_MAX {
                self.sent.pop_front();
            }
            self.sent.push_back((self.next_out - 1, *notice));
        }
        self.save_seq();
        true
    }

    /// Answers a ResendRequest from `begin`: the reports kept are written again at their numbers
    /// (PossDupFlag set), every other number in the range (session messages, reports no longer
    /// kept) is covered by a SequenceReset-GapFill. Uses none of the next numbers.
    fn resend(&mut self, begin: u64, now_ns: u64) {
        let end = self.next_out;
        let kept: Vec<(u64, Notice)> = self
            .sent
            .iter()
            .filter(|(seq, _)| (begin..end).contains(seq))
            .copied()
            .collect();
        let mut at = begin;
        for (seq, notice) in kept {
            if seq > at {
                self.gap_fill(at, seq, now_ns);
            }
            self.deliver_at(&notice, Some(seq), now_ns);
            at = seq + 1;
        }
        if at < end {
            self.gap_fill(at, end, now_ns);
        }
    }

    /// A SequenceReset-GapFill at MsgSeqNum `seq` to `new_seq`.
    fn gap_fill(&mut self, seq: u64, new_seq: u64, now_ns: u64) {
        let ok = self.begin_at(msg_type::SEQUENCE_RESET, seq, now_ns).is_ok()
            && self.writer.field_char(tag::POSS_DUP_FLAG, b'Y').is_ok()
            && self.writer.field_char(tag::GAP_FILL_FLAG, b'Y').is_ok()
            && self.writer.field_u64(tag::NEW_SEQ_NO, new_seq).is_ok();
        if ok {
            let bytes = self.writer.finish();
            self.outbound.extend_from_slice(bytes);
            self.last_out_ns = now_ns;
        }
    }

    /// Writes a notice's message at the next number, or again at `resend_seq` (PossDupFlag).
    fn deliver_at(&mut self, notice: &Notice, resend_seq: Option<u64>, now_ns: u64) {
        let exec_id = self.next_exec_id;
        self.next_exec_id += 1;
        let n = *notice;
        if let OrderEvent::CancelRejected {
            orig_client_order_id,
            reason,
            replace,
        } = n.event
        {
            self.send_as(resend_seq, msg_type::ORDER_CANCEL_REJECT, now_ns, |w, _| {
                w.field(tag::ORDER_ID, b"NONE")?;
                w.field_u64(tag::CL_ORD_ID, n.client_order_id)?;
                w.field_u64(tag::ORIG_CL_ORD_ID, orig_client_order_id)?;
                w.field_char(tag::ORD_STATUS, b'8')?;
                w.field_char(tag::CXL_REJ_RESPONSE_TO, if replace { b'2' } else { b'1' })?;
                w.field_u64(tag::CXL_REJ_REASON, u64::from(reason.fix_code()))?;
                w.field(tag::TEXT, reason.text().as_bytes())
            });
            return;
        }
        self.send_as(
            resend_seq,
            msg_type::EXECUTION_REPORT,
            now_ns,
            |w, instruments| {
                let instrument = instruments.get(n.instrument_id);
                let (venue_order_id, exec, status) = match n.event {
                    OrderEvent::Accepted { venue_order_id, .. } => (venue_order_id, b'0', b'0'),
                    OrderEvent::Filled {
                        venue_order_id,
                        leaves_qty,
                        ..
                    } => (
                        venue_order_id,
                        b'F',
                        if leaves_qty == 0 { b'2' } else { b'1' },
                    ),
                    OrderEvent::Canceled { venue_order_id, .. } => (venue_order_id, b'4', b'4'),
                    OrderEvent::Replaced { venue_order_id, .. } => (venue_order_id, b'5', b'0'),
                    OrderEvent::Rejected { .. } => (0, b'8', b'8'),
                    OrderEvent::CancelRejected { .. } => (0, b'8', b'8'),
                };
                w.field_u64(tag::ORDER_ID, venue_order_id)?;
                w.field_u64(tag::CL_ORD_ID, n.client_order_id)?;
                match n.event {
                    OrderEvent::Canceled { .. } => {
                        w.field_u64(tag::ORIG_CL_ORD_ID, n.client_order_id)?
                    }
                    OrderEvent::Replaced {
                        orig_client_order_id,
                        ..
                    } => w.field_u64(tag::ORIG_CL_ORD_ID, orig_client_order_id)?,
                    _ => {}
                }
                w.field_u64(tag::EXEC_ID, exec_id)?;
                w.field_char(tag::EXEC_TYPE, exec)?;
                w.field_char(tag::ORD_STATUS, status)?;
                if let Some(i) = instrument {
                    w.field(tag::SYMBOL, i.symbol.as_str().as_bytes())?;
                }
                w.field_char(tag::SIDE, if n.side == side::SELL { b'2' } else { b'1' })?;
                let scales = instrument.map(|i| (i.price_scale, i.qty_scale));
                let (leaves, cum, last) = match n.event {
                    OrderEvent::Accepted { qty, .. } => (qty, 0, None),
                    OrderEvent::Filled {
                        last_px,
                        last_qty,
                        cum_qty,
                        leaves_qty,
                        ..
                    } => (leaves_qty, cum_qty, Some((last_px, last_qty))),
                    OrderEvent::Canceled { cum_qty, .. } => (0, cum_qty, None),
                    OrderEvent::Replaced { leaves_qty, .. } => (leaves_qty, 0, None),
                    _ => (0, 0, None),
                };
                if let Some((ps, qs)) = scales {
                    if n.px > 0 {
                        w.field_units(tag::PRICE, n.px, ps)?;
                    }
                    w.field_units(tag::LEAVES_QTY, leaves, qs)?;
                    w.field_units(tag::CUM_QTY, cum, qs)?;
                    match last {
                        Some((px, qty)) => {
                            w.field_units(tag::LAST_PX, px, ps)?;
                            w.field_units(tag::LAST_QTY, qty, qs)?;
                            w.field_units(tag::AVG_PX, px, ps)?;
                        }
                        None => w.field_u64(tag::AVG_PX, 0)?,
                    }
                } else {
                    w.field_u64(tag::LEAVES_QTY, 0)?;
                    w.field_u64(tag::CUM_QTY, 0)?;
                    w.field_u64(tag::AVG_PX, 0)?;
                }
                if let OrderEvent::Rejected { reason } = n.event {
                    w.field_u64(tag::ORD_REJ_REASON, u64::from(reason.fix_code()))?;
                    w.field(tag::TEXT, reason.text().as_bytes())?;
                }
                Ok(())
            },
        );
    }
}

/// The order fields of one Order Status report (ExecType I).
fn write_order_status(
    w: &mut FixWriter,
    instruments: &InstrumentTable,
    order: &WorkingOrder,
    exec_id: u64,
) -> Result<(), FixEncodeError> {
    let instrument_id = order.instrument_id;
    let instrument = instruments
        .get(instrument_id)
        .ok_or(FixEncodeError::UnknownInstrument { instrument_id })?;
    let (ps, qs) = (instrument.price_scale, instrument.qty_scale);
    w.field_u64(tag::ORDER_ID, order.venue_order_id)?;
    w.field_u64(tag::CL_ORD_ID, order.client_order_id)?;
    w.field_u64(tag::EXEC_ID, exec_id)?;
    w.field_char(tag::EXEC_TYPE, b'I')?;
    w.field_char(tag::ORD_STATUS, if order.cum_qty > 0 { b'1' } else { b'0' })?;
    w.field(tag::SYMBOL, instrument.symbol.as_str().as_bytes())?;
    w.field_char(
        tag::SIDE,
        if order.side == side::SELL { b'2' } else { b'1' },
    )?;
    w.field_units(tag::ORDER_QTY, order.qty, qs)?;
    w.field_units(tag::PRICE, order.px, ps)?;
    w.field_units(tag::CUM_QTY, order.cum_qty, qs)?;
    w.field_units(tag::LEAVES_QTY, order.qty - order.cum_qty, qs)?;
    w.field_units(tag::AVG_PX, order.avg_px, ps)
}

/// Offset of the next `8=FIX` in `bytes` (a message start after garbage).
fn next_message_start(bytes: &[u8]) -> Option<usize> {
    bytes.windows(5).position(|w| w == b"8=FIX")
}
