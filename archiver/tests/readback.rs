//! The archive read back by every tool (issue 18, item 4): a live levibotd session on the
//! demo's venue, with 1 MiB segments, archived by `levibot-archiver --once` to a directory and
//! to moto's S3 server; then `levictl tail --json` over `--archive <dir>`, over
//! `--archive s3://...` and over the journal itself print the same bytes, and
//! `levibot-backtest run` from the archive gives the summary and the journal it gives from the
//! journal, and `levictl capture check --archive` replays every market message the session
//! journaled through the books. A time range fetches only the segments it needs (counted in the server's request
//! log and seen in the cache dir); a corrupted object is an error naming it.
//!
//! The session is stopped, then the journal opened once more as the daemon's next start would
//! (recovery seals the segments the stopped run left unsealed, so that the archiver takes them
//! too): the journal is then whole in the archive, and the new run's segment, empty, adds no
//! record to the journal's side of the comparisons.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use levibot_archiver::state::Manifest;
use levibot_shm::{Journal, JournalConfig, RetentionPolicy};

use crate::common::*;

/// Sealed segments the session writes before it is stopped.
const SEALED_MIN: usize = 6;

pub struct Session {
    pub scratch: tempfile::TempDir,
    pub journal: PathBuf,
    pub archive_dir: PathBuf,
    pub moto: Moto,
    pub credentials: PathBuf,
}

impl Session {
    /// The S3 location and its options, as levictl and the backtest take them.
    pub fn s3_args(&self) -> Vec<String> {
        vec![
            "--archive".into(),
            format!("s3://{BUCKET}/archive"),
            "--endpoint".into(),
            self.moto.endpoint(),
            "--allow-http".into(),
            "--credentials-file".into(),
            self.credentials.display().to_string(),
        ]
    }

    pub fn dir_args(&self) -> Vec<String> {
        vec!["--archive".into(), self.archive_dir.display().to_string()]
    }

    /// Every segment archived, from the directory target's manifests (a session may cross
    /// midnight: all its days).
    pub fn manifest(&self) -> Manifest {
        let mut all = Manifest::default();
        for day in std::fs::read_dir(self.archive_dir.join(BOX)).unwrap() {
            let day = day.unwrap().file_name().into_string().unwrap();
            let path = self.archive_dir.join(format!("{BOX}/{day}/manifest.json"));
            let manifest: Manifest = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            all.objects.extend(manifest.objects);
        }
        assert!(!all.objects.is_empty(), "a day archived");
        all
    }
}

/// Runs a workspace binary to completion (killed after 300 s), returning its output.
pub fn run(package: &str, bin: &str, args: &[String]) -> Output {
    let child = Command::new(levibot_testkit::workspace_bin(package, bin))
        .args(args)
        .env_remove("LEVIBOT_JOURNAL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin} starts: {e}"));
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let done = std::sync::Arc::clone(&done);
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if Instant::now() > deadline {
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                    return true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            false
        })
    };
    // Both pipes are read while it runs (a full pipe would stop it).
    let output = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(!watchdog.join().unwrap(), "{bin} {args:?} ran over 300 s");
    output
}

pub fn levictl(args: &[String]) -> Output {
    run("levictl", "levictl", args)
}

