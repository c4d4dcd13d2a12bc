//! Rings between agents: `rtrb` SPSC ring buffers of fixed-size `Copy` records, with capacities
//! fixed at start-up, and the one policy for a full ring.
//!
//! **A full ring is backpressure, never a drop.** [`Outbox::send`] holds the record that did not
//! fit, counts the event, and tells the agent to stop taking input; the agent retries with
//! [`Outbox::flush`] on its next duty cycle. Upstream rings then fill in turn, up to the venue
//! socket, where the kernel buffers (and the feed falls behind, which the book's sequence check
//! turns into a resync rather than a silent gap).

use std::collections::VecDeque;
use std::sync::mpsc;

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
    check_capacity(capacity)?;
    Ok(RingBuffer::new(capacity))
}

fn check_capacity(capacity: usize) -> Result<(), RingCapacityError> {
    if !capacity.is_power_of_two() || !(2..=RING_CAPACITY_MAX).contains(&capacity) {
        return Err(RingCapacityError { capacity });
    }
    Ok(())
}

/// The sending end of a bounded link between two agents.
pub trait RingSender<T>: Send {
    /// Pushes `record`, or hands it back if the link is full.
    fn try_push(&mut self, record: T) -> Result<(), T>;
    /// Whether the receiving end is gone.
    fn is_abandoned(&self) -> bool;
}

/// The receiving end of a bounded link between two agents.
pub trait RingReceiver<T>: Send {
    fn try_pop(&mut self) -> Option<T>;

    /// Whether the link is surely empty now; `false` when this kind of link cannot tell.
    fn is_known_empty(&self) -> bool {
        false
    }

    /// Hands the oldest record to `f` where it lies, then takes it off the link; `None` if the
    /// link is empty. For large records (a `Decoded` depth chunk is 600 bytes): popping copies
    /// it out of the ring, and on again at each move (the backtest's instruction counts).
    #[inline]
    fn pop_with<R>(&mut self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.try_pop().map(|record| f(&record))
    }
}

/// A kind of link between agents. The pipeline is generic over it so that one benchmark run
/// can measure the same stages joined by [`Rtrb`] rings and by the [`StdChannel`] baseline.
pub trait Rings: 'static {
    type Sender<T: Send + 'static>: RingSender<T>;
    type Receiver<T: Send + 'static>: RingReceiver<T>;
    /// A link holding `capacity` records (a power of two, checked now, never grown).
    #[allow(clippy::type_complexity)]
    fn link<T: Send + 'static>(
        capacity: usize,
    ) -> Result<(Self::Sender<T>, Self::Receiver<T>), RingCapacityError>;
    /// For reports: `rtrb` or `std_mpsc`.
    const NAME: &'static str;
}

/// `rtrb` SPSC rings: the links LeviBot runs on.
pub struct Rtrb;

/// `std::sync::mpsc::sync_channel`: a bounded standard-library channel, the benchmark baseline.
pub struct StdChannel;

impl Rings for Rtrb {
    type Sender<T: Send + 'static> = Producer<T>;
    type Receiver<T: Send + 'static> = Consumer<T>;
    fn link<T: Send + 'static>(
        capacity: usize,
    ) -> Result<(Producer<T>, Consumer<T>), RingCapacityError> {
        ring(capacity)
    }
    const NAME: &'static str = "rtrb";
}

impl Rings for StdChannel {
    type Sender<T: Send + 'static> = mpsc::SyncSender<T>;
    type Receiver<T: Send + 'static> = mpsc::Receiver<T>;
    fn link<T: Send + 'static>(
        capacity: usize,
    ) -> Result<(mpsc::SyncSender<T>, mpsc::Receiver<T>), RingCapacityError> {
        check_capacity(capacity)?;
        Ok(mpsc::sync_channel(capacity))
    }
    const NAME: &'static str = "std_mpsc";
}

impl<T: Send> RingSender<T> for Producer<T> {
    #[inline]
    fn try_push(&mut self, record: T) -> Result<(), T> {
        self.push(record).map_err(|PushError::Full(record)| record)
    }
    fn is_abandoned(&self) -> bool {
        Producer::is_abandoned(self)
    }
}

impl<T: Send> RingReceiver<T> for Consumer<T> {
    #[inline]
    fn try_pop(&mut self) -> Option<T> {
        self.pop().ok()
    }

    #[inline]
    fn is_known_empty(&self) -> bool {
        self.is_empty()
    }

    #[inline]
    fn pop_with<R>(&mut self, f: impl FnOnce(&T) -> R) -> Option<R> {
        let chunk = self.read_chunk(1).ok()?;
        let (first, _) = chunk.as_slices();
        let result = f(&first[0]);
        chunk.commit_all();
        Some(result)
    }
}

