//! Resends and gaps, both ways: the venue's ResendRequest (answered with one GapFill; the
//! orders in its range that the venue never answered are reported lost), the venue's
//! SequenceReset, and our inbound gap: detected, asked for, closed, or given up as
//! [`SessionEvent::GapUnfilled`]. The rules are in the parent module's doc.

use super::fields::{FieldProblem, SessionFields, required_u64, seq_num};
use super::{
    DisconnectReason, FixSession, ORDER_SEQ_MAP_LEN, QUEUED_EVENTS_MAX, SEQ_NUM_MAX, SessionEvent,
    session_reject_reason,
};
use crate::fix::encode::FixEncodeError;
use crate::fix::{msg_type, tag};
use levibot_shm::codes::reject_reason;

/// How long our ResendRequest may go without progress before the gap is given up, in
/// HeartBtInts: no inbound number closer to closing it for this long (the venue resends one
/// message after the other, so any progress restarts the clock).
pub const GAP_FILL_TIMEOUT_HEART_BT_INTS: u64 = 2;

/// Inbound numbers after the start of a gap whose kind (application or not) the session
/// remembers: an application message dropped further out is remembered only as "some".
pub const GAP_APP_WINDOW_LEN: usize = 4096;
const GAP_APP_WORDS: usize = GAP_APP_WINDOW_LEN / 64;
const _: () = assert!(GAP_APP_WINDOW_LEN.is_multiple_of(64));

/// Why an inbound gap was given up (see [`SessionEvent::GapUnfilled`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapUnfilledReason {
    /// The venue answered with a SequenceReset-Reset (123 absent or N) past numbers we never
    /// received.
    SequenceReset,
    /// A SequenceReset-GapFill skipped a number at which the venue had sent us an application
    /// message (an execution report, say) that we dropped because it came after the gap: the
    /// venue says it will not send it again.
    GapFillOverApplication,
    /// [`GAP_FILL_TIMEOUT_HEART_BT_INTS`] HeartBtInts without progress. The session moves on
    /// past the highest number received, so that new messages are processed again.
    Timeout,
    /// The session ended (our close, the venue's Logout, or the connection dropped) with the gap
    /// open. The next session asks again from the same number.
    Disconnected,
}

/// Our open inbound gap, if any.
#[derive(Clone, Copy, Debug)]
pub(super) struct Gap {
    /// The highest inbound number received (and dropped) beyond the gap: the gap is
    /// `[next_target, until]`. `None`: no gap.
    pub(super) until: Option<u64>,
    /// When the gap last made progress: our ResendRequest, or the expected number moving.
    since_ns: u64,
    /// The expected number when the gap opened: bit `n` of `app` is number `base + n`.
    base: u64,
    /// Numbers at which an application message was dropped.
    app: [u64; GAP_APP_WORDS],
    /// An application message was dropped at `base + GAP_APP_WINDOW_LEN` or later.
    app_beyond: bool,
}

impl Gap {
    pub(super) const NONE: Gap = Gap {
        until: None,
        since_ns: 0,
        base: 0,
        app: [0; GAP_APP_WORDS],
        app_beyond: false,
    };

    fn open(&mut self, base: u64, now_ns: u64) {
        *self = Gap {
            since_ns: now_ns,
            base,
            ..Gap::NONE
        };
    }

    pub(super) fn close(&mut self) {
        self.until = None;
    }

    /// Number `seq` (past the gap) was dropped; `application`: it was not a session message.
    fn dropped(&mut self, seq: u64, application: bool) {
        self.until = Some(self.until.map_or(seq, |until| until.max(seq)));
        if !application {
            return;
        }
        match usize::try_from(seq.saturating_sub(self.base)) {
            Ok(n) if n < GAP_APP_WINDOW_LEN => self.app[n / 64] |= 1 << (n % 64),
            _ => self.app_beyond = true,
        }
    }

    /// Whether an application message was dropped at a number in `[from, to)`.
    fn application_in(&self, from: u64, to: u64) -> bool {
        let window_end = self.base.saturating_add(GAP_APP_WINDOW_LEN as u64);
        if self.app_beyond && to > window_end {
            return true;
        }
        let lo = from.clamp(self.base, window_end) - self.base;
        let hi = to.clamp(self.base, window_end) - self.base;
        // At most GAP_APP_WINDOW_LEN numbers, a word at a time.
        let (mut n, hi) = (lo as usize, hi as usize);
        while n < hi {
            let bits = hi.min((n / 64 + 1) * 64) - n;
            let mask = if bits == 64 {
                u64::MAX
            } else {
                ((1u64 << bits) - 1) << (n % 64)
            };
            if self.app[n / 64] & mask != 0 {
                return true;
            }
            n += bits;
        }
        false
    }
}

/// Whether a message of type `kind` is an application message (not a session message).
fn is_application(kind: &[u8]) -> bool {
    !matches!(
        kind,
        msg_type::HEARTBEAT
            | msg_type::TEST_REQUEST
            | msg_type::RESEND_REQUEST
            | msg_type::REJECT
            | msg_type::SEQUENCE_RESET
            | msg_type::LOGOUT
            | msg_type::LOGON
    )
}

