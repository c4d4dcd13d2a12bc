//! The tree model's integration tests: XGBoost's evaluation rules on hand-made trees, every
//! refusal with a small hand-made file, no allocation per prediction, and equality with
//! XGBoost 3.2.0 itself on models it trained (scripts/xgboost-train.py).
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
mod xgboost;
