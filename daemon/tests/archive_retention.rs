//! Retention that waits for the archive, end to end: a real `levibotd` on the demo venue, its
//! journal in 1 MiB segments with a 2 MiB soft limit, and a real `levibot-archiver` whose one
//! target is moto's S3 server on loopback.
//!
//! - The store down: segments pile up past the soft limit and not one is deleted; the store
//!   back: the archive catches up (the day's objects verify, every deleted segment is in the
//!   manifest) and retention then prunes what was archived.
//! - No archive at all: the hard limit prunes, oldest first; each one counted, journaled
//!   (`unarchived_pruned`, naming its index) and logged; the missing watermark said once.
//!
//! The oracle is the journal directory itself, looked at every few milliseconds from here,
//! and the bucket as boto3 lists it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use levibot_shm::layout::segment_file_name;
use levibot_shm::records::daemon_event;
use levibot_shm::watermark::WATERMARK_FILE_NAME;
use levibot_shm::{ArchiveWatermark, list_segments, read_segment_file_header};
use levibot_sim::demo;
use levibot_sim::sim::SimVenue;
use levibot_testkit::moto::{Moto, free_port};

use crate::common::harness::{Daemon, counters, events, get, rewrite_config};

/// Messages a second the venue sends: a 1 MiB segment every second or two.
const RATE: u32 = 3000;
const BOX: &str = "e2e-box";
/// How long the archive may take to catch up, or retention to act, on a loaded machine.
const CATCH_UP: Duration = Duration::from_secs(180);

/// The demo venue and its config, the journal in `journal` in 1 MiB segments, uncompressed
/// (sizes in whole segments), retention at 2 MiB waiting for the watermark in `state` up to
/// `hard_mib`.
fn daemon_config(
    scratch: &Path,
    journal: &Path,
    state: &Path,
    hard_mib: u32,
) -> (SimVenue, PathBuf) {
    std::fs::create_dir_all(journal).unwrap();
    let venue =
        demo::start_venue(demo::venue_config(levibot_testkit::seed(), RATE).unwrap()).unwrap();
    let config = demo::write_config(scratch, journal, &venue).unwrap();
    let text = rewrite_config(&config, |line| {
        if line.starts_with("segment_size_mib = ") {
            Some("segment_size_mib = 1".to_owned())
        } else if line.starts_with("max_total_mib = ") {
            Some(format!(
                "max_total_mib = 2\narchive_watermark = \"{}\"\nhard_max_total_mib = {hard_mib}",
                state.join(WATERMARK_FILE_NAME).display()
            ))
        } else if line.starts_with("compress = ") {
            Some("compress = false".to_owned())
        } else {
            None
        }
    });
    assert!(text.contains("hard_max_total_mib"), "{text}");
    (venue, config)
}

/// `levibot-archiver` following `journal`, one S3 target on moto's port; killed when dropped.
struct Archiver {
    child: Child,
    config: PathBuf,
}

