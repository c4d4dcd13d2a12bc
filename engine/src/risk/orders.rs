//! The open-order table: every order risk let through and the venue has not finished, found by
//! client order id, and listed per instrument. Fixed capacity, allocated once.
//!
//! - Slots: [`OPEN_ORDERS_MAX`] [`OpenOrder`]s and a stack of free slot numbers.
//! - Id index: open addressing with linear probing over `ID_INDEX_SLOTS` entries (a client
//!   order id and its slot). An order has its working id, the ids of its pending replaces (at
//!   most [`REPLACES_PENDING_MAX`]) and that of its latest pending cancel, so the index holds at
//!   most `OPEN_ORDERS_MAX x (2 + REPLACES_PENDING_MAX)` ids and stays at most about a third
//!   full. Removal shifts the following entries
//!   back (no tombstones), so probe lengths never grow with churn.
//! - Per instrument: a doubly linked list through the slots, for the rare walks (the best resting
//!   price of a side after the best order left).

use super::RISK_INSTRUMENTS_MAX;

/// Most orders open at once (the largest `open_orders_max` limits may set).
pub const OPEN_ORDERS_MAX: usize = 1024;
/// Most replaces of one order that may await the venue's answer at once (a chain A -> B -> C
/// counts two).
pub const REPLACES_PENDING_MAX: usize = 3;
/// Id index entries: a power of two, at least twice the most ids the table can hold.
const ID_INDEX_SLOTS: usize = 16384;
const ID_INDEX_MASK: usize = ID_INDEX_SLOTS - 1;
const _: () = assert!(ID_INDEX_SLOTS.is_power_of_two());
const _: () = assert!(ID_INDEX_SLOTS >= 2 * OPEN_ORDERS_MAX * (2 + REPLACES_PENDING_MAX));
const _: () = assert!(OPEN_ORDERS_MAX < NIL as usize);

/// No slot.
pub(crate) const NIL: u16 = u16::MAX;

/// A replace risk let through, not yet confirmed by the venue. `qty` is the order's new total
/// quantity (FIX OrderQty): once it takes effect, what is left is `qty - cum_qty`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PendingReplace {
    pub(crate) client_order_id: u64,
    pub(crate) px: i64,
    pub(crate) qty: i64,
}

/// One open order, as risk counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OpenOrder {
    /// The id the venue knows the working order by.
    pub(crate) client_order_id: u64,
    /// The latest pending cancel's id (if `cancel_pending`).
    pub(crate) cancel_client_order_id: u64,
    /// Its price (units). Market orders hold the side's crossing sentinel (see
    /// `super::MARKET_BUY_PX`), so self-trade prevention sees them cross everything.
    pub(crate) px: i64,
    /// What is left to fill of the working order (units).
    pub(crate) leaves_qty: i64,
    /// Filled so far (units).
    pub(crate) cum_qty: i64,
    /// What the instrument's open buy or sell quantity counts for this order: the largest of
    /// `leaves_qty` and what each pending replace would leave (whichever the venue ends up
    /// with). A fill lowers it by the fill, so a position and its open orders' worst case move
    /// together.
    pub(crate) counted_qty: i64,
    /// Oldest first.
    pub(crate) pending: [PendingReplace; REPLACES_PENDING_MAX],
    pub(crate) pending_len: u8,
    /// A cancel awaits the venue; its id finds the order too.
    pub(crate) cancel_pending: bool,
    pub(crate) side: u8,
    pub(crate) ord_type: u8,
    /// The venue acknowledged it (exec type NEW seen).
    pub(crate) acked: bool,
    /// Open when a status round began and not yet reported on by the venue in it (see
    /// `super::status`); orders that enter the table later never are.
    pub(crate) awaiting_status: bool,
    pub(crate) instrument_id: u32,
    /// In the table (not on the free stack).
    in_use: bool,
    prev: u16,
    next: u16,
}

