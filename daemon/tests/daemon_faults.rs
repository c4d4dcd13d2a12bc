//! `levibotd` on the paths a real box takes (issue 11): the real binary against venue-sim on
//! loopback, checked against the venue's own view.
//!
//! - an empty journal (a reboot emptied /dev/shm) reconciles, reaches READY halted, says why,
//!   and trades only after `levictl resume`;
//! - client order ids never repeat across runs, even when the journal vanished in between;
//! - a kill the venue does not confirm is reported as unconfirmed (its own exit status), and
//!   `resume` refuses until the venue confirmed the cancels;
//! - a reconciliation the venue does not confirm leaves the restarted daemon halted;
//! - a journal whose filesystem fills up (root: a small tmpfs): halt, cancel every order at the
//!   venue, exit 75, no signal; and the demo on a 4 MiB tmpfs at 5,000 messages/s ends the
//!   same way, or cleanly, never with a signal.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::harness::*;

use levibot_shm::codes::halt_reason;
use levibot_shm::records::{daemon_event, order_kind};
use levibot_testkit::Tmpfs;

/// `empty_journal = "trade"` (the demo's) turned into the service's default.
fn halt_on_empty_journal(config: &Path) {
    let text = std::fs::read_to_string(config).unwrap();
    assert!(text.contains("empty_journal = \"trade\""), "{text}");
    std::fs::write(
        config,
        text.replace("empty_journal = \"trade\"", "empty_journal = \"halt\""),
    )
    .unwrap();
}

fn wait_until(what: &str, ok: impl Fn() -> bool) {
    let until = Instant::now() + TIMEOUT;
    while !ok() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn new_order_ids(dir: &Path) -> Vec<u64> {
    sent_orders(dir)
        .iter()
        .filter(|s| s.request.kind == order_kind::NEW)
        .map(|s| s.request.client_order_id)
        .collect()
}

#[test]
fn an_empty_journal_reconciles_then_stays_halted_until_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (venue, config) = venue_and_config(dir.path(), levibot_testkit::seed());
    halt_on_empty_journal(&config);
    let mut daemon = Daemon::start(&config, dir.path());
    daemon.wait_running();
    let c = counters(dir.path());
    assert_eq!(get(&c, "risk.trading_state"), 2, "READY but not halted");
    assert_eq!(get(&c, "daemon.halt_reason"), halt_reason::EMPTY_JOURNAL);
    assert_eq!(get(&c, "daemon.self_halts"), 1);
    // Journal housekeeping (gzip included) runs on a thread of its own, never on the control
    // loop's, whose watchdog pings and signal handling must not wait for it.
    let pid =
        levibot_shm::counters::CountersReader::open(levibot_shm::paths::counters_path(dir.path()))
            .unwrap()
            .writer_pid();
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect();
    assert!(
        threads.iter().any(|t| t.starts_with("journal-maint")),
        "no journal maintenance thread: {threads:?}"
    );
    // Halted for real: a while later, still no new order was sent and the venue has none.
    std::thread::sleep(Duration::from_secs(2));
    assert!(new_order_ids(dir.path()).is_empty(), "traded while halted");
    assert!(venue_working(&venue).is_empty());
    let events = events(dir.path());
    assert!(
        events
            .iter()
            .any(|e| e.kind == daemon_event::SELF_HALT && e.value == halt_reason::EMPTY_JOURNAL),
        "no SELF_HALT event journaled: {events:?}"
    );

    let status = levictl(dir.path(), &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("empty_journal"),
        "status does not say why:\n{text}"
    );
    let json = levictl(dir.path(), &["status", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["halt_reason"], "empty_journal", "{report}");
    assert_eq!(report["trading_state"], "halted", "{report}");

    let resumed = levictl(dir.path(), &["resume"]);
    assert!(
        resumed.status.success(),
        "{}{}",
        String::from_utf8_lossy(&resumed.stdout),
        String::from_utf8_lossy(&resumed.stderr)
    );
    daemon.wait_for("trading after resume", |c| {
        get(c, "risk.trading_state") == 0 && get(c, "daemon.halt_reason") == 0
    });
    wait_until("an order at the venue", || {
        !venue_working(&venue).is_empty()
    });
    daemon.signal(rustix::process::Signal::TERM);
    assert_eq!(daemon.wait().code(), Some(0), "{}", daemon.log());
    assert!(venue_working(&venue).is_empty(), "orders left at the venue");
}

#[test]
fn client_order_ids_never_repeat_when_the_journal_vanishes() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    let (venue, config) = venue_and_config(&journal, levibot_testkit::seed());
    let mut first_ids = Vec::new();
    for run in 0..2 {
        let mut daemon = Daemon::start(&config, &journal);
        daemon.wait_running();
        daemon.wait_for("orders sent", |c| get(c, "gateway.orders_sent") > 5);
        daemon.signal(rustix::process::Signal::TERM);
        assert_eq!(daemon.wait().code(), Some(0), "{}", daemon.log());
        let ids = new_order_ids(&journal);
        assert!(!ids.is_empty());
        if run == 0 {
            first_ids = ids;
            // A reboot: /dev/shm comes back empty (the config and exchangeInfo stay).
            for entry in std::fs::read_dir(&journal).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "lvj")
                    || path.file_name().is_some_and(|n| n == "counters")
                {
                    std::fs::remove_file(&path).unwrap();
                }
            }
            assert!(
                levibot_shm::list_segments(&journal).unwrap().is_empty(),
                "the journal did not vanish"
            );
        } else {
            let first: HashSet<u64> = first_ids.iter().copied().collect();
            let again: Vec<u64> = ids
                .iter()
                .filter(|id| first.contains(id))
                .copied()
                .collect();
            assert!(again.is_empty(), "client order ids sent twice: {again:?}");
            // Ordered, as the documented layout says: a later run starts above an earlier one.
            assert!(ids.iter().min() > first_ids.iter().max());
        }
    }
    assert!(venue_working(&venue).is_empty());
}

