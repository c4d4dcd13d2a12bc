//! The gateway's integration tests: the Binance decoder (the corpus, errors with offsets, the
//! fast path against simd-json, zero allocations), FIX encoding and the session state machine
//! (resends, gaps, checks, the outbound buffer), QuickFIX's Executor, the WebSocket client,
//! TLS, and a hostile venue's bytes.
//!
//! One test binary for the whole crate (`autotests = false` in Cargo.toml): a 2-core machine
//! links one binary here instead of one per file. Each file below is a module; nextest runs
//! each test in its own process, as before.

// The zero-allocation tests count allocations per thread; installed for the whole binary
// (one global allocator per binary), it costs the other tests a thread-local add.
#[global_allocator]
static ALLOCATOR: levibot_testkit::CountingAllocator = levibot_testkit::CountingAllocator;

mod support;

mod decoder;
mod decoder_no_alloc;
mod decoder_paths;
mod exchange_info;
mod fix_encode;
mod fix_no_alloc;
mod fix_outbound;
mod fix_session;
mod fix_session_checks;
mod fix_session_resend;
mod hostile_bytes;
mod quickfix_interop;
mod tls;
mod ws_client;