impl OpenOrder {
    /// An order as it enters the table.
    pub(crate) fn new(
        client_order_id: u64,
        instrument_id: u32,
        side: u8,
        ord_type: u8,
        px: i64,
        qty: i64,
    ) -> OpenOrder {
        OpenOrder {
            client_order_id,
            cancel_client_order_id: 0,
            px,
            leaves_qty: qty,
            cum_qty: 0,
            counted_qty: qty,
            pending: [PendingReplace::default(); REPLACES_PENDING_MAX],
            pending_len: 0,
            cancel_pending: false,
            side,
            ord_type,
            acked: false,
            awaiting_status: false,
            instrument_id,
            in_use: false,
            prev: NIL,
            next: NIL,
        }
    }

    /// The pending replaces, oldest first.
    #[inline]
    pub(crate) fn pending(&self) -> &[PendingReplace] {
        &self.pending[..self.pending_len as usize]
    }

    /// `counted_qty` as it follows from the live order and the pending replaces.
    #[inline]
    pub(crate) fn worst_qty(&self) -> i64 {
        self.pending()
            .iter()
            .fold(self.leaves_qty, |worst, p| worst.max(p.qty - self.cum_qty))
    }
}

#[derive(Clone, Copy, Debug)]
struct IndexEntry {
    client_order_id: u64,
    /// `NIL`: empty.
    slot: u16,
}

const EMPTY: IndexEntry = IndexEntry {
    client_order_id: 0,
    slot: NIL,
};

/// See the module doc.
pub(crate) struct OpenOrders {
    orders: Box<[OpenOrder]>,
    free: Box<[u16]>,
    free_len: usize,
    index: Box<[IndexEntry]>,
    heads: [u16; RISK_INSTRUMENTS_MAX],
    counts: [u32; RISK_INSTRUMENTS_MAX],
}

#[inline(always)]
fn home(client_order_id: u64) -> usize {
    // Fibonacci hashing: client order ids are mostly consecutive; the multiplication spreads
    // them and the top bits are the best mixed.
    (client_order_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - ID_INDEX_SLOTS.ilog2())) as usize
}

impl OpenOrders {
    pub(crate) fn new() -> OpenOrders {
        OpenOrders {
            orders: vec![OpenOrder::new(0, 0, 0, 0, 0, 0); OPEN_ORDERS_MAX].into_boxed_slice(),
            // Popped from the end: slot 0 first.
            free: (0..OPEN_ORDERS_MAX as u16).rev().collect(),
            free_len: OPEN_ORDERS_MAX,
            index: vec![EMPTY; ID_INDEX_SLOTS].into_boxed_slice(),
            heads: [NIL; RISK_INSTRUMENTS_MAX],
            counts: [0; RISK_INSTRUMENTS_MAX],
        }
    }

