//! The fan-out of market-data messages to the connected clients: each client subscribes to a
//! set of stream names and gets a bounded queue; a message goes to every client subscribed to
//! its stream. A client whose queue is full is too slow: it is unsubscribed and disconnected,
//! never buffered without bound.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Messages waiting for one client before it counts as too slow, by default.
pub const CLIENT_QUEUE_LEN_DEFAULT: usize = 4096;

/// One combined-stream message, as published.
#[derive(Debug)]
pub struct Published {
    /// `{"stream":"<name>","data":<event>}`.
    pub text: String,
    /// Where `<name>` and `<event>` are in `text`.
    stream: std::ops::Range<usize>,
    data: std::ops::Range<usize>,
}

impl Published {
    /// Splits a combined-stream message; `None` if it is not in the wrapper.
    pub fn new(text: String) -> Option<Published> {
        const PREFIX: &str = r#"{"stream":""#;
        const MIDDLE: &str = r#"","data":"#;
        let rest = text.strip_prefix(PREFIX)?;
        let name_len = rest.find('"')?;
        let stream = PREFIX.len()..PREFIX.len() + name_len;
        if !text[stream.end..].starts_with(MIDDLE) {
            return None;
        }
        let data_start = stream.end + MIDDLE.len();
        let data_end = text.trim_end().strip_suffix('}')?.len();
        if data_end < data_start {
            return None;
        }
        Some(Published {
            stream,
            data: data_start..data_end,
            text,
        })
    }

    /// The stream's name (`nknusdt@depth@100ms`).
    pub fn stream(&self) -> &str {
        &self.text[self.stream.clone()]
    }

    /// The bare event, as `/ws/<stream>` sends it.
    pub fn data(&self) -> &str {
        &self.text[self.data.clone()]
    }

    /// A depth diff stream (`@depth`, `@depth@100ms`)?
    pub fn is_depth(&self) -> bool {
        self.stream().contains("@depth")
    }
}

/// What a client's connection is asked to send.
#[derive(Clone, Debug)]
pub enum Outgoing {
    Message(Arc<Published>),
    /// A text frame that is not JSON (a fault).
    GarbageText,
    /// A frame that breaks RFC 6455 (a fault).
    BrokenFrame,
}

/// A client's subscription: its queue's receiving end and whether it was dropped for being slow.
#[derive(Debug)]
pub struct Subscription {
    pub id: u64,
    pub rx: Receiver<Outgoing>,
    /// Set when the queue overflowed (the hub dropped its end).
    pub too_slow: Arc<AtomicBool>,
}

#[derive(Debug)]
struct Subscriber {
    id: u64,
    streams: HashSet<String>,
    tx: SyncSender<Outgoing>,
    too_slow: Arc<AtomicBool>,
}

/// Counts kept by the hub.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubStats {
    pub published: u64,
    /// Depth messages dropped by the skip fault.
    pub skipped: u64,
    /// Messages not in the combined-stream wrapper, dropped.
    pub unroutable: u64,
    /// Clients disconnected for a full queue.
    pub too_slow: u64,
}

/// The fan-out.
#[derive(Debug)]
pub struct Hub {
    subscribers: Mutex<Vec<Subscriber>>,
    queue_len: usize,
    next_id: AtomicU64,
    /// Depth messages still to drop (the skip-a-sequence-number fault).
    skip_depth: AtomicU32,
    published: AtomicU64,
    skipped: AtomicU64,
    unroutable: AtomicU64,
    too_slow: AtomicU64,
}

impl Hub {
    /// A hub whose clients each have a queue of `queue_len` messages (at least 1).
    pub fn new(queue_len: usize) -> Hub {
        Hub {
            subscribers: Mutex::new(Vec::new()),
            queue_len: queue_len.max(1),
            next_id: AtomicU64::new(1),
            skip_depth: AtomicU32::new(0),
            published: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            unroutable: AtomicU64::new(0),
            too_slow: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Subscriber>> {
        // A panicking client thread leaves the list consistent (pushes and removes only).
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Subscribes to `streams`.
    pub fn subscribe(&self, streams: &[String]) -> Subscription {
        let (tx, rx) = sync_channel(self.queue_len);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let too_slow = Arc::new(AtomicBool::new(false));
        self.lock().push(Subscriber {
            id,
            streams: streams.iter().cloned().collect(),
            tx,
            too_slow: Arc::clone(&too_slow),
        });
        Subscription { id, rx, too_slow }
    }

    /// Ends subscription `id` (a no-op if the hub already dropped it).
    pub fn unsubscribe(&self, id: u64) {
        self.lock().retain(|s| s.id != id);
    }

    /// Clients subscribed now.
    pub fn subscriber_count(&self) -> usize {
        self.lock().len()
    }

    /// Publishes one combined-stream message to the clients of its stream.
    pub fn publish(&self, text: String) {
        let Some(message) = Published::new(text) else {
            self.unroutable.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if message.is_depth()
            && self
                .skip_depth
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
        {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.published.fetch_add(1, Ordering::Relaxed);
        let message = Arc::new(message);
        self.send_where(
            |s| s.streams.contains(message.stream()),
            || Outgoing::Message(Arc::clone(&message)),
        );
    }

    /// Publishes messages in order.
    pub fn publish_all(&self, texts: impl IntoIterator<Item = String>) {
        for text in texts {
            self.publish(text);
        }
    }

    /// Sends `item` to every client.
    pub fn send_to_all(&self, item: Outgoing) {
        self.send_where(|_| true, || item.clone());
    }

    /// Drops the next `n` depth messages (each client sees a `U`/`u` gap).
    pub fn skip_depth_messages(&self, n: u32) {
        self.skip_depth.fetch_add(n, Ordering::Relaxed);
    }

    pub fn stats(&self) -> HubStats {
        HubStats {
            published: self.published.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            unroutable: self.unroutable.load(Ordering::Relaxed),
            too_slow: self.too_slow.load(Ordering::Relaxed),
        }
    }

    fn send_where(&self, wants: impl Fn(&Subscriber) -> bool, item: impl Fn() -> Outgoing) {
        let mut subscribers = self.lock();
        subscribers.retain(|s| {
            if !wants(s) {
                return true;
            }
            match s.tx.try_send(item()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    s.too_slow.store(true, Ordering::Release);
                    self.too_slow.fetch_add(1, Ordering::Relaxed);
                    false
                }
                // The connection is gone and will unsubscribe.
                Err(TrySendError::Disconnected(_)) => false,
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_wrapper_and_routes() {
        let p = Published::new(r#"{"stream":"a@depth@100ms","data":{"U":1}}"#.into()).unwrap();
        assert_eq!((p.stream(), p.data()), ("a@depth@100ms", r#"{"U":1}"#));
        assert!(Published::new("not json".into()).is_none());

        let hub = Hub::new(2);
        let a = hub.subscribe(&["a@depth@100ms".into()]);
        let b = hub.subscribe(&["b@aggTrade".into()]);
        hub.skip_depth_messages(1);
        for _ in 0..3 {
            hub.publish(r#"{"stream":"a@depth@100ms","data":{}}"#.into());
        }
        assert_eq!(a.rx.try_iter().count(), 2);
        assert!(b.rx.try_recv().is_err());
        for _ in 0..3 {
            hub.publish(r#"{"stream":"a@depth@100ms","data":{}}"#.into());
        }
        assert!(a.too_slow.load(Ordering::Acquire));
        assert_eq!(hub.subscriber_count(), 1);
        assert_eq!(hub.stats().skipped, 1);
    }
}
