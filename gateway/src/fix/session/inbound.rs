//! What the venue sends: [`FixSession::handle`] takes one message at a time from the
//! transport's bytes (garbled input is skipped up to the next `8=FIX.4.4`), checks its CompIDs
//! and MsgSeqNum against the sequence (see the parent module's rules), and acts on it by type:
//! Logon, TestRequest, Logout, execution reports and cancel rejects. Resends and gaps are
//! `resend.rs`'s; a session Reject and the answers that mark our orders are `sent.rs`'s.

use std::io::Write as _;

use super::fields::{FieldProblem, SessionFields, required, required_u64};
use super::report::{
    INSTRUMENT_UNKNOWN, ReportError, decode_execution_report, decode_order_cancel_reject,
};
use super::{
    DisconnectReason, FixSession, Handled, SEQ_NUM_MAX, SessionEvent, SessionState, TEXT_LEN_MAX,
    session_reject_reason,
};
use crate::fix::parse::{FixMessage, FixParseError, parse_message, value_u64};
use crate::fix::{Tag, msg_type, tag};

impl FixSession {
    /// Takes at most one message from the start of `input`, received at `now_ns`: see
    /// [`Handled`]. Garbled bytes are consumed (up to the next `8=FIX.4.4`) without an event.
    /// Takes nothing while queued events wait for [`take_event`](Self::take_event).
    pub fn handle(&mut self, input: &[u8], now_ns: u64) -> Handled {
        if !self.queued.is_empty() {
            return Handled {
                consumed: 0,
                event: None,
            };
        }
        let msg = match parse_message(input) {
            Ok(msg) => msg,
            Err(FixParseError::Incomplete { .. }) => {
                return Handled {
                    consumed: 0,
                    event: None,
                };
            }
            Err(_) => {
                self.garbled_count += 1;
                return Handled {
                    consumed: resync_point(input),
                    event: None,
                };
            }
        };
        let consumed = msg.as_bytes().len();
        let event = if matches!(
            self.state,
            SessionState::Disconnected | SessionState::Closed
        ) {
            None
        } else {
            self.last_received_ns = now_ns;
            if self.state == SessionState::Active {
                // Any message answers a TestRequest.
                self.pending_since_ns = None;
            }
            self.on_message(&msg, now_ns)
        };
        Handled { consumed, event }
    }

    fn on_message(&mut self, msg: &FixMessage<'_>, now_ns: u64) -> Option<SessionEvent> {
        let f = SessionFields::of(msg);
        let kind = msg.msg_type();
        let Some(seq) = f.seq.and_then(value_u64) else {
            let _ = self.write_logout(now_ns, b"MsgSeqNum (34) missing or not a number");
            return Some(self.close(DisconnectReason::MissingSeqNum));
        };
        if f.sender != Some(self.config.target_comp_id.as_bytes())
            || f.target != Some(self.config.sender_comp_id.as_bytes())
        {
            let tag = if f.sender != Some(self.config.target_comp_id.as_bytes()) {
                tag::SENDER_COMP_ID
            } else {
                tag::TARGET_COMP_ID
            };
            let _ = self.write_reject(
                now_ns,
                seq,
                kind,
                tag,
                session_reject_reason::COMP_ID_PROBLEM,
            );
            let _ = self.write_logout(now_ns, b"CompID problem");
            return Some(self.close(DisconnectReason::CompIdMismatch));
        }
        if seq > SEQ_NUM_MAX {
            // No number after it: the sequence cannot go on.
            let _ = self.write_reject(
                now_ns,
                seq,
                kind,
                tag::MSG_SEQ_NUM,
                session_reject_reason::VALUE_INCORRECT,
            );
            let _ = self.write_logout(now_ns, b"MsgSeqNum (34) out of range");
            return Some(self.close(DisconnectReason::SeqNumOutOfRange { received: seq }));
        }
        if self.state == SessionState::LogonSent && kind == msg_type::LOGOUT {
            // The venue refused our Logon (a bad signature, an unknown comp id): no answer.
            return Some(self.close(DisconnectReason::LogonRefused));
        }
        if self.state == SessionState::LogonSent && kind != msg_type::LOGON {
            let _ = self.write_logout(now_ns, b"first message is not a Logon");
            return Some(self.close(DisconnectReason::NotLogon));
        }
        self.note_answer(&f, kind);
        if kind == msg_type::LOGON && f.reset_seq_num == Some(b"Y") {
            self.seq.next_target = 1;
        }
        let is_gap_fill = f.gap_fill == Some(b"Y");
        if kind == msg_type::SEQUENCE_RESET && !is_gap_fill {
            // Reset mode: MsgSeqNum is ignored.
            return self.on_sequence_reset(&f, seq, kind, false, now_ns);
        }

        let expected = self.seq.next_target;
        if seq < expected {
            if f.poss_dup == Some(b"Y") {
                return None;
            }
            let mut text = [0u8; TEXT_LEN_MAX];
            let len = {
                let mut cursor = std::io::Cursor::new(&mut text[..]);
                // Cold path; the text fits in TEXT_LEN_MAX.
                let _ = write!(
                    cursor,
                    "MsgSeqNum too low, expecting {expected} but received {seq}"
                );
                cursor.position() as usize
            };
            let _ = self.write_logout(now_ns, &text[..len]);
            return Some(self.close(DisconnectReason::SeqNumTooLow {
                expected,
                received: seq,
            }));
        }
        if seq > expected {
            return self.on_gap(&f, seq, kind, expected, now_ns);
        }

        // In order; seq <= SEQ_NUM_MAX < u64::MAX.
        self.seq.next_target = seq + 1;
        if f.sending_time.is_none() {
            self.gap_progress(now_ns);
            return self.reject(
                now_ns,
                seq,
                kind,
                FieldProblem {
                    tag: tag::SENDING_TIME,
                    reason: session_reject_reason::REQUIRED_TAG_MISSING,
                },
            );
        }
        // A GapFill says its own number was a session message too: on_sequence_reset checks
        // that against the open gap (a report dropped at that very number is lost) before it
        // moves the gap on. Every other message moves it now.
        if kind != msg_type::SEQUENCE_RESET {
            self.gap_progress(now_ns);
        }
        match kind {
            msg_type::LOGON => self.on_logon(&f, seq, kind, now_ns),
            msg_type::TEST_REQUEST => {
                let id = match required(f.test_req_id, tag::TEST_REQ_ID) {
                    Ok(id) => id,
                    Err(problem) => return self.reject(now_ns, seq, kind, problem),
                };
                if let Err(error) = self.write_session(msg_type::HEARTBEAT, now_ns, |w| {
                    w.field(tag::TEST_REQ_ID, id)
                }) {
                    return Some(self.failed(error));
                }
                None
            }
            msg_type::RESEND_REQUEST => self.on_resend_request(&f, seq, kind, now_ns),
            msg_type::SEQUENCE_RESET => self.on_sequence_reset(&f, seq, kind, true, now_ns),
            msg_type::REJECT => self.on_reject(&f, seq, kind, now_ns),
            msg_type::LOGOUT => self.on_logout(now_ns),
            msg_type::EXECUTION_REPORT | msg_type::ORDER_CANCEL_REJECT => {
                let decoded = if kind == msg_type::EXECUTION_REPORT {
                    decode_execution_report(msg, &self.instruments)
                } else {
                    decode_order_cancel_reject(msg, &self.instruments)
                };
                match decoded {
                    Ok(mut report) => {
                        if report.instrument_id == INSTRUMENT_UNKNOWN {
                            self.fill_from_sent(&mut report);
                        }
                        Some(SessionEvent::Report(report))
                    }
                    Err(error) => {
                        let reason = match error {
                            ReportError::MissingField { .. } => {
                                session_reject_reason::REQUIRED_TAG_MISSING
                            }
                            ReportError::BadValue { .. } | ReportError::UnknownSymbol { .. } => {
                                session_reject_reason::VALUE_INCORRECT
                            }
                            ReportError::BadDecimal { .. } => {
                                session_reject_reason::INCORRECT_DATA_FORMAT
                            }
                        };
                        let tag = Tag::new(error.tag());
                        if let Err(error) = self.write_reject(now_ns, seq, kind, tag, reason) {
                            return Some(self.failed(error));
                        }
                        Some(SessionEvent::BadReport(error))
                    }
                }
            }
            // A Heartbeat needs nothing more (its number was taken, and any answer noted,
            // above). Other application messages (a mass cancel report, news) are not ours to
            // read.
            _ => None,
        }
    }

