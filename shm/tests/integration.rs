//! The journal's and the counters file's integration tests: appends and tailing, crash leftovers
//! and recovery, kill -9, corrupt files, retention, a full filesystem, the shared codes, zero
//! allocations, and the loom model of the commit protocol.
//!
//! One test binary for the whole crate (`autotests = false` in Cargo.toml): a 2-core machine
//! links one binary here instead of one per file. Each file below is a module; nextest runs
//! each test in its own process, as before.

// The zero-allocation tests count allocations per thread; installed for the whole binary
// (one global allocator per binary), it costs the other tests a thread-local add.
#[global_allocator]
static ALLOCATOR: levibot_testkit::CountingAllocator = levibot_testkit::CountingAllocator;

mod common;

mod archive_retention;
mod codes;
mod corrupt;
mod counters;
mod journal;
mod kill9;
mod loom_protocol;
mod no_alloc;
mod no_space;
mod recovery;
mod retention;
mod stress;
