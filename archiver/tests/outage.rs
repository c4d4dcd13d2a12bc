//! The object store down: first not running at all (connections refused), later stopped with
//! SIGSTOP (requests time out). The directory target goes on meanwhile, failures are counted,
//! and the S3 target catches up when the server is back, with nothing lost.

use std::process::{Child, Stdio};
use std::time::Duration;

use levibot_shm::RetentionPolicy;

use crate::common::*;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_outage_of_the_store_loses_nothing_and_is_counted() {
    clear_of_midnight();
    let seed = levibot_testkit::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let scratch = temp_dir();
    let journal_dir = scratch.path().join("journal");
    let state_dir = scratch.path().join("state");
    let journal = journal(&journal_dir, 64 * 1024, RetentionPolicy::keep_all());
    let mut appender = journal.appender(1).unwrap();
    write_until_segment(&journal, &mut appender, &mut rng, 1000, 3);

    // The server's port, with no server on it yet.
    let mut moto = Moto::on_port(scratch.path(), free_port());
    let (_, config) = both_targets(
        scratch.path(),
        &journal_dir,
        &moto,
        "request_timeout_secs = 2",
    );
    let _archiver = Killed(
        archiver()
            .args(["--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the archiver starts"),
    );
    let counter = |label: &str| {
        std::fs::metadata(state_dir.join("archiver.lvc"))
            .ok()
            .map_or(0, |_| counters(&state_dir).get(label).copied().unwrap_or(0))
    };
    wait_for(
        Duration::from_secs(120),
        "failures while no server runs",
        || counter("archive.s3.failures") >= 1,
    );
    wait_for(
        Duration::from_secs(60),
        "the directory archived meanwhile",
        || counter("archive.disk.segments") == 3,
    );
    assert_eq!(counter("archive.s3.segments"), 0);
    assert_eq!(counter("archive.s3.pending"), 3);

    moto.run();
    moto.make_bucket();
    wait_for(Duration::from_secs(120), "S3 caught up", || {
        counter("archive.s3.segments") == 3 && counter("archive.s3.pending") == 0
    });

    // Down again, with requests hanging this time; more segments meanwhile.
    moto.signal("-STOP");
    let failures = counter("archive.s3.failures");
    write_until_segment(&journal, &mut appender, &mut rng, 1000, 6);
    wait_for(
        Duration::from_secs(180),
        "failures while the server hangs",
        || counter("archive.s3.failures") > failures,
    );
    assert!(counter("archive.s3.pending") >= 1);
    assert!(counter("archive.s3.lag_seconds") >= 0);
    moto.signal("-CONT");
    wait_for(Duration::from_secs(180), "S3 caught up again", || {
        counter("archive.s3.segments") == 6 && counter("archive.s3.pending") == 0
    });
    assert_eq!(counter("archive.disk.segments"), 6);
    assert_eq!(counter("archive.disk.failures"), 0);

    let manifest = s3_manifest(&moto, &today());
    for (name, path, sealed) in segments(&journal_dir) {
        if sealed {
            let entry = &manifest.objects[&object_key(&path)];
            assert_eq!(entry.sha256, sha256_file(&path), "{name}");
        }
    }
    assert_eq!(manifest.objects.len(), 6);
    assert_ok(
        &run_archiver(&[
            "verify",
            "--config",
            config.to_str().unwrap(),
            "--day",
            &today(),
        ]),
        "verify after the outage",
    );
}
