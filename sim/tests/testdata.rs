//! The synthetic recording committed in `testdata/binance-spot-synthetic/` is what `venue-sim
//! synth` writes, byte for byte: nobody edits it by hand, and a change to the generator shows
//! up here until the files are written again (see the folder's README.md).

use std::process::Command;

use levibot_gateway::capture::{Recording, testdata_dir};
use levibot_sim::synth::{self, EXCHANGE_INFO_FILE, SNAPSHOTS_FILE, STREAM_FILE};

#[test]
fn the_committed_recording_is_what_venue_sim_synth_writes() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_venue-sim"))
        .args(["synth", "--out"])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    for name in [EXCHANGE_INFO_FILE, SNAPSHOTS_FILE, STREAM_FILE] {
        let written = std::fs::read(out.path().join(name)).unwrap();
        let committed = std::fs::read(testdata_dir().join(name)).unwrap();
        assert!(
            written == committed,
            "testdata/binance-spot-synthetic/{name} is not what `venue-sim synth` writes: \
             run it again (testdata/binance-spot-synthetic/README.md)"
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_recording_and_another_seed_another() {
    let a = synth::generate(7, 300).unwrap();
    assert_eq!(a, synth::generate(7, 300).unwrap());
    let b = synth::generate(8, 300).unwrap();
    assert_ne!(a.stream, b.stream);
    assert_eq!(a.exchange_info, b.exchange_info);
    // Every message is a line of its own, after the header.
    assert_eq!(a.stream.lines().count(), 1 + 300);
}

#[test]
fn the_recording_reads_as_a_recording_with_every_streamed_symbol_snapshotted() {
    let recording = Recording::testdata().unwrap();
    let table = recording.snapshot_instruments().unwrap();
    let mut symbols: Vec<&str> = table.iter().map(|i| i.symbol.as_str()).collect();
    symbols.sort_unstable();
    assert_eq!(symbols, ["BLZETH", "LRCBTC", "NKNUSDT", "RUNEEUR"]);
    let messages = recording.messages().collect::<Result<Vec<_>, _>>().unwrap();
    assert_eq!(messages.len(), synth::TESTDATA_MESSAGES);
    // Capture times never go backwards.
    assert!(
        messages
            .windows(2)
            .all(|w| w[0].epoch_seconds <= w[1].epoch_seconds)
    );
    // Each snapshot comes after its symbol's first diffs: the feed has some to drop, as live.
    for s in recording.snapshot_lines().unwrap() {
        let stream = format!("\"{}@depth@100ms\"", s.symbol.to_lowercase());
        let before = messages
            .iter()
            .filter(|m| m.epoch_seconds < s.line.epoch_seconds)
            .filter(|m| String::from_utf8_lossy(m.body).contains(&stream))
            .count();
        assert!(before >= 1, "{}: no diff before its snapshot", s.symbol);
    }
}

#[test]
fn a_length_out_of_bounds_is_an_error() {
    assert!(synth::generate(1, 0).is_err());
    let err = synth::generate(1, synth::SYNTH_MESSAGES_MAX + 1).unwrap_err();
    assert!(err.to_string().contains("--messages"), "{err}");
}
