//! What the session writes: the fixed outbound buffer the transport drains ([`Outbound`],
//! [`FixSession::outbound`], [`FixSession::consume_outbound`], [`FixSession::retract_order`]),
//! and the session messages written into it with our next MsgSeqNum (the standard header, a
//! session Reject, a Logout).

use super::fields::FieldProblem;
use super::{FixSession, SEQ_NUM_MAX, SessionError, SessionEvent};
use crate::fix::encode::FixEncodeError;
use crate::fix::time::UtcTimestampCache;
use crate::fix::writer::FixWriter;
use crate::fix::{Tag, msg_type, tag};

/// The fixed outbound buffer: bytes `[start, end)` wait for the transport.
pub(super) struct Outbound {
    pub(super) buf: Box<[u8]>,
    pub(super) start: usize,
    pub(super) end: usize,
}

impl Outbound {
    pub(super) fn push(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        if self.buf.len() - self.end < bytes.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let free = self.buf.len() - self.end;
        if free < bytes.len() {
            return Err(SessionError::OutboundFull {
                len: bytes.len(),
                free,
            });
        }
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
        Ok(())
    }
}

impl FixSession {
    /// Bytes written and not yet sent.
    #[inline]
    pub fn outbound(&self) -> &[u8] {
        &self.out.buf[self.out.start..self.out.end]
    }

    /// Takes back the order just queued by [`send_order`](Self::send_order) as `msg_seq_num`
    /// (`encoded_len` bytes), before any of it was written out: its bytes leave the outbound
    /// buffer and its number is free again. `false` (nothing changed) if it is not the last
    /// thing queued or some of it was consumed. Cold path: the gateway's answer to a
    /// write-ahead journal append that failed, so that no order leaves unjournaled.
    pub fn retract_order(&mut self, msg_seq_num: u64, encoded_len: usize) -> bool {
        let queued = self.out.end - self.out.start;
        // The last `encoded_len` bytes must be one whole message (a wrong length would cut
        // another's bytes).
        let whole = queued >= encoded_len
            && self.out.buf[self.out.end - encoded_len..self.out.end].starts_with(b"8=FIX");
        if msg_seq_num == 0 || msg_seq_num.checked_add(1) != Some(self.seq.next_sender) || !whole {
            return false;
        }
        self.out.end -= encoded_len;
        if self.out.start == self.out.end {
            self.out.start = 0;
            self.out.end = 0;
        }
        self.seq.next_sender = msg_seq_num;
        self.sent.clear(msg_seq_num);
        true
    }

    /// Marks the first `len` bytes of [`outbound`](Self::outbound) as sent.
    #[inline]
    pub fn consume_outbound(&mut self, len: usize) {
        assert!(
            len <= self.out.end - self.out.start,
            "consumed more than outbound"
        );
        self.out.start += len;
        if self.out.start == self.out.end {
            self.out.start = 0;
            self.out.end = 0;
        }
    }

    /// Our next MsgSeqNum, if it is a valid one (see the module doc's arithmetic rule).
    #[inline]
    pub(super) fn sender_seq(&self) -> Result<u64, SessionError> {
        match self.seq.next_sender {
            n @ 1..=SEQ_NUM_MAX => Ok(n),
            next_sender => Err(SessionError::SeqNumOutOfRange { next_sender }),
        }
    }

    /// Writes a session Reject of the inbound message `ref_seq_num`.
    pub(super) fn reject(
        &mut self,
        now_ns: u64,
        ref_seq_num: u64,
        ref_msg_type: &[u8],
        problem: FieldProblem,
    ) -> Option<SessionEvent> {
        if let Err(error) = self.write_reject(
            now_ns,
            ref_seq_num,
            ref_msg_type,
            problem.tag,
            problem.reason,
        ) {
            return Some(self.failed(error));
        }
        None
    }

    pub(super) fn write_reject(
        &mut self,
        now_ns: u64,
        ref_seq_num: u64,
        ref_msg_type: &[u8],
        ref_tag: Tag,
        reason: u32,
    ) -> Result<(), SessionError> {
        self.write_session(msg_type::REJECT, now_ns, |w| {
            w.field_u64(tag::REF_SEQ_NUM, ref_seq_num)?;
            w.field_u64(tag::REF_TAG_ID, u64::from(ref_tag.number()))?;
            w.field(tag::REF_MSG_TYPE, ref_msg_type)?;
            w.field_u64(tag::SESSION_REJECT_REASON, u64::from(reason))
        })
    }

    pub(super) fn write_logout(&mut self, now_ns: u64, text: &[u8]) -> Result<(), SessionError> {
        self.write_session(msg_type::LOGOUT, now_ns, |w| {
            if !text.is_empty() {
                w.field(tag::TEXT, text)?;
            }
            Ok(())
        })
    }

    /// Writes one session message with the next MsgSeqNum: the standard header, then `body`.
    pub(super) fn write_session(
        &mut self,
        kind: &[u8],
        now_ns: u64,
        body: impl FnOnce(&mut FixWriter) -> Result<(), FixEncodeError>,
    ) -> Result<(), SessionError> {
        let msg_seq_num = self.sender_seq()?;
        write_header(
            &mut self.writer,
            &mut self.clock,
            &self.comp_id_fields,
            kind,
            msg_seq_num,
            now_ns,
        )?;
        let w = &mut self.writer;
        body(w)?;
        self.out.push(w.finish())?;
        // msg_seq_num <= SEQ_NUM_MAX < u64::MAX.
        self.seq.next_sender = msg_seq_num + 1;
        self.last_sent_ns = now_ns;
        Ok(())
    }
}

/// Begins a message of type `kind` in `w` with the standard header.
pub(super) fn write_header(
    w: &mut FixWriter,
    clock: &mut UtcTimestampCache,
    comp_id_fields: &[u8],
    kind: &[u8],
    msg_seq_num: u64,
    now_ns: u64,
) -> Result<(), FixEncodeError> {
    let time = clock.format(now_ns);
    w.begin(kind)?;
    w.encoded_fields(tag::SENDER_COMP_ID, comp_id_fields)?;
    w.field_u64(tag::MSG_SEQ_NUM, msg_seq_num)?;
    w.field_timestamp(tag::SENDING_TIME, &time)
}
