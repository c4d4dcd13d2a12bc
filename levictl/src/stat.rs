//! `levictl stat`: the daemon's counters, live, like AeronStat or top.
//!
//! Every counter in the counters file is shown, whatever its label (new counters appear without
//! a change here), with a rate column: the change per second since the previous refresh, for
//! counts (not for gauges, states and maxima, where a rate means nothing). The header says
//! whether the writer is alive: its pid (from the counters file) is running and the journal's
//! heartbeat is recent. On a terminal the screen is redrawn in place; otherwise each refresh is
//! printed after the last, separated by a blank line. `--once` prints one plain listing (or one
//! JSON object with `--json`) and exits.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use levibot_shm::clock::unix_now_ns;
use levibot_shm::codes::counter_type;
use levibot_shm::counters::{CounterValue, CountersReader};
use levibot_shm::paths::counters_path;
use levibot_shm::{ShmError, StartAt, Tailer};

use levibot_view::{format_duration_ns, format_unix_ns, trading_state_name};

/// Refresh period limits (ms).
const INTERVAL_MS_MIN: u64 = 50;
const INTERVAL_MS_MAX: u64 = 60_000;
/// A heartbeat older than this means the writer is stuck, even if its pid is running (the
/// daemon beats about once a second).
pub const HEARTBEAT_STALE_NS: u64 = 5_000_000_000;
/// Frames the heartbeat watcher reads per refresh to keep up with the journal's newest segment;
/// further behind, it reopens at the end instead.
const JOURNAL_CATCH_UP_FRAMES_MAX: usize = 1 << 20;
/// How often a live screen checks for Ctrl-C while it waits for the next refresh.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);
/// ANSI: cursor home, clear the screen.
const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J";

#[derive(clap::Args, Debug)]
pub struct StatArgs {
    /// Print the counters once (plain, for scripts) and exit.
    #[arg(long)]
    pub once: bool,
    /// With --once: print one JSON object (`counters` maps each label to its value).
    #[arg(long, requires = "once")]
    pub json: bool,
    /// Refresh period of the live screen.
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(INTERVAL_MS_MIN..=INTERVAL_MS_MAX))]
    pub interval_ms: u64,
    /// Only counters whose label starts with PREFIX (e.g. `risk.`).
    #[arg(long, value_name = "PREFIX")]
    pub filter: Option<String>,
}

pub fn run(args: &StatArgs, journal: &Path) -> anyhow::Result<ExitCode> {
    let path = counters_path(journal);
    let mut counters = open_counters(&path)?;
    let mut watch = JournalWatch::new(journal);
    let filter = args.filter.as_deref().unwrap_or("");
    let mut stdout = io::stdout().lock();
    let result = if args.once {
        let sample = Sample::take(&counters, &mut watch, filter);
        if args.json {
            writeln!(stdout, "{}", sample.to_json(&path))
        } else {
            write!(stdout, "{}", sample.render(&path, None))
        }
    } else {
        live(args, &path, &mut counters, &mut watch, filter, &mut stdout)
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        other => other.map(|()| ExitCode::SUCCESS).map_err(Into::into),
    }
}

fn open_counters(path: &Path) -> anyhow::Result<CountersReader> {
    CountersReader::open(path).map_err(|e| match e {
        ShmError::Io { ref source, .. } if source.kind() == io::ErrorKind::NotFound => anyhow!(
            "no counters file at {}: is levibotd running? (the journal directory is set with \
             --journal or LEVIBOT_JOURNAL)",
            path.display()
        ),
        e => anyhow::Error::new(e).context(format!("reading the counters in {}", path.display())),
    })
}

fn live(
    args: &StatArgs,
    path: &Path,
    counters: &mut CountersReader,
    watch: &mut JournalWatch,
    filter: &str,
    out: &mut impl Write,
) -> io::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let terminal = io::stdout().is_terminal();
    let interval = Duration::from_millis(args.interval_ms);
    let mut previous: Option<Sample> = None;
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        let mut note = None;
        if counters.is_replaced() {
            // The writer restarted and made a new file: follow it; rates start again.
            match CountersReader::open(path) {
                Ok(reopened) => {
                    *counters = reopened;
                    previous = None;
                    note = Some("counters file replaced: the writer restarted".to_owned());
                }
                Err(e) => note = Some(format!("counters file gone ({e}); showing the last one")),
            }
        }
        let sample = Sample::take(counters, watch, filter);
        let mut screen = String::new();
        if terminal {
            screen.push_str(CLEAR_SCREEN);
        } else if !first {
            screen.push('\n');
        }
        screen.push_str(&sample.render(path, previous.as_ref()));
        if let Some(note) = note {
            let _ = writeln!(screen, "({note})");
        }
        out.write_all(screen.as_bytes())?;
        out.flush()?;
        previous = Some(sample);
        first = false;
        let deadline = Instant::now() + interval;
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            std::thread::sleep(
                SIGNAL_CHECK.min(deadline.saturating_duration_since(Instant::now())),
            );
        }
    }
    Ok(())
}

