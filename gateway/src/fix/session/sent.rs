//! [`SentOrders`]: what the session remembers of the orders it sent, in two fixed tables.
//!
//! - `entries`: [`ORDER_SEQ_MAP_LEN`] entries indexed by `MsgSeqNum & (ORDER_SEQ_MAP_LEN - 1)`,
//!   so the last that many outbound numbers that carried an order are remembered (a session
//!   Reject's RefSeqNum, a ResendRequest's range);
//! - `by_id`: an open-addressing index ClOrdID -> entry ([`ID_INDEX_LEN`] slots, linear probing,
//!   deletion by backward shift, so no tombstones), kept exactly in step with `entries`: every
//!   remembered entry is in it once, under its `client_order_id`, and nothing else is. It is at
//!   most half full, so a lookup probes about two slots.
//!
//! Each entry says whether the venue *answered* the order: any message from the venue about it
//! (an ExecutionReport of any ExecType naming it in ClOrdID (11), or OrigClOrdID (41) unless the
//! report is a rejection; an OrderCancelReject or OrderMassCancelReport naming it in ClOrdID; an
//! Order Status report naming it in MassStatusReqID (584); a session Reject whose RefSeqNum (45)
//! is its number), or we already reported it lost. Only an unanswered order is reported lost
//! when the venue asks for its number again.
//!
//! Hot path ([`SentOrders::note`], [`SentOrders::mark_answered_id`]): a few probes of a fixed
//! table, no allocation.
//!
//! Also here: the session's side of those answers (`FixSession::note_answer`, the session
//! Reject of an order, the instrument of a report that does not name it).

use levibot_shm::codes::reject_reason;
use levibot_shm::records::{ExecutionReport, OrderRequest, exec_type};

use super::fields::{SessionFields, required_u64};
use super::{FixSession, ORDER_SEQ_MAP_LEN, SessionEvent};
use crate::fix::{msg_type, tag, value_u64};

/// Slots of the ClOrdID index: twice the entries, so that it is never more than half full.
pub const ID_INDEX_LEN: usize = 2 * ORDER_SEQ_MAP_LEN;
const _: () = assert!(ID_INDEX_LEN.is_power_of_two());
// Entry positions (plus one) are stored as u32.
const _: () = assert!(ORDER_SEQ_MAP_LEN < u32::MAX as usize);

const ENTRY_MASK: usize = ORDER_SEQ_MAP_LEN - 1;
const ID_MASK: usize = ID_INDEX_LEN - 1;

/// What the session remembers of an order it sent.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct SentEntry {
    /// 0: empty.
    pub(super) msg_seq_num: u64,
    pub(super) client_order_id: u64,
    pub(super) px: i64,
    pub(super) instrument_id: u32,
    pub(super) side: u8,
    /// The venue said something about this order, or we reported it lost: it is not reported
    /// lost (again).
    pub(super) answered: bool,
}

impl SentEntry {
    /// The REJECTED report of the order this number carried.
    pub(super) fn rejected(&self, reject_reason: u32) -> ExecutionReport {
        ExecutionReport {
            client_order_id: self.client_order_id,
            px: self.px,
            instrument_id: self.instrument_id,
            exec_type: exec_type::REJECTED,
            ord_status: exec_type::REJECTED,
            side: self.side,
            reject_reason,
            ..ExecutionReport::default()
        }
    }
}

/// One slot of the ClOrdID index.
#[derive(Clone, Copy, Debug, Default)]
struct IdSlot {
    client_order_id: u64,
    /// Position in `entries` plus one; 0: an empty slot.
    entry: u32,
}

/// The sent-order table and its ClOrdID index (see the module doc).
pub(super) struct SentOrders {
    entries: Box<[SentEntry]>,
    by_id: Box<[IdSlot]>,
}

/// Where `client_order_id` starts probing (Fibonacci hashing: consecutive ids spread out).
#[inline(always)]
fn home(client_order_id: u64) -> usize {
    const SHIFT: u32 = u64::BITS - ID_INDEX_LEN.trailing_zeros();
    (client_order_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> SHIFT) as usize
}

impl SentOrders {
    /// Cold path: allocates both tables.
    pub(super) fn new() -> SentOrders {
        SentOrders {
            entries: vec![SentEntry::default(); ORDER_SEQ_MAP_LEN].into_boxed_slice(),
            by_id: vec![IdSlot::default(); ID_INDEX_LEN].into_boxed_slice(),
        }
    }

    /// Forgets every order (a sequence reset).
    pub(super) fn reset(&mut self) {
        self.entries.fill(SentEntry::default());
        self.by_id.fill(IdSlot::default());
    }

