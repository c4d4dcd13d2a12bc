//! Zero allocations per append (and per tailer poll) in steady state, counted by a global
//! allocator that counts the calls made on the measuring thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use levibot_shm::{Journal, StartAt, Tailer};
use levibot_testkit::allocations;

use crate::common::*;

#[test]
fn steady_state_appends_and_polls_do_not_allocate() {
    let dir = temp_dir();
    let mut config = small_config(dir.path());
    config.segment_size = 1 << 20;
    let journal = Arc::new(Journal::open(&config).unwrap());
    let mut appender = journal.appender(0).unwrap();
    let mut tailer = Tailer::open(dir.path(), StartAt::Beginning).unwrap();

    // The cold thread that prepares the next segment and unmaps the retired one.
    let stop = Arc::new(AtomicBool::new(false));
    let maintainer = {
        let (journal, stop) = (journal.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                journal.maintain().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let payload = [7u8; 32]; // a 64-byte frame
    appender.append(TEST_RECORD, &payload).unwrap();
    journal.maintain().unwrap();
    let mut polled_frames = 0;
    tailer.poll(1, |_| polled_frames += 1).unwrap();

    // Appends across ~20 rollovers, each with the next segment prepared by maintain().
    let mut append_allocations = 0;
    let mut appended = 0u64;
    for round in 0..20 {
        // The next segment is prepared before this one fills: by this call, whatever the
        // maintainer thread managed (on a loaded machine it may not run for a while, and a
        // rollover with no spare creates the segment itself, which allocates). A round's
        // appends fill less than one segment, so they cross at most one boundary.
        journal.maintain().unwrap();
        let before = allocations();
        for _ in 0..16_000 {
            appender.append(TEST_RECORD, &payload).unwrap();
        }
        appender
            .append_with(TEST_RECORD, 32, |buf| buf[0] = round as u8)
            .unwrap();
        append_allocations += allocations() - before;
        appended += 16_001;
        // The tailer follows; opening each next segment file allocates (paths), off the hot path.
        while tailer
            .poll(4096, |f| assert_eq!(f.payload.len(), 32))
            .unwrap()
            .frames
            > 0
        {}
    }
    assert_eq!(
        append_allocations, 0,
        "{append_allocations} allocations during {appended} appends"
    );

    // Polls within a segment allocate nothing either (moving to the next segment file does).
    for _ in 0..8_000 {
        appender.append(TEST_RECORD, &payload).unwrap();
    }
    let (mut poll_allocations, mut polls_counted, mut polled) = (0, 0, 0);
    while polled < 8_000 {
        let segment = tailer.position().split(config.segment_size).0;
        let before = allocations();
        polled += tailer
            .poll(100, |f| assert_eq!(f.payload.len(), 32))
            .unwrap()
            .frames;
        if tailer.position().split(config.segment_size).0 == segment {
            poll_allocations += allocations() - before;
            polls_counted += 1;
        }
    }
    assert!(polls_counted >= 40, "{polls_counted}");
    assert_eq!(
        poll_allocations, 0,
        "{poll_allocations} allocations in {polls_counted} polls"
    );
    stop.store(true, Ordering::Relaxed);
    maintainer.join().unwrap();
    assert!(appender.next_sequence() > 20 * 16_000);
}
