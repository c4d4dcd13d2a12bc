//! Several writers and several tailers, millions of frames, with rollovers, sealing and
//! compression running: every frame is seen exactly once by every tailer, in order per writer,
//! with its payload checksum intact.
//!
//! `LEVIBOT_STRESS_FRAMES` sets the frames per writer (default 1,000,000); `LEVIBOT_TEST_SEED`
//! replays a run's payload lengths.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;
use levibot_shm::{Journal, JournalConfig, Position, RetentionPolicy, StartAt, Tailer};
use levibot_testkit::seed;

const WRITERS: u16 = 2;
const TAILERS: usize = 2;
/// Generous: a loaded 2-core CI machine runs this in seconds; a hang fails instead of blocking.
const DEADLINE: Duration = Duration::from_secs(600);

fn frames_per_writer() -> u64 {
    std::env::var("LEVIBOT_STRESS_FRAMES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

/// Where the stress journal lives: tmpfs when there is one, as in production.
fn stress_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("levibot-stress")
            .tempdir_in(shm)
    {
        return dir;
    }
    temp_dir()
}

#[test]
fn writers_and_tailers_agree_on_every_frame() {
    let seed = seed();
    let frames = frames_per_writer();
    let dir = stress_dir();
    let config = JournalConfig {
        dir: dir.path().to_owned(),
        segment_size: 4 << 20,
        prefault: false,
        retention: RetentionPolicy {
            compress: true,
            raw_segments_kept: 3,
            max_age: None,
            max_total_bytes: None,
            archive: None,
        },
    };
    let journal = Arc::new(Journal::open(&config).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();

    let maintainer = {
        let (journal, stop) = (journal.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                journal.maintain().unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    let tailers: Vec<_> = (0..TAILERS)
        .map(|t| {
            let dir = dir.path().to_owned();
            std::thread::spawn(move || {
                let mut tailer = Tailer::open(&dir, StartAt::Beginning).unwrap();
                let mut next_seq = [1u64; WRITERS as usize];
                let mut last_position = Position(0);
                let mut seen = 0u64;
                while seen < frames * WRITERS as u64 {
                    assert!(start.elapsed() < DEADLINE, "tailer {t} stalled at {seen}");
                    let polled = tailer
                        .poll(4096, |f| {
                            assert!(f.position > last_position, "positions grow");
                            last_position = f.position;
                            let (writer, seq) = check_payload(f.payload);
                            assert_eq!((writer, seq), (f.writer_id, f.sequence));
                            let expected = &mut next_seq[writer as usize];
                            assert_eq!(seq, *expected, "writer {writer}: in order, exactly once");
                            *expected += 1;
                            seen += 1;
                        })
                        .unwrap();
                    if polled.frames == 0 {
                        std::thread::yield_now();
                    }
                }
                seen
            })
        })
        .collect();

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let mut appender = journal.appender(w).unwrap();
            let mut rng = fastrand::Rng::with_seed(seed ^ w as u64);
            std::thread::spawn(move || {
                let mut payload = Vec::with_capacity(512);
                for seq in 1..=frames {
                    // Mostly small event records, now and then a raw venue message.
                    let len = if rng.u8(..) < 4 {
                        rng.usize(200..2000)
                    } else {
                        rng.usize(18..80)
                    };
                    make_payload(w, seq, len, &mut payload);
                    appender.append(TEST_RECORD, &payload).unwrap();
                }
            })
        })
        .collect();

    for w in writers {
        w.join().unwrap();
    }
    let seen: Vec<u64> = tailers.into_iter().map(|t| t.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    maintainer.join().unwrap();
    assert_eq!(seen, vec![frames * WRITERS as u64; TAILERS]);

    // A late tailer reads the whole history again, compressed segments included.
    let mut late = Tailer::open(dir.path(), StartAt::Beginning).unwrap();
    let mut count = 0u64;
    while late
        .poll(1 << 16, |f| {
            check_payload(f.payload);
            count += 1;
        })
        .unwrap()
        .frames
        > 0
    {}
    assert_eq!(count, frames * WRITERS as u64);
    let compressed = levibot_shm::list_segments(dir.path())
        .unwrap()
        .iter()
        .filter(|s| s.compressed)
        .count();
    eprintln!(
        "{} frames, {TAILERS} tailers, {compressed} segments compressed, {:?}",
        frames * WRITERS as u64,
        start.elapsed()
    );
}
