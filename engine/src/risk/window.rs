//! Exact sliding windows over `now_ns`: the rate throttles and the repeated-execution throttle
//! ([`RateWindow`]), and the memory of recently sent orders for duplicate detection
//! ([`RecentOrders`]). Fixed capacity, allocated once.

/// Most events one sliding window can count: the largest `count_max` of a [`RateLimit`]
/// (larger limits are refused when limits are validated).
///
/// [`RateLimit`]: super::RateLimit
pub const RATE_WINDOW_MAX: usize = 1024;
const RATE_WINDOW_MASK: u64 = RATE_WINDOW_MAX as u64 - 1;
const _: () = assert!(RATE_WINDOW_MAX.is_power_of_two());

/// The time stamps of the last [`RATE_WINDOW_MAX`] events, oldest overwritten first.
///
/// A window of `count_max` events per `window_ns` admits one more event at `now_ns` if fewer
/// than `count_max` events happened in `(now_ns - window_ns, now_ns]`. Because the stamps are in
/// order, that is one load: the `count_max`-th most recent stamp is out of the window. No
/// bucketing, so no burst at a bucket edge: the limit holds over every window.
pub(crate) struct RateWindow {
    stamps_ns: Box<[u64; RATE_WINDOW_MAX]>,
    /// Events recorded so far (wrapping index of the next stamp).
    recorded: u64,
}

impl RateWindow {
    pub(crate) fn new() -> RateWindow {
        RateWindow {
            stamps_ns: Box::new([0; RATE_WINDOW_MAX]),
            recorded: 0,
        }
    }

    /// Whether one more event at `now_ns` keeps at most `count_max` (`1..=RATE_WINDOW_MAX`,
    /// validated) events in the last `window_ns`. A stamp after `now_ns` (a clock that went
    /// back) counts as in the window.
    #[inline(always)]
    pub(crate) fn admits(&self, now_ns: u64, count_max: u32, window_ns: u64) -> bool {
        let count_max = count_max as u64;
        if self.recorded < count_max {
            return true;
        }
        let oldest = self.stamps_ns[((self.recorded - count_max) & RATE_WINDOW_MASK) as usize];
        now_ns.saturating_sub(oldest) >= window_ns
    }

    #[inline(always)]
    pub(crate) fn record(&mut self, now_ns: u64) {
        self.stamps_ns[(self.recorded & RATE_WINDOW_MASK) as usize] = now_ns;
        self.recorded += 1;
    }

    /// Events in `(now_ns - window_ns, now_ns]` among the remembered ones (cold: rejects).
    #[cold]
    pub(crate) fn count_within(&self, now_ns: u64, window_ns: u64) -> u64 {
        let remembered = self.recorded.min(RATE_WINDOW_MAX as u64);
        (1..=remembered)
            .map(|back| self.stamps_ns[((self.recorded - back) & RATE_WINDOW_MASK) as usize])
            .take_while(|&stamp| now_ns.saturating_sub(stamp) < window_ns)
            .count() as u64
    }
}

/// Most new orders remembered for duplicate detection. Validation requires that no more new
/// orders than this fit in one duplicate window (`order_rate.count_max x ceil(duplicate_window_ns
/// / order_rate.window_ns)`), so an order still in the window is never forgotten: detection is
/// exact, not best effort.
pub const RECENT_ORDERS_MAX: usize = 4096;
const RECENT_MASK: u64 = RECENT_ORDERS_MAX as u64 - 1;
/// Twice the entries: chains stay about one entry long.
const RECENT_BUCKETS: usize = 2 * RECENT_ORDERS_MAX;
const _: () = assert!(RECENT_ORDERS_MAX.is_power_of_two());

/// What makes two orders identical for duplicate detection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct OrderKey {
    pub(crate) px: i64,
    pub(crate) qty: i64,
    pub(crate) instrument_id: u32,
    pub(crate) side: u8,
}