    /// Open orders in all instruments.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        OPEN_ORDERS_MAX - self.free_len
    }

    /// Open orders of one instrument (`instrument_id < RISK_INSTRUMENTS_MAX`).
    #[inline(always)]
    pub(crate) fn count(&self, instrument_id: u32) -> u32 {
        self.counts[instrument_id as usize]
    }

    /// The slot of the order known by `client_order_id` (live or pending replace id).
    #[inline(always)]
    pub(crate) fn find(&self, client_order_id: u64) -> Option<u16> {
        let mut at = home(client_order_id);
        loop {
            let entry = self.index[at];
            if entry.slot == NIL {
                return None;
            }
            if entry.client_order_id == client_order_id {
                return Some(entry.slot);
            }
            at = (at + 1) & ID_INDEX_MASK;
        }
    }

    #[inline(always)]
    pub(crate) fn get(&self, slot: u16) -> &OpenOrder {
        &self.orders[slot as usize]
    }

    #[inline(always)]
    pub(crate) fn get_mut(&mut self, slot: u16) -> &mut OpenOrder {
        &mut self.orders[slot as usize]
    }

    /// Adds an order (its id must not be in the table); `None` if the table is full.
    #[inline]
    pub(crate) fn insert(&mut self, mut order: OpenOrder) -> Option<u16> {
        if self.free_len == 0 {
            return None;
        }
        self.free_len -= 1;
        let slot = self.free[self.free_len];
        let instrument = order.instrument_id as usize;
        order.in_use = true;
        order.prev = NIL;
        order.next = self.heads[instrument];
        if order.next != NIL {
            self.orders[order.next as usize].prev = slot;
        }
        self.heads[instrument] = slot;
        self.counts[instrument] += 1;
        let id = order.client_order_id;
        self.orders[slot as usize] = order;
        self.index_insert(id, slot);
        Some(slot)
    }

    /// Makes `client_order_id` (a pending replace's) find `slot` too.
    #[inline]
    pub(crate) fn index_insert(&mut self, client_order_id: u64, slot: u16) {
        let mut at = home(client_order_id);
        while self.index[at].slot != NIL {
            debug_assert_ne!(self.index[at].client_order_id, client_order_id);
            at = (at + 1) & ID_INDEX_MASK;
        }
        self.index[at] = IndexEntry {
            client_order_id,
            slot,
        };
    }

    /// Forgets one id (backward-shift deletion: the entries after it that may sit at its place
    /// move back, so a probe never crosses a hole).
    pub(crate) fn index_remove(&mut self, client_order_id: u64) {
        let mut hole = home(client_order_id);
        loop {
            let entry = self.index[hole];
            if entry.slot == NIL {
                return; // not indexed
            }
            if entry.client_order_id == client_order_id {
                break;
            }
            hole = (hole + 1) & ID_INDEX_MASK;
        }
        let mut at = hole;
        loop {
            at = (at + 1) & ID_INDEX_MASK;
            let entry = self.index[at];
            if entry.slot == NIL {
                break;
            }
            // The entry may fill the hole unless its home lies cyclically in (hole, at].
            let from_home = at.wrapping_sub(home(entry.client_order_id)) & ID_INDEX_MASK;
            let from_hole = at.wrapping_sub(hole) & ID_INDEX_MASK;
            if from_home >= from_hole {
                self.index[hole] = entry;
                hole = at;
            }
        }
        self.index[hole] = EMPTY;
    }

    /// Removes the order in `slot` (which holds one) and all its ids; returns it.
    pub(crate) fn remove(&mut self, slot: u16) -> OpenOrder {
        let order = self.orders[slot as usize];
        // A bug, not bad input: freeing a free slot would corrupt the lists.
        assert!(order.in_use, "open-order slot {slot} removed twice");
        self.orders[slot as usize].in_use = false;
        self.index_remove(order.client_order_id);
        for pending in order.pending() {
            self.index_remove(pending.client_order_id);
        }
        if order.cancel_pending {
            self.index_remove(order.cancel_client_order_id);
        }
        let instrument = order.instrument_id as usize;
        if order.prev == NIL {
            self.heads[instrument] = order.next;
        } else {
            self.orders[order.prev as usize].next = order.next;
        }
        if order.next != NIL {
            self.orders[order.next as usize].prev = order.prev;
        }
        self.counts[instrument] -= 1;
        self.free[self.free_len] = slot;
        self.free_len += 1;
        order
    }

    /// The open orders of one instrument (cold walks).
    pub(crate) fn of_instrument(&self, instrument_id: u32) -> InstrumentOrders<'_> {
        InstrumentOrders {
            orders: self,
            at: self.heads[instrument_id as usize],
        }
    }

    /// Whether `slot` holds an open order still awaiting the venue's status (cold: the end of
    /// a status round walks every slot).
    pub(crate) fn awaits_status(&self, slot: u16) -> bool {
        let order = &self.orders[slot as usize];
        order.in_use && order.awaiting_status
    }

    /// Sets (or clears) the status flag of every open order (cold: a status round's start).
    pub(crate) fn set_awaiting_status(&mut self, awaiting: bool) {
        for order in self.orders.iter_mut().filter(|o| o.in_use) {
            order.awaiting_status = awaiting;
        }
    }

    /// Every open order (cold: tests, diagnostics).
    pub(crate) fn all(&self) -> impl Iterator<Item = &OpenOrder> {
        (0..RISK_INSTRUMENTS_MAX as u32).flat_map(|i| self.of_instrument(i))
    }
}

