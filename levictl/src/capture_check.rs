//! `levictl capture check`: replays a recorded capture (the corpus format) through the decoder
//! and the order books, as the daemon would see it live, and reports what it found.
//!
//! Snapshots are applied at the moment they were received, between the stream messages around
//! them, so the book goes through the venue's procedure exactly: diffs buffered until the
//! snapshot, stale ones dropped, the rest applied in sequence.

pub mod journal;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use levibot_archiver::read::ArchiveArgs;
use levibot_book::{BookLimits, BookState, OrderBook};
use levibot_gateway::binance::{Decoder, MarketEvent, StreamKind};
use levibot_gateway::capture::{Recording, RecordingError};
use levibot_gateway::instrument::InstrumentTable;
use levibot_shm::records::Level;
use levibot_view::{Bound, parse_bound};
use serde::Serialize;

use crate::archive::Input;

/// Decode errors listed in full in a report; the rest are counted.
pub const ERRORS_LISTED_MAX: usize = 20;

/// Why a capture could not be checked at all (as opposed to problems found in it, which go in
/// the report).
#[derive(Debug, thiserror::Error)]
pub enum CaptureCheckError {
    #[error(transparent)]
    Recording(#[from] RecordingError),
    #[error("{path}: snapshot line {line}: {error}")]
    Snapshot {
        path: PathBuf,
        line: usize,
        error: String,
    },
}

/// What the replay found.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CaptureReport {
    pub capture: PathBuf,
    pub snapshots: PathBuf,
    pub messages: u64,
    /// Messages per stream kind (`bookTicker`, `depth`, `trade`, `aggTrade`, `other`).
    pub messages_by_stream: BTreeMap<String, u64>,
    pub decode_errors: u64,
    /// The first `ERRORS_LISTED_MAX` decode errors.
    pub errors: Vec<ErrorAt>,
    pub symbols: BTreeMap<String, SymbolReport>,
}

/// One decode error and where it is in the capture file.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ErrorAt {
    pub line: usize,
    /// Byte offset in the capture file.
    pub offset: usize,
    pub error: String,
}

/// One instrument's book at the end of the replay.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SymbolReport {
    pub state: String,
    pub best_bid: Option<LevelReport>,
    pub best_ask: Option<LevelReport>,
    pub last_update_id: Option<u64>,
    pub bid_levels: usize,
    pub ask_levels: usize,
    pub depth_updates: u64,
    pub updates_applied: u64,
    pub updates_stale: u64,
    pub gaps: u64,
    pub resyncs: u64,
    pub crossed: u64,
    pub snapshots: u64,
}

/// A level as decimals, as the venue wrote it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LevelReport {
    pub price: String,
    pub qty: String,
}

/// `levictl capture check`'s options.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The stream capture (`<epoch>: <json>` lines).
    #[arg(required_unless_present = "archive", conflicts_with = "archive")]
    pub file: Option<PathBuf>,
    /// The REST depth snapshots (`<url> -> <epoch>: <json>` lines).
    #[arg(long, required_unless_present = "archive", conflicts_with = "archive")]
    pub snapshots: Option<PathBuf>,
    /// The venue's exchangeInfo (default: BINANCE.0 beside the capture; needed with
    /// --archive).
    #[arg(long)]
    pub exchange_info: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// With --archive: the writer run live at this time is replayed, from its start (RFC
    /// 3339, a UTC day, or relative: 2h).
    #[arg(long, value_name = "TIME", value_parser = parse_bound, requires = "archive")]
    pub from: Option<Bound>,
    /// With --archive: no segment created at or after this time is read.
    #[arg(long, value_name = "TIME", value_parser = parse_bound, requires = "archive")]
    pub until: Option<Bound>,
    #[command(flatten)]
    pub archive: ArchiveArgs,
}

