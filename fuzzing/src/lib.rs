//! LeviBot's fuzz targets, as plain functions of the fuzzer's bytes.
//!
//! Each target takes any bytes and must never panic; it asserts what else matters for its
//! parser (bounded memory, round trips, two paths that agree). They live in this workspace crate,
//! not in `fuzz/`, so that they build on stable with the rest:
//!
//! - `fuzz/` (cargo-fuzz, libFuzzer) runs each one as a `fuzz_target!` (see fuzz/README.md);
//! - `tests/replay.rs` runs every saved input of every target (`fuzz/seeds/<target>/` and
//!   `fuzz/regressions/<target>/`) through the same function in the normal test suite, so CI
//!   checks them without a fuzzer.
//!
//! A target is registered once, in [`TARGETS`], by the name its directories and its cargo-fuzz
//! binary carry.

pub mod decode;

/// One fuzz target: its name (the cargo-fuzz binary and the seed directories) and its function.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "decode",
        run: decode::decode,
    },
    Target {
        name: "snapshot",
        run: decode::snapshot,
    },
];