    pub(super) fn on_logon(
        &mut self,
        f: &SessionFields<'_>,
        seq: u64,
        kind: &[u8],
        now_ns: u64,
    ) -> Option<SessionEvent> {
        if self.state != SessionState::LogonSent {
            // A second Logon on an active session: nothing to do.
            return None;
        }
        let heart_bt_int_s = match required_u64(f.heart_bt_int, tag::HEART_BT_INT) {
            Ok(value) => value,
            Err(problem) => return self.reject(now_ns, seq, kind, problem),
        };
        if let Err(problem) = required(f.encrypt_method, tag::ENCRYPT_METHOD) {
            return self.reject(now_ns, seq, kind, problem);
        }
        self.state = SessionState::Active;
        self.pending_since_ns = None;
        // The new sequence holds: reconnects continue it.
        self.reset_next_logon = false;
        Some(SessionEvent::LoggedOn {
            heart_bt_int_s: u32::try_from(heart_bt_int_s).unwrap_or(u32::MAX),
        })
    }

    pub(super) fn on_logout(&mut self, now_ns: u64) -> Option<SessionEvent> {
        let by_peer = self.state != SessionState::LogoutSent;
        if by_peer {
            let _ = self.write_logout(now_ns, b"");
        }
        self.state = SessionState::Closed;
        self.pending_since_ns = None;
        self.gap_lost_on_close();
        Some(SessionEvent::LoggedOut { by_peer })
    }
}

/// `8=FIX.4.4|`, where a message may start.
const MESSAGE_START: &[u8] = b"8=FIX.4.4\x01";

/// How many bytes of garbled `input` to skip: up to the next `8=FIX.4.4|` after its first
/// byte, or all but a tail that might be the start of one.
fn resync_point(input: &[u8]) -> usize {
    if let Some(at) = input
        .windows(MESSAGE_START.len())
        .skip(1)
        .position(|window| window == MESSAGE_START)
    {
        return at + 1;
    }
    let keep = (1..MESSAGE_START.len())
        .rev()
        .find(|&len| len < input.len() && input.ends_with(&MESSAGE_START[..len]))
        .unwrap_or(0);
    (input.len() - keep).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resync_skips_to_the_next_message() {
        assert_eq!(resync_point(b"8=FIX.4.4\x01junk8=FIX.4.4\x01"), 14);
        assert_eq!(resync_point(b"garbage"), 7);
        assert_eq!(resync_point(b"garbage8=FI"), 7);
        assert_eq!(resync_point(b"8"), 1);
        // A garbled message that is all start: its first byte is the garbled one, so no tail
        // of it is kept.
        assert_eq!(resync_point(b"8=FIX.4."), 8);
    }
}