/// Iterator over one instrument's open orders.
pub(crate) struct InstrumentOrders<'a> {
    orders: &'a OpenOrders,
    at: u16,
}

impl<'a> Iterator for InstrumentOrders<'a> {
    type Item = &'a OpenOrder;

    fn next(&mut self) -> Option<&'a OpenOrder> {
        if self.at == NIL {
            return None;
        }
        let order = &self.orders.orders[self.at as usize];
        self.at = order.next;
        Some(order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_found_until_removed_through_churn() {
        let mut rng = fastrand::Rng::with_seed(levibot_testkit::seed());
        let mut table = OpenOrders::new();
        let mut live: Vec<(u64, u16)> = Vec::new();
        let mut next_id = 1u64;
        for _ in 0..200_000 {
            if live.len() < OPEN_ORDERS_MAX && rng.bool() {
                // Mostly consecutive ids, sometimes far apart (several strategies' ranges).
                next_id += if rng.u8(..10) == 0 {
                    rng.u64(1..1 << 40)
                } else {
                    1
                };
                let order = OpenOrder::new(next_id, rng.u32(..4), 1, 2, 10, 1);
                let slot = table.insert(order).unwrap();
                live.push((next_id, slot));
            } else if !live.is_empty() {
                let (id, slot) = live.swap_remove(rng.usize(..live.len()));
                assert_eq!(table.find(id), Some(slot));
                assert_eq!(table.remove(slot).client_order_id, id);
                assert_eq!(table.find(id), None);
            }
            assert_eq!(table.len(), live.len());
        }
        for &(id, slot) in &live {
            assert_eq!(table.find(id), Some(slot));
        }
        let per_instrument: u32 = (0..4).map(|i| table.count(i)).sum();
        assert_eq!(per_instrument as usize, live.len());
        assert_eq!(table.all().count(), live.len());
    }

    #[test]
    fn consecutive_ids_each_sit_in_their_home_slot() {
        // Strategies number their orders consecutively: the hash spreads any run of ids as
        // long as the index can hold into distinct home slots, so a lookup on the hot path
        // reads one entry, never a probe sequence (any home function would still be correct,
        // only slower).
        let seed = levibot_testkit::seed();
        let first = fastrand::Rng::with_seed(seed).u64(..1 << 48);
        let mut homes = std::collections::HashSet::new();
        for id in first..first + (OPEN_ORDERS_MAX * (2 + REPLACES_PENDING_MAX)) as u64 {
            assert!(
                homes.insert(home(id)),
                "id {id} (from {first}) shares a home slot"
            );
        }
        let mut table = OpenOrders::new();
        for id in first..first + OPEN_ORDERS_MAX as u64 {
            let slot = table.insert(OpenOrder::new(id, 0, 1, 2, 10, 1)).unwrap();
            let entry = table.index[home(id)];
            assert_eq!((entry.client_order_id, entry.slot), (id, slot));
        }
    }

    #[test]
    fn a_full_table_refuses_and_pending_ids_find_their_order() {
        let mut table = OpenOrders::new();
        for id in 0..OPEN_ORDERS_MAX as u64 {
            table.insert(OpenOrder::new(id, 0, 1, 2, 10, 1)).unwrap();
        }
        assert_eq!(table.insert(OpenOrder::new(9_999, 0, 1, 2, 10, 1)), None);
        let slot = table.find(7).unwrap();
        table.get_mut(slot).pending[0] = PendingReplace {
            client_order_id: 5_000,
            px: 11,
            qty: 3,
        };
        table.get_mut(slot).pending_len = 1;
        table.index_insert(5_000, slot);
        assert_eq!(table.find(5_000), Some(slot));
        assert_eq!(table.get(slot).worst_qty(), 3);
        table.remove(slot);
        assert_eq!((table.find(7), table.find(5_000)), (None, None));
        assert_eq!(table.of_instrument(0).count(), OPEN_ORDERS_MAX - 1);
    }
}