/// The output's stdout, after asserting success.
pub fn ok(output: Output, what: &str) -> Vec<u8> {
    assert!(
        output.status.success(),
        "{what}: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

/// A demo session on 1 MiB segments, stopped, sealed, archived to both targets.
pub fn archived_session() -> Session {
    let seed = levibot_testkit::seed();
    let scratch = temp_dir();
    let journal = scratch.path().join("journal");
    let venue = levibot_sim::demo::start_venue(
        levibot_sim::demo::venue_config(seed, 2_000).expect("the demo venue's config"),
    )
    .expect("the demo venue starts");
    let config = levibot_sim::demo::write_config(scratch.path(), &journal, &venue)
        .expect("the demo's config");
    let text = std::fs::read_to_string(&config).unwrap();
    let small = with_value(&text, "segment_size_mib = ", "1");
    std::fs::write(&config, small).unwrap();

    let log = scratch.path().join("levibotd.log");
    let mut daemon = Command::new(levibot_testkit::workspace_bin("levibot-daemon", "levibotd"))
        .args(["run", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("levibotd starts");
    let sealed = || {
        levibot_shm::list_segments(&journal).map_or(0, |files| {
            files
                .iter()
                .filter(|f| levibot_shm::read_segment_file_header(f).is_ok_and(|h| h.sealed))
                .count()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    while sealed() < SEALED_MIN {
        if let Some(status) = daemon.try_wait().unwrap() {
            panic!(
                "levibotd exited ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} sealed segments after 180 s",
            sealed()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let pid = kill(daemon.id(), "-TERM");
    let status = daemon.wait().unwrap();
    assert!(
        status.success(),
        "levibotd {pid} stopped: {status}: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    drop(venue);
    // As the next start does: the stopped run's segments are repaired and sealed.
    drop(
        Journal::open(&JournalConfig {
            dir: journal.clone(),
            segment_size: 1 << 20,
            prefault: false,
            retention: RetentionPolicy::keep_all(),
        })
        .expect("the journal reopens"),
    );

    let moto = Moto::start(scratch.path());
    let (archive_dir, archiver_config) = both_targets(scratch.path(), &journal, &moto, "");
    assert_ok(
        &run_archiver(&["--once", "--config", archiver_config.to_str().unwrap()]),
        "archiving the session",
    );
    let credentials = scratch.path().join("s3-credentials.toml");
    Session {
        scratch,
        journal,
        archive_dir,
        moto,
        credentials,
    }
}

/// `text` with the value after `key` (to the end of its line) replaced by `value`.
fn with_value(text: &str, key: &str, value: &str) -> String {
    text.lines()
        .map(|line| match line.strip_prefix(key) {
            Some(_) => format!("{key}{value}"),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sends a signal with kill(1); returns the pid.
fn kill(pid: u32, signal: &str) -> u32 {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {signal} {pid}");
    pid
}

/// GET requests of segment objects in the server's log after its first `from` bytes.
fn segment_gets(moto: &Moto, from: usize) -> usize {
    moto.log_text()[from..]
        .lines()
        .filter(|l| l.contains("\"GET ") && l.contains("/journal-"))
        .count()
}

#[test]
fn a_live_session_reads_back_from_the_archive_as_from_its_journal() {
    let session = archived_session();
    let journal = session.journal.display().to_string();

    // tail --json: the journal, the directory, the bucket.
    let original = ok(
        levictl(&strings(&["--journal", &journal, "tail", "--json"])),
        "tail of the journal",
    );
    let records = original.iter().filter(|b| **b == b'\n').count();
    assert!(records > 1000, "{records} records in the session");
    let mut args = strings(&["tail", "--json"]);
    args.extend(session.dir_args());
    let from_dir = ok(levictl(&args), "tail --archive DIR");
    assert!(from_dir == original, "the directory's tail differs");
    let mut args = strings(&["tail", "--json"]);
    args.extend(session.s3_args());
    let from_s3 = ok(levictl(&args), "tail --archive s3://");
    assert!(from_s3 == original, "the bucket's tail differs");

    // A range: only the segments it needs are fetched.
    let manifest = session.manifest();
    let mut entries: Vec<_> = manifest.objects.values().cloned().collect();
    entries.sort_by_key(|e| e.index);
    assert!(entries.len() >= SEALED_MIN, "{entries:?}");
    let epoch = entries[0].epoch;
    let k = entries.len() / 2;
    let time = levibot_view::format_unix_ns;
    let (from, until) = (
        time(entries[k].created_unix_ns),
        time(entries[k + 2].created_unix_ns),
    );
    let cache = session.scratch.path().join("cache");
    let log_before = session.moto.log_text().len();
    let mut args = strings(&["tail", "--json", "--from", &from, "--until", &until]);
    args.extend(session.s3_args());
    args.extend(strings(&["--cache-dir", cache.to_str().unwrap()]));
    let ranged = ok(levictl(&args), "tail --archive s3:// --from --until");
    // The run's first segment (its instrument defs), the one before the segment created at
    // --from (made ahead of its use), that one and the next; not the one created at --until.
    let expected: Vec<String> = [0, k - 1, k, k + 1]
        .iter()
        .map(|&i| entries[i].file.clone())
        .collect();
    let mut cached: Vec<String> = std::fs::read_dir(cache.join(BOX).join(epoch.to_string()))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    cached.sort();
    assert_eq!(cached, expected, "the cache holds the range's segments");
    assert_eq!(
        segment_gets(&session.moto, log_before),
        expected.len(),
        "one GET per segment needed"
    );
    let exported = session.scratch.path().join("range.jsonl");
    ok(
        levictl(&strings(&[
            "--journal",
            &journal,
            "export",
            "--format",
            "jsonl",
            "--from",
            &from,
            "--to",
            &until,
            "--out",
            exported.to_str().unwrap(),
        ])),
        "export of the range from the journal",
    );
    assert!(
        ranged == std::fs::read(&exported).unwrap(),
        "the range's records differ"
    );
    // A journal directory is not a cache.
    let mut into_journal = args.clone();
    let at = into_journal
        .iter()
        .position(|a| a == "--cache-dir")
        .unwrap();
    into_journal[at + 1] = journal.clone();
    let output = levictl(&into_journal);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("holds journal segments"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Again: the cache has them all; nothing is fetched.
    let log_before = session.moto.log_text().len();
    assert!(ok(levictl(&args), "the range again") == ranged);
    assert_eq!(segment_gets(&session.moto, log_before), 0);

    // The backtest: the archive's journal replayed as the journal itself.
    let backtest = |input: Vec<String>, out: &Path| {
        let mut args = strings(&["run", "--json", "--out", out.to_str().unwrap()]);
        args.extend(input);
        let summary = ok(
            run("levibot-backtest", "levibot-backtest", &args),
            "backtest",
        );
        let tail = ok(
            levictl(&strings(&[
                "--journal",
                out.join("journal").to_str().unwrap(),
                "tail",
                "--json",
            ])),
            "tail of the backtest's journal",
        );
        (summary, tail)
    };
    let scratch = session.scratch.path();
    let (summary, tail) = backtest(strings(&["--journal", &journal]), &scratch.join("bt-j"));
    let (archive_summary, archive_tail) = backtest(session.s3_args(), &scratch.join("bt-a"));
    assert_eq!(
        String::from_utf8_lossy(&archive_summary),
        String::from_utf8_lossy(&summary),
        "the summaries differ"
    );
    assert!(archive_tail == tail, "the backtests' journals differ");
    assert!(tail.len() > 1000, "the backtest journaled little");

    // A range: the backtest reads a session straight through, so --from fetches the run from
    // its first segment, with no gap, up to --until; cut at --until, the replay is the one
    // from the journal cut there (versus_live apart: it compares with the live session it
    // was given, here the part fetched).
    let cache = scratch.join("bt-cache");
    let mut input = strings(&["--from", &from, "--until", &until, "--cache-dir"]);
    input.push(cache.display().to_string());
    input.extend(session.dir_args());
    let (ranged_summary, ranged_tail) = backtest(input, &scratch.join("bt-r"));
    let (cut_summary, cut_tail) = backtest(
        strings(&["--journal", &journal, "--until", &until]),
        &scratch.join("bt-c"),
    );
    let without_versus = |json: &[u8]| {
        let mut value: serde_json::Value = serde_json::from_slice(json).unwrap();
        value.as_object_mut().unwrap().remove("versus_live");
        value
    };
    assert_eq!(
        without_versus(&ranged_summary),
        without_versus(&cut_summary)
    );
    assert!(
        ranged_tail == cut_tail,
        "the cut backtests' journals differ"
    );
    let mut fetched: Vec<String> = std::fs::read_dir(cache.join(BOX).join(epoch.to_string()))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    fetched.sort();
    let expected: Vec<String> = entries[..k + 2].iter().map(|e| e.file.clone()).collect();
    assert_eq!(
        fetched, expected,
        "the run from its first segment to --until"
    );

    // capture check: the session's market data replayed through the decoder and the books,
    // every message and snapshot the feed journaled (counted from the journal's own JSON).
    let mut args = strings(&["capture", "check", "--json", "--exchange-info"]);
    args.push(scratch.join("demo-exchangeInfo.json").display().to_string());
    args.extend(session.s3_args());
    let report: serde_json::Value =
        serde_json::from_slice(&ok(levictl(&args), "capture check --archive")).unwrap();
    let (mut stream, mut snapshots) = (0u64, 0u64);
    for line in original.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let record: serde_json::Value = serde_json::from_slice(line).unwrap();
        if record["type"] == "raw_message"
            && record["writer"]
                == levibot_shm::codes::writer_id::name(levibot_shm::codes::writer_id::FEED).unwrap()
        {
            match record["text"]
                .as_str()
                .unwrap()
                .starts_with("{\"lastUpdateId\"")
            {
                true => snapshots += 1,
                false => stream += 1,
            }
        }
    }
    assert!(
        stream > 1000 && snapshots >= 3,
        "{stream} messages, {snapshots} snapshots"
    );
    assert_eq!(report["messages"], stream, "{report}");
    assert_eq!(report["decode_errors"], 0, "{report}");
    let symbols = report["symbols"].as_object().unwrap();
    assert_eq!(symbols.len(), 3, "the demo's three symbols: {report}");
    let applied: u64 = symbols
        .values()
        .map(|s| s["snapshots"].as_u64().unwrap())
        .sum();
    assert_eq!(applied, snapshots, "{report}");

    // A corrupted object: named, and nothing printed.
    let victim = &entries[1];
    let mut bytes = session.moto.get(&format!("archive/{}", victim.object));
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    let body = scratch.join("corrupt");
    std::fs::write(&body, &bytes).unwrap();
    session.moto.boto(&format!(
        "s3.put_object(Bucket='{BUCKET}', Key='archive/{}', Body=open('{}', 'rb').read())",
        victim.object,
        body.display()
    ));
    let mut args = strings(&["tail", "--json"]);
    args.extend(session.s3_args());
    let output = levictl(&args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a corrupt object was read");
    assert!(output.stdout.is_empty(), "records printed before the check");
    assert!(
        stderr.contains(&format!("archive/{}", victim.object)) && stderr.contains("SHA-256"),
        "{stderr}"
    );
}

#[test]
fn conflicting_inputs_and_a_missing_box_are_refused() {
    let scratch = temp_dir();
    let dir = scratch.path().to_str().unwrap();
    let output = levictl(&strings(&["--journal", dir, "tail", "--archive", dir]));
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--journal and --archive"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = levictl(&strings(&["tail", "--box", "x"]));
    assert!(!output.status.success(), "--box without --archive");
    // What an archive cannot do, said before anything is fetched.
    for (args, says) in [
        (vec!["tail", "-f"], "an archive does not grow"),
        (vec!["tail", "--from", "12345"], "not a journal position"),
        (
            vec!["export", "--format", "jsonl", "-o", "x", "--until", "77"],
            "not a journal position",
        ),
        (
            vec!["tail", "--endpoint", "http://127.0.0.1:9"],
            "--endpoint: plain http:// needs --allow-http",
        ),
    ] {
        let mut args = strings(&args);
        let s3 = args.iter().any(|a| a == "--endpoint");
        args.extend(strings(&[
            "--archive",
            if s3 { "s3://bucket/prefix" } else { dir },
        ]));
        let output = levictl(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    for sub in [
        ["tail"].as_slice(),
        ["export", "--format", "jsonl", "-o", "x"].as_slice(),
    ] {
        let mut args = strings(sub);
        args.extend(strings(&["--archive", dir]));
        let output = levictl(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(stderr.contains("no box in the archive"), "{stderr}");
    }
    for dir_box in ["ny4-01", "ld4-02"] {
        std::fs::create_dir_all(scratch.path().join(dir_box).join("2026-05-04")).unwrap();
    }
    let output = levictl(&strings(&["tail", "--archive", dir]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("give --box with one of ld4-02, ny4-01"),
        "{stderr}"
    );
    let output = run(
        "levibot-backtest",
        "levibot-backtest",
        &strings(&["run", "--out", dir, "--archive", dir, "--journal", dir]),
    );
    assert_eq!(output.status.code(), Some(2), "clap refuses both inputs");
}
