//! The archive on the exporter's page: a counters file the real `levibot-archiver` wrote
//! (one pass over a journal written here, to a directory) becomes the `levibot_archive_*`
//! series of its target, checked against the archive itself; no counters file is no archive
//! series; and the daemon's retention counters for the archive are served.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use levibot_shm::codes::{counter_type, label};
use levibot_shm::counters::CountersWriter;
use levibot_shm::paths::counters_path;
use levibot_shm::{Journal, JournalConfig, RecordType, RetentionPolicy};

use crate::exporter::{metrics_until, promtool_check, start_exporter_with, value};

/// A journal of 64 KiB segments, 0..=2 sealed and 3 written to.
fn journal(dir: &Path) -> Journal {
    let journal = Journal::open(&JournalConfig {
        dir: dir.to_owned(),
        segment_size: 64 * 1024,
        prefault: false,
        retention: RetentionPolicy::keep_all(),
    })
    .unwrap();
    let mut appender = journal.appender(1).unwrap();
    while appender
        .append(RecordType(0x100), &[7u8; 1000])
        .unwrap()
        .split(64 * 1024)
        .0
        < 3
    {}
    journal.maintain().unwrap();
    journal
}

/// One pass of the real archiver, to a directory target named `disk`.
fn archive_once(scratch: &Path, journal_dir: &Path) -> std::path::PathBuf {
    let state = scratch.join("state");
    let config = scratch.join("archiver.toml");
    std::fs::write(
        &config,
        format!(
            "journal_dir = \"{}\"\nstate_dir = \"{}\"\nbox = \"test-box\"\n\n[[target]]\n\
             name = \"disk\"\ndir = \"{}\"\n",
            journal_dir.display(),
            state.display(),
            scratch.join("archive").display()
        ),
    )
    .unwrap();
    let archiver = levibot_testkit::workspace_bin("levibot-archiver", "levibot-archiver");
    let out = Command::new(archiver)
        .args([
            OsStr::new("--once"),
            OsStr::new("--config"),
            config.as_os_str(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "levibot-archiver --once: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    state.join("archiver.lvc")
}

/// Bytes of every segment object under the archive directory.
fn archived_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            total += archived_bytes(&entry.path());
        } else if entry.file_name().to_string_lossy().starts_with("journal-") {
            total += meta.len();
        }
    }
    total
}

#[test]
fn the_archivers_counters_become_series_of_its_target() {
    let scratch = tempfile::tempdir().unwrap();
    let journal_dir = scratch.path().join("journal");
    let _journal = journal(&journal_dir);
    // The daemon's counters: retention waiting for the archive.
    let daemon = CountersWriter::create(counters_path(&journal_dir), 16, 1).unwrap();
    for (name, kind, v) in [
        (
            label::JOURNAL_RETENTION_ARCHIVE_HELD,
            counter_type::GAUGE,
            4,
        ),
        (
            label::JOURNAL_RETENTION_ARCHIVE_HELD_BYTES,
            counter_type::GAUGE,
            262_144,
        ),
        (
            label::JOURNAL_RETENTION_UNARCHIVED_PRUNED,
            counter_type::EVENTS,
            2,
        ),
        (
            label::JOURNAL_RETENTION_WATERMARK_UNREADABLE,
            counter_type::EVENTS,
            1,
        ),
    ] {
        daemon.allocate(name, kind).unwrap().set(v);
    }
    let lvc = archive_once(scratch.path(), &journal_dir);

    let exporter = start_exporter_with(
        &journal_dir,
        &[OsStr::new("--archiver-counters"), lvc.as_os_str()],
    );
    let body = metrics_until(exporter.addr, "the archive series", |b| {
        b.contains("levibot_archive_segments_total{target=\"disk\"} 3")
    });
    let of = |series: &str| value(&body, series).unwrap_or_else(|| panic!("{series}:\n{body}"));
    let archived = archived_bytes(&scratch.path().join("archive"));
    assert_eq!(archived, 3 * 64 * 1024, "three raw segments");
    assert_eq!(
        of("levibot_archive_bytes_total{target=\"disk\"}"),
        archived as f64
    );
    assert_eq!(of("levibot_archive_failures_total{target=\"disk\"}"), 0.0);
    assert_eq!(of("levibot_archive_pending_segments{target=\"disk\"}"), 0.0);
    assert_eq!(of("levibot_archive_lag_seconds{target=\"disk\"}"), 0.0);
    assert_eq!(of("levibot_journal_retention_archive_held_segments"), 4.0);
    assert_eq!(
        of("levibot_journal_retention_archive_held_bytes"),
        262_144.0
    );
    assert_eq!(of("levibot_journal_retention_unarchived_pruned_total"), 2.0);
    assert_eq!(
        of("levibot_journal_retention_watermark_unreadable_total"),
        1.0
    );
    promtool_check(&body);
}

#[test]
fn no_archiver_counters_file_is_no_archive_series() {
    let scratch = tempfile::tempdir().unwrap();
    let journal_dir = scratch.path().join("journal");
    let _journal = journal(&journal_dir);
    let absent = scratch.path().join("state/archiver.lvc");
    let exporter = start_exporter_with(
        &journal_dir,
        &[OsStr::new("--archiver-counters"), absent.as_os_str()],
    );
    let body = metrics_until(exporter.addr, "a page", |b| {
        b.contains("levibot_journal_bytes ")
    });
    assert!(!body.contains("levibot_archive_"), "{body}");

    // The archiver starts: its series appear.
    archive_once(scratch.path(), &journal_dir);
    metrics_until(exporter.addr, "the archive series", |b| {
        b.contains("levibot_archive_pending_segments{target=\"disk\"} 0")
    });
}