    /// The entry of `msg_seq_num`, if the table still remembers that number as an order.
    #[inline]
    pub(super) fn by_seq(&self, msg_seq_num: u64) -> Option<&SentEntry> {
        let entry = &self.entries[msg_seq_num as usize & ENTRY_MASK];
        (msg_seq_num != 0 && entry.msg_seq_num == msg_seq_num).then_some(entry)
    }

    /// The newest remembered entry that carried `client_order_id`.
    #[inline]
    pub(super) fn by_id(&self, client_order_id: u64) -> Option<&SentEntry> {
        self.find_id(client_order_id)
            .map(|slot| &self.entries[self.by_id[slot].entry as usize - 1])
    }

    /// Remembers that `msg_seq_num` carried `order`, not yet answered; the number's previous
    /// entry (`ORDER_SEQ_MAP_LEN` numbers ago) is forgotten. Hot path.
    #[inline]
    pub(super) fn note(&mut self, order: &OrderRequest, msg_seq_num: u64) {
        let at = msg_seq_num as usize & ENTRY_MASK;
        self.forget(at);
        self.entries[at] = SentEntry {
            msg_seq_num,
            client_order_id: order.client_order_id,
            px: order.px,
            instrument_id: order.instrument_id,
            side: order.side,
            answered: false,
        };
        self.index(at);
    }

    /// Forgets `msg_seq_num`'s order (taken back before it left). `false` if it is not
    /// remembered.
    pub(super) fn clear(&mut self, msg_seq_num: u64) -> bool {
        if self.by_seq(msg_seq_num).is_none() {
            return false;
        }
        self.forget(msg_seq_num as usize & ENTRY_MASK);
        true
    }

    /// Marks the order sent as `client_order_id` answered. Hot path: a few probes.
    #[inline]
    pub(super) fn mark_answered_id(&mut self, client_order_id: u64) -> bool {
        match self.find_id(client_order_id) {
            Some(slot) => {
                let at = self.by_id[slot].entry as usize - 1;
                self.entries[at].answered = true;
                true
            }
            None => false,
        }
    }

    /// Marks the order `msg_seq_num` carried answered.
    #[inline]
    pub(super) fn mark_answered_seq(&mut self, msg_seq_num: u64) -> bool {
        let entry = &mut self.entries[msg_seq_num as usize & ENTRY_MASK];
        if msg_seq_num == 0 || entry.msg_seq_num != msg_seq_num {
            return false;
        }
        entry.answered = true;
        true
    }

    /// The entry of `msg_seq_num` if it is an order nobody answered yet, which is now marked
    /// answered (it is being reported lost, once).
    #[inline]
    pub(super) fn take_unanswered(&mut self, msg_seq_num: u64) -> Option<SentEntry> {
        let entry = &mut self.entries[msg_seq_num as usize & ENTRY_MASK];
        if msg_seq_num == 0 || entry.msg_seq_num != msg_seq_num || entry.answered {
            return None;
        }
        entry.answered = true;
        Some(*entry)
    }

    /// Undoes [`take_unanswered`](Self::take_unanswered) for an entry whose report could not be
    /// queued.
    pub(super) fn unmark(&mut self, msg_seq_num: u64) {
        let entry = &mut self.entries[msg_seq_num as usize & ENTRY_MASK];
        if msg_seq_num != 0 && entry.msg_seq_num == msg_seq_num {
            entry.answered = false;
        }
    }

    /// The index slot holding `client_order_id`.
    #[inline]
    fn find_id(&self, client_order_id: u64) -> Option<usize> {
        let mut slot = home(client_order_id);
        // At most half full: an empty slot ends every probe sequence long before this bound.
        for _ in 0..ID_INDEX_LEN {
            let s = self.by_id[slot];
            if s.entry == 0 {
                return None;
            }
            if s.client_order_id == client_order_id {
                return Some(slot);
            }
            slot = (slot + 1) & ID_MASK;
        }
        None
    }

    /// Indexes `entries[at]` under its id; an older entry with the same id (a repeated ClOrdID)
    /// stays in `entries` but is no longer found by id.
    #[inline]
    fn index(&mut self, at: usize) {
        let client_order_id = self.entries[at].client_order_id;
        let mut slot = home(client_order_id);
        for _ in 0..ID_INDEX_LEN {
            let s = &mut self.by_id[slot];
            if s.entry == 0 || s.client_order_id == client_order_id {
                *s = IdSlot {
                    client_order_id,
                    entry: at as u32 + 1,
                };
                return;
            }
            slot = (slot + 1) & ID_MASK;
        }
        // At most ORDER_SEQ_MAP_LEN ids live in ID_INDEX_LEN slots.
        unreachable!("the ClOrdID index has a free slot");
    }

