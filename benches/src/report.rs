//! What every benchmark reports: latency percentiles from an HdrHistogram, throughput, and the
//! machine the figures were measured on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use quanta::Clock;
use serde_json::{Value, json};

/// Largest latency a histogram tracks exactly; anything longer is recorded as this (a minute is
/// far past any stall worth telling apart).
const LATENCY_NS_TRACKED_MAX: u64 = 60_000_000_000;

/// A latency histogram in nanoseconds, 3 significant digits. Its counts are allocated here, once:
/// `saturating_record` never resizes it, so recording on a hot path never allocates.
pub fn latency_histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, LATENCY_NS_TRACKED_MAX, 3).context("creating a latency histogram")
}

/// Percentiles of one latency run.
#[derive(Clone, Copy, Debug)]
pub struct LatencySummary {
    pub ops: u64,
    /// All threads' operations over the wall time of the longest thread's timed run, clock
    /// reads included: under contention, what the percentiles of single operations hide.
    pub ops_per_sec: f64,
    pub latency_ns_p50: u64,
    pub latency_ns_p99: u64,
    pub latency_ns_p999: u64,
    pub latency_ns_max: u64,
    pub latency_ns_mean: f64,
}

impl LatencySummary {
    pub fn of(histogram: &Histogram<u64>, elapsed: Duration) -> Self {
        LatencySummary {
            ops: histogram.len(),
            ops_per_sec: histogram.len() as f64 / elapsed.as_secs_f64(),
            latency_ns_p50: histogram.value_at_quantile(0.50),
            latency_ns_p99: histogram.value_at_quantile(0.99),
            latency_ns_p999: histogram.value_at_quantile(0.999),
            latency_ns_max: histogram.max(),
            latency_ns_mean: histogram.mean(),
        }
    }

    pub fn to_json(self) -> Value {
        json!({
            "ops": self.ops,
            "ops_per_sec": self.ops_per_sec.round(),
            "latency_ns_p50": self.latency_ns_p50,
            "latency_ns_p99": self.latency_ns_p99,
            "latency_ns_p999": self.latency_ns_p999,
            "latency_ns_max": self.latency_ns_max,
            "latency_ns_mean": round3(self.latency_ns_mean),
        })
    }
}

/// Frames (or messages) read in some time. GB are 10^9 bytes.
#[derive(Clone, Copy, Debug)]
pub struct Throughput {
    pub frames: u64,
    /// Bytes each frame occupies, header included.
    pub frame_bytes: u64,
    /// Bytes of each frame that are the caller's data.
    pub payload_bytes: u64,
    pub elapsed: Duration,
}

impl Throughput {
    pub fn frames_per_sec(&self) -> f64 {
        self.frames as f64 / self.elapsed.as_secs_f64()
    }

    pub fn gb_per_sec(&self) -> f64 {
        self.frames_per_sec() * self.frame_bytes as f64 / 1e9
    }

    pub fn payload_gb_per_sec(&self) -> f64 {
        self.frames_per_sec() * self.payload_bytes as f64 / 1e9
    }

    pub fn to_json(self) -> Value {
        json!({
            "frames": self.frames,
            "frame_bytes": self.frame_bytes,
            "payload_bytes": self.payload_bytes,
            "elapsed_ns": self.elapsed.as_nanos() as u64,
            "frames_per_sec": self.frames_per_sec().round(),
            "gb_per_sec": round3(self.gb_per_sec()),
            "payload_gb_per_sec": round3(self.payload_gb_per_sec()),
        })
    }
}

/// The machine a run was measured on, from /proc and /sys (fields are "unknown" elsewhere).
#[derive(Clone, Debug)]
pub struct MachineInfo {
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
    /// The kernel's clocksource; quanta reads the TSC directly when it is invariant.
    pub clocksource: String,
    /// The CPU reports the `hypervisor` flag: a VM, with a noisy neighbour's steal time.
    pub virtualized: bool,
}

impl MachineInfo {
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == name).then(|| value.trim().to_owned())
            })
        };
        let read_trimmed = |path: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".to_owned())
        };
        MachineInfo {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: field("model name").unwrap_or_else(|| "unknown".to_owned()),
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            clocksource: read_trimmed(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            ),
            virtualized: field("flags").is_some_and(|f| f.split(' ').any(|x| x == "hypervisor")),
        }
    }

    /// One line for a benchmark's table: `machine: <cpu>, <n> cpus (VM), kernel .., clocksource ..`.
    pub fn summary_line(&self) -> String {
        format!(
            "machine: {}, {} cpus{}, kernel {}, clocksource {}",
            self.cpu_model,
            self.nproc,
            if self.virtualized { " (VM)" } else { "" },
            self.kernel,
            self.clocksource
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "nproc": self.nproc,
            "cpu_model": self.cpu_model,
            "kernel": self.kernel,
            "clocksource": self.clocksource,
            "virtualized": self.virtualized,
        })
    }
}

/// The step the clock usually takes: latencies are multiples of it. (AMD's TSC, for one, moves
/// in steps of about 10 ns rather than one cycle; the median skips its occasional 1-tick steps.)
pub fn clock_resolution_ns(clock: &Clock) -> u64 {
    let mut steps: Vec<u64> = (0..1001)
        .map(|_| {
            let start = clock.raw();
            let mut now = clock.raw();
            while now == start {
                now = clock.raw();
            }
            clock.delta_as_nanos(start, now)
        })
        .collect();
    steps.sort_unstable();
    steps[steps.len() / 2]
}

/// Keeps JSON figures readable: three decimals is below the noise of any of them.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Round trip of one cache line between two threads (ping-pong on an atomic), the median of
/// `rounds`-trip batches: what a contended atomic costs on this pair of CPUs. On a VM it changes
/// with where the host runs the two vCPUs (same core, same L3, or not).
pub fn cache_line_round_trip_ns(rounds: u64) -> f64 {
    #[repr(align(128))]
    struct Line(AtomicU64);
    let line = Line(AtomicU64::new(0));
    let batches = 9;
    let mut per_batch_ns: Vec<f64> = std::thread::scope(|s| {
        s.spawn(|| {
            // The pong side: answers every odd value with the next even one.
            for round in 0..batches * rounds {
                while line.0.load(Ordering::Acquire) != 2 * round + 1 {
                    std::hint::spin_loop();
                }
                line.0.store(2 * round + 2, Ordering::Release);
            }
        });
        (0..batches)
            .map(|batch| {
                let started = Instant::now();
                for round in batch * rounds..(batch + 1) * rounds {
                    line.0.store(2 * round + 1, Ordering::Release);
                    while line.0.load(Ordering::Acquire) != 2 * round + 2 {
                        std::hint::spin_loop();
                    }
                }
                started.elapsed().as_secs_f64() * 1e9 / rounds as f64
            })
            .collect()
    });
    per_batch_ns.sort_by(f64::total_cmp);
    per_batch_ns[per_batch_ns.len() / 2]
}
