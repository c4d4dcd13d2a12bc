//! The agent runtime with real threads: a three-stage pipeline over rings, spread (one runner
//! per stage) and fused (one runner), with tiny rings so that backpressure happens; the stop
//! drains every ring; duty-cycle counters are read back from shm; layouts are validated.
//! No agent busy-spins (the test machine has 2 cores and other tests running).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use levibot_engine::agent::Agent;
use levibot_engine::composite;
use levibot_engine::idle::IdleStrategy;
use levibot_engine::ring::{Outbox, ring};
use levibot_engine::runner::{
    RunnerConfig, RunnerCounters, RunnerError, spawn, stop_in_order, validate_layout,
};
use levibot_shm::counters::{CountersReader, CountersWriter};
use rtrb::Consumer;

const RECORDS: u64 = 200_000;
const RING_CAPACITY: usize = 16;
/// Generous: the pipeline takes milliseconds; a hang fails rather than blocks.
const DEADLINE: Duration = Duration::from_secs(120);

/// Emits 1..=RECORDS, honouring backpressure.
struct Source {
    next: u64,
    out: Outbox<u64>,
}

impl Agent for Source {
    fn role_name(&self) -> &str {
        "source"
    }
    fn do_work(&mut self) -> usize {
        if !self.out.flush() {
            return 0;
        }
        let mut work = 0;
        while self.next <= RECORDS && work < 64 {
            let sent = self.out.send(self.next);
            self.next += 1;
            work += 1;
            if !sent {
                break;
            }
        }
        work
    }
}

/// Doubles each record.
struct Doubler {
    input: Consumer<u64>,
    out: Outbox<u64>,
}

impl Agent for Doubler {
    fn role_name(&self) -> &str {
        "doubler"
    }
    fn do_work(&mut self) -> usize {
        let mut work = usize::from(self.out.is_blocked() && self.out.flush());
        while !self.out.is_blocked() && work < 64 {
            let Ok(x) = self.input.pop() else { break };
            self.out.send(x * 2);
            work += 1;
        }
        work
    }
}

/// Sums what arrives, checking order.
struct Sink {
    input: Consumer<u64>,
    last: u64,
    sum: Arc<AtomicU64>,
    count: Arc<AtomicU64>,
}

impl Agent for Sink {
    fn role_name(&self) -> &str {
        "sink"
    }
    fn do_work(&mut self) -> usize {
        let mut work = 0;
        while let Ok(x) = self.input.pop() {
            assert_eq!(x, self.last + 2, "in order, nothing lost");
            self.last = x;
            self.sum.fetch_add(x, Ordering::Relaxed);
            self.count.fetch_add(1, Ordering::Relaxed);
            work += 1;
        }
        work
    }
}

fn pipeline(
    counters: Option<&CountersWriter>,
) -> (Source, Doubler, Sink, Arc<AtomicU64>, Arc<AtomicU64>) {
    let (p1, c1) = ring::<u64>(RING_CAPACITY).unwrap();
    let (p2, c2) = ring::<u64>(RING_CAPACITY).unwrap();
    let full = |name: &str| counters.map(|w| w.allocate(name, 1).unwrap());
    let sum = Arc::new(AtomicU64::new(0));
    let count = Arc::new(AtomicU64::new(0));
    (
        Source {
            next: 1,
            out: Outbox::new(p1, full("ring.source.full")),
        },
        Doubler {
            input: c1,
            out: Outbox::new(p2, full("ring.doubler.full")),
        },
        Sink {
            input: c2,
            last: 0,
            sum: sum.clone(),
            count: count.clone(),
        },
        sum,
        count,
    )
}

