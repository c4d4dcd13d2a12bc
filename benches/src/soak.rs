//! `levibot-bench soak`: the real `levibotd` against venue-sim with every fault switch cycling,
//! while an operator exercises the kill switch, `resume`, `set`, `reload` and SIGHUP through
//! `levictl` and signals, and the real `levibot-exporter` follows the journal. Every check
//! interval the soak makes the system quiet (faults off, `levictl kill`, every cancel confirmed)
//! and checks:
//!
//! - `memory`, `fds`: levibotd's resident memory and open file descriptors stay within a bound
//!   of their values at the first check (after warm-up);
//! - `unknown_orders`: every order working at the venue for the daemon's CompID is one the
//!   daemon journaled as sent (checked before the kill too, while it trades), and once quiet
//!   neither side has an order open;
//! - `positions`: the daemon's positions (`risk.position_units.<SYM>`) equal the venue's own
//!   (`MatchingEngine::position_of`);
//! - `exporter`: the exporter's counts (orders sent, acked, filled, cancelled, rejected) equal
//!   the journal's records, read here with a `Tailer`.
//!
//! Then it resumes trading and the faults start again. A failed check stops the run with an
//! error that names it (the process exits non-zero); the scratch directory is then kept.
//!
//! The venue runs in this process (`levibot_sim::demo`'s venue and config); levibotd,
//! levictl and levibot-exporter are the binaries beside this one (or `--levibotd`, `--levictl`,
//! `--exporter`). `benches/tests/soak.rs` includes this file and runs 60 s of it.
//!
//! Fault switches cycled (in a seeded random order each round, every switch once a round):
//! market data dropped, a depth gap, missed pongs, a garbage text frame, a broken frame; FIX
//! connections dropped, an outbound FIX sequence gap, garbage on the FIX session, an order lost
//! in flight, a mute FIX session, a venue ignoring cancels, a venue rejecting a new order. The
//! rejects it sends on its own (cancels of orders already gone) and the gateway's lost-in-flight
//! rejects are counted too.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use levibot_shm::codes::{halt_reason, label};
use levibot_shm::counters::CountersReader;
use levibot_shm::records::{ExecutionReport, Record, SentOrder, exec_type, order_kind};
use levibot_shm::{ShmError, StartAt, Tailer};
use levibot_sim::demo;
use levibot_sim::fix_acceptor::FixFaults;
use levibot_sim::fix_server::FIRST_OWNER;
use levibot_sim::sim::SimVenue;
use serde_json::{Value, json};

/// How long the soak waits for anything the system should do by itself (a reconnect, a
/// confirmation, the exporter catching up): generous, for a busy 2-core machine.
const WAIT: Duration = Duration::from_secs(90);
/// RSS may grow by this fraction of its warm-up value, plus [`RSS_SLACK_KIB`].
const RSS_GROWTH_MAX: f64 = 0.20;
const RSS_SLACK_KIB: u64 = 16 << 10;
/// Open file descriptors may differ from their warm-up count by this many.
const FDS_SLACK: i64 = 16;
/// The limits `levictl set` cycles through for `risk.loss_max` (the demo's is 1000).
const LOSS_MAX_VALUES: [&str; 4] = ["900", "1000", "1500", "2000"];

