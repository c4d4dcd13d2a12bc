//! The fields the session reads from an inbound message ([`SessionFields`], one pass, no
//! allocation), and the checks that turn a bad one into a session Reject ([`FieldProblem`]).

use super::{SEQ_NUM_MAX, session_reject_reason};
use crate::fix::{FixMessage, Tag, value_u64};

/// Header and body fields the session reads from every inbound message (first occurrence).
#[derive(Default)]
pub(super) struct SessionFields<'a> {
    pub(super) seq: Option<&'a [u8]>,
    pub(super) sender: Option<&'a [u8]>,
    pub(super) target: Option<&'a [u8]>,
    pub(super) sending_time: Option<&'a [u8]>,
    pub(super) poss_dup: Option<&'a [u8]>,
    pub(super) gap_fill: Option<&'a [u8]>,
    pub(super) new_seq_no: Option<&'a [u8]>,
    pub(super) test_req_id: Option<&'a [u8]>,
    pub(super) begin_seq_no: Option<&'a [u8]>,
    pub(super) end_seq_no: Option<&'a [u8]>,
    pub(super) ref_seq_num: Option<&'a [u8]>,
    pub(super) ref_tag_id: Option<&'a [u8]>,
    pub(super) session_reject_reason: Option<&'a [u8]>,
    pub(super) heart_bt_int: Option<&'a [u8]>,
    pub(super) encrypt_method: Option<&'a [u8]>,
    pub(super) reset_seq_num: Option<&'a [u8]>,
    // Which of our orders a message answers.
    pub(super) cl_ord_id: Option<&'a [u8]>,
    pub(super) orig_cl_ord_id: Option<&'a [u8]>,
    pub(super) exec_type: Option<&'a [u8]>,
    pub(super) mass_status_req_id: Option<&'a [u8]>,
}

impl<'a> SessionFields<'a> {
    pub(super) fn of(msg: &FixMessage<'a>) -> SessionFields<'a> {
        let mut f = SessionFields::default();
        for (number, value) in msg.body_fields() {
            let slot = match number {
                34 => &mut f.seq,
                49 => &mut f.sender,
                56 => &mut f.target,
                52 => &mut f.sending_time,
                43 => &mut f.poss_dup,
                123 => &mut f.gap_fill,
                36 => &mut f.new_seq_no,
                112 => &mut f.test_req_id,
                7 => &mut f.begin_seq_no,
                16 => &mut f.end_seq_no,
                45 => &mut f.ref_seq_num,
                371 => &mut f.ref_tag_id,
                373 => &mut f.session_reject_reason,
                108 => &mut f.heart_bt_int,
                98 => &mut f.encrypt_method,
                141 => &mut f.reset_seq_num,
                11 => &mut f.cl_ord_id,
                41 => &mut f.orig_cl_ord_id,
                150 => &mut f.exec_type,
                584 => &mut f.mass_status_req_id,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        f
    }
}

/// A problem with one field of an inbound session message, answered with a session Reject.
pub(super) struct FieldProblem {
    pub(super) tag: Tag,
    pub(super) reason: u32,
}

pub(super) fn required(value: Option<&[u8]>, tag: Tag) -> Result<&[u8], FieldProblem> {
    value.ok_or(FieldProblem {
        tag,
        reason: session_reject_reason::REQUIRED_TAG_MISSING,
    })
}

pub(super) fn required_u64(value: Option<&[u8]>, tag: Tag) -> Result<u64, FieldProblem> {
    value_u64(required(value, tag)?).ok_or(FieldProblem {
        tag,
        reason: session_reject_reason::INCORRECT_DATA_FORMAT,
    })
}

/// A required sequence number field: in `1..=SEQ_NUM_MAX`.
pub(super) fn seq_num(value: Option<&[u8]>, tag: Tag) -> Result<u64, FieldProblem> {
    match required_u64(value, tag)? {
        n @ 1..=SEQ_NUM_MAX => Ok(n),
        _ => Err(FieldProblem {
            tag,
            reason: session_reject_reason::VALUE_INCORRECT,
        }),
    }
}