/// Checks the capture the options name: files, or a live session's market data from the
/// archive ([`journal::check_archive`]).
pub fn run(args: &CheckArgs, input: Input<'_>) -> anyhow::Result<CaptureReport> {
    use anyhow::Context as _;
    match (input, &args.file, &args.snapshots) {
        (Input::Archive(archive), _, _) => journal::check_archive(
            archive,
            crate::archive::range(args.from, args.until)?,
            args.exchange_info
                .as_deref()
                .context("--archive needs --exchange-info (the venue's instruments)")?,
        ),
        (Input::Journal(_), Some(file), Some(snapshots)) => {
            let exchange_info = args.exchange_info.clone().unwrap_or_else(|| {
                file.parent()
                    .unwrap_or_else(|| Path::new("."))
                    .join("BINANCE.0")
            });
            check(file, snapshots, &exchange_info).context("capture check")
        }
        (Input::Journal(_), _, _) => anyhow::bail!("give a capture and --snapshots, or --archive"),
    }
}

/// Replays `capture` with the REST snapshots in `snapshots`, instruments from `exchange_info`.
pub fn check(
    capture: &Path,
    snapshots: &Path,
    exchange_info: &Path,
) -> Result<CaptureReport, CaptureCheckError> {
    Ok(replay(capture, snapshots, exchange_info)?.report)
}

/// A finished replay: the report, and the books with their instruments (index = instrument id).
pub struct Replay {
    pub report: CaptureReport,
    pub instruments: InstrumentTable,
    pub books: Vec<OrderBook>,
}

/// [`check`], keeping the books.
pub fn replay(
    capture: &Path,
    snapshots: &Path,
    exchange_info: &Path,
) -> Result<Replay, CaptureCheckError> {
    let recording = Recording::read(capture, snapshots, exchange_info)?;
    let snapshot_lines = recording.snapshot_lines()?;
    let table = recording.snapshot_instruments()?;
    let mut decoder = Decoder::new(table);
    let mut books: Vec<OrderBook> = decoder
        .instruments()
        .iter()
        .map(|i| OrderBook::new(i.id, BookLimits::DEFAULT).expect("default limits are valid"))
        .collect();
    let mut depth_updates = vec![0u64; books.len()];

    // Snapshots in the order they were received.
    let mut pending: Vec<(f64, usize, u32)> = snapshot_lines
        .iter()
        .enumerate()
        .map(|(n, s)| {
            let id = decoder
                .instruments()
                .find(s.symbol.as_bytes())
                .map(|i| i.id);
            (s.line.epoch_seconds, n, id.expect("selected above"))
        })
        .collect();
    pending.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut pending = pending.into_iter().peekable();
    let apply_snapshot = |decoder: &mut Decoder, books: &mut [OrderBook], n: usize, id: u32| {
        let line = &snapshot_lines[n].line;
        let snapshot =
            decoder
                .decode_snapshot(line.body, id)
                .map_err(|e| CaptureCheckError::Snapshot {
                    path: snapshots.to_owned(),
                    line: line.line,
                    error: e.to_string(),
                })?;
        // Outcomes are counted in the book's stats, which the report shows.
        let _outcome = books[id as usize].apply_snapshot(&snapshot).map_err(|e| {
            CaptureCheckError::Snapshot {
                path: snapshots.to_owned(),
                line: line.line,
                error: e.to_string(),
            }
        })?;
        Ok::<(), CaptureCheckError>(())
    };

    let stream = &recording.stream;
    let mut report = CaptureReport {
        capture: capture.to_owned(),
        snapshots: snapshots.to_owned(),
        messages: 0,
        messages_by_stream: BTreeMap::new(),
        decode_errors: 0,
        errors: Vec::new(),
        symbols: BTreeMap::new(),
    };
    for line in recording.messages() {
        let line = line.map_err(|source| RecordingError::Format {
            path: capture.to_owned(),
            source,
        })?;
        while let Some(&(epoch, n, id)) = pending.peek() {
            if epoch > line.epoch_seconds {
                break;
            }
            pending.next();
            apply_snapshot(&mut decoder, &mut books, n, id)?;
        }
        report.messages += 1;
        let body_offset = line.body.as_ptr() as usize - stream.as_ptr() as usize;
        let kind = match decoder.decode(line.body, 0) {
            Ok(MarketEvent::Depth(update)) => {
                depth_updates[update.instrument_id as usize] += 1;
                let _outcome = books[update.instrument_id as usize].apply_update(&update);
                StreamKind::Depth
            }
            Ok(MarketEvent::BookTicker(_)) => StreamKind::BookTicker,
            Ok(MarketEvent::Trade(_)) => StreamKind::Trade,
            Ok(MarketEvent::AggTrade(_)) => StreamKind::AggTrade,
            Ok(MarketEvent::Skipped(kind)) => kind,
            Err(e) => {
                report.decode_errors += 1;
                if report.errors.len() < ERRORS_LISTED_MAX {
                    report.errors.push(ErrorAt {
                        line: line.line,
                        offset: body_offset + e.offset,
                        error: e.to_string(),
                    });
                }
                continue;
            }
        };
        *report
            .messages_by_stream
            .entry(kind.name().to_owned())
            .or_default() += 1;
    }
    for (_, n, id) in pending {
        apply_snapshot(&mut decoder, &mut books, n, id)?;
    }

    for (book, instrument) in books.iter().zip(decoder.instruments().iter()) {
        let level = |l: Option<Level>| {
            l.map(|l| LevelReport {
                price: instrument
                    .price_scale
                    .to_decimal(l.px)
                    .normalize()
                    .to_string(),
                qty: instrument
                    .qty_scale
                    .to_decimal(l.qty)
                    .normalize()
                    .to_string(),
            })
        };
        let stats = book.stats();
        report.symbols.insert(
            instrument.symbol.to_string(),
            SymbolReport {
                state: match book.state() {
                    BookState::AwaitingSnapshot => "awaiting_snapshot",
                    BookState::Synced => "synced",
                    BookState::NeedsResync => "needs_resync",
                }
                .to_owned(),
                best_bid: level(book.best_bid()),
                best_ask: level(book.best_ask()),
                last_update_id: book.last_update_id(),
                bid_levels: book.bids().len(),
                ask_levels: book.asks().len(),
                depth_updates: depth_updates[instrument.id as usize],
                updates_applied: stats.updates_applied,
                updates_stale: stats.updates_stale,
                gaps: stats.gaps,
                resyncs: stats.resyncs,
                crossed: stats.crossed,
                snapshots: stats.snapshots,
            },
        );
    }
    Ok(Replay {
        report,
        instruments: decoder.instruments().clone(),
        books,
    })
}