#[derive(clap::Args, Debug, Clone)]
pub struct SoakArgs {
    /// How long to run (e.g. 60s, 30m, 1h; a bare number is seconds).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// How often the system is made quiet and checked.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub check_interval: Duration,
    /// Seed of the fault and operator schedules and of the venue's traders (default: the
    /// clock; it is printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Synthetic order actions a second at the venue.
    #[arg(long, default_value_t = 400)]
    pub rate: u32,
    /// The levibotd binary (default: beside this one).
    #[arg(long)]
    pub levibotd: Option<PathBuf>,
    /// The levictl binary (default: beside this one).
    #[arg(long)]
    pub levictl: Option<PathBuf>,
    /// The levibot-exporter binary (default: beside this one).
    #[arg(long)]
    pub exporter: Option<PathBuf>,
    /// Parent of the scratch directory (journal, config, logs; default /dev/shm).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Also print the summary as one JSON object, on the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

impl SoakArgs {
    /// The defaults, with the three binaries given (for tests).
    #[allow(dead_code)] // benches/tests/soak.rs
    pub fn with_binaries(
        levibotd: impl Into<PathBuf>,
        levictl: impl Into<PathBuf>,
        exporter: impl Into<PathBuf>,
    ) -> SoakArgs {
        SoakArgs {
            duration: Duration::from_secs(60),
            check_interval: Duration::from_secs(10),
            seed: None,
            rate: 400,
            levibotd: Some(levibotd.into()),
            levictl: Some(levictl.into()),
            exporter: Some(exporter.into()),
            dir: None,
            json: false,
        }
    }
}

/// `60s`, `30m`, `1h`, `500ms` or a number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a duration like 60s, 30m or 1h"))?;
    let seconds = match unit {
        "ms" => n / 1e3,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{text:?}: unit must be ms, s, m or h")),
    };
    if !(seconds > 0.0 && seconds < 1e7) {
        return Err(format!("{text:?}: must be positive"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

// Paths spelled out: benches/tests/soak.rs includes this file by #[path] too.
#[path = "soak/checks.rs"]
mod checks;
#[path = "soak/faults.rs"]
mod faults;
#[path = "soak/observe.rs"]
mod observe;

use faults::{FaultControl, Rng, clear_faults, fault_thread};
use observe::{JournalView, ProcSample, metric_sum, scrape};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the operator did.
#[derive(Debug, Default)]
struct OperatorCounts {
    kills: u64,
    kills_unconfirmed: u64,
    resumes: u64,
    resume_refusals: u64,
    sets: u64,
    set_refusals: u64,
    reloads: u64,
    reload_refusals: u64,
    sighups: u64,
    self_halts: BTreeMap<String, u64>,
}

/// One quiet check's figures.
#[derive(Debug)]
struct Check {
    at_s: f64,
    proc: ProcSample,
    /// The exporter's, reported (not checked).
    exporter: Option<ProcSample>,
    working_before_kill: usize,
    orders_sent: u64,
    fills: u64,
    positions: Vec<(String, i64)>,
}

/// The soak's result.
#[derive(Debug)]
pub struct Summary {
    pub seed: u64,
    pub duration_s: f64,
    pub checks_passed: u64,
    pub faults: BTreeMap<&'static str, u64>,
    pub kills: u64,
    pub resumes: u64,
    pub sets: u64,
    pub reloads: u64,
    pub sighups: u64,
    pub self_halts: u64,
    pub orders_sent: u64,
    pub fills: u64,
    json: Value,
}

impl Summary {
    pub fn to_json(&self) -> &Value {
        &self.json
    }
}

/// Everything a run holds.
struct Soak<'a> {
    args: &'a SoakArgs,
    dir: PathBuf,
    journal: PathBuf,
    config_path: PathBuf,
    config_text: String,
    levictl: PathBuf,
    venue: &'a SimVenue,
    daemon: Child,
    daemon_log: PathBuf,
    counters: Option<CountersReader>,
    exporter_addr: SocketAddr,
    exporter_pid: Option<u32>,
    view: &'a Mutex<JournalView>,
    faults: &'a FaultControl,
    started: Instant,
    ops: OperatorCounts,
    checks: Vec<Check>,
    /// RSS and fds at the first check (after warm-up).
    baseline: Option<ProcSample>,
    rss_max: ProcSample,
    fds_max: i64,
    self_halts_seen: i64,
    rng: Rng,
    loss_max_next: usize,
    symbols: Vec<String>,
}

fn progress(message: &str) {
    eprintln!("[soak] {message}");
}

fn binary(given: &Option<PathBuf>, name: &str) -> Result<PathBuf> {
    let path = match given {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("this binary's directory")?
            .join(name),
    };
    if !path.exists() {
        bail!(
            "no {name} at {}: build it (cargo build --release -p levibot-daemon -p levictl -p levibot-exporter --bins) or pass \
             --{}",
            path.display(),
            if name == "levibot-exporter" {
                "exporter"
            } else {
                name
            }
        );
    }
    Ok(path)
}

/// A check failed: the error names it.
fn failed(check: &str, detail: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("soak check failed: {check}: {detail}")
}

impl Soak<'_> {
    fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn counters(&mut self) -> HashMap<String, i64> {
        if self.counters.is_none() {
            self.counters =
                CountersReader::open(levibot_shm::paths::counters_path(&self.journal)).ok();
        }
        match &self.counters {
            Some(r) => r
                .counters()
                .into_iter()
                .map(|c| (c.label, c.value))
                .collect(),
            None => HashMap::new(),
        }
    }

    fn counter(&mut self, label: &str) -> i64 {
        self.counters().get(label).copied().unwrap_or(0)
    }

    fn daemon_log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.daemon_log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Fails if levibotd has exited.
    fn alive(&mut self) -> Result<()> {
        if let Some(status) = self.daemon.try_wait()? {
            return Err(failed(
                "daemon_alive",
                format!("levibotd exited ({status}):\n{}", self.daemon_log_tail()),
            ));
        }
        Ok(())
    }

    /// Waits until `ok` holds (or fails `check` with `what`).
    fn wait_until(
        &mut self,
        check: &str,
        what: &str,
        timeout: Duration,
        mut ok: impl FnMut(&mut Self) -> Result<bool>,
    ) -> Result<()> {
        let until = Instant::now() + timeout;
        loop {
            self.alive()?;
            if ok(self)? {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(failed(
                    check,
                    format!("timed out after {timeout:?}: {what}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn levictl(&self, args: &[&str]) -> Result<(Option<i32>, String)> {
        let out = Command::new(&self.levictl)
            .arg("--journal")
            .arg(&self.journal)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", self.levictl.display()))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.code(), text))
    }

    fn venue_working(&self) -> Vec<u64> {
        self.venue
            .core
            .with_engine(|e| e.working_order_ids_of(FIRST_OWNER))
    }

    fn signal(&self, signal: rustix::process::Signal) -> Result<()> {
        let pid = rustix::process::Pid::from_raw(self.daemon.id() as i32).context("pid")?;
        rustix::process::kill_process(pid, signal).context("signalling levibotd")?;
        Ok(())
    }

    /// `levictl kill`; true if every cancel was confirmed.
    fn kill(&mut self) -> Result<bool> {
        let (code, text) = self.levictl(&["kill", "--json", "--timeout-s", "60"])?;
        match code {
            Some(0) => {
                self.ops.kills += 1;
                Ok(true)
            }
            Some(3) => {
                self.ops.kills += 1;
                self.ops.kills_unconfirmed += 1;
                Ok(false)
            }
            _ => Err(failed(
                "kill",
                format!("levictl kill exited {code:?}: {text}"),
            )),
        }
    }

    /// `levictl resume` until the daemon takes it (it refuses while the venue has not
    /// confirmed the cancels or a mass status is owed).
    fn resume(&mut self) -> Result<()> {
        let until = Instant::now() + WAIT;
        loop {
            self.alive()?;
            let (code, text) = self.levictl(&["resume"])?;
            if code == Some(0) {
                self.ops.resumes += 1;
                return Ok(());
            }
            self.ops.resume_refusals += 1;
            if Instant::now() >= until {
                return Err(failed(
                    "resume",
                    format!("refused for {WAIT:?}, last: exit {code:?}: {text}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The config file with `risk.loss_max` set to the next value (for reload and SIGHUP).
    fn rewrite_config(&mut self) -> Result<()> {
        let value = LOSS_MAX_VALUES[self.loss_max_next % LOSS_MAX_VALUES.len()];
        self.loss_max_next += 1;
        let text =
            self.config_text
                .replacen("loss_max = \"1000\"", &format!("loss_max = \"{value}\""), 1);
        std::fs::write(&self.config_path, text).context("rewriting the config")
    }

    /// One of the operator's actions, in a seeded round.
    fn operate(&mut self, action: u8) -> Result<()> {
        match action {
            0 => {
                self.kill()?;
                self.resume()?;
            }
            1 => {
                let value = LOSS_MAX_VALUES[self.rng.below(LOSS_MAX_VALUES.len() as u64) as usize];
                let until = Instant::now() + WAIT;
                loop {
                    let (code, text) = self.levictl(&["set", "risk.loss_max", value])?;
                    if code == Some(0) {
                        self.ops.sets += 1;
                        break;
                    }
                    self.ops.set_refusals += 1;
                    if Instant::now() >= until {
                        return Err(failed("set", format!("exit {code:?}: {text}")));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            2 => {
                self.rewrite_config()?;
                let until = Instant::now() + WAIT;
                loop {
                    let (code, text) = self.levictl(&["reload"])?;
                    if code == Some(0) {
                        self.ops.reloads += 1;
                        break;
                    }
                    self.ops.reload_refusals += 1;
                    if Instant::now() >= until {
                        return Err(failed("reload", format!("exit {code:?}: {text}")));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            _ => {
                self.rewrite_config()?;
                self.signal(rustix::process::Signal::HUP)?;
                self.ops.sighups += 1;
            }
        }
        Ok(())
    }

    /// A halt the daemon made by itself (a dropped report, an unfilled FIX gap): counted, then
    /// resumed as an operator would.
    fn handle_self_halt(&mut self) -> Result<()> {
        let c = self.counters();
        let halts = c.get(label::DAEMON_SELF_HALTS).copied().unwrap_or(0);
        let reason = c.get(label::DAEMON_HALT_REASON).copied().unwrap_or(0);
        let name = halt_reason::name(reason).unwrap_or("unknown").to_owned();
        if halts > self.self_halts_seen {
            *self.ops.self_halts.entry(name.clone()).or_default() +=
                (halts - self.self_halts_seen) as u64;
            self.self_halts_seen = halts;
        }
        if reason != halt_reason::NONE {
            progress(&format!("levibotd halted by itself ({name}); resuming"));
            self.resume()?;
        }
        Ok(())
    }

    /// Operator actions, self-halt handling and checks until the duration is over.
    fn drive(&mut self) -> Result<()> {
        let end = self.started + self.args.duration;
        let mut next_check = self.started + self.args.check_interval;
        let mut next_action = self.started + self.rng.millis(2_000, 5_000);
        let mut actions = [0u8, 1, 2, 3];
        let mut next = actions.len();
        while Instant::now() < end {
            self.alive()?;
            self.handle_self_halt()?;
            let now = Instant::now();
            if now >= next_check && end.saturating_duration_since(now) > Duration::from_secs(5) {
                self.quiet_check(true)?;
                next_check = Instant::now() + self.args.check_interval;
                next_action = Instant::now() + self.rng.millis(1_000, 3_000);
            } else if now >= next_action {
                if next == actions.len() {
                    self.rng.shuffle(&mut actions);
                    next = 0;
                }
                self.operate(actions[next])?;
                next += 1;
                next_action = Instant::now() + self.rng.millis(2_000, 5_000);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // The last check stays halted; then SIGTERM, as systemd stops the service.
        self.quiet_check(false)?;
        self.faults.stop.store(true, Ordering::Release);
        self.signal(rustix::process::Signal::TERM)?;
        let until = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.daemon.try_wait()? {
                break status;
            }
            if Instant::now() >= until {
                return Err(failed("clean_stop", "levibotd did not exit after SIGTERM"));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if status.code() != Some(0) {
            return Err(failed(
                "clean_stop",
                format!("levibotd exited {status}:\n{}", self.daemon_log_tail()),
            ));
        }
        let left = self.venue_working();
        if !left.is_empty() {
            return Err(failed(
                "clean_stop",
                format!("orders left at the venue: {left:?}"),
            ));
        }
        Ok(())
    }

    fn summary(&mut self, seed: u64) -> Summary {
        let view = lock(self.view);
        let faults = lock(&self.faults.injected).clone();
        let first = self.checks.first();
        let last = self.checks.last();
        let c = self.counters.as_ref().map_or_else(HashMap::new, |r| {
            r.counters()
                .into_iter()
                .map(|c| (c.label, c.value))
                .collect::<HashMap<_, _>>()
        });
        let get = |l: &str| c.get(l).copied().unwrap_or(0);
        let self_halts: u64 = self.ops.self_halts.values().sum();
        let json = json!({
            "benchmark": "soak",
            "seed": seed,
            "duration_s": (self.elapsed_s() * 10.0).round() / 10.0,
            "check_interval_s": self.args.check_interval.as_secs_f64(),
            "venue_rate": self.args.rate,
            "machine": machine(),
            "checks_passed": self.checks.len(),
            "checks": self.checks.iter().map(|k| json!({
                "at_s": (k.at_s * 10.0).round() / 10.0,
                "vm_rss_kib": k.proc.vm_rss_kib,
                "rss_anon_kib": k.proc.rss_anon_kib,
                "fds": k.proc.fds,
                "orders_sent": k.orders_sent,
                "fills": k.fills,
                "working_before_kill": k.working_before_kill,
                "exporter_vm_rss_kib": k.exporter.map(|e| e.vm_rss_kib),
                "exporter_rss_anon_kib": k.exporter.map(|e| e.rss_anon_kib),
                "exporter_fds": k.exporter.map(|e| e.fds),
                "positions": k.positions.iter().map(|(s, p)| (s.clone(), json!(p))).collect::<serde_json::Map<_, _>>(),
            })).collect::<Vec<_>>(),
            "levibotd": {
                "start": first.map(|k| k.proc.to_json()),
                "end": last.map(|k| k.proc.to_json()),
                "max_vm_rss_kib": self.rss_max.vm_rss_kib,
                "max_fds": self.fds_max,
                "rss_bound": format!("anon + file <= warm-up x {} + {} KiB", 1.0 + RSS_GROWTH_MAX, RSS_SLACK_KIB),
                "fds_bound": format!("warm-up +- {FDS_SLACK}"),
            },
            "exporter": {
                "start": first.and_then(|k| k.exporter).map(ProcSample::to_json),
                "end": last.and_then(|k| k.exporter).map(ProcSample::to_json),
            },
            "orders_sent": view.sent,
            "orders_sent_by_kind": view.sent_by_kind,
            "reports": {
                "acked": view.acked,
                "filled": view.filled,
                "cancelled": view.cancelled,
                "rejected": view.rejected,
                "rejected_by_reason": view.rejects_by_reason,
            },
            "journal_frames": view.frames,
            "faults_injected": faults,
            "faults_injected_total": faults.values().sum::<u64>(),
            "operator": {
                "kills": self.ops.kills,
                "kills_unconfirmed": self.ops.kills_unconfirmed,
                "resumes": self.ops.resumes,
                "resume_refusals": self.ops.resume_refusals,
                "sets": self.ops.sets,
                "set_refusals": self.ops.set_refusals,
                "reloads": self.ops.reloads,
                "reload_refusals": self.ops.reload_refusals,
                "sighups": self.ops.sighups,
            },
            "self_halts": self_halts,
            "self_halts_by_reason": self.ops.self_halts,
            "daemon_counters": {
                "market_data_connects": get(label::MARKET_DATA_CONNECTS),
                "order_entry_reconnects": get(label::ORDER_ENTRY_RECONNECTS),
                "feed_stream_gaps": get(label::FEED_STREAM_GAPS),
                "feed_decode_errors": get(label::FEED_DECODE_ERRORS),
                "book_resyncs": get(label::STRATEGY_BOOK_RESYNCS),
                "reports_dropped": get(label::ORDER_ENTRY_REPORTS_DROPPED),
                "gaps_unfilled": get(label::ORDER_ENTRY_GAPS_UNFILLED),
                "limits_updates": get(label::RISK_LIMITS_UPDATES),
            },
        });
        Summary {
            seed,
            duration_s: self.elapsed_s(),
            checks_passed: self.checks.len() as u64,
            faults,
            kills: self.ops.kills,
            resumes: self.ops.resumes,
            sets: self.ops.sets,
            reloads: self.ops.reloads,
            sighups: self.ops.sighups,
            self_halts,
            orders_sent: view.sent,
            fills: view.filled,
            json,
        }
    }
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    json!({
        "nproc": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "cpu_model": cpu,
        "kernel": kernel,
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
    })
}

/// Removes the scratch directory unless the run failed.
struct Scratch {
    path: PathBuf,
    keep: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("[soak] kept {} for inspection", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Kills a child process when dropped (after a failure).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the soak; `Err` names the check that failed.
pub fn soak(args: &SoakArgs) -> Result<Summary> {
    let levibotd = binary(&args.levibotd, "levibotd")?;
    let levictl = binary(&args.levictl, "levictl")?;
    let exporter = binary(&args.exporter, "levibot-exporter")?;
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    progress(&format!(
        "seed {seed} (replay with --seed {seed}); {:?}, a check every {:?}",
        args.duration, args.check_interval
    ));
    let parent = match &args.dir {
        Some(d) => d.clone(),
        None if Path::new("/dev/shm").is_dir() => PathBuf::from("/dev/shm"),
        None => std::env::temp_dir(),
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut scratch = Scratch {
        path: parent.join(format!("levibot-soak-{}-{nanos}", std::process::id())),
        keep: true,
    };
    let dir = scratch.path.clone();
    let journal = dir.join("journal");
    std::fs::create_dir_all(&journal).with_context(|| format!("creating {}", journal.display()))?;

    let venue = demo::start_venue(demo::venue_config(seed, args.rate)?)?;
    let config_path = demo::write_config(&dir, &journal, &venue)?;
    // Faults found fast: pings every second, a FIX heartbeat every 2 s.
    let config_text = std::fs::read_to_string(&config_path)?
        .replacen("ping_interval_ms = 5000", "ping_interval_ms = 1000", 1)
        .replacen("pong_timeout_ms = 5000", "pong_timeout_ms = 1000", 1)
        .replacen("heart_bt_int_s = 30", "heart_bt_int_s = 2", 1);
    for expected in [
        "ping_interval_ms = 1000",
        "pong_timeout_ms = 1000",
        "heart_bt_int_s = 2",
        "loss_max = \"1000\"",
        "empty_journal = \"trade\"",
    ] {
        if !config_text.contains(expected) {
            bail!("the demo's config changed: no {expected:?} in\n{config_text}");
        }
    }
    std::fs::write(&config_path, &config_text)?;

    let daemon_log = dir.join("levibotd.log");
    let daemon = Command::new(&levibotd)
        .args(["run", "--config"])
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&daemon_log)?)
        .spawn()
        .with_context(|| format!("starting {}", levibotd.display()))?;
    let daemon_pid = daemon.id();
    progress(&format!(
        "levibotd {daemon_pid} on venue-sim {} / {}; journal {}",
        venue.md_addr(),
        venue.fix_addr().map_or_else(String::new, |a| a.to_string()),
        journal.display()
    ));

    let view = Mutex::new(JournalView::default());
    let faults = FaultControl::default();
    let symbols: Vec<String> = (0..venue.core.instruments().len() as u32)
        .filter_map(|id| venue.core.instruments().get(id))
        .map(|i| i.symbol.to_string())
        .collect();
    let mut soak = Soak {
        args,
        dir: dir.clone(),
        journal: journal.clone(),
        config_path,
        config_text,
        levictl,
        venue: &venue,
        daemon,
        daemon_log,
        counters: None,
        exporter_addr: "127.0.0.1:0".parse()?,
        exporter_pid: None,
        view: &view,
        faults: &faults,
        started: Instant::now(),
        ops: OperatorCounts::default(),
        checks: Vec::new(),
        baseline: None,
        rss_max: ProcSample::default(),
        fds_max: 0,
        self_halts_seen: 0,
        rng: Rng(seed ^ 0x0be7_a70b),
        loss_max_next: 1,
        symbols,
    };
    let result = run_with_daemon(&mut soak, &exporter, seed);
    if result.is_err() {
        let _ = soak.daemon.kill();
    }
    let _ = soak.daemon.wait();
    let dir_shown = soak.dir.clone();
    drop(soak);
    venue.stop();
    match result {
        Ok(summary) => {
            scratch.keep = false;
            Ok(summary)
        }
        Err(e) => Err(e.context(format!(
            "levibotd's log and journal: {}",
            dir_shown.display()
        ))),
    }
}

fn run_with_daemon(soak: &mut Soak<'_>, exporter: &Path, seed: u64) -> Result<Summary> {
    // Running: phase 3, written by this process.
    let counters_path = levibot_shm::paths::counters_path(&soak.journal);
    let pid = soak.daemon.id();
    soak.wait_until("startup", "levibotd to run", WAIT, |s| {
        Ok(s.counter(label::DAEMON_PHASE) == 3
            && CountersReader::open(&counters_path).is_ok_and(|r| r.writer_pid() == pid))
    })?;
    soak.counters = None; // reopen: the file is this run's
    let mut child = Command::new(exporter)
        .arg("--journal")
        .arg(&soak.journal)
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", exporter.display()))?;
    let stdout = child.stdout.take().context("the exporter's stdout")?;
    let exporter_child = Reaped(child);
    soak.exporter_pid = Some(exporter_child.0.id());
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    soak.exporter_addr = line
        .trim()
        .strip_prefix("listening on http://")
        .with_context(|| format!("the exporter said {line:?}"))?
        .parse()?;
    progress(&format!(
        "levibot-exporter {} on http://{}/metrics",
        exporter_child.0.id(),
        soak.exporter_addr
    ));
    soak.wait_until("startup", "orders sent", WAIT, |s| {
        Ok(s.counter(label::GATEWAY_ORDERS_SENT) > 5)
    })?;
    soak.started = Instant::now();

    let venue = soak.venue;
    let faults = soak.faults;
    let view = soak.view;
    let journal = soak.journal.clone();
    let follow_stop = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        let fault_thread = std::thread::Builder::new()
            .name("soak-faults".into())
            .spawn_scoped(scope, move || fault_thread(venue, faults, seed))?;
        let follower = std::thread::Builder::new()
            .name("soak-journal".into())
            .spawn_scoped(scope, || -> Result<()> {
                while !follow_stop.load(Ordering::Acquire) {
                    lock(view).catch_up(&journal)?;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Ok(())
            })?;
        let driven = soak.drive();
        faults.stop.store(true, Ordering::Release);
        follow_stop.store(true, Ordering::Release);
        let _ = fault_thread.join();
        let followed = follower
            .join()
            .map_err(|_| anyhow!("the journal follower panicked"))?;
        driven?;
        followed.map_err(|e| failed("journal", format!("{e:#}")))
    });
    drop(exporter_child);
    result?;
    Ok(soak.summary(seed))
}

/// `levibot-bench soak`: runs, prints a table (and the JSON), exits non-zero on a failed check.
pub fn run(args: &SoakArgs) -> Result<()> {
    let summary = soak(args)?;
    let j = summary.to_json();
    println!(
        "soak: {:.0} s, seed {}, {} checks passed; {} orders sent, {} fills",
        summary.duration_s, summary.seed, summary.checks_passed, summary.orders_sent, summary.fills
    );
    println!();
    println!(
        "| check at | VmRSS KiB | RssAnon KiB | fds | orders sent | fills | working before kill |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for k in j["checks"].as_array().into_iter().flatten() {
        println!(
            "| {} s | {} | {} | {} | {} | {} | {} |",
            k["at_s"],
            k["vm_rss_kib"],
            k["rss_anon_kib"],
            k["fds"],
            k["orders_sent"],
            k["fills"],
            k["working_before_kill"]
        );
    }
    println!();
    println!(
        "faults injected ({}): {}",
        j["faults_injected_total"],
        summary
            .faults
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let op = &j["operator"];
    println!(
        "operator: {} kills ({} unconfirmed), {} resumes ({} refused), {} sets, {} reloads, {} \
         SIGHUPs; {} self-halts {}",
        summary.kills,
        op["kills_unconfirmed"],
        summary.resumes,
        op["resume_refusals"],
        summary.sets,
        summary.reloads,
        summary.sighups,
        summary.self_halts,
        j["self_halts_by_reason"]
    );
    println!(
        "orders sent {} {}; reports {}",
        j["orders_sent"], j["orders_sent_by_kind"], j["reports"]
    );
    println!("levibotd: {}", j["levibotd"]);
    println!("levibot-exporter: {}", j["exporter"]);
    println!("daemon counters: {}", j["daemon_counters"]);
    if args.json {
        println!("{j}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::faults::Fault;
    use super::*;

    #[test]
    fn durations_parse_with_their_units() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        for bad in ["0s", "5x", "", "m", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn metric_sums_add_every_label_set_of_one_family_only() {
        let page = "# TYPE levibot_orders_rejected counter\n\
                    levibot_orders_rejected_total{reason=\"5\"} 3\n\
                    levibot_orders_rejected_total{reason=\"lost_in_flight\"} 4\n\
                    levibot_orders_rejected_total_other 100\n\
                    levibot_orders_sent_total 12\n";
        assert_eq!(metric_sum(page, "levibot_orders_rejected_total"), Some(7.0));
        assert_eq!(metric_sum(page, "levibot_orders_sent_total"), Some(12.0));
        assert_eq!(metric_sum(page, "levibot_orders_filled_total"), None);
    }

    #[test]
    fn shuffled_rounds_hold_every_item_once() {
        let mut rng = Rng(7);
        let mut round = Fault::ALL;
        rng.shuffle(&mut round);
        let mut names: Vec<&str> = round.iter().map(|f| f.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Fault::ALL.len());
    }
}
