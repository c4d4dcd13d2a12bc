//! The tree model's integration tests: XGBoost's evaluation rules on hand-made trees, every
//! refusal with a small hand-made file, no allocation per prediction.
//!
//! One test binary for the whole crate (`autotests = false` in Cargo.toml); each file below is
//! a module.

// The zero-allocation test counts allocations per thread; installed for the whole binary.
#[global_allocator]
static ALLOCATOR: levibot_testkit::CountingAllocator = levibot_testkit::CountingAllocator;

mod common;

mod no_alloc;
mod predict;
mod refusals;