fn wait_for(count: &AtomicU64, target: u64) {
    let start = Instant::now();
    while count.load(Ordering::Relaxed) < target {
        assert!(
            start.elapsed() < DEADLINE,
            "stalled at {}",
            count.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

const EXPECTED_SUM: u64 = RECORDS * (RECORDS + 1); // sum of 2i for i in 1..=RECORDS

#[test]
fn spread_layout_moves_every_record_through_the_rings_and_counts_its_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("counters.lvc");
    let writer = CountersWriter::create(&path, 64, 1).unwrap();
    let (source, doubler, sink, sum, count) = pipeline(Some(&writer));
    let config = RunnerConfig {
        core_id: None,
        idle: IdleStrategy::Backoff,
    };
    let handles = vec![
        spawn(
            source,
            config,
            Some(RunnerCounters::allocate(&writer, "source").unwrap()),
        )
        .unwrap(),
        spawn(
            doubler,
            RunnerConfig {
                idle: IdleStrategy::Yield,
                ..config
            },
            Some(RunnerCounters::allocate(&writer, "doubler").unwrap()),
        )
        .unwrap(),
        spawn(
            sink,
            config,
            Some(RunnerCounters::allocate(&writer, "sink").unwrap()),
        )
        .unwrap(),
    ];
    wait_for(&count, RECORDS);
    stop_in_order(handles).unwrap();
    assert_eq!(sum.load(Ordering::Relaxed), EXPECTED_SUM);

    let reader = CountersReader::open(&path).unwrap();
    let value = |label: &str| {
        reader
            .counters()
            .into_iter()
            .find(|c| c.label == label)
            .unwrap_or_else(|| panic!("no counter {label}"))
            .value
    };
    assert_eq!(value("agent.sink.work"), RECORDS as i64);
    assert!(value("agent.doubler.work") >= RECORDS as i64);
    assert!(value("agent.source.duty_cycles") > 0);
    assert!(value("agent.sink.cycle_ns_max") > 0);
    // 16-record rings and 200,000 records: the source must have met a full ring.
    assert!(value("ring.source.full") > 0);
}

#[test]
fn fused_layout_runs_the_stages_on_one_thread_and_drains_on_stop() {
    let (source, doubler, sink, sum, count) = pipeline(None);
    let fused = composite!(source, doubler, sink);
    let handle = spawn(
        fused,
        RunnerConfig {
            core_id: Some(0),
            idle: IdleStrategy::Backoff,
        },
        None,
    )
    .unwrap();
    assert_eq!(handle.role(), "source+doubler+sink");
    wait_for(&count, RECORDS);
    handle.stop().unwrap();
    assert_eq!(sum.load(Ordering::Relaxed), EXPECTED_SUM);
}

#[test]
fn stopping_mid_stream_drains_what_is_in_the_rings() {
    let (source, doubler, sink, _sum, count) = pipeline(None);
    let config = RunnerConfig {
        core_id: None,
        idle: IdleStrategy::Yield,
    };
    let handles = vec![
        spawn(source, config, None).unwrap(),
        spawn(doubler, config, None).unwrap(),
        spawn(sink, config, None).unwrap(),
    ];
    wait_for(&count, 1000);
    stop_in_order(handles).unwrap();
    // The source stopped wherever it was; everything it sent arrived (the sink checks order).
    assert!(count.load(Ordering::Relaxed) >= 1000);
}

#[test]
fn layouts_that_cannot_run_here_are_refused() {
    let cores = levibot_engine::runner::available_cores();
    let spin = |core_id| RunnerConfig {
        core_id,
        idle: IdleStrategy::BusySpin,
    };
    let too_many: Vec<(&str, RunnerConfig)> =
        (0..=cores.len()).map(|_| ("x", spin(None))).collect();
    assert!(matches!(
        validate_layout(&too_many),
        Err(RunnerError::TooManySpinners { .. })
    ));
    assert!(matches!(
        validate_layout(&[("a", spin(Some(0))), ("b", spin(Some(0)))]),
        Err(RunnerError::SpinnersShareCore { core_id: 0, .. })
    ));
    let missing = RunnerConfig {
        core_id: Some(100_000),
        idle: IdleStrategy::Yield,
    };
    let err = validate_layout(&[("feed", missing)]).unwrap_err();
    assert!(
        err.to_string()
            .contains("core 100000 is not on this machine"),
        "{err}"
    );
    assert!(
        validate_layout(&[
            ("a", spin(Some(0))),
            (
                "b",
                RunnerConfig {
                    core_id: Some(0),
                    idle: IdleStrategy::Yield
                }
            )
        ])
        .is_ok()
    );
}