impl Archiver {
    fn start(scratch: &Path, journal: &Path, state: &Path, moto: &Moto) -> Archiver {
        use std::os::unix::fs::PermissionsExt;
        let credentials = scratch.join("s3.toml");
        std::fs::write(
            &credentials,
            "access_key_id = \"test\"\nsecret_access_key = \"test\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = scratch.join("archiver.toml");
        std::fs::write(
            &config,
            format!(
                "journal_dir = \"{}\"\nstate_dir = \"{}\"\nbox = \"{BOX}\"\npoll_interval_secs = 1\n\
                 backoff_max_secs = 2\nrequest_timeout_secs = 2\n\n[[target]]\nname = \"s3\"\n\
                 s3 = \"s3://{}/archive\"\nendpoint = \"{}\"\nallow_http = true\n\
                 credentials_file = \"{}\"\n",
                journal.display(),
                state.display(),
                levibot_testkit::moto::BUCKET,
                moto.endpoint(),
                credentials.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(scratch.join("archiver.log")).unwrap();
        let child = Command::new(archiver_bin())
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Archiver { child, config }
    }
}

impl Drop for Archiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn archiver_bin() -> PathBuf {
    levibot_testkit::workspace_bin("levibot-archiver", "levibot-archiver")
}

/// The journal directory as seen from outside, every few milliseconds: which sealed segments
/// it has held, and when each disappeared.
struct Watch {
    dir: PathBuf,
    /// Sealed segments seen, by index: (epoch, created_unix_ns).
    sealed: BTreeMap<u64, (u64, u64)>,
    /// Sealed segments seen and gone since, in the order they went.
    gone: Vec<u64>,
}

impl Watch {
    fn new(dir: &Path) -> Watch {
        Watch {
            dir: dir.to_owned(),
            sealed: BTreeMap::new(),
            gone: Vec::new(),
        }
    }

    /// One look; returns the segments that went since the last one.
    fn look(&mut self) -> Vec<u64> {
        let Ok(listing) = list_segments(&self.dir) else {
            return Vec::new();
        };
        let present: BTreeSet<u64> = listing.iter().map(|s| s.index).collect();
        for file in &listing {
            if self.sealed.contains_key(&file.index) {
                continue;
            }
            // A file pruned between the listing and its header is not sealed for us yet.
            if let Ok(header) = read_segment_file_header(file)
                && header.sealed
            {
                self.sealed
                    .insert(file.index, (header.epoch, header.created_unix_ns));
            }
        }
        let went: Vec<u64> = self
            .sealed
            .keys()
            .filter(|i| !present.contains(i) && !self.gone.contains(i))
            .copied()
            .collect();
        self.gone.extend(&went);
        went
    }

    fn on_disk(&self) -> BTreeSet<u64> {
        list_segments(&self.dir)
            .unwrap()
            .iter()
            .map(|s| s.index)
            .collect()
    }

    /// Looks until `done` holds (checking `each` at every look), failing after `timeout`.
    fn until(
        &mut self,
        daemon: &mut Daemon,
        timeout: Duration,
        what: &str,
        mut each: impl FnMut(&Watch, &[u64]),
        mut done: impl FnMut(&Watch) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            daemon.assert_alive(what);
            let went = self.look();
            each(self, &went);
            if done(self) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; sealed {:?}, gone {:?}, \
                 counters {:?}",
                self.sealed.keys().collect::<Vec<_>>(),
                self.gone,
                counters(&self.dir)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn watermark(state: &Path) -> ArchiveWatermark {
    ArchiveWatermark::read(&state.join(WATERMARK_FILE_NAME)).unwrap_or_default()
}

/// The UTC day of a Unix time in ns, as `date` spells it (an oracle independent of the
/// archiver's own calendar).
fn utc_day(unix_ns: u64) -> String {
    let out = Command::new("date")
        .args(["-u", "+%F", "-d"])
        .arg(format!("@{}", unix_ns / 1_000_000_000))
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn an_outage_of_the_store_deletes_nothing_unarchived_and_the_archive_catches_up() {
    let scratch = tempfile::tempdir().unwrap();
    let journal = scratch.path().join("journal");
    let state = scratch.path().join("state");
    // Where moto will listen; nothing listens there yet: the store is down from the start.
    let mut moto = Moto::on_port(scratch.path(), free_port());
    let (_venue, config) = daemon_config(scratch.path(), &journal, &state, 64);
    let mut daemon = Daemon::start(&config, &journal);
    daemon.wait_running();
    let archiver = Archiver::start(scratch.path(), &journal, &state, &moto);
    let mut watch = Watch::new(&journal);

    // Segments pile up past the 2 MiB soft limit, and not one goes.
    let nothing_goes = |w: &Watch, went: &[u64]| {
        assert!(
            went.is_empty(),
            "pruned {went:?} while the store is down; sealed {:?}",
            w.sealed.keys()
        );
    };
    watch.until(
        &mut daemon,
        CATCH_UP,
        "segments held for the archive",
        nothing_goes,
        |w| w.sealed.len() >= 6 && get(&counters(&w.dir), "journal.retention_archive_held") >= 4,
    );
    let c = counters(&journal);
    assert_eq!(get(&c, "journal.retention_unarchived_pruned"), 0, "{c:?}");
    assert!(
        get(&c, "journal.retention_archive_held_bytes") >= 4 << 20,
        "{c:?}"
    );
    assert!(watermark(&state).is_empty(), "nothing is archived yet");
    let outage: Vec<u64> = watch.sealed.keys().copied().collect();
    let epoch = watch.sealed[&outage[0]].0;

    // The store is back: the archive catches up, and retention prunes what it archived, and
    // only that.
    moto.run();
    moto.make_bucket();
    let last = *outage.last().unwrap();
    watch.until(
        &mut daemon,
        CATCH_UP,
        "the outage's segments archived and then pruned",
        |w, went| {
            let mark = watermark(&state);
            for index in went {
                let (segment_epoch, _) = w.sealed[index];
                assert!(
                    mark.covers(segment_epoch, *index),
                    "segment {index} pruned, the watermark does not cover it: {mark:?}"
                );
            }
        },
        |w| outage.iter().all(|i| w.gone.contains(i)),
    );
    assert!(watermark(&state).covers(epoch, last));
    let c = counters(&journal);
    assert_eq!(get(&c, "journal.retention_unarchived_pruned"), 0, "{c:?}");
    daemon.signal(rustix::process::Signal::TERM);
    assert!(daemon.wait().success(), "{}", daemon.log());
    let archiver_config = archiver.config.clone();
    drop(archiver);
    assert!(
        events(&journal)
            .iter()
            .all(|e| e.kind != daemon_event::UNARCHIVED_PRUNED)
    );

    // Every segment that went is in its day's manifest with its epoch and index, and every
    // object of those days reads back as the manifest says.
    let days: BTreeSet<String> = watch
        .gone
        .iter()
        .map(|i| utc_day(watch.sealed[i].1))
        .collect();
    let mut listed = BTreeSet::new();
    for day in &days {
        let manifest: serde_json::Value =
            serde_json::from_slice(&moto.get(&format!("archive/{BOX}/{day}/manifest.json")))
                .unwrap();
        for entry in manifest["objects"].as_object().unwrap().values() {
            if entry["epoch"].as_u64() == Some(epoch) {
                listed.insert(entry["index"].as_u64().unwrap());
            }
        }
        let out = Command::new(archiver_bin())
            .args(["verify", "--day", day, "--config"])
            .arg(&archiver_config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "verify {day}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for index in &watch.gone {
        assert!(
            listed.contains(index),
            "segment {index} went unlisted: {listed:?}"
        );
    }

    // Neither process wrote into the other's directory.
    let names = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(&state),
        ["archived.watermark", "archiver.lvc", "state.json"]
    );
    for name in names(&journal) {
        assert!(
            name.starts_with("journal-")
                || name.starts_with("levibotd-") // this test's log of the daemon
                || ["counters.lvc", "writer.lock", "control.sock"].contains(&name.as_str()),
            "{name} in the journal directory"
        );
    }
}

#[test]
fn the_hard_limit_prunes_the_oldest_unarchived_segments_and_records_each() {
    let scratch = tempfile::tempdir().unwrap();
    let journal = scratch.path().join("journal");
    // No archiver at all: no watermark file.
    let state = scratch.path().join("state");
    let (_venue, config) = daemon_config(scratch.path(), &journal, &state, 5);
    let mut daemon = Daemon::start(&config, &journal);
    daemon.wait_running();
    let mut watch = Watch::new(&journal);
    // Whenever segments go, they are the oldest on disk.
    watch.until(
        &mut daemon,
        CATCH_UP,
        "two segments pruned unarchived",
        |w, went| {
            if let Some(newest_gone) = went.iter().max() {
                let left = w.on_disk();
                assert!(
                    left.iter().all(|i| i > newest_gone),
                    "pruned {went:?} but older ones are left: {left:?}"
                );
            }
        },
        |w| get(&counters(&w.dir), "journal.retention_unarchived_pruned") >= 2,
    );
    daemon.signal(rustix::process::Signal::TERM);
    assert!(daemon.wait().success(), "{}", daemon.log());
    watch.look();
    let c = counters(&journal);
    let counted = get(&c, "journal.retention_unarchived_pruned") as usize;
    let journaled: Vec<u64> = events(&journal)
        .iter()
        .filter(|e| e.kind == daemon_event::UNARCHIVED_PRUNED)
        .map(|e| e.value as u64)
        .collect();
    // Each prune is journaled (the last ones maybe after the counters' last refresh), in
    // order, and they are exactly the segments that went: the oldest, from the first on.
    assert!(
        journaled.len() >= counted && counted >= 2,
        "{journaled:?}, counted {counted}"
    );
    assert_eq!(journaled, watch.gone, "journaled vs gone");
    let first = *watch.sealed.keys().next().unwrap();
    let expected: Vec<u64> = (first..first + journaled.len() as u64).collect();
    assert_eq!(journaled, expected, "the oldest, in order");
    // The missing watermark: nothing archived, said once.
    assert_eq!(
        get(&c, "journal.retention_watermark_unreadable"),
        1,
        "{c:?}"
    );
    let log = daemon.log();
    assert_eq!(
        log.matches("the archive watermark cannot be read").count(),
        1,
        "{log}"
    );
    for index in &journaled {
        assert!(
            log.contains(&segment_file_name(*index)),
            "the log names segment {index}:\n{log}"
        );
    }
}
