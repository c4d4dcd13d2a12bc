//! `scripts/research/retrain` deploying into a running levibotd (against venue-sim, through
//! `common::harness`): the daemon votes on NKNUSDT with a model file trained on its own
//! journal; a retrain whose gate passes with `deploy = true` replaces that file (the previous
//! kept as `.prev`) and reloads, and the daemon's feature snapshots then name the candidate's
//! SHA-256; a retrain whose reload the daemon refuses puts the previous model back, and the
//! daemon goes on with it. The oracles are the daemon's own journal (its reload events, the
//! model id in its snapshots) and the files' bytes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use levibot_shm::records::{DaemonEvent, FeatureSnapshot, Record, daemon_event};
use levibot_testkit::{python3_runs, retrain, workspace_bin};

use crate::common::harness::{
    Daemon, TIMEOUT, counters, events, get, journal, levictl, signal_demo_config, signal_table,
    venue_and_config,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

const WEIGHTS: &str = "weights = { top_imbalance = 1.0, microprice_premium = 2.0 }";

/// The demo's config with the signal strategy on every symbol, voting with `nknusdt` on
/// NKNUSDT (weights elsewhere), at a threshold nothing passes (this test is about models
/// changing hands, not about trading).
fn signal_config(demo: &str, nknusdt: &str) -> String {
    let table = |vote| signal_table(vote, "1000.0");
    signal_demo_config(demo, &table(nknusdt), &table(WEIGHTS))
}

fn must(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The model ids of NKNUSDT's (instrument 0) feature snapshots, in journal order.
fn model_ids(dir: &Path) -> Vec<u64> {
    journal(dir)
        .iter()
        .filter(|(t, _)| *t == FeatureSnapshot::RECORD_TYPE.0)
        .filter_map(|(_, p)| FeatureSnapshot::from_bytes(p))
        .filter(|s| s.instrument_id == 0)
        .map(|s| s.model_id)
        .collect()
}

/// A model file's id as the daemon journals it: the first 8 bytes of its SHA-256.
fn model_id(file: &Path) -> u64 {
    let out = must(
        Command::new("sha256sum").arg(file).output().unwrap(),
        "sha256sum",
    );
    u64::from_str_radix(&out[..16], 16).unwrap()
}

fn reloads(dir: &Path) -> usize {
    events(dir)
        .iter()
        .filter(|e: &&DaemonEvent| e.kind == daemon_event::RELOADED)
        .count()
}

/// Waits until a snapshot of NKNUSDT after the first `after` names `id`.
fn wait_for_model(daemon: &mut Daemon, dir: &Path, after: usize, id: u64) {
    let until = Instant::now() + TIMEOUT;
    while !model_ids(dir).iter().skip(after).any(|&m| m == id) {
        daemon.assert_alive("waiting for the model in the snapshots");
        assert!(Instant::now() < until, "no snapshot names model {id:016x}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn retrain_settings(dir: &Path, config: &Path) -> PathBuf {
    let text = format!(
        "live_config = {config:?}\ninstrument = \"NKNUSDT\"\nout_dir = \"proposals\"\n\
         deploy = true\n[window]\nhistory = \"1h\"\nholdout = \"3s\"\n\
         [dataset]\nhorizon = \"200ms\"\n[train]\nrounds = 5\n\
         [gate]\nerror_ratio_max = 1000.0\npnl_margin_quote = -1e9\ndrawdown_tolerance = 1e6\n\
         drawdown_max_quote = 1e9\nfills_min = 0\n\
         [tools]\nlevictl = {:?}\nlevibot_backtest = {:?}\npython = \"python3\"\n",
        workspace_bin("levictl", "levictl"),
        workspace_bin("levibot-backtest", "levibot-backtest"),
    );
    let path = dir.join("retrain.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The newest run directory of the retrain.
fn newest_proposal(dir: &Path) -> PathBuf {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(dir.join("proposals"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    runs.sort();
    runs.pop().unwrap()
}

#[test]
fn a_retrain_deploys_into_the_running_daemon_and_a_refused_reload_is_rolled_back() {
    assert!(
        python3_runs("import duckdb, xgboost"),
        "python3 with duckdb and xgboost-cpu is needed (scripts/install-test-deps installs them)"
    );
    let dir = tempfile::tempdir().unwrap();
    let (venue, config) = venue_and_config(dir.path(), levibot_testkit::seed());
    let demo = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, signal_config(&demo, WEIGHTS)).unwrap();
    let mut daemon = Daemon::start(&config, dir.path());
    daemon.wait_running();
    daemon.wait_for("feature snapshots", |c| {
        get(c, "strategy.feature_snapshots") > 300
    });

    // The live model: trained on the daemon's own journal, taken by a reload (weights before).
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    let live_model = models.join("nknusdt.json");
    let dataset = dir.path().join("first.parquet");
    must(
        levictl(
            dir.path(),
            &[
                "research",
                "dataset",
                "--symbol",
                "NKNUSDT",
                "--horizon",
                "200ms",
                "-o",
                dataset.to_str().unwrap(),
            ],
        ),
        "dataset",
    );
    must(
        Command::new("python3")
            .arg(repo().join("scripts/research/train.py"))
            .arg("--dataset")
            .arg(&dataset)
            .args(["--target", "ret_200ms", "--rounds", "5", "--out"])
            .arg(&live_model)
            .output()
            .unwrap(),
        "train.py",
    );
    let with_model = signal_config(&demo, &format!("model = {:?}", live_model));
    std::fs::write(&config, &with_model).unwrap();
    let seen = model_ids(dir.path()).len();
    must(levictl(dir.path(), &["reload"]), "levictl reload");
    let first = model_id(&live_model);
    wait_for_model(&mut daemon, dir.path(), seen, first);
    // Some seconds of snapshots for the held-out window (3 s) and a training part before it.
    std::thread::sleep(Duration::from_secs(4));

    // A gate that passes, deploy = true: the file replaced, the previous kept, reloaded.
    let settings = retrain_settings(dir.path(), &config);
    let (reloads_before, seen) = (reloads(dir.path()), model_ids(dir.path()).len());
    let out = retrain(&settings);
    let stdout = must(out, "retrain");
    assert!(stdout.contains("deployed"), "{stdout}");
    let candidate = newest_proposal(dir.path()).join("model.json");
    assert_eq!(
        std::fs::read(&live_model).unwrap(),
        std::fs::read(&candidate).unwrap()
    );
    let prev = models.join("nknusdt.json.prev");
    assert_eq!(model_id(&prev), first);
    let deployed = model_id(&candidate);
    assert_ne!(deployed, first);
    assert_eq!(reloads(dir.path()), reloads_before + 1);
    wait_for_model(&mut daemon, dir.path(), seen, deployed);

    // The daemon refuses the next reload (the market-data ping interval changed in the
    // file: not a change it takes live; the backtest does not mind it). The candidate goes
    // back out, the deployed model comes back, and the daemon votes with it still.
    let refused = with_model.replacen("ping_interval_ms = 5000", "ping_interval_ms = 6000", 1);
    assert_ne!(refused, with_model);
    std::fs::write(&config, &refused).unwrap();
    std::thread::sleep(Duration::from_millis(1100)); // a new run directory name
    let out = retrain(&settings);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("did not take the candidate") && stderr.contains("is back"),
        "{stderr}"
    );
    assert_ne!(newest_proposal(dir.path()).join("model.json"), candidate);
    assert_eq!(model_id(&live_model), deployed);
    let seen = model_ids(dir.path()).len();
    std::thread::sleep(Duration::from_millis(500));
    let after = model_ids(dir.path());
    assert!(after.len() > seen, "the daemon journals on");
    assert!(after[seen..].iter().all(|&m| m == deployed), "{after:?}");
    assert_eq!(reloads(dir.path()), reloads_before + 1);
    assert!(get(&counters(dir.path()), "feed.messages") > 0);

    daemon.signal(rustix::process::Signal::TERM);
    assert_eq!(daemon.wait().code(), Some(0), "{}", daemon.log());
    venue.stop();
}