#[test]
fn a_kill_the_venue_does_not_confirm_is_reported_and_resume_waits_for_the_cancels() {
    let dir = tempfile::tempdir().unwrap();
    let (venue, config) = venue_and_config(dir.path(), levibot_testkit::seed());
    let mut daemon = Daemon::start(&config, dir.path());
    daemon.wait_running();
    wait_until("an order at the venue", || {
        !venue_working(&venue).is_empty()
    });
    // No more synthetic traders: a fill would confirm an order's end as a cancel does.
    venue.set_rate(0);
    let fix = venue.fix.as_ref().unwrap();
    fix.set_ignore_cancels(true);

    let kill = levictl(dir.path(), &["kill", "--json"]);
    let out = String::from_utf8_lossy(&kill.stdout).into_owned();
    assert_eq!(
        kill.status.code(),
        Some(3),
        "an unconfirmed kill must exit 3:\n{out}{}",
        String::from_utf8_lossy(&kill.stderr)
    );
    let response: serde_json::Value =
        serde_json::from_str(out.lines().last().unwrap_or("{}")).unwrap();
    let report = &response["kill"];
    assert_eq!(report["halted"], true, "{response}");
    let unconfirmed = report["unconfirmed"].as_u64().unwrap();
    assert!(unconfirmed > 0, "{response}");
    // The venue's own view agrees: those orders are still working there.
    assert_eq!(
        venue_working(&venue).len() as u64,
        unconfirmed,
        "{response}"
    );

    // No resume on orders nobody can vouch for.
    let refused = levictl(dir.path(), &["resume"]);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("unconfirmed"), "{why}");
    assert_eq!(get(&counters(dir.path()), "risk.trading_state"), 2);

    // Once the venue answers again, resume cancels what was left, then trades.
    fix.set_ignore_cancels(false);
    let resumed = levictl(dir.path(), &["resume"]);
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    daemon.wait_for("trading", |c| get(c, "risk.trading_state") == 0);
    daemon.signal(rustix::process::Signal::TERM);
    assert_eq!(daemon.wait().code(), Some(0), "{}", daemon.log());
    assert!(venue_working(&venue).is_empty());
}

#[test]
fn a_reconciliation_the_venue_does_not_confirm_leaves_the_daemon_halted() {
    reconcile_unconfirmed("cancel_all");
}

#[test]
fn a_mass_status_the_venue_does_not_answer_leaves_the_daemon_halted() {
    reconcile_unconfirmed("mass_status");
}

