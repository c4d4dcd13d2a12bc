//! LeviBot's shared-memory ABI: the journal and the counters.
//!
//! Everything the daemon sees and does is appended to a journal of memory-mapped segment files
//! (in `/dev/shm`, `journal.dir` of the daemon's config); operators, the exporter and replay read it with a
//! [`Tailer`]. Live gauges and counts sit in a separate [`counters`] file. This crate depends on
//! nothing else of ours and is the only thing the exporter sidecar depends on; its layout is
//! versioned ([`LAYOUT_VERSION_MAJOR`]).
//!
//! - [`layout`]: the file format, drawn, and every offset and limit.
//! - [`Journal`] / [`Appender`]: the writer side (claim with an atomic add, commit the length
//!   last with release ordering), recovery after a crash, rollover, maintenance.
//! - [`Tailer`]: the read-only follower.
//! - [`retention`]: sealing, gzip compression and pruning of old segments.
//! - [`watermark`]: what the archiver has copied (its file, which retention reads).
//! - [`counters`]: single-writer, cache-line-padded counter slots.
//! - [`records`]: the fixed-size records journaled and passed through rings.
//! - [`paths`]: where a daemon's journal, counters and control socket are by default.
//!
//! ```
//! use levibot_shm::{Journal, JournalConfig, RecordType, StartAt, Tailer};
//! let dir = std::env::temp_dir().join(format!("levibot-doc-{}", std::process::id()));
//! let mut config = JournalConfig::new(&dir);
//! config.segment_size = 1 << 20;
//! let journal = Journal::open(&config)?;
//! let mut appender = journal.appender(0)?;
//! appender.append(RecordType(0x100), b"hello")?;
//! let mut tailer = Tailer::open(&dir, StartAt::Beginning)?;
//! let mut seen = Vec::new();
//! tailer.poll(16, |frame| seen.push(frame.payload.to_vec()))?;
//! assert_eq!(seen, [b"hello".to_vec()]);
//! # drop(appender); drop(journal); std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), levibot_shm::ShmError>(())
//! ```

pub mod clock;
pub mod codes;
pub mod counters;
mod error;
mod journal;
pub mod layout;
pub mod paths;
pub mod records;
mod reserve;
pub mod retention;
mod segment;
mod tailer;
pub mod watermark;

pub use clock::TscCalibration;
pub use error::{Result, ShmError};
pub use journal::{
    Appender, Journal, JournalClock, JournalConfig, RecoveryReport, SegmentFile, SegmentFileHeader,
    list_segments, read_segment_file_header,
};
pub use layout::{
    FRAME_HEADER_LEN, LAYOUT_VERSION_MAJOR, LAYOUT_VERSION_MINOR, PAYLOAD_LEN_MAX, Position,
    RecordType, WRITERS_MAX,
};
pub use retention::{
    ArchiveGate, CompressFailure, RetentionPolicy, RetentionReport, UnarchivedPrune,
};
pub use tailer::{Frame, Polled, StartAt, Tailer, WriterRestart};
pub use watermark::ArchiveWatermark;