/// The journal's newest segment, for the writer's heartbeat. Kept open and drained each refresh
/// so that it follows rollovers without rescanning a segment.
struct JournalWatch {
    dir: PathBuf,
    tailer: Option<Tailer>,
}

#[derive(Clone, Copy, Debug)]
struct JournalState {
    heartbeat_unix_ns: Option<u64>,
    writer_pid: u32,
}

impl JournalWatch {
    fn new(dir: &Path) -> JournalWatch {
        JournalWatch {
            dir: dir.to_owned(),
            tailer: None,
        }
    }

    /// `None` without a readable journal (stat still shows the counters).
    fn state(&mut self) -> Option<JournalState> {
        if let Some(tailer) = &mut self.tailer {
            match tailer.poll(JOURNAL_CATCH_UP_FRAMES_MAX, |_| {}) {
                Ok(polled) if polled.frames < JOURNAL_CATCH_UP_FRAMES_MAX => {}
                _ => self.tailer = None,
            }
        }
        if self.tailer.is_none() {
            self.tailer = Tailer::open(&self.dir, StartAt::End).ok();
        }
        let tailer = self.tailer.as_ref()?;
        let heartbeat = tailer.writer_heartbeat_unix_ns();
        Some(JournalState {
            heartbeat_unix_ns: (heartbeat != 0).then_some(heartbeat),
            writer_pid: tailer.writer_pid(),
        })
    }
}

/// Whether a process with this pid exists (EPERM: it does, as another user's).
fn process_running(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// One reading of the counters.
struct Sample {
    at: Instant,
    unix_ns: u64,
    writer_pid: u32,
    epoch: u64,
    capacity: usize,
    running: bool,
    journal: Option<JournalState>,
    counters: Vec<CounterValue>,
}

impl Sample {
    fn take(reader: &CountersReader, watch: &mut JournalWatch, filter: &str) -> Sample {
        let writer_pid = reader.writer_pid();
        Sample {
            at: Instant::now(),
            unix_ns: unix_now_ns(),
            writer_pid,
            epoch: reader.epoch(),
            capacity: reader.capacity(),
            running: process_running(writer_pid),
            journal: watch.state(),
            counters: reader
                .counters()
                .into_iter()
                .filter(|c| c.label.starts_with(filter))
                .collect(),
        }
    }

    fn heartbeat_age_ns(&self) -> Option<u64> {
        let heartbeat = self.journal?.heartbeat_unix_ns?;
        Some(self.unix_ns.saturating_sub(heartbeat))
    }

    /// Alive: the pid runs and the heartbeat (if the journal has one) is recent.
    fn alive(&self) -> bool {
        self.running
            && self
                .heartbeat_age_ns()
                .is_none_or(|a| a <= HEARTBEAT_STALE_NS)
    }

    fn status(&self) -> String {
        if !self.running {
            return format!("not running (pid {} is gone)", self.writer_pid);
        }
        match self.heartbeat_age_ns() {
            Some(age) if age > HEARTBEAT_STALE_NS => {
                format!("stale (journal heartbeat {} ago)", format_duration_ns(age))
            }
            Some(_) => "alive".into(),
            None if self.journal.is_none() => "running (no journal found)".into(),
            None => "running (no journal heartbeat yet)".into(),
        }
    }

    fn render(&self, path: &Path, previous: Option<&Sample>) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "levibot counters  {}  {}",
            path.display(),
            format_unix_ns(self.unix_ns)
        );
        let heartbeat = match self.heartbeat_age_ns() {
            Some(age) => format!("heartbeat {} ago", format_duration_ns(age)),
            None => "no heartbeat".into(),
        };
        let _ = writeln!(
            s,
            "writer pid {}  epoch {}  {}  {}",
            self.writer_pid,
            self.epoch,
            heartbeat,
            self.status()
        );
        if let Some(journal) = self.journal.filter(|j| j.writer_pid != self.writer_pid) {
            let _ = writeln!(
                s,
                "(the journal's writer is pid {}, not the counters' pid {})",
                journal.writer_pid, self.writer_pid
            );
        }
        let _ = writeln!(
            s,
            "{} counters (capacity {})\n",
            self.counters.len(),
            self.capacity
        );
        // Rates against the previous sample of the same file (same epoch), by counter id.
        let before: HashMap<usize, i64> = previous
            .filter(|p| p.epoch == self.epoch)
            .map(|p| p.counters.iter().map(|c| (c.id, c.value)).collect())
            .unwrap_or_default();
        let elapsed = previous.map(|p| self.at.duration_since(p.at).as_secs_f64());
        let width = self
            .counters
            .iter()
            .map(|c| c.label.len())
            .max()
            .unwrap_or(0)
            .max("COUNTER".len());
        let _ = write!(s, "{:<width$}  {:>20}", "COUNTER", "VALUE");
        if previous.is_some() {
            let _ = write!(s, "  {:>14}", "RATE/s");
        }
        s.push('\n');
        for c in &self.counters {
            let _ = write!(s, "{:<width$}  {:>20}", c.label, c.value);
            let rate = match (elapsed, before.get(&c.id)) {
                (Some(secs), Some(&old)) if secs > 0.0 && has_rate(c.type_id) => {
                    Some(c.value.wrapping_sub(old) as f64 / secs)
                }
                _ => None,
            };
            match rate {
                Some(rate) => {
                    let _ = write!(s, "  {rate:>14.1}");
                }
                None if previous.is_some() => {
                    let _ = write!(s, "  {:>14}", "");
                }
                None => {}
            }
            if let Some(note) = annotation(c) {
                let _ = write!(s, "  ({note})");
            }
            s.truncate(s.trim_end_matches(' ').len());
            s.push('\n');
        }
        s
    }

    fn to_json(&self, path: &Path) -> String {
        let mut counters = serde_json::Map::new();
        for c in &self.counters {
            let key = if counters.contains_key(&c.label) {
                format!("{}#{}", c.label, c.id)
            } else {
                c.label.clone()
            };
            counters.insert(key, c.value.into());
        }
        serde_json::json!({
            "path": path.display().to_string(),
            "ts": format_unix_ns(self.unix_ns),
            "ts_unix_ns": self.unix_ns,
            "writer_pid": self.writer_pid,
            "epoch": self.epoch,
            "capacity": self.capacity,
            "process_running": self.running,
            "heartbeat_unix_ns": self.journal.and_then(|j| j.heartbeat_unix_ns),
            "heartbeat_age_ns": self.heartbeat_age_ns(),
            "alive": self.alive(),
            "status": self.status(),
            "counters": counters,
        })
        .to_string()
    }
}