impl<T: Send> RingSender<T> for mpsc::SyncSender<T> {
    #[inline]
    fn try_push(&mut self, record: T) -> Result<(), T> {
        match self.try_send(record) {
            Err(mpsc::TrySendError::Full(record)) => Err(record),
            // The receiving agent is gone (stopped first): as with an abandoned rtrb ring, the
            // record goes where nobody reads it rather than blocking the sender forever.
            Ok(()) | Err(mpsc::TrySendError::Disconnected(_)) => Ok(()),
        }
    }
    fn is_abandoned(&self) -> bool {
        false // a std channel does not say until a send fails
    }
}

impl<T: Send> RingReceiver<T> for mpsc::Receiver<T> {
    #[inline]
    fn try_pop(&mut self) -> Option<T> {
        self.try_recv().ok()
    }
}

/// The sending end of a ring with the full-ring policy (see the module doc): records that do
/// not fit wait, in order, in a fixed-capacity spill (one record by default; more for an agent
/// whose unit of work emits several, such as a depth update's chunks or a strategy's orders).
pub struct Outbox<T, P: RingSender<T> = Producer<T>> {
    producer: P,
    /// Held records, oldest first. Its capacity is fixed at construction and never grown.
    spill: VecDeque<T>,
    spill_capacity: usize,
    full_events: u64,
    full_counter: Option<Counter>,
}

impl<T, P: RingSender<T>> Outbox<T, P> {
    /// An outbox that holds at most one record back. `full_counter`, if given, counts
    /// full-ring events in the shm counters file.
    pub fn new(producer: P, full_counter: Option<Counter>) -> Self {
        Self::with_spill(producer, 1, full_counter)
    }

    /// An outbox that holds up to `spill_capacity` records back (allocated now).
    pub fn with_spill(producer: P, spill_capacity: usize, full_counter: Option<Counter>) -> Self {
        assert!(
            spill_capacity > 0,
            "an outbox must hold at least one record"
        );
        Outbox {
            producer,
            spill: VecDeque::with_capacity(spill_capacity),
            spill_capacity,
            full_events: 0,
            full_counter,
        }
    }

    /// Sends `record`, or holds it if the ring is full (or records are already held) and
    /// returns `false`: the caller must take no more input until [`flush`](Self::flush)
    /// returns `true`, and must never send more than [`room`](Self::room) records. Holding
    /// more than the spill's capacity is a bug.
    #[inline]
    pub fn send(&mut self, record: T) -> bool {
        if self.spill.is_empty() {
            match self.producer.try_push(record) {
                Ok(()) => return true,
                Err(record) => {
                    self.full_events += 1;
                    if let Some(counter) = &self.full_counter {
                        counter.increment();
                    }
                    self.spill.push_back(record);
                }
            }
        } else {
            assert!(
                self.spill.len() < self.spill_capacity,
                "outbox spill overflow: the caller sent more than room()"
            );
            self.spill.push_back(record);
        }
        false
    }

    /// Retries the held records, oldest first; `true` when nothing is held any more.
    #[inline]
    pub fn flush(&mut self) -> bool {
        while let Some(record) = self.spill.pop_front() {
            if let Err(record) = self.producer.try_push(record) {
                self.spill.push_front(record);
                return false;
            }
        }
        true
    }

    /// Whether records are held back.
    #[inline]
    pub fn is_blocked(&self) -> bool {
        !self.spill.is_empty()
    }

    /// How many more records may be sent now: the spill's free slots (the ring may take them
    /// directly, but the spill is what is guaranteed).
    #[inline]
    pub fn room(&self) -> usize {
        self.spill_capacity - self.spill.len()
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

    #[test]
    fn pop_with_reads_in_place_in_order_on_both_kinds_of_link() {
        fn check<R: Rings>() {
            let (mut tx, mut rx) = R::link::<u32>(4).unwrap();
            assert_eq!(rx.pop_with(|r| *r), None, "empty");
            for v in [1, 2, 3] {
                assert!(tx.try_push(v).is_ok());
            }
            assert_eq!(rx.pop_with(|r| *r * 10), Some(10));
            assert_eq!(rx.try_pop(), Some(2));
            assert_eq!(rx.pop_with(|r| *r), Some(3));
            assert_eq!(rx.pop_with(|r| *r), None, "each taken once");
            // The room it freed is the sender's again.
            for v in 4..8 {
                assert!(tx.try_push(v).is_ok());
            }
            assert_eq!(rx.pop_with(|r| *r), Some(4));
        }
        check::<Rtrb>();
        check::<StdChannel>();
    }
}