impl OrderKey {
    #[inline(always)]
    fn bucket(&self) -> usize {
        let h = (self.px as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (self.qty as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            ^ ((self.instrument_id as u64) << 8 | self.side as u64)
                .wrapping_mul(0x1656_67B1_9E37_79F9);
        ((h ^ (h >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - RECENT_BUCKETS.ilog2()))
            as usize
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Sent {
    /// Sequence number of this entry (1-based); an entry whose slot was reused has another.
    seq: u64,
    /// The previous entry of the same bucket (0: none).
    prev_seq: u64,
    sent_ns: u64,
    key: OrderKey,
}

/// The last [`RECENT_ORDERS_MAX`] new orders in a ring, chained by hash bucket, newest first.
///
/// A lookup walks its bucket's chain from the newest entry and stops at the first one that is
/// out of the window or overwritten (everything behind it is older): about one entry.
pub(crate) struct RecentOrders {
    /// Newest entry sequence number per bucket (0: none).
    buckets: Box<[u64]>,
    ring: Box<[Sent]>,
    next_seq: u64,
}

impl RecentOrders {
    pub(crate) fn new() -> RecentOrders {
        RecentOrders {
            buckets: vec![0; RECENT_BUCKETS].into_boxed_slice(),
            ring: vec![Sent::default(); RECENT_ORDERS_MAX].into_boxed_slice(),
            next_seq: 1,
        }
    }

    /// When an order identical to `key` was sent within `window_ns` of `now_ns`, if one was.
    #[inline(always)]
    pub(crate) fn find(&self, key: &OrderKey, now_ns: u64, window_ns: u64) -> Option<u64> {
        let mut seq = self.buckets[key.bucket()];
        while seq != 0 {
            let sent = &self.ring[(seq & RECENT_MASK) as usize];
            if sent.seq != seq || now_ns.saturating_sub(sent.sent_ns) >= window_ns {
                return None;
            }
            if sent.key == *key {
                return Some(sent.sent_ns);
            }
            seq = sent.prev_seq;
        }
        None
    }

    #[inline(always)]
    pub(crate) fn record(&mut self, key: OrderKey, now_ns: u64) {
        let bucket = key.bucket();
        let seq = self.next_seq;
        self.next_seq += 1;
        self.ring[(seq & RECENT_MASK) as usize] = Sent {
            seq,
            prev_seq: self.buckets[bucket],
            sent_ns: now_ns,
            key,
        };
        self.buckets[bucket] = seq;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_admits_exactly_count_max_per_window() {
        let mut w = RateWindow::new();
        for t in [0, 10, 20] {
            assert!(w.admits(t, 3, 1_000));
            w.record(t);
        }
        assert!(!w.admits(999, 3, 1_000), "4th within the window");
        assert_eq!(w.count_within(999, 1_000), 3);
        assert!(
            w.admits(1_000, 3, 1_000),
            "the first one has left the window"
        );
        w.record(1_000);
        assert!(!w.admits(1_009, 3, 1_000));
        assert!(w.admits(1_010, 3, 1_000));
        // A clock that goes back counts as in the window.
        assert!(!w.admits(5, 1, 1_000));
    }

    #[test]
    fn the_window_wraps_around_its_ring() {
        let mut w = RateWindow::new();
        for t in 0..(3 * RATE_WINDOW_MAX as u64) {
            assert!(w.admits(t * 10, RATE_WINDOW_MAX as u32, 10 * RATE_WINDOW_MAX as u64));
            w.record(t * 10);
        }
        let now = 3 * RATE_WINDOW_MAX as u64 * 10;
        assert!(w.admits(now, RATE_WINDOW_MAX as u32, 10 * RATE_WINDOW_MAX as u64));
        assert!(!w.admits(now - 1, RATE_WINDOW_MAX as u32, 10 * RATE_WINDOW_MAX as u64));
        assert_eq!(
            w.count_within(now - 1, 10 * RATE_WINDOW_MAX as u64),
            RATE_WINDOW_MAX as u64
        );
    }

    #[test]
    fn recent_orders_are_found_until_they_leave_the_window_or_the_ring() {
        let mut r = RecentOrders::new();
        let key = |i: i64| OrderKey {
            px: 100 + i,
            qty: 5,
            instrument_id: 1,
            side: 1,
        };
        for i in 0..RECENT_ORDERS_MAX as i64 {
            r.record(key(i), 1_000 + i as u64);
        }
        assert_eq!(r.find(&key(0), 2_000, 10_000), Some(1_000));
        assert_eq!(r.find(&key(0), 11_000, 10_000), None, "out of the window");
        assert_eq!(r.find(&key(-1), 2_000, 10_000), None);
        r.record(key(-1), 6_000);
        assert_eq!(
            r.find(&key(0), 6_000, 10_000),
            None,
            "overwritten by the newest"
        );
        assert_eq!(r.find(&key(1), 6_000, 10_000), Some(1_001));
        assert_eq!(r.find(&key(-1), 6_000, 10_000), Some(6_000));
        let other_side = OrderKey { side: 2, ..key(5) };
        assert_eq!(r.find(&other_side, 6_000, 10_000), None);
    }

    #[test]
    fn a_window_full_of_orders_keeps_its_chains_about_one_entry_long() {
        // What a market maker sends: a grid of prices around a level, two sizes, both sides,
        // two instruments; as many different orders as are remembered. A lookup walks its
        // bucket's chain, so the hash must spread them as a random function would: into
        // twice as many buckets, about 1 - e^-0.5 = 39% are used, none deeply. (Any bucket
        // function stays correct, only slower.)
        let mut keys = Vec::new();
        for instrument_id in [0, 1] {
            for side in [1, 2] {
                for qty in [100, 200] {
                    for px in 9_744..10_256 {
                        keys.push(OrderKey {
                            px,
                            qty,
                            instrument_id,
                            side,
                        });
                    }
                }
            }
        }
        assert_eq!(keys.len(), RECENT_ORDERS_MAX);
        let mut per_bucket = vec![0u32; RECENT_BUCKETS];
        for key in &keys {
            per_bucket[key.bucket()] += 1;
        }
        let used = per_bucket.iter().filter(|&&n| n > 0).count();
        let deepest = per_bucket.iter().copied().max().unwrap();
        // A random function: 8,192 x (1 - e^-0.5) = 3,223 used (sd about 25); the deepest
        // chain 5 or 6.
        assert!(used >= 3_100, "{used} of {RECENT_BUCKETS} buckets used");
        assert!(deepest <= 8, "a chain of {deepest}");
    }
}