/// Whether a per-second rate means something for a counter type: counts do; gauges, states
/// and maxima do not.
fn has_rate(type_id: u32) -> bool {
    !matches!(
        type_id,
        counter_type::STATE | counter_type::GAUGE | counter_type::CYCLE_NS_MAX
    )
}

fn annotation(c: &CounterValue) -> Option<String> {
    if c.label.ends_with("trading_state") {
        return trading_state_name(c.value).map(str::to_owned);
    }
    if c.type_id == counter_type::CYCLE_NS_MAX && c.value > 0 {
        return Some(format_duration_ns(c.value as u64));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use levibot_shm::codes::label;

    fn sample(counters: Vec<(&str, u32, i64)>, at: Instant, epoch: u64) -> Sample {
        Sample {
            at,
            unix_ns: 1_795_654_923_000_000_000,
            writer_pid: std::process::id(),
            epoch,
            capacity: 64,
            running: true,
            journal: None,
            counters: counters
                .into_iter()
                .enumerate()
                .map(|(id, (label, type_id, value))| CounterValue {
                    id,
                    type_id,
                    label: label.into(),
                    value,
                })
                .collect(),
        }
    }

    #[test]
    fn rates_are_per_second_for_counts_only() {
        let t0 = Instant::now();
        let before = sample(
            vec![
                (label::FEED_MESSAGES, counter_type::EVENTS, 100),
                (label::RISK_TRADING_STATE, counter_type::STATE, 0),
            ],
            t0,
            1,
        );
        let after = sample(
            vec![
                (label::FEED_MESSAGES, counter_type::EVENTS, 300),
                (label::RISK_TRADING_STATE, counter_type::STATE, 2),
            ],
            t0 + Duration::from_secs(2),
            1,
        );
        let text = after.render(Path::new("/x/counters.lvc"), Some(&before));
        assert!(text.contains("RATE/s"), "{text}");
        let messages = text
            .lines()
            .find(|l| l.starts_with(label::FEED_MESSAGES))
            .unwrap();
        assert!(messages.ends_with("  100.0"), "{messages}");
        let state = text
            .lines()
            .find(|l| l.starts_with(label::RISK_TRADING_STATE))
            .unwrap();
        // No rate for a state; its name after the (empty) rate column.
        let cells: Vec<&str> = state.split_whitespace().collect();
        assert_eq!(
            cells,
            [label::RISK_TRADING_STATE, "2", "(halted)"],
            "{state:?}"
        );
        // A new epoch: no rates against the old file.
        let restarted = sample(vec![(label::FEED_MESSAGES, counter_type::EVENTS, 5)], t0, 2);
        let text = restarted.render(Path::new("/x"), Some(&after));
        let messages = text
            .lines()
            .find(|l| l.starts_with(label::FEED_MESSAGES))
            .unwrap();
        assert!(messages.ends_with(" 5"), "{messages}");
    }

    #[test]
    fn our_own_pid_runs_and_a_free_one_does_not() {
        assert!(process_running(std::process::id()));
        assert!(!process_running(0));
        assert!(!process_running(u32::MAX));
    }
}
