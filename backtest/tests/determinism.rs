//! The same input, config and seed give the same bytes: the journal a backtest writes is
//! identical, file for file, and so is what it reports. The engine and the venue read only the
//! virtual clock, so this holds however long the machine takes.

use std::path::Path;

use levibot_backtest::input::capture::CaptureSource;
use levibot_backtest::results::ResultEvent;
use levibot_backtest::run::{RunConfig, RunStats, run};
use levibot_backtest::session::read_config;
use levibot_daemon::config::DaemonConfig;
use levibot_gateway::capture::testdata_dir;
use levibot_shm::records::{ExecutionReport, Record, exec_type, side};
use levibot_shm::{StartAt, Tailer};

fn config() -> DaemonConfig {
    read_config(&testdata_dir().join("../backtest/maker-nknusdt.toml")).unwrap()
}

fn backtest(out: &Path, run_config: &RunConfig) -> (RunStats, Vec<String>) {
    let mut input = CaptureSource::open(&testdata_dir()).unwrap();
    let mut events = Vec::new();
    let stats = run(
        &config(),
        &mut input,
        out,
        run_config,
        &mut |e: &ResultEvent| events.push(format!("{e:?}")),
    )
    .unwrap();
    (stats, events)
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        // The counters file is a live board for `levictl stat`: its header says when and by
        // which process it was made. The journal is the run's record.
        .filter(|(name, _)| name != "writer.lock" && name != "counters.lvc")
        .collect();
    all.sort();
    all
}

#[test]
fn the_same_run_writes_the_same_journal_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let config = RunConfig::default();
    let (first_stats, first_events) = backtest(&dir.path().join("a"), &config);
    let (second_stats, second_events) = backtest(&dir.path().join("b"), &config);
    assert_eq!(first_stats, second_stats);
    assert_eq!(first_events, second_events);
    let (a, b) = (files(&dir.path().join("a")), files(&dir.path().join("b")));
    assert!(
        !a.is_empty(),
        "{:?}",
        a.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert_eq!(a.len(), b.len());
    for ((name_a, bytes_a), (name_b, bytes_b)) in a.iter().zip(&b) {
        assert_eq!(name_a, name_b);
        // Whole files, headers included: their creation times are the virtual clock's. (Run
        // in two processes, they differ only in the writer's pid, at offset 72.)
        assert!(bytes_a == bytes_b, "{name_a} differs between two runs");
    }
    // A different seed names a different run: the journal's epoch differs.
    let (_, _) = backtest(&dir.path().join("c"), &RunConfig { seed: 2, ..config });
    assert_ne!(files(&dir.path().join("c")), a);
}

#[test]
fn the_venue_position_is_what_the_journaled_fills_add_up_to() {
    let dir = tempfile::tempdir().unwrap();
    // Crossing quotes fill on arrival, so there are fills to add up.
    let config = RunConfig::default();
    let (stats, events) = backtest(dir.path(), &config);
    assert!(stats.messages > 1000, "{stats:?}");
    let mut tailer = Tailer::open(dir.path(), StartAt::Beginning).unwrap();
    let mut position = 0i64;
    let mut reports = 0;
    while tailer
        .poll(1024, |frame| {
            if frame.record_type == ExecutionReport::RECORD_TYPE {
                let report = ExecutionReport::from_bytes(frame.payload).unwrap();
                reports += 1;
                if report.exec_type == exec_type::TRADE {
                    position += if report.side == side::BUY {
                        report.last_qty
                    } else {
                        -report.last_qty
                    };
                }
            }
        })
        .unwrap()
        .frames
        > 0
    {}
    assert!(reports > 0);
    assert_eq!(stats.venue_positions, vec![position]);
    let fills = events.iter().filter(|e| e.starts_with("Fill")).count() as u64;
    let traded: u64 = events.iter().filter(|e| e.starts_with("Fill")).count() as u64;
    assert_eq!(fills, traded);
}
