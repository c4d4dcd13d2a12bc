//! `verify` catches an object changed in the store: it exits non-zero naming the object.

use levibot_shm::RetentionPolicy;

use crate::common::*;

#[test]
fn verify_names_a_corrupt_object_in_s3_and_in_a_directory() {
    clear_of_midnight();
    let seed = levibot_testkit::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let scratch = temp_dir();
    let journal_dir = scratch.path().join("journal");
    let journal = journal(&journal_dir, 64 * 1024, RetentionPolicy::keep_all());
    let mut appender = journal.appender(1).unwrap();
    write_until_segment(&journal, &mut appender, &mut rng, 1000, 3);
    let moto = Moto::start(scratch.path());
    let (archive_dir, config) = both_targets(scratch.path(), &journal_dir, &moto, "");
    let config_arg = config.to_str().unwrap();
    assert_ok(
        &run_archiver(&["--once", "--config", config_arg]),
        "archive",
    );
    let day = today();
    assert_ok(
        &run_archiver(&["verify", "--config", config_arg, "--day", &day]),
        "verify before any damage",
    );

    let sealed: Vec<_> = segments(&journal_dir).into_iter().filter(|s| s.2).collect();
    let s3_victim = object_key(&sealed[1].1);
    let disk_victim = object_key(&sealed[2].1);
    // Same size, one byte flipped, written through the S3 API.
    let mut bytes = moto.get(&format!("archive/{s3_victim}"));
    let at = rng.usize(..bytes.len());
    bytes[at] ^= 0x40;
    let body = scratch.path().join("corrupt");
    std::fs::write(&body, &bytes).unwrap();
    moto.boto(&format!(
        "s3.put_object(Bucket='{BUCKET}', Key='archive/{s3_victim}', Body=open('{}', 'rb').read())",
        body.display()
    ));
    let mut bytes = std::fs::read(archive_dir.join(&disk_victim)).unwrap();
    bytes[at] ^= 0x40;
    std::fs::write(archive_dir.join(&disk_victim), bytes).unwrap();

    let output = run_archiver(&["verify", "--config", config_arg, "--day", &day]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "verify must fail: {stdout}");
    let corrupt: Vec<&str> = stdout.lines().filter(|l| l.contains("corrupt")).collect();
    assert_eq!(corrupt.len(), 2, "{stdout}");
    assert!(
        corrupt
            .iter()
            .any(|l| l.starts_with("target s3:") && l.contains(&s3_victim)),
        "{stdout}"
    );
    assert!(
        corrupt
            .iter()
            .any(|l| l.starts_with("target disk:") && l.contains(&disk_victim)),
        "{stdout}"
    );
    // One target at a time.
    let output = run_archiver(&[
        "verify", "--config", config_arg, "--day", &day, "--target", "s3",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success());
    assert!(
        stdout.contains(&s3_victim) && !stdout.contains(&disk_victim),
        "{stdout}"
    );
}