fn reconcile_unconfirmed(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (venue, config) = venue_and_config(dir.path(), levibot_testkit::seed());
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replacen(
            "[daemon]\n",
            &format!("[daemon]\nreconcile = \"{mode}\"\n"),
            1,
        ),
    )
    .unwrap();
    let mut daemon = Daemon::start(&config, dir.path());
    daemon.wait_running();
    wait_until("an order at the venue", || {
        !venue_working(&venue).is_empty()
    });
    venue.set_rate(0);
    daemon.signal(rustix::process::Signal::KILL);
    daemon.wait();
    let fix = venue.fix.as_ref().unwrap();
    fix.set_ignore_cancels(true);

    let mut daemon = Daemon::start(&config, dir.path());
    daemon.wait_running();
    let c = counters(dir.path());
    assert_eq!(
        get(&c, "risk.trading_state"),
        2,
        "trading on unconfirmed orders"
    );
    assert_eq!(
        get(&c, "daemon.halt_reason"),
        halt_reason::RECONCILE_UNCONFIRMED
    );
    assert!(!venue_working(&venue).is_empty());

    fix.set_ignore_cancels(false);
    let resumed = levictl(dir.path(), &["resume"]);
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    daemon.wait_for("trading", |c| get(c, "risk.trading_state") == 0);
    daemon.signal(rustix::process::Signal::TERM);
    assert_eq!(daemon.wait().code(), Some(0), "{}", daemon.log());
    assert!(venue_working(&venue).is_empty());
}

#[test]
fn a_full_journal_filesystem_halts_cancels_and_exits_75_without_a_signal() {
    let Some(tmpfs) = Tmpfs::mount("24m") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let journal = tmpfs.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    let (venue, config) = venue_and_config(dir.path(), levibot_testkit::seed());
    // The demo config, with its journal on the small filesystem in 1 MiB segments.
    let text = rewrite_config(&config, |line| {
        if line.starts_with("dir = ") {
            Some(format!("dir = \"{}\"", journal.display()))
        } else if line.starts_with("segment_size_mib = ") {
            Some("segment_size_mib = 1".to_owned())
        } else if line.starts_with("max_total_mib = ") {
            Some("max_total_mib = 8".to_owned())
        } else {
            None
        }
    });
    assert!(text.contains("max_total_mib = 8"), "{text}");
    let mut daemon = Daemon::start(&config, &journal);
    daemon.wait_running();
    wait_until("an order at the venue", || {
        !venue_working(&venue).is_empty()
    });

    tmpfs.fill();
    let status = daemon.wait();
    let log = daemon.log();
    assert_eq!(
        status.code(),
        Some(halt_reason::JOURNAL_EXIT_STATUS),
        "{status} (a signal?):\n{log}"
    );
    assert!(log.contains(&journal.display().to_string()), "{log}");
    assert_eq!(
        venue_working(&venue),
        Vec::<u64>::new(),
        "orders left at the venue nobody watches"
    );
    // What was recorded is still there and readable, the halt and its reason included.
    let events = events(&journal);
    assert!(
        events
            .iter()
            .any(|e| e.kind == daemon_event::SELF_HALT && e.value == halt_reason::JOURNAL_FULL),
        "{events:?}"
    );
    let tail = levictl(&journal, &["tail", "-n", "5"]);
    assert!(
        tail.status.success(),
        "{}",
        String::from_utf8_lossy(&tail.stderr)
    );
}

#[test]
fn the_demo_on_a_4_mib_tmpfs_ends_without_a_signal_and_no_order_left_open() {
    let Some(tmpfs) = Tmpfs::mount("4m") else {
        return;
    };
    let journal = tmpfs.path().join("demo");
    let out = Command::new(levibot_testkit::workspace_bin(
        "levibot-demo",
        "levibot-demo",
    ))
    .args(["--plain", "--duration", "20", "--rate", "5000", "--journal"])
    .arg(&journal)
    .args(["--exporter-listen", "127.0.0.1:0"])
    .stdin(Stdio::null())
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        code == Some(0) || code == Some(halt_reason::JOURNAL_EXIT_STATUS),
        "{:?} (a signal?):\n{stderr}",
        out.status
    );
    // The last word on open orders is the venue's confirmation of the final cancel-all.
    let events = events(&journal);
    let last = events
        .iter()
        .rev()
        .find(|e| e.kind == daemon_event::CANCEL_ALL_DONE || e.kind == daemon_event::JOURNAL_FAILED)
        .unwrap_or_else(|| panic!("no final cancel-all journaled: {events:?}\n{stderr}"));
    assert_eq!(last.value, 0, "orders left open:\n{stderr}");
}