    /// Empties `entries[at]` and takes it out of the index (if the index points at it).
    #[inline]
    fn forget(&mut self, at: usize) {
        let old = self.entries[at];
        if old.msg_seq_num == 0 {
            return;
        }
        self.entries[at] = SentEntry::default();
        let Some(mut hole) = self.find_id(old.client_order_id) else {
            return;
        };
        if self.by_id[hole].entry as usize != at + 1 {
            // A newer entry with the same id owns the slot.
            return;
        }
        // Backward-shift deletion: move later members of the probe run into the hole when
        // their home does not lie cyclically in (hole, j].
        let mut j = hole;
        for _ in 0..ID_INDEX_LEN {
            j = (j + 1) & ID_MASK;
            let s = self.by_id[j];
            if s.entry == 0 {
                break;
            }
            let h = home(s.client_order_id);
            let stays = if hole <= j {
                hole < h && h <= j
            } else {
                hole < h || h <= j
            };
            if !stays {
                self.by_id[hole] = s;
                hole = j;
            }
        }
        self.by_id[hole] = IdSlot::default();
    }
}

// The venue's answers about our orders.
impl FixSession {
    /// Marks the orders an inbound message is about as answered by the venue (see
    /// `session/sent.rs` for which fields count). Hot path: a few probes per report.
    #[inline]
    pub(super) fn note_answer(&mut self, f: &SessionFields<'_>, kind: &[u8]) {
        let id = |value: Option<&[u8]>| value.and_then(value_u64);
        match kind {
            msg_type::EXECUTION_REPORT => {
                if let Some(id) = id(f.cl_ord_id) {
                    self.sent.mark_answered_id(id);
                }
                // A rejection naming an order does not show that the venue has it.
                if f.exec_type != Some(&[exec_type::REJECTED])
                    && let Some(orig) = id(f.orig_cl_ord_id)
                {
                    self.sent.mark_answered_id(orig);
                }
                if let Some(request) = id(f.mass_status_req_id) {
                    self.sent.mark_answered_id(request);
                }
            }
            msg_type::ORDER_CANCEL_REJECT | msg_type::ORDER_MASS_CANCEL_REPORT => {
                if let Some(id) = id(f.cl_ord_id) {
                    self.sent.mark_answered_id(id);
                }
            }
            msg_type::REJECT => {
                if let Some(ref_seq_num) = id(f.ref_seq_num) {
                    self.sent.mark_answered_seq(ref_seq_num);
                }
            }
            _ => {}
        }
    }

    pub(super) fn on_reject(
        &mut self,
        f: &SessionFields<'_>,
        seq: u64,
        kind: &[u8],
        now_ns: u64,
    ) -> Option<SessionEvent> {
        let ref_seq_num = match required_u64(f.ref_seq_num, tag::REF_SEQ_NUM) {
            Ok(value) => value,
            Err(problem) => return self.reject(now_ns, seq, kind, problem),
        };
        let ref_tag = f
            .ref_tag_id
            .and_then(value_u64)
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or(0);
        let reason = f
            .session_reject_reason
            .and_then(value_u64)
            .and_then(|r| u32::try_from(r).ok())
            .unwrap_or(0);
        if let Some(entry) = self.sent.by_seq(ref_seq_num) {
            return Some(SessionEvent::Report(
                entry.rejected(reject_reason::SESSION_BASE.saturating_add(reason)),
            ));
        }
        Some(SessionEvent::Rejected {
            ref_seq_num,
            ref_tag,
            reason,
        })
    }

