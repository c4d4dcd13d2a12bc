//! The engine's integration tests: books and features without allocating, agents, strategies,
//! every risk check and report, the pipeline fused and spread, zero allocations over the corpus,
//! the gateway's write-ahead rule, and the live pipeline and feed against the simulated venue.
//!
//! One test binary for the whole crate (`autotests = false` in Cargo.toml): a 2-core machine
//! links one binary here instead of one per file. Each file below is a module; nextest runs
//! each test in its own process, as before.

// The zero-allocation tests count allocations per thread; installed for the whole binary
// (one global allocator per binary), it costs the other tests a thread-local add.
#[global_allocator]
static ALLOCATOR: levibot_testkit::CountingAllocator = levibot_testkit::CountingAllocator;

#[allow(dead_code)] // each test module uses part of it
mod common;

mod agents;
mod corpus_no_alloc;
mod gateway_write_ahead;
mod no_alloc;
mod pipeline;
mod pipeline_live;
mod pipeline_no_alloc;
mod risk;
mod risk_corpus;
mod risk_limits;
mod risk_no_alloc;
mod risk_reports;
mod risk_status;
mod strategies;
mod ws_feed_close;
mod ws_feed_rollover;
mod ws_feed_snapshots;