impl FixSession {
    /// Inbound `seq` above the `expected` number: a gap. One ResendRequest (everything from
    /// `expected`) while none is out; the message is dropped (a Logon or Logout is acted on).
    pub(super) fn on_gap(
        &mut self,
        f: &SessionFields<'_>,
        seq: u64,
        kind: &[u8],
        expected: u64,
        now_ns: u64,
    ) -> Option<SessionEvent> {
        let gap = SessionEvent::GapDetected {
            expected,
            received: seq,
        };
        if self.gap.until.is_none() {
            self.gap.open(expected, now_ns);
            // EndSeqNo 0 asks for everything after `expected`; a Logout ends the session
            // anyway (the next one asks).
            if kind != msg_type::LOGOUT {
                let requested = self.write_session(msg_type::RESEND_REQUEST, now_ns, |w| {
                    w.field_u64(tag::BEGIN_SEQ_NO, expected)?;
                    w.field_u64(tag::END_SEQ_NO, 0)
                });
                if let Err(error) = requested {
                    return Some(self.failed(error));
                }
            }
        }
        self.gap.dropped(seq, is_application(kind));
        match kind {
            msg_type::LOGON => self.on_logon(f, seq, kind, now_ns).or(Some(gap)),
            msg_type::LOGOUT => self.on_logout(now_ns),
            _ => Some(gap),
        }
    }

    /// The expected number moved: the gap is closed once it passes the gap's end, and its
    /// clock restarts otherwise.
    pub(super) fn gap_progress(&mut self, now_ns: u64) {
        if let Some(until) = self.gap.until {
            if self.seq.next_target > until {
                self.gap.close();
            } else {
                self.gap.since_ns = now_ns;
            }
        }
    }

    /// [`GapUnfilledReason::Timeout`], from [`poll_timers`](FixSession::poll_timers): the gap is
    /// given up and the session expects the number after the highest it received.
    pub(super) fn gap_timeout(&mut self, now_ns: u64) -> Option<SessionEvent> {
        let until = self.gap.until?;
        let timeout_ns = self
            .heart_bt_int_ns
            .saturating_mul(GAP_FILL_TIMEOUT_HEART_BT_INTS);
        if now_ns.saturating_sub(self.gap.since_ns) < timeout_ns {
            return None;
        }
        let from = self.seq.next_target;
        // `until` is a received number, at most SEQ_NUM_MAX.
        self.seq.next_target = until.saturating_add(1);
        self.gap.close();
        Some(SessionEvent::GapUnfilled {
            from,
            to: until,
            reason: GapUnfilledReason::Timeout,
        })
    }

    /// The session is ending: an open gap is queued as [`GapUnfilledReason::Disconnected`].
    /// The expected number stays, so the next session asks for the same numbers again.
    pub(super) fn gap_lost_on_close(&mut self) {
        if let Some(until) = self.gap.until {
            self.gap.close();
            self.queue_event(SessionEvent::GapUnfilled {
                from: self.seq.next_target,
                to: until,
                reason: GapUnfilledReason::Disconnected,
            });
        }
    }

    /// Queues `event` for [`take_event`](FixSession::take_event). `false` if the queue is full,
    /// which [`handle`](FixSession::handle)'s rule (nothing is taken while events wait) makes a
    /// bug.
    pub(super) fn queue_event(&mut self, event: SessionEvent) -> bool {
        debug_assert!(
            self.queued.len() < QUEUED_EVENTS_MAX,
            "the session's event queue overflowed"
        );
        if self.queued.len() >= QUEUED_EVENTS_MAX {
            return false;
        }
        self.queued.push_back(event);
        true
    }