impl std::fmt::Display for CaptureReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "capture   {}", self.capture.display())?;
        writeln!(f, "snapshots {}", self.snapshots.display())?;
        let streams: Vec<String> = self
            .messages_by_stream
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        writeln!(f, "messages  {} ({})", self.messages, streams.join(", "))?;
        writeln!(f, "decode errors {}", self.decode_errors)?;
        for e in &self.errors {
            writeln!(f, "  line {} (byte {}): {}", e.line, e.offset, e.error)?;
        }
        writeln!(
            f,
            "\n{:<10} {:<12} {:>24} {:>24} {:>12} {:>5} {:>7} {:>6}",
            "symbol",
            "state",
            "best bid (qty)",
            "best ask (qty)",
            "last update",
            "gaps",
            "resyncs",
            "stale"
        )?;
        for (symbol, s) in &self.symbols {
            let show = |l: &Option<LevelReport>| {
                l.as_ref()
                    .map_or("-".to_owned(), |l| format!("{} ({})", l.price, l.qty))
            };
            writeln!(
                f,
                "{:<10} {:<12} {:>24} {:>24} {:>12} {:>5} {:>7} {:>6}",
                symbol,
                s.state,
                show(&s.best_bid),
                show(&s.best_ask),
                s.last_update_id.map_or("-".to_owned(), |u| u.to_string()),
                s.gaps,
                s.resyncs,
                s.updates_stale
            )?;
        }
        Ok(())
    }
}
