//! The watermark the daemon's retention reads: it covers a segment only once every target has
//! it, and it and the counters file are 0640 with the journal directory's group (the daemon's
//! and the exporter's), whatever the archiver's umask.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use levibot_shm::watermark::WATERMARK_FILE_NAME;
use levibot_shm::{ArchiveWatermark, RetentionPolicy};

use crate::common::*;

fn watermark(state_dir: &Path) -> ArchiveWatermark {
    ArchiveWatermark::read(&state_dir.join(WATERMARK_FILE_NAME)).expect("the watermark")
}

#[test]
fn the_watermark_covers_what_every_target_has_and_others_may_read_it() {
    let seed = levibot_testkit::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let scratch = temp_dir();
    let journal_dir = scratch.path().join("journal");
    let state_dir = scratch.path().join("state");
    let journal = journal(&journal_dir, 64 * 1024, RetentionPolicy::keep_all());
    let mut appender = journal.appender(1).unwrap();
    write_until_segment(&journal, &mut appender, &mut rng, 1000, 4);
    // As root (who owns what it creates), the journal gets a group the archiver's files
    // would not have by themselves.
    if std::fs::metadata(scratch.path()).unwrap().uid() == 0 {
        std::os::unix::fs::chown(&journal_dir, None, Some(4242)).unwrap();
    }
    let journal_gid = std::fs::metadata(&journal_dir).unwrap().gid();

    // The second target cannot be written (its directory is a file).
    let blocked = scratch.path().join("not-a-dir");
    std::fs::write(&blocked, b"").unwrap();
    let targets = format!(
        "{}{}",
        dir_target("disk", &scratch.path().join("archive")),
        dir_target("blocked", &blocked)
    );
    let config = write_config(scratch.path(), &journal_dir, "", &targets);
    let config_arg = config.to_str().unwrap();
    let output = run_archiver(&["--once", "--config", config_arg]);
    assert!(!output.status.success(), "one target failed");
    assert!(
        watermark(&state_dir).is_empty(),
        "one target has nothing: nothing is archived everywhere"
    );
    assert_eq!(counters(&state_dir)["archive.disk.segments"], 4);

    // Both targets work: segments 0..=3 are sealed (4 is written to).
    let targets = format!(
        "{}{}",
        dir_target("disk", &scratch.path().join("archive")),
        dir_target("second", &scratch.path().join("archive-2"))
    );
    let config = write_config(scratch.path(), &journal_dir, "", &targets);
    assert_ok(
        &run_archiver(&["--once", "--config", config.to_str().unwrap()]),
        "both targets",
    );
    let mark = watermark(&state_dir);
    assert_eq!(mark.marks().collect::<Vec<_>>(), [(journal.epoch(), 3)]);
    assert!(!mark.covers(journal.epoch(), 4));

    for name in [WATERMARK_FILE_NAME, "archiver.lvc"] {
        let meta = std::fs::metadata(state_dir.join(name)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o640, "{name}");
        assert_eq!(meta.gid(), journal_gid, "{name}: the journal's group");
    }
}
