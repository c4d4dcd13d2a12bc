//! Helpers: journals with small segments, configurations for the moto S3 server on loopback
//! (`levibot_testkit::moto`), and what the archiver wrote.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use levibot_testkit::moto::{BUCKET, Moto, free_port};

use levibot_shm::{Appender, Journal, JournalConfig, RecordType, RetentionPolicy};
use sha2::{Digest, Sha256};

pub const TEST_RECORD: RecordType = RecordType(0x100);
pub const BOX: &str = "test-box";

/// The archiver's binary.
pub fn archiver() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_levibot-archiver"));
    command.env("RUST_LOG", "info");
    command
}

pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("levibot-archiver-test")
        .tempdir()
        .expect("temp dir")
}

/// A journal of `segment_size` segments in `dir`.
pub fn journal(dir: &Path, segment_size: usize, retention: RetentionPolicy) -> Journal {
    Journal::open(&JournalConfig {
        dir: dir.to_owned(),
        segment_size,
        prefault: false,
        retention,
    })
    .expect("journal opens")
}

/// Appends `payload_len`-byte frames of seeded random bytes until the frames go to segment
/// `index`, then runs a maintenance pass (which seals the finished segments and applies the
/// retention policy). Bounded: fails after far more frames than that should take.
pub fn write_until_segment(
    journal: &Journal,
    appender: &mut Appender,
    rng: &mut fastrand::Rng,
    payload_len: usize,
    index: u64,
) {
    let segment_size = journal.segment_size();
    let most = (index as usize + 2) * (segment_size / payload_len + 1);
    let mut payload = vec![0u8; payload_len];
    for _ in 0..most {
        rng.fill(&mut payload);
        let position = appender.append(TEST_RECORD, &payload).expect("append");
        if position.split(segment_size).0 >= index {
            journal.maintain().expect("maintain");
            return;
        }
    }
    panic!("{most} frames appended and segment {index} is not current");
}

/// The SHA-256 (hex) of a file.
pub fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    sha256(&bytes)
}

pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The journal's segment files by name, and whether each is sealed.
pub fn segments(dir: &Path) -> Vec<(String, PathBuf, bool)> {
    levibot_shm::list_segments(dir)
        .expect("list")
        .into_iter()
        .map(|file| {
            let sealed = levibot_shm::read_segment_file_header(&file)
                .expect("header")
                .sealed;
            let name = file
                .path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, file.path, sealed)
        })
        .collect()
}

/// Longest a test that reads one day's manifest runs (generous, for a loaded machine).
const ONE_DAY_TEST_MAX: Duration = Duration::from_secs(15 * 60);

/// Waits, if the next UTC midnight is less than [`ONE_DAY_TEST_MAX`] away, until it has
/// passed: a test that reads back one day's manifest then finds every segment it wrote under
/// that day (segments are filed by the day they were created on).
pub fn clear_of_midnight() {
    const DAY_NS: u64 = 86_400_000_000_000;
    let now = levibot_shm::clock::unix_now_ns();
    let to_midnight = Duration::from_nanos(DAY_NS - now % DAY_NS);
    if to_midnight < ONE_DAY_TEST_MAX {
        println!("waiting {to_midnight:?} for UTC midnight to pass: this test reads one day");
        std::thread::sleep(to_midnight + Duration::from_secs(1));
    }
}

/// The UTC day of the segments written now (after [`clear_of_midnight`]).
pub fn today() -> String {
    levibot_archiver::state::utc_day(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    )
}

