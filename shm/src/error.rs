//! Typed errors of the journal and counters. Every error about a file names the file, and every
//! error about its contents names the byte offset.

use std::path::PathBuf;

/// What went wrong with a journal or counters file.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    #[error("{path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: bad magic at offset 0: found {found:#018x}, expected {expected:#018x}")]
    BadMagic {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error(
        "{path}: layout version {major}.{minor} at offset 8 is not one this build reads ({}.x to {}.x)",
        crate::layout::LAYOUT_VERSION_MAJOR_OLDEST,
        crate::layout::LAYOUT_VERSION_MAJOR
    )]
    UnsupportedVersion {
        path: PathBuf,
        major: u16,
        minor: u16,
    },
    #[error("{path}: truncated: the file is {len} bytes, its header says {expected}")]
    Truncated {
        path: PathBuf,
        len: u64,
        expected: u64,
    },
    #[error("{path}: corrupt header at offset {offset}: {reason}")]
    CorruptHeader {
        path: PathBuf,
        offset: usize,
        reason: String,
    },
    #[error("{path}: corrupt frame at offset {offset}: frame_len {frame_len} {reason}")]
    CorruptFrame {
        path: PathBuf,
        offset: usize,
        frame_len: i64,
        reason: &'static str,
    },
    #[error(
        "{path}: segment {index} is missing (deleted or pruned); continuing at segment {resumed_at:?}"
    )]
    SegmentMissing {
        path: PathBuf,
        index: u64,
        resumed_at: Option<u64>,
    },
    #[error("{dir}: no journal segment here")]
    NoJournal { dir: PathBuf },
    #[error("{dir}: another process holds the journal's writer lock")]
    WriterLocked { dir: PathBuf },
    #[error("writer id {writer_id} is already in use by another appender (or >= {max})")]
    WriterIdUnavailable { writer_id: u16, max: usize },
    #[error("payload of {len} bytes exceeds this journal's limit of {max} bytes")]
    PayloadTooLarge { len: usize, max: usize },
    #[error("invalid journal configuration: {key}: {reason}")]
    Config { key: &'static str, reason: String },
    #[error("position {position} is not the start of a frame in {path}")]
    InvalidPosition { path: PathBuf, position: u64 },
    #[error("{path}: counters file is full ({capacity} counters)")]
    CountersFull { path: PathBuf, capacity: usize },
    /// The archive watermark file (`watermark.rs`) is not one: `line` 0 is the whole file.
    #[error("{path}: line {line}: not an archive watermark: {reason}")]
    Watermark {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("counter label of {len} bytes exceeds {max} bytes")]
    LabelTooLong { len: usize, max: usize },
    /// The filesystem (or the quota) of `dir` has no room for a new file of `bytes` bytes. The
    /// file was not created; nothing already written is affected. See [`ShmError::is_no_space`].
    #[error(
        "{dir}: no room for a {bytes}-byte {what} ({}); free space there or make the filesystem larger",
        crate::reserve::errno_name(.source)
    )]
    NoSpace {
        dir: PathBuf,
        /// What was being created: "journal segment", "counters file".
        what: &'static str,
        bytes: u64,
        #[source]
        source: std::io::Error,
    },
}

impl ShmError {
    /// Whether this error means the filesystem is full (`ENOSPC`, `EDQUOT`): a [`NoSpace`]
    /// error, or any I/O error with that cause (a compression or a write that ran out of room).
    /// Retrying will not help until space is freed.
    ///
    /// [`NoSpace`]: ShmError::NoSpace
    pub fn is_no_space(&self) -> bool {
        match self {
            ShmError::NoSpace { .. } => true,
            ShmError::Io { source, .. } => crate::reserve::is_no_space(source),
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> Self {
        ShmError::Io {
            path: path.into(),
            op,
            source,
        }
    }

    /// `NoSpace` for a full filesystem, else an `Io` error naming `path` and `op`.
    pub(crate) fn io_or_no_space(
        path: &std::path::Path,
        op: &'static str,
        what: &'static str,
        bytes: u64,
        source: std::io::Error,
    ) -> Self {
        if crate::reserve::is_no_space(&source) {
            ShmError::NoSpace {
                dir: path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."))
                    .to_owned(),
                what,
                bytes,
                source,
            }
        } else {
            ShmError::io(path, op, source)
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = ShmError> = std::result::Result<T, E>;