    /// The venue's ResendRequest for `[7, 16]` (16 = 0: everything): one GapFill over the part
    /// we sent, and a REJECTED (lost in flight) report, queued, for each order in it that the
    /// venue never answered.
    pub(super) fn on_resend_request(
        &mut self,
        f: &SessionFields<'_>,
        seq: u64,
        kind: &[u8],
        now_ns: u64,
    ) -> Option<SessionEvent> {
        let begin = match seq_num(f.begin_seq_no, tag::BEGIN_SEQ_NO) {
            Ok(begin) => begin,
            Err(problem) => return self.reject(now_ns, seq, kind, problem),
        };
        let end = match required_u64(f.end_seq_no, tag::END_SEQ_NO) {
            Ok(0) => None,
            Ok(end) if (begin..=SEQ_NUM_MAX).contains(&end) => Some(end),
            Ok(_) => {
                let problem = FieldProblem {
                    tag: tag::END_SEQ_NO,
                    reason: session_reject_reason::VALUE_INCORRECT,
                };
                return self.reject(now_ns, seq, kind, problem);
            }
            Err(problem) => return self.reject(now_ns, seq, kind, problem),
        };
        let next = self.seq.next_sender;
        if begin >= next {
            // Nothing we sent is in the range.
            return None;
        }
        // `begin < next`, so `next - 1` is at least `begin`, and `last + 1` at most `next`.
        let last = end.map_or(next - 1, |end| end.min(next - 1));
        // One GapFill over [begin, last]: see the module doc for why nothing is re-sent.
        let time = self.clock.format(now_ns);
        let written = (|| {
            let w = &mut self.writer;
            w.begin(msg_type::SEQUENCE_RESET)?;
            w.encoded_fields(tag::SENDER_COMP_ID, &self.comp_id_fields)?;
            w.field_u64(tag::MSG_SEQ_NUM, begin)?;
            w.field_char(tag::POSS_DUP_FLAG, b'Y')?;
            w.field_timestamp(tag::SENDING_TIME, &time)?;
            w.field_timestamp(tag::ORIG_SENDING_TIME, &time)?;
            w.field_char(tag::GAP_FILL_FLAG, b'Y')?;
            w.field_u64(tag::NEW_SEQ_NO, last + 1)?;
            Ok::<_, FixEncodeError>(())
        })();
        if written.is_err() || self.out.push(self.writer.finish()).is_err() {
            return Some(self.close(DisconnectReason::OutboundFull));
        }
        self.last_sent_ns = now_ns;
        // The orders in the range that the venue never answered never reached it and never
        // will: each becomes a REJECTED report, once. Only the last ORDER_SEQ_MAP_LEN numbers
        // are remembered, which bounds the loop whatever the range.
        let first = begin.max((last + 1).saturating_sub(ORDER_SEQ_MAP_LEN as u64));
        for lost in first..=last {
            if let Some(entry) = self.sent.take_unanswered(lost)
                && !self.queue_event(SessionEvent::Report(
                    entry.rejected(reject_reason::LOST_IN_FLIGHT),
                ))
            {
                // Not reported: left for a later request.
                self.sent.unmark(lost);
            }
        }
        None
    }

    /// A SequenceReset: GapFill (`gap_fill`, in order, its own number `seq` consumed) or Reset
    /// (any `seq`). NewSeqNo (36) must not go back and must be a valid number.
    pub(super) fn on_sequence_reset(
        &mut self,
        f: &SessionFields<'_>,
        seq: u64,
        kind: &[u8],
        gap_fill: bool,
        now_ns: u64,
    ) -> Option<SessionEvent> {
        let problem = FieldProblem {
            tag: tag::NEW_SEQ_NO,
            reason: session_reject_reason::VALUE_INCORRECT,
        };
        let new_seq_no = match seq_num(f.new_seq_no, tag::NEW_SEQ_NO) {
            // A GapFill's own number was consumed already (next_target = seq + 1).
            Ok(value) if value >= self.seq.next_target => value,
            refused => {
                if gap_fill {
                    // Its own number was taken, and on_message left moving the gap to us.
                    self.gap_progress(now_ns);
                }
                return self.reject(now_ns, seq, kind, refused.err().unwrap_or(problem));
            }
        };
        let old = self.seq.next_target;
        self.seq.next_target = new_seq_no;
        let event = match self.gap.until {
            None => None,
            // [seq, new_seq_no) are session messages, the venue says: not if we dropped an
            // application message at one of them.
            Some(_) if gap_fill && self.gap.application_in(seq, new_seq_no) => {
                Some(SessionEvent::GapUnfilled {
                    from: seq,
                    to: new_seq_no - 1,
                    reason: GapUnfilledReason::GapFillOverApplication,
                })
            }
            // Reset past numbers of the gap we never received.
            Some(_) if !gap_fill && new_seq_no > old => Some(SessionEvent::GapUnfilled {
                from: old,
                to: new_seq_no - 1,
                reason: GapUnfilledReason::SequenceReset,
            }),
            Some(_) => None,
        };
        self.gap_progress(now_ns);
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_numbers_are_found_in_ranges() {
        let mut gap = Gap::NONE;
        gap.open(100, 0);
        gap.dropped(105, true);
        gap.dropped(106, false);
        gap.dropped(100 + 64 * 3 + 7, true);
        assert_eq!(gap.until, Some(100 + 64 * 3 + 7));
        assert!(!gap.application_in(100, 105));
        assert!(gap.application_in(100, 106));
        assert!(gap.application_in(105, 106));
        assert!(!gap.application_in(106, 100 + 64 * 3 + 7));
        assert!(gap.application_in(106, 100 + 64 * 3 + 8));
        assert!(!gap.application_in(0, 100));
        assert!(!gap.application_in(u64::MAX - 1, u64::MAX));
        // Beyond the window: only "some".
        gap.dropped(100 + GAP_APP_WINDOW_LEN as u64 + 5, true);
        assert!(gap.application_in(300, u64::MAX));
        assert!(!gap.application_in(300, 100 + GAP_APP_WINDOW_LEN as u64));
        // A gap near the top of the numbers.
        gap.open(SEQ_NUM_MAX - 10, 0);
        gap.dropped(SEQ_NUM_MAX, true);
        assert!(gap.application_in(SEQ_NUM_MAX, u64::MAX));
        assert!(!gap.application_in(SEQ_NUM_MAX - 10, SEQ_NUM_MAX));
    }
}
