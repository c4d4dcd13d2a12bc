//! Rings between agents: `rtrb` SPSC ring buffers of fixed-size `Copy` records, with capacities
//! fixed at start-up, and the one policy for a full ring.
//!
//! **A full ring is backpressure, never a drop.** [`Outbox::send`] holds the record that did not
//! fit, counts the event, and tells the agent to stop taking input; the agent retries with
//! [`Outbox::flush`] on its next duty cycle. Upstream rings then fill in turn, up to the venue
//! socket, where the kernel buffers (and the feed falls behind, which the book's sequence check
//! turns into a resync rather than a silent gap).

use levibot_shm::counters::Counter;
use rtrb::{Consumer, Producer, PushError, RingBuffer};

/// Largest ring capacity (records).
pub const RING_CAPACITY_MAX: usize = 1 << 20;

/// A capacity that is not a power of two in `2..=RING_CAPACITY_MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ring capacity {capacity} is not a power of two in 2..={RING_CAPACITY_MAX}")]
pub struct RingCapacityError {
    pub capacity: usize,
}

/// A ring of `capacity` records (a power of two, checked now, never grown).
pub fn ring<T>(capacity: usize) -> Result<(Producer<T>, Consumer<T>), RingCapacityError> {
    if !capacity.is_power_of_two() || !(2..=RING_CAPACITY_MAX).contains(&capacity) {
        return Err(RingCapacityError { capacity });
    }
    Ok(RingBuffer::new(capacity))
}

/// The sending end of a ring with the full-ring policy (see the module doc).
pub struct Outbox<T> {
    producer: Producer<T>,
    pending: Option<T>,
    full_events: u64,
    full_counter: Option<Counter>,
}

impl<T> Outbox<T> {
    /// `full_counter`, if given, counts full-ring events in the shm counters file.
    pub fn new(producer: Producer<T>, full_counter: Option<Counter>) -> Self {
        Outbox {
            producer,
            pending: None,
            full_events: 0,
            full_counter,
        }
    }

    /// Sends `record`, or holds it if the ring is full and returns `false`: the caller must take
    /// no more input until [`flush`](Self::flush) returns `true`. Sending while blocked is a bug.
    #[inline]
    pub fn send(&mut self, record: T) -> bool {
        debug_assert!(self.pending.is_none(), "send on a blocked outbox");
        match self.producer.push(record) {
            Ok(()) => true,
            Err(PushError::Full(record)) => {
                self.pending = Some(record);
                self.full_events += 1;
                if let Some(counter) = &self.full_counter {
                    counter.increment();
                }
                false
            }
        }
    }

    /// Retries the held record; `true` when nothing is held any more.
    #[inline]
    pub fn flush(&mut self) -> bool {
        match self.pending.take() {
            None => true,
            Some(record) => match self.producer.push(record) {
                Ok(()) => true,
                Err(PushError::Full(record)) => {
                    self.pending = Some(record);
                    false
                }
            },
        }
    }

    /// Whether a record is held back.
    #[inline]
    pub fn is_blocked(&self) -> bool {
        self.pending.is_some()
    }

    /// Times the ring was found full.
    pub fn full_events(&self) -> u64 {
        self.full_events
    }

    /// Whether the consumer was dropped (its agent is gone).
    pub fn is_abandoned(&self) -> bool {
        self.producer.is_abandoned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities_are_checked() {
        assert!(ring::<u64>(8).is_ok());
        assert_eq!(
            ring::<u64>(6).err(),
            Some(RingCapacityError { capacity: 6 })
        );
        assert!(ring::<u64>(1).is_err());
        assert!(ring::<u64>(RING_CAPACITY_MAX * 2).is_err());
    }

    #[test]
    fn a_full_ring_holds_the_record_and_counts_it() {
        let (producer, mut consumer) = ring::<u32>(2).unwrap();
        let mut outbox = Outbox::new(producer, None);
        assert!(outbox.send(1) && outbox.send(2));
        assert!(!outbox.send(3));
        assert!(outbox.is_blocked());
        assert_eq!(outbox.full_events(), 1);
        assert!(!outbox.flush());
        assert_eq!(consumer.pop(), Ok(1));
        assert!(outbox.flush());
        assert!(!outbox.is_blocked());
        let rest: Vec<u32> = std::iter::from_fn(|| consumer.pop().ok()).collect();
        assert_eq!(rest, vec![2, 3], "nothing dropped, order kept");
    }
}
