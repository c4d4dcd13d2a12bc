//! The daemon test harness: `levibotd` as a child process on the demo's venue and config,
//! read back through its counters and journal (`tests/daemon.rs`, `tests/exporter_live.rs`).

#![allow(dead_code)] // each test file uses part of it

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use levibot_shm::counters::CountersReader;
use levibot_shm::records::{DaemonEvent, Record, SentOrder};
use levibot_shm::{StartAt, Tailer};
use levibot_sim::demo;
use levibot_sim::fix_server::FIRST_OWNER;
use levibot_sim::sim::SimVenue;

/// Generous: a loaded 2-core CI machine.
pub const TIMEOUT: Duration = Duration::from_secs(90);

pub struct Daemon {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
}

impl Daemon {
    pub fn start(config: &Path, dir: &Path) -> Daemon {
        let log = dir.join(format!("levibotd-{}.log", std::process::id()));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_levibotd"))
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        Daemon {
            child,
            dir: dir.to_owned(),
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
    }

    pub fn wait(&mut self) -> ExitStatus {
        let until = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < until,
                "levibotd did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Fails the test, with the daemon's log, if the daemon has exited.
    pub fn assert_alive(&mut self, when: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("levibotd died ({status}) during {when}:\n{}", self.log());
        }
    }

    /// Waits until `ok` holds for the daemon's counters.
    pub fn wait_for(&mut self, what: &str, ok: impl Fn(&HashMap<String, i64>) -> bool) {
        let until = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "levibotd exited ({status}) waiting for {what}:\n{}",
                    self.log()
                );
            }
            if ok(&counters(&self.dir)) {
                return;
            }
            assert!(
                Instant::now() < until,
                "timed out waiting for {what}; counters {:?}\n{}",
                counters(&self.dir),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until this process (not a killed predecessor, whose counters file may still be
    /// there) runs. The phase and the writer's pid come from one open of the counters file: two
    /// opens could read the predecessor's phase and, after the new process renamed its file
    /// into place between them, the new pid.
    pub fn wait_running(&mut self) {
        let pid = self.child.id();
        let path = levibot_shm::paths::counters_path(&self.dir);
        let until = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("levibotd exited ({status}) before it ran:\n{}", self.log());
            }
            let running = CountersReader::open(&path).is_ok_and(|r| {
                r.writer_pid() == pid
                    && r.counters()
                        .iter()
                        .any(|c| c.label == "daemon.phase" && c.value == 3)
            });
            if running {
                return;
            }
            assert!(
                Instant::now() < until,
                "timed out waiting for the daemon to run; counters {:?}\n{}",
                counters(&self.dir),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn counters(dir: &Path) -> HashMap<String, i64> {
    match CountersReader::open(levibot_shm::paths::counters_path(dir)) {
        Ok(r) => r
            .counters()
            .into_iter()
            .map(|c| (c.label, c.value))
            .collect(),
        Err(_) => HashMap::new(),
    }
}

pub fn get(c: &HashMap<String, i64>, label: &str) -> i64 {
    c.get(label).copied().unwrap_or(0)
}

/// Every frame of the journal: (record type, payload).
pub fn journal(dir: &Path) -> Vec<(u16, Vec<u8>)> {
    let mut tailer = Tailer::open(dir, StartAt::Beginning).unwrap();
    let mut frames = Vec::new();
    while tailer
        .poll(4096, |f| frames.push((f.record_type.0, f.payload.to_vec())))
        .unwrap()
        .frames
        > 0
    {}
    frames
}

pub fn events(dir: &Path) -> Vec<DaemonEvent> {
    journal(dir)
        .iter()
        .filter(|(t, _)| *t == DaemonEvent::RECORD_TYPE.0)
        .filter_map(|(_, p)| DaemonEvent::from_bytes(p))
        .collect()
}

pub fn sent_orders(dir: &Path) -> Vec<SentOrder> {
    journal(dir)
        .iter()
        .filter(|(t, _)| *t == SentOrder::RECORD_TYPE.0)
        .filter_map(|(_, p)| SentOrder::from_bytes(p))
        .collect()
}

pub fn levictl(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(levibot_testkit::workspace_bin("levictl", "levictl"))
        .arg("--journal")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Rewrites the config file at `path` line by line (`edit`: a line's replacement, or `None`
/// to keep it); returns the new text.
pub fn rewrite_config(path: &Path, edit: impl Fn(&str) -> Option<String>) -> String {
    let text: String = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| edit(line).unwrap_or_else(|| line.to_owned()) + "\n")
        .collect();
    std::fs::write(path, &text).unwrap();
    text
}

/// The demo's venue (three symbols, synthetic traders) and its config, journal in `dir`.
pub fn venue_and_config(dir: &Path, seed: u64) -> (SimVenue, PathBuf) {
    let venue = demo::start_venue(demo::venue_config(seed, 400).unwrap()).unwrap();
    let config = demo::write_config(dir, dir, &venue).unwrap();
    (venue, config)
}

pub fn venue_working(venue: &SimVenue) -> Vec<u64> {
    venue
        .core
        .with_engine(|e| e.working_order_ids_of(FIRST_OWNER))
}

/// A `[instruments.signal]` table voting with `vote` (a `model = ...` or `weights = ...` line)
/// and entering past `entry_threshold`.
pub fn signal_table(vote: &str, entry_threshold: &str) -> String {
    format!(
        "[instruments.signal]\n{vote}\nentry_threshold = {entry_threshold}\nrisk_budget = \"5\"\n\
         atr_multiple = 2\ntake_profit_atr = 2.0\nstop_loss_atr = 1.0\nqty_max_lots = 100\n"
    )
}

/// The demo's config (`venue_and_config`'s) with the `signal` strategy on every symbol:
/// NKNUSDT's table `nknusdt`, the others' `others` ([`signal_table`]), the features journaled
/// after every book change, with 50 ms ATR bars (so that the ATR exists within seconds).
pub fn signal_demo_config(demo: &str, nknusdt: &str, others: &str) -> String {
    let maker = "[instruments.maker]\nhalf_spread_ticks = 2\nquote_lots = 100\n\
                 skew_ticks_per_quote = 1.0\nrequote_threshold_ticks = 0\n\
                 inventory_max_lots = 1000\n";
    assert_eq!(
        demo.matches(maker).count(),
        3,
        "the demo's maker table moved:\n{demo}"
    );
    let text = demo
        .replacen("kind = \"maker\"", "kind = \"signal\"", 1)
        .replacen(maker, nknusdt, 1)
        .replace(maker, others);
    format!("{text}\n[features]\njournal = \"book\"\natr_bar_ms = 50\n")
}
