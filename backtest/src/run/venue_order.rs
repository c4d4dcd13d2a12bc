//! The order in which read messages reach the venue: by venue time, then read order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Messages not yet at the venue, as `(venue time, read number)`, taken smallest first: what a
/// min-heap gives. Venue times mostly come in read order (always, with a constant feed
/// latency): those wait in a FIFO, and only a message whose venue time is earlier than the
/// last one queued goes to the heap. A heap push and pop for every message were a thirtieth of
/// a decoded backtest's instructions (callgrind).
#[derive(Debug, Default)]
pub(super) struct VenueOrder {
    /// Ascending: each entry is at least the one before.
    in_order: VecDeque<(u64, u64)>,
    out_of_order: BinaryHeap<Reverse<(u64, u64)>>,
}

impl VenueOrder {
    #[inline]
    pub(super) fn push(&mut self, venue_ns: u64, seq: u64) {
        let entry = (venue_ns, seq);
        if self.in_order.back().is_none_or(|&last| last <= entry) {
            self.in_order.push_back(entry);
        } else {
            self.out_of_order.push(Reverse(entry));
        }
    }

    /// The smallest entry.
    #[inline]
    pub(super) fn peek(&self) -> Option<(u64, u64)> {
        match (self.in_order.front(), self.out_of_order.peek()) {
            (Some(&a), Some(&Reverse(b))) => Some(a.min(b)),
            (Some(&a), None) => Some(a),
            (None, Some(&Reverse(b))) => Some(b),
            (None, None) => None,
        }
    }

    /// Takes the smallest entry.
    #[inline]
    pub(super) fn pop(&mut self) -> Option<(u64, u64)> {
        let from_heap = match (self.in_order.front(), self.out_of_order.peek()) {
            (Some(a), Some(Reverse(b))) => b < a,
            (None, Some(_)) => true,
            _ => false,
        };
        if from_heap {
            self.out_of_order.pop().map(|Reverse(entry)| entry)
        } else {
            self.in_order.pop_front()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a plain min-heap, on pushes and pops interleaved at random, venue times mostly
    /// rising with some going back (ties included).
    #[test]
    fn takes_entries_in_the_order_a_min_heap_does() {
        let seed = 0x5eed_04d3u64;
        println!("seed {seed:#x}");
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut order = VenueOrder::default();
        let mut heap = BinaryHeap::new();
        let (mut time, mut seq, mut from_heap) = (1_000u64, 0u64, 0);
        for _ in 0..20_000 {
            if rng.u8(..) < 150 {
                time = match rng.u8(..10) {
                    0 => time.saturating_sub(rng.u64(..500)),
                    1 => time,
                    _ => time + rng.u64(..100),
                };
                order.push(time, seq);
                heap.push(Reverse((time, seq)));
                seq += 1;
            } else {
                from_heap += usize::from(!order.out_of_order.is_empty());
                assert_eq!(order.peek(), heap.peek().map(|Reverse(e)| *e));
                assert_eq!(order.pop(), heap.pop().map(|Reverse(e)| e));
            }
        }
        while let Some(Reverse(entry)) = heap.pop() {
            assert_eq!(order.pop(), Some(entry));
        }
        assert_eq!(order.pop(), None);
        // The test went through both paths.
        assert!(from_heap > 100, "{from_heap}");
    }
}
