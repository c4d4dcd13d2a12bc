//! Exhaustive check (loom) of the frame commit protocol's memory orderings, the constants in
//! `levibot_shm::layout::ordering` that `segment.rs` uses: two writers claim slots with an atomic
//! add, mark them, fill the payload and commit; a reader that sees a committed length must see
//! the whole payload (loom reports a data race on the payload cell otherwise) and never a torn
//! or uncommitted frame.
//!
//! Loom cannot run the real code (its atomics live in an mmap'd file, and its payload writes are
//! raw-pointer copies loom does not track), so this models the same steps with loom's types.

use levibot_shm::layout::ordering;
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicI32, AtomicUsize};

const SLOTS: usize = 2;

struct Log {
    tail: AtomicUsize,
    frame_len: [AtomicI32; SLOTS],
    payload: [UnsafeCell<(u64, u64)>; SLOTS],
}

// SAFETY: the payload cells are shared on purpose: loom checks every access for races.
unsafe impl Sync for Log {}

fn append(log: &Log, writer: u64) {
    let slot = log.tail.fetch_add(1, ordering::CLAIM);
    if slot >= SLOTS {
        return; // the segment is full; a real writer would roll over
    }
    log.frame_len[slot].store(-1, ordering::CLAIM_MARKER);
    // SAFETY: the claim made this slot ours alone until the commit below.
    log.payload[slot].with_mut(|p| unsafe { *p = (writer, writer * 1000 + 7) });
    log.frame_len[slot].store(1, ordering::COMMIT);
}

#[test]
fn a_committed_frame_is_seen_whole_and_only_once_committed() {
    loom::model(|| {
        let log = Arc::new(Log {
            tail: AtomicUsize::new(0),
            frame_len: [AtomicI32::new(0), AtomicI32::new(0)],
            payload: [UnsafeCell::new((0, 0)), UnsafeCell::new((0, 0))],
        });
        let writers: Vec<_> = (1..=2u64)
            .map(|w| {
                let log = log.clone();
                loom::thread::spawn(move || append(&log, w))
            })
            .collect();

        // The reader: like Tailer::poll, read in order and stop at the first uncommitted slot.
        let mut seen = Vec::new();
        for slot in 0..SLOTS {
            let len = log.frame_len[slot].load(ordering::READ);
            if len <= 0 {
                break;
            }
            // SAFETY: a positive length was loaded with acquire ordering after the writer's
            // release store; loom checks that this read does not race with the write.
            let (writer, value) = log.payload[slot].with(|p| unsafe { *p });
            assert!(
                writer == 1 || writer == 2,
                "torn or uncommitted frame: {writer}"
            );
            assert_eq!(value, writer * 1000 + 7, "torn payload");
            seen.push(writer);
        }
        for w in writers {
            w.join().unwrap();
        }
        seen.dedup();
        assert!(seen.len() <= 2);
    });
}