/// Writes a credentials file (mode 0600) for moto, which takes any key.
pub fn credentials_file(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("s3-credentials.toml");
    let mut file = std::fs::File::create(&path).expect("credentials");
    writeln!(
        file,
        "access_key_id = \"test\"\nsecret_access_key = \"test\""
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Writes an archiver configuration: the journal, a state dir under `scratch`, and the given
/// `[[target]]` tables and extra top-level keys.
pub fn write_config(scratch: &Path, journal: &Path, extra: &str, targets: &str) -> PathBuf {
    let path = scratch.join("archiver.toml");
    let text = format!(
        "journal_dir = \"{}\"\nstate_dir = \"{}\"\nbox = \"{BOX}\"\npoll_interval_secs = 1\n\
         backoff_max_secs = 2\n{extra}\n{targets}",
        journal.display(),
        scratch.join("state").display()
    );
    std::fs::write(&path, text).expect("config");
    path
}

/// A `[[target]]` table for moto.
pub fn s3_target(name: &str, moto: &Moto, credentials: &Path) -> String {
    format!(
        "[[target]]\nname = \"{name}\"\ns3 = \"s3://{BUCKET}/archive\"\nendpoint = \"{}\"\n\
         allow_http = true\ncredentials_file = \"{}\"\n",
        moto.endpoint(),
        credentials.display()
    )
}

/// A `[[target]]` table for a directory.
pub fn dir_target(name: &str, dir: &Path) -> String {
    format!(
        "[[target]]\nname = \"{name}\"\ndir = \"{}\"\n",
        dir.display()
    )
}

/// Runs the archiver to completion with a generous timeout; returns its output.
pub fn run_archiver(args: &[&str]) -> Output {
    let mut child = archiver()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the archiver starts");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "levibot-archiver {args:?} still ran after 300 s: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts that the archiver exited 0, showing its output if not.
pub fn assert_ok(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The archiver's counters: label -> value.
pub fn counters(state_dir: &Path) -> std::collections::BTreeMap<String, i64> {
    let reader = levibot_shm::counters::CountersReader::open(
        state_dir.join(levibot_archiver::state::COUNTERS_FILE_NAME),
    )
    .expect("the counters file");
    reader
        .counters()
        .into_iter()
        .map(|c| (c.label, c.value))
        .collect()
}

/// The day's manifest from the S3 server.
pub fn s3_manifest(moto: &Moto, day: &str) -> levibot_archiver::state::Manifest {
    let bytes = moto.get(&format!("archive/{BOX}/{day}/manifest.json"));
    serde_json::from_slice(&bytes).expect("the manifest is JSON")
}

/// Waits until `done` holds, failing after `timeout` with `what`.
pub fn wait_for(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The object key (under the target's prefix) the archiver gives a segment file.
pub fn object_key(path: &Path) -> String {
    let compressed = path.extension().is_some_and(|e| e == "gz");
    let index =
        levibot_shm::layout::parse_segment_file_name(path.file_name().unwrap().to_str().unwrap())
            .expect("a segment file name")
            .0;
    let header = levibot_shm::read_segment_file_header(&levibot_shm::SegmentFile {
        index,
        compressed,
        path: path.to_owned(),
    })
    .expect("header");
    format!(
        "{BOX}/{}/{}/{}",
        levibot_archiver::state::utc_day(header.created_unix_ns),
        header.epoch,
        path.file_name().unwrap().to_string_lossy()
    )
}

/// A configuration with two targets, a directory (`<scratch>/archive`) and moto's bucket, and
/// the `extra` top-level keys: (the directory, the configuration file).
pub fn both_targets(
    scratch: &Path,
    journal_dir: &Path,
    moto: &Moto,
    extra: &str,
) -> (PathBuf, PathBuf) {
    let archive_dir = scratch.join("archive");
    let credentials = credentials_file(scratch);
    let targets = format!(
        "{}{}",
        dir_target("disk", &archive_dir),
        s3_target("s3", moto, &credentials)
    );
    (
        archive_dir,
        write_config(scratch, journal_dir, extra, &targets),
    )
}

/// The bucket's keys a day's manifest accounts for: its objects and itself, sorted.
pub fn keys_of(manifest: &levibot_archiver::state::Manifest) -> Vec<String> {
    let mut keys: Vec<String> = manifest
        .objects
        .keys()
        .map(|k| format!("archive/{k}"))
        .collect();
    keys.push(format!("archive/{BOX}/{}/manifest.json", manifest.day));
    keys.sort();
    keys
}
