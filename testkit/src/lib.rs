//! Test support shared by LeviBot's crates (a dev-dependency only).
//!
//! - [`CountingAllocator`]: counts the allocations each thread makes, to prove that a hot path
//!   allocates nothing in steady state. A test binary installs it with
//!   `#[global_allocator] static A: CountingAllocator = CountingAllocator;` and compares
//!   [`allocations`] before and after the code under test.
//! - [`seed`]: a PRNG seed from `LEVIBOT_TEST_SEED` or the clock, printed so a failure replays.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Forwards to the system allocator and counts allocations and reallocations per thread.
pub struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator runs during thread teardown too, after the counter is gone.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded unchanged to the system allocator; we only count.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations made so far by the calling thread (when [`CountingAllocator`] is installed).
pub fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

/// A seed from `LEVIBOT_TEST_SEED`, or from the clock; printed so that a failure can be replayed.
pub fn seed() -> u64 {
    let seed = std::env::var("LEVIBOT_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
    eprintln!("seed: {seed} (replay with LEVIBOT_TEST_SEED={seed})");
    seed
}
