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

pub mod config;
pub mod control;
pub mod decode;
pub mod journal;
mod scratch;
pub mod ws_server;
// Issue 12, the gateway's readers of venue bytes:
pub mod byte_source;
pub mod capture;
pub mod exchange_info;
pub mod fix_parse;
pub mod fix_session;
pub mod http_response;
pub mod ws_client;
// Issue 18, the archiver's watermark the daemon reads:
pub mod watermark;

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
    Target {
        name: "control_request",
        run: control::control_request,
    },
    Target {
        name: "config",
        run: config::config,
    },
    Target {
        name: "journal",
        run: journal::journal,
    },
    Target {
        name: "ws_server",
        run: ws_server::ws_server,
    },
    Target {
        name: "http_response",
        run: http_response::http_response,
    },
    Target {
        name: "ws_client",
        run: ws_client::ws_client,
    },
    Target {
        name: "fix_parse",
        run: fix_parse::fix_parse,
    },
    Target {
        name: "fix_session",
        run: fix_session::fix_session,
    },
    Target {
        name: "capture",
        run: capture::capture,
    },
    Target {
        name: "exchange_info",
        run: exchange_info::exchange_info,
    },
    Target {
        name: "watermark",
        run: watermark::watermark,
    },
];
