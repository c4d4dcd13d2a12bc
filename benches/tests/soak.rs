//! A 60-second soak with faults (issue 12): the real `levibotd` against venue-sim with every
//! fault switch cycling, the kill switch, `resume`, `set`, `reload` and SIGHUP exercised through
//! `levictl` and signals, the real `levibot-exporter` beside it; every 10 s, quiet, the soak
//! checks levibotd's memory and fds, positions against the venue's, that no order is unknown,
//! and the exporter's counts against the journal's.
//!
//! The soak is `levibot-bench soak`'s code (`benches/src/soak.rs`), included here so that it runs
//! with the binaries this crate builds (`CARGO_BIN_EXE_*`). No timing is asserted.

#[allow(dead_code)] // the bench binary's printing is not used here
#[path = "../src/soak.rs"]
mod soak;

use std::time::Duration;

#[test]
fn a_60_second_soak_with_every_fault_cycling_passes_every_check() {
    let mut args = soak::SoakArgs::with_binaries(
        levibot_testkit::workspace_bin("levibot-daemon", "levibotd"),
        levibot_testkit::workspace_bin("levictl", "levictl"),
        levibot_testkit::workspace_bin("levibot-exporter", "levibot-exporter"),
    );
    args.duration = Duration::from_secs(60);
    args.check_interval = Duration::from_secs(10);
    args.seed = Some(levibot_testkit::seed());
    // A failed check is an error that names it (and keeps the journal and the daemon's log).
    let summary = soak::soak(&args).unwrap_or_else(|e| panic!("{e:#}"));
    let json = summary.to_json();
    eprintln!("{json}");

    // Checks every 10 s and a last one at the end; on a busy machine a check may take a while.
    assert!(summary.checks_passed >= 3, "{json}");
    // Every switch was thrown at least once (each round throws each once).
    for name in [
        "md_drop",
        "md_gap",
        "md_missed_pongs",
        "md_garbage",
        "md_broken_frame",
        "fix_drop",
        "fix_seq_gap",
        "fix_garbage",
        "fix_lost_order",
        "fix_mute",
        "venue_ignores_cancels",
    ] {
        assert!(
            summary.faults.get(name).copied().unwrap_or(0) > 0,
            "{name} never injected: {json}"
        );
    }
    // The operator did everything; every kill was resumed (the last stays halted, then
    // SIGTERM).
    assert!(summary.kills > summary.checks_passed, "{json}");
    assert!(summary.resumes + 1 >= summary.kills, "{json}");
    assert!(summary.sets > 0, "{json}");
    assert!(summary.reloads > 0, "{json}");
    assert!(summary.sighups > 0, "{json}");
    // It traded throughout.
    assert!(summary.orders_sent > 50, "{json}");
    assert!(summary.fills > 0, "{json}");
    assert!(summary.self_halts < 1_000, "{json}");
}
