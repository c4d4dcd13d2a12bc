//! A journal's market data as a capture, for `levictl capture check --archive`: the venue's
//! bytes the feed journaled (`RAW_MESSAGE` frames of the feed's
//! writer) become the stream capture's lines, `<receive time>: <JSON>`, and the REST depth
//! snapshots among them the snapshot file's, `<url> -> <receive time>: <JSON>`, with the
//! symbol the frame's header names (a journal of layout 1.0 did not name it: such snapshots
//! are skipped, counted). Then the capture is replayed as any other, through the decoder and
//! the books. Written to files (a temporary directory): memory does not grow with the journal.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use levibot_archiver::read::{ArchiveArgs, Range};
use levibot_shm::codes::writer_id;
use levibot_shm::records::{RawMessageHeader, record_type};
use levibot_shm::{StartAt, Tailer};
use levibot_view::FrameDecoder;

use super::CaptureReport;
use crate::archive::fetch_range;

/// Frames read at most (a bound on the work; a longer journal is refused, naming the limit).
pub const FRAMES_MAX: u64 = 1 << 32;

/// The capture files written from a journal, and what could not be placed.
pub struct JournalCapture {
    pub stream: PathBuf,
    pub snapshots: PathBuf,
    pub messages: u64,
    pub snapshots_written: u64,
    /// Snapshots whose instrument the journal does not name, and messages with a line break
    /// (a capture line holds one message): left out.
    pub skipped: u64,
}

/// `<secs>.<ns>` of a Unix time in ns, as capture lines spell receive times.
fn seconds(unix_ns: u64) -> String {
    format!("{}.{:09}", unix_ns / 1_000_000_000, unix_ns % 1_000_000_000)
}

/// Writes the market data of the journals `dirs` (one after the other) as a capture into
/// `out` (`stream.capture`, `snapshots.capture`).
pub fn write_capture(dirs: &[PathBuf], out: &Path) -> anyhow::Result<JournalCapture> {
    let stream_path = out.join("stream.capture");
    let snapshots_path = out.join("snapshots.capture");
    let create = |path: &Path| {
        File::create(path)
            .map(BufWriter::new)
            .with_context(|| format!("creating {}", path.display()))
    };
    let (mut stream, mut snapshots) = (create(&stream_path)?, create(&snapshots_path)?);
    let mut capture = JournalCapture {
        stream: stream_path.clone(),
        snapshots: snapshots_path.clone(),
        messages: 0,
        snapshots_written: 0,
        skipped: 0,
    };
    let mut frames = 0u64;
    for dir in dirs {
        let reading = || format!("reading the journal in {}", dir.display());
        let mut tailer = Tailer::open(dir, StartAt::Beginning).with_context(reading)?;
        // The journal's instruments (its runs' definitions, as they come).
        let mut instruments = FrameDecoder::new();
        loop {
            // One frame at a time: the receive stamp is turned into time with the calibration
            // of the run that wrote it.
            let mut raw: Option<(RawMessageHeader, Vec<u8>)> = None;
            let polled = tailer
                .poll(1, |frame| match frame.record_type {
                    record_type::RAW_MESSAGE if frame.writer_id == writer_id::FEED => {
                        raw = RawMessageHeader::split(frame.payload)
                            .map(|(header, body)| (header, body.to_vec()));
                    }
                    other => instruments.learn(other, frame.payload),
                })
                .with_context(reading)?;
            if polled.frames == 0 && polled.writer_restart.is_none() {
                break;
            }
            frames += polled.frames as u64;
            anyhow::ensure!(
                frames <= FRAMES_MAX,
                "more than {FRAMES_MAX} frames: narrow the range"
            );
            let Some((header, body)) = raw else { continue };
            if body.contains(&b'\n') {
                capture.skipped += 1;
                continue;
            }
            let at = seconds(tailer.calibration().to_unix_ns(header.recv_tsc));
            let written = match header.snapshot_instrument() {
                None => {
                    capture.messages += 1;
                    write!(stream, "{at}: ").and_then(|()| stream.write_all(&body))
                }
                Some(id) => match instruments.instrument(id).map(|i| &*i.symbol) {
                    None => {
                        capture.skipped += 1;
                        continue;
                    }
                    Some(symbol) => {
                        capture.snapshots_written += 1;
                        write!(snapshots, "journal:/api/v3/depth?symbol={symbol} -> {at}: ")
                            .and_then(|()| snapshots.write_all(&body))
                    }
                },
            };
            written
                .and_then(|()| {
                    let file = match header.snapshot_instrument() {
                        None => &mut stream,
                        Some(_) => &mut snapshots,
                    };
                    file.write_all(b"\n")
                })
                .with_context(|| format!("writing into {}", out.display()))?;
        }
    }
    for (file, path) in [(stream, &stream_path), (snapshots, &snapshots_path)] {
        file.into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(capture)
}

/// `capture check --archive`: the range's journals from the archive (each writer run from its
/// start: a replay needs the run's snapshots and instruments), their market data replayed as
/// a capture with the instruments of `exchange_info`. The report names the archive.
pub fn check_archive(
    archive: &ArchiveArgs,
    mut range: Range,
    exchange_info: &Path,
) -> anyhow::Result<CaptureReport> {
    range.from_run_start = true;
    let fetched = fetch_range(archive, range)?;
    let scratch = tempfile::Builder::new()
        .prefix("levictl-capture-")
        .tempdir()
        .context("creating a temporary directory for the capture")?;
    let capture = write_capture(&fetched.journals, scratch.path())?;
    let mut report = super::check(&capture.stream, &capture.snapshots, exchange_info)
        .context("capture check")?;
    let source = format!(
        "{} (box {}, {} journal{}, {} segments; {} messages, {} snapshots, {} skipped)",
        archive.archive.as_deref().unwrap_or_default(),
        fetched.box_name,
        fetched.journals.len(),
        if fetched.journals.len() == 1 { "" } else { "s" },
        fetched.segments.len(),
        capture.messages,
        capture.snapshots_written,
        capture.skipped
    );
    report.capture = PathBuf::from(&source);
    report.snapshots = PathBuf::from(source);
    Ok(report)
}