    /// The instrument and side of a report that did not name them, from the order table.
    pub(super) fn fill_from_sent(&self, report: &mut ExecutionReport) {
        if let Some(entry) = self.sent.by_id(report.client_order_id) {
            report.instrument_id = entry.instrument_id;
            if report.side == 0 {
                report.side = entry.side;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(client_order_id: u64) -> OrderRequest {
        OrderRequest {
            client_order_id,
            ..OrderRequest::default()
        }
    }

    /// Every remembered entry is found by id, and the index holds nothing else.
    fn check(sent: &SentOrders) {
        let live = sent.entries.iter().filter(|e| e.msg_seq_num != 0).count();
        let indexed = sent.by_id.iter().filter(|s| s.entry != 0).count();
        assert!(indexed <= live);
        for slot in sent.by_id.iter().filter(|s| s.entry != 0) {
            let entry = &sent.entries[slot.entry as usize - 1];
            assert_eq!(entry.client_order_id, slot.client_order_id);
            assert_ne!(entry.msg_seq_num, 0);
        }
    }

    #[test]
    fn ids_are_found_through_overwrites_and_clears() {
        let mut sent = SentOrders::new();
        let mut rng = fastrand::Rng::with_seed(7);
        let mut ids = vec![0u64; 4 * ORDER_SEQ_MAP_LEN];
        for seq in 1..ids.len() as u64 {
            // Sequential ids, random ids, and repeats (of ids that are never cleared: an older
            // entry of a repeated id is not found by id once the newer one is cleared).
            let kind = rng.u8(..3);
            let id = match kind {
                0 => 1 << 40 | seq,
                1 => rng.u64(1 << 41..u64::MAX),
                _ => rng.u64(..64),
            };
            ids[seq as usize] = id;
            sent.note(&order(id), seq);
            if kind != 2 && rng.u8(..16) == 0 {
                assert!(sent.clear(seq));
                ids[seq as usize] = u64::MAX;
            }
            if seq % 997 == 0 {
                check(&sent);
            }
        }
        check(&sent);
        let first = ids.len() - ORDER_SEQ_MAP_LEN;
        for (seq, &id) in ids.iter().enumerate().skip(first) {
            if id == u64::MAX {
                assert!(sent.by_seq(seq as u64).is_none());
                continue;
            }
            let found = sent.by_id(id).expect("a remembered id is found");
            assert_eq!(found.client_order_id, id);
            // The newest entry of a repeated id.
            let newest = (first..ids.len()).rev().find(|&s| ids[s] == id).unwrap();
            assert_eq!(found.msg_seq_num, newest as u64);
        }
        // Forgotten numbers are forgotten by id too.
        for seq in 1..first {
            let id = ids[seq];
            if id != u64::MAX && !ids[first..].contains(&id) {
                assert!(sent.by_id(id).is_none(), "id {id} of {seq}");
            }
        }
    }

    /// `n` random ids whose home slot is one of the `count` slots from `first` on (cyclically:
    /// the index's probe runs then collide, and wrap around its end when those slots do).
    fn ids_homed_at(rng: &mut fastrand::Rng, first: usize, count: usize, n: usize) -> Vec<u64> {
        let mut ids = Vec::new();
        while ids.len() < n {
            let id = rng.u64(1..);
            if home(id).wrapping_sub(first) & ID_MASK < count && !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }

    #[test]
    fn colliding_ids_stay_findable_as_others_are_forgotten() {
        // Ids crowded on a few home slots, mid-table and across its end, so that every removal
        // shifts a probe run back (and some runs wrap). After each step, each id is found at
        // its newest entry, and not at all once that entry is cleared (the rule for a repeated
        // ClOrdID: its older entries are not indexed again).
        for seed in [1, 2, 3] {
            println!("seed {seed}");
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut ids = ids_homed_at(&mut rng, 100, 3, 24);
            ids.extend(ids_homed_at(&mut rng, ID_INDEX_LEN - 2, 3, 24));
            let mut sent = SentOrders::new();
            let mut live: Vec<(u64, u64)> = Vec::new(); // (seq, id)
            let mut indexed = std::collections::HashMap::new(); // id -> seq
            for seq in 1..=400u64 {
                let id = ids[rng.usize(..ids.len())];
                sent.note(&order(id), seq);
                live.push((seq, id));
                indexed.insert(id, seq);
                if rng.bool() {
                    let (gone, gone_id) = live.remove(rng.usize(..live.len()));
                    assert!(sent.clear(gone));
                    if indexed.get(&gone_id) == Some(&gone) {
                        indexed.remove(&gone_id);
                    }
                }
                check(&sent);
                for &id in &ids {
                    let found = sent.by_id(id).map(|e| e.msg_seq_num);
                    assert_eq!(
                        found,
                        indexed.get(&id).copied(),
                        "seed {seed}, id {id} at {seq}"
                    );
                }
            }
        }
    }

    #[test]
    fn answered_orders_are_not_taken_as_lost() {
        let mut sent = SentOrders::new();
        sent.note(&order(10), 5);
        sent.note(&order(11), 6);
        sent.note(&order(12), 7);
        assert!(sent.mark_answered_id(10));
        assert!(sent.mark_answered_seq(6));
        assert!(!sent.mark_answered_id(99));
        assert!(!sent.mark_answered_seq(8));
        assert!(sent.take_unanswered(5).is_none());
        assert!(sent.take_unanswered(6).is_none());
        assert_eq!(sent.take_unanswered(7).unwrap().client_order_id, 12);
        // Once only.
        assert!(sent.take_unanswered(7).is_none());
        sent.unmark(7);
        assert!(sent.take_unanswered(7).is_some());
    }
}
