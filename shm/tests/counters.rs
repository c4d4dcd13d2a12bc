//! Counters: allocation, single-writer updates seen by read-only readers, limits, bad files.

use crate::common::temp_dir;
use levibot_shm::ShmError;
use levibot_shm::counters::{COUNTER_LABEL_LEN_MAX, CounterValue, CountersReader, CountersWriter};

#[test]
fn counters_written_by_threads_are_read_by_a_reader() {
    let dir = temp_dir();
    let path = dir.path().join("counters.lvc");
    let writer = CountersWriter::create(&path, 8, 42).unwrap();
    let messages = writer.allocate("feed.messages", 1).unwrap();
    let max_cycle = writer.allocate("agent.feed.cycle_ns_max", 2).unwrap();
    let reader = CountersReader::open(&path).unwrap();
    assert_eq!(reader.epoch(), 42);
    assert_eq!(reader.writer_pid(), std::process::id());
    assert_eq!(reader.capacity(), 8);

    let handle = std::thread::spawn(move || {
        for _ in 0..100_000 {
            messages.increment();
        }
        max_cycle.set_max(17);
        max_cycle.set_max(5);
        (messages, max_cycle)
    });
    let (messages, max_cycle) = handle.join().unwrap();
    assert_eq!(messages.get(), 100_000);
    assert_eq!(
        reader.counters(),
        vec![
            CounterValue {
                id: 0,
                type_id: 1,
                label: "feed.messages".into(),
                value: 100_000
            },
            CounterValue {
                id: 1,
                type_id: 2,
                label: "agent.feed.cycle_ns_max".into(),
                value: 17
            },
        ]
    );
    assert_eq!(reader.value(max_cycle.id()), Some(17));
    assert_eq!(reader.value(5), None);
    assert_eq!(reader.value(100), None);
    assert!(!reader.is_replaced());
    let _again = CountersWriter::create(&path, 8, 43).unwrap();
    assert!(reader.is_replaced());
    assert_eq!(CountersReader::open(&path).unwrap().epoch(), 43);
}

#[test]
fn limits_are_enforced() {
    let dir = temp_dir();
    let path = dir.path().join("counters.lvc");
    assert!(matches!(
        CountersWriter::create(&path, 0, 1),
        Err(ShmError::Config { .. })
    ));
    let writer = CountersWriter::create(&path, 2, 1).unwrap();
    let long = "x".repeat(COUNTER_LABEL_LEN_MAX + 1);
    assert!(matches!(
        writer.allocate(&long, 0),
        Err(ShmError::LabelTooLong { .. })
    ));
    writer
        .allocate(&"y".repeat(COUNTER_LABEL_LEN_MAX), 0)
        .unwrap();
    writer.allocate("b", 0).unwrap();
    for _ in 0..3 {
        assert!(matches!(
            writer.allocate("c", 0),
            Err(ShmError::CountersFull { capacity: 2, .. })
        ));
    }
}

#[test]
fn bad_counters_files_are_refused() {
    let dir = temp_dir();
    let path = dir.path().join("counters.lvc");
    std::fs::write(&path, [0u8; 10]).unwrap();
    assert!(matches!(
        CountersReader::open(&path),
        Err(ShmError::Truncated { .. })
    ));
    std::fs::write(&path, [7u8; 8192]).unwrap();
    let err = CountersReader::open(&path).err().unwrap();
    assert!(matches!(err, ShmError::BadMagic { .. }), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()));

    CountersWriter::create(&path, 4, 1).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(5000).unwrap();
    assert!(matches!(
        CountersReader::open(&path),
        Err(ShmError::Truncated { .. })
    ));
}
