//! SIGKILL in the middle of a multipart upload, then a restart: the upload is aborted and done
//! again, every object verifies, and no partial object or unfinished upload is left.

use std::process::Stdio;
use std::time::Duration;

use levibot_shm::RetentionPolicy;

use crate::common::*;

#[test]
fn an_archiver_killed_mid_upload_finishes_after_a_restart() {
    clear_of_midnight();
    let seed = levibot_testkit::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let scratch = temp_dir();
    let journal_dir = scratch.path().join("journal");
    // 32 MiB segments of random bytes: 7 parts of 5 MiB each, sent at 4 MiB/s.
    let journal = journal(&journal_dir, 32 << 20, RetentionPolicy::keep_all());
    let mut appender = journal.appender(1).unwrap();
    write_until_segment(&journal, &mut appender, &mut rng, 256 * 1024, 2);

    let moto = Moto::start(scratch.path());
    let credentials = credentials_file(scratch.path());
    let target = s3_target("s3", &moto, &credentials);
    let slow = "part_size_mib = 5\nrate_limit_mib_per_sec = 4";
    let config = write_config(scratch.path(), &journal_dir, slow, &target);
    let state_file = scratch.path().join("state/state.json");
    let mut child = archiver()
        .args(["--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the archiver starts");
    wait_for(
        Duration::from_secs(60),
        "a multipart upload in progress",
        || {
            std::fs::read(&state_file)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|s| s["targets"]["s3"]["in_progress"]["upload_id"].is_string())
        },
    );
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    assert_eq!(
        moto.uploads_in_progress(),
        1,
        "killed in the middle of an upload"
    );

    let fast = "part_size_mib = 5";
    let config = write_config(scratch.path(), &journal_dir, fast, &target);
    let config_arg = config.to_str().unwrap();
    assert_ok(
        &run_archiver(&["--once", "--config", config_arg]),
        "the restart",
    );
    assert_eq!(
        moto.uploads_in_progress(),
        0,
        "the interrupted upload was aborted"
    );

    let day = today();
    let manifest = s3_manifest(&moto, &day);
    let sealed: Vec<_> = segments(&journal_dir).into_iter().filter(|s| s.2).collect();
    assert_eq!(sealed.len(), 2);
    for (name, path, _) in &sealed {
        let entry = &manifest.objects[&object_key(path)];
        assert_eq!(entry.sha256, sha256_file(path), "{name}");
        assert_eq!(entry.size, 32 << 20);
    }
    assert_eq!(
        moto.keys(),
        keys_of(&manifest),
        "no duplicate or partial object"
    );
    assert_ok(
        &run_archiver(&["verify", "--config", config_arg, "--day", &day]),
        "verify after the restart",
    );
}
