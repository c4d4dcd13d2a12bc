//! The selection by hand: which segments a range needs, and how they are cut into journals.

use super::*;

const S: u64 = 1_000_000_000;

/// A segment of run `epoch`, index `index`, created at second `created`.
fn entry(epoch: u64, index: u64, created: u64) -> Entry {
    let file = levibot_shm::layout::segment_file_name(index);
    Entry {
        object: format!("b/1970-01-01/{epoch}/{file}"),
        file,
        index,
        epoch,
        compressed: false,
        size: 1,
        sha256: String::new(),
        created_unix_ns: created * S,
        day: "1970-01-01".into(),
    }
}

fn ids(entries: &[Entry]) -> Vec<(u64, u64)> {
    entries.iter().map(|e| (e.epoch, e.index)).collect()
}

fn range(from: Option<u64>, until: Option<u64>) -> Range {
    Range {
        from_ns: from.map(|s| s * S),
        until_ns: until.map(|s| s * S),
        from_run_start: false,
    }
}

/// Run 7 (segments 0-3, created at 0, 10, 20, 30), a restart as run 8 (4-5, at 40, 50), a
/// reboot's new journal as run 9 (0-2, at 60, 70, 80).
fn day() -> Vec<Entry> {
    let mut entries = vec![
        entry(7, 0, 0),
        entry(7, 1, 10),
        entry(7, 2, 20),
        entry(7, 3, 30),
        entry(8, 4, 40),
        entry(8, 5, 50),
        entry(9, 0, 60),
        entry(9, 1, 70),
        entry(9, 2, 80),
    ];
    sort(&mut entries);
    entries
}

#[test]
fn without_a_range_everything_in_two_journals_split_where_the_index_starts_again() {
    let selected = select(&day(), Range::default());
    assert_eq!(selected.len(), 9);
    let journals = journals_of(&selected);
    assert_eq!(
        journals.iter().map(|j| ids(j)).collect::<Vec<_>>(),
        vec![
            vec![(7, 0), (7, 1), (7, 2), (7, 3), (8, 4), (8, 5)],
            vec![(9, 0), (9, 1), (9, 2)]
        ],
        "a restart goes on in its journal's directory; a reboot starts another"
    );
}

#[test]
fn from_takes_the_segment_before_the_last_created_and_the_runs_first() {
    // At 25 s, segment 2 (created at 20) may still hold records, or segment 1 if 2 was made
    // ahead of its use: both, and the run's first (its instrument defs).
    let selected = select(&day(), range(Some(25), Some(35)));
    assert_eq!(ids(&selected), vec![(7, 0), (7, 1), (7, 2), (7, 3)]);
    // Run 8 starts at segment 4: its first segment is in the range already.
    let selected = select(&day(), range(Some(55), Some(65)));
    assert_eq!(ids(&selected), vec![(8, 4), (8, 5), (9, 0)]);
    // The new journal's first segment has nothing of that journal before it.
    let selected = select(&day(), range(Some(60), None));
    assert_eq!(ids(&selected), vec![(9, 0), (9, 1), (9, 2)]);
    let selected = select(&day(), range(Some(75), None));
    assert_eq!(ids(&selected), vec![(9, 0), (9, 1), (9, 2)]);
    let selected = select(&day(), range(Some(85), None));
    assert_eq!(ids(&selected), vec![(9, 0), (9, 1), (9, 2)]);
    // A replay straight through: the run's segments from its first, no gap.
    let through = Range {
        from_run_start: true,
        ..range(Some(35), Some(45))
    };
    assert_eq!(
        ids(&select(&day(), through)),
        vec![(7, 0), (7, 1), (7, 2), (7, 3), (8, 4)]
    );
    let through = Range {
        from_run_start: true,
        ..range(Some(55), None)
    };
    assert_eq!(ids(&select(&day(), through)), ids(&day()[4..]));
}

#[test]
fn until_leaves_out_the_segments_created_at_or_after_it() {
    assert_eq!(
        ids(&select(&day(), range(None, Some(20)))),
        vec![(7, 0), (7, 1)]
    );
    assert_eq!(
        ids(&select(&day(), range(None, Some(21)))),
        vec![(7, 0), (7, 1), (7, 2)]
    );
    assert!(select(&day(), range(Some(50), Some(10))).is_empty());
}

#[test]
fn earlier_days_are_needed_until_the_start_and_its_run_are_there() {
    let all = day();
    // Only the entries from 40 s on were read: from 45 s needs segment 4 (there, run 8's
    // first, with segment 3 of another run before it) ...
    let later: Vec<Entry> = all[3..].to_vec();
    assert!(!needs_earlier(&later, range(Some(45), None)));
    // ... but from 55 s on run 8's segments alone do not show where run 8 began.
    let run8: Vec<Entry> = all[4..6].to_vec();
    assert!(needs_earlier(&run8, range(Some(55), None)));
    // Nothing created at or before `from` yet.
    assert!(needs_earlier(&all[6..], range(Some(55), None)));
    // A new journal's first segment needs nothing before it.
    assert!(!needs_earlier(&all[6..], range(Some(65), None)));
    assert!(!needs_earlier(&all, range(None, None)));
}
