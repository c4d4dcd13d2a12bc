//! `levictl tail`: journal records as human lines or JSONL, like `journalctl`.
//!
//! Without `-f` it prints what the journal holds when it starts (everything, or the last `-n`)
//! and exits; with `-f` it then follows, across segment rollovers and writer restarts, until
//! SIGINT or SIGTERM. `-f` alone starts with the last 10 records, as `journalctl -f` does.
//!
//! The last N records are found from the newest segment backwards (a segment is scanned whole,
//! older ones only while fewer than N matched), so `tail -n` does not read a large journal from
//! its start; `--since` seeks by probing segment headers (see `journal_view::open_cursor`).

use std::collections::VecDeque;
use std::io::{self, BufWriter, StdoutLock, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use levibot_archiver::read::ArchiveArgs;
use levibot_shm::{RecordType, StartAt, WriterRestart};

use crate::archive::{Input, fetch_range, range};

use levibot_view::{
    Bound, Cursor, FrameDecoder, FrameReader, Segments, Selection, Step, TYPE_NAMES_HELP, View,
    open_cursor, parse_bound, parse_record_type,
};

/// Most records `-n` keeps in memory (more: `levictl export`).
pub const LINES_MAX: u64 = 100_000;
/// Records `-f` starts with when neither `-n` nor `--since` is given (as journalctl).
const FOLLOW_LINES_DEFAULT: u64 = 10;
/// How long a follower sleeps when it has caught up.
const IDLE_SLEEP: Duration = Duration::from_millis(10);
/// Lines written between flushes while records keep coming.
const FLUSH_EVERY_LINES: usize = 1024;

#[derive(clap::Args, Debug)]
pub struct TailArgs {
    /// Follow: print records as they are appended, until Ctrl-C (SIGINT) or SIGTERM. Starts
    /// with the last 10 records unless -n or --since says otherwise.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// One JSON object per line (the objects `levictl export --format jsonl` writes; `pos` is
    /// the record's journal position).
    #[arg(long)]
    pub json: bool,
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_record_type,
          help = format!("Only records of this type (repeatable, case-insensitive): \
                          {TYPE_NAMES_HELP}; or a record type number such as 0x201"))]
    pub types: Vec<RecordType>,
    /// Only records of this instrument (case-insensitive), e.g. NKNUSDT.
    #[arg(long)]
    pub symbol: Option<String>,
    /// Start at a journal position (the `pos` field of --json) or a time: RFC 3339
    /// (2026-11-26T01:02:03Z; no offset means UTC; a bare day is its midnight UTC) or relative
    /// to now (30s, 10m, 2h, 1d). With --archive, a time, which also chooses the segments
    /// fetched.
    #[arg(long, visible_alias = "from", value_name = "POS|TIME", value_parser = parse_bound)]
    pub since: Option<Bound>,
    /// Only records before this time (exclusive; as --since). With --archive, segments
    /// created at or after it are not fetched.
    #[arg(long, value_name = "TIME", value_parser = parse_bound, conflicts_with = "follow")]
    pub until: Option<Bound>,
    /// Only the last N matching records (with --since: the last N since then).
    #[arg(short = 'n', long = "lines", value_name = "N",
          value_parser = clap::value_parser!(u64).range(0..=LINES_MAX))]
    pub lines: Option<u64>,
    #[command(flatten)]
    pub archive: ArchiveArgs,
}

pub fn run(args: &TailArgs, input: Input<'_>) -> anyhow::Result<ExitCode> {
    let mut printer = Printer {
        out: BufWriter::new(io::stdout().lock()),
        json: args.json,
        last_epoch: None,
    };
    let tailed = match input {
        Input::Journal(journal) => tail(args, journal, &mut printer),
        Input::Archive(archive) => tail_archive(args, archive, &mut printer),
    };
    match tailed {
        // Piped into `head`: the reader is gone, which is not an error.
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// The hint on every error reading the journal: the usual cause is the wrong directory.
pub(crate) fn journal_context(dir: &Path) -> String {
    format!(
        "reading the journal in {}: is levibotd running? (the directory is set with --journal \
         or LEVIBOT_JOURNAL)",
        dir.display()
    )
}

/// The records the options select.
fn selection(args: &TailArgs) -> Selection {
    Selection {
        types: args.types.clone(),
        symbol: args.symbol.clone(),
        from: args.since,
        to: args.until,
        ..Selection::default()
    }
}

fn tail(args: &TailArgs, dir: &Path, printer: &mut Printer<'_>) -> anyhow::Result<()> {
    // Registered first, so that a signal during the backlog still ends the follower cleanly.
    let stop = Arc::new(AtomicBool::new(false));
    if args.follow {
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(signal, Arc::clone(&stop))
                .context("installing the signal handler")?;
        }
    }
    let selection = selection(args);
    let lines = match (args.lines, args.follow, args.since) {
        (Some(n), _, _) => Some(n),
        (None, true, None) => Some(FOLLOW_LINES_DEFAULT),
        (None, _, _) => None,
    };
    let mut decoder = FrameDecoder::new();
    let cursor = match (args.since, lines) {
        (None, Some(n)) => last_n(dir, selection, n, &mut decoder, printer, args.follow)?,
        _ => Some(forward(dir, selection, lines, &mut decoder, printer)?),
    };
    printer.out.flush()?;
    match cursor {
        Some(cursor) if args.follow => follow(cursor, &mut decoder, printer, &stop),
        _ => Ok(()),
    }
}

/// Prints what exists from `selection.from` (or the beginning), or its last `lines` records;
/// returns the cursor at the journal's end.
fn forward(
    dir: &Path,
    selection: Selection,
    lines: Option<u64>,
    decoder: &mut FrameDecoder,
    printer: &mut Printer<'_>,
) -> anyhow::Result<Cursor> {
    let mut ring = VecDeque::new();
    let cursor = scan(dir, selection, lines, decoder, printer, &mut ring)?;
    for view in &ring {
        printer.view(view)?;
    }
    Ok(cursor)
}

/// Prints what exists from `selection.from`, or with `lines`, keeps the last `lines` records
/// in `ring` (which may hold an earlier journal's); returns the cursor at the journal's end.
fn scan(
    dir: &Path,
    selection: Selection,
    lines: Option<u64>,
    decoder: &mut FrameDecoder,
    printer: &mut Printer<'_>,
    ring: &mut VecDeque<Box<View>>,
) -> anyhow::Result<Cursor> {
    let mut cursor = open_cursor(dir, selection, decoder).with_context(|| journal_context(dir))?;
    loop {
        match cursor.step(decoder).with_context(|| journal_context(dir))? {
            Step::View(view) => match lines {
                None => printer.view(&view)?,
                Some(n) => {
                    ring.push_back(view);
                    if ring.len() as u64 > n {
                        ring.pop_front();
                    }
                }
            },
            Step::Skipped | Step::Restart(_) => {}
            Step::Missing(e) => warn(printer, &e)?,
            Step::Idle | Step::Past => break,
        }
    }
    Ok(cursor)
}

/// `tail --archive`: the range's journals from the archive, oldest first, as [`forward`]
/// prints one (the last `-n` over all of them).
fn tail_archive(
    args: &TailArgs,
    archive: &ArchiveArgs,
    printer: &mut Printer<'_>,
) -> anyhow::Result<()> {
    if args.follow {
        bail!("--follow follows a live journal: an archive does not grow (drop -f)");
    }
    let fetched = fetch_range(archive, range(args.since, args.until)?)?;
    let selection = selection(args);
    let mut ring = VecDeque::new();
    for dir in &fetched.journals {
        // Each journal defines its own instruments.
        let mut decoder = FrameDecoder::new();
        scan(
            dir,
            selection.clone(),
            args.lines,
            &mut decoder,
            printer,
            &mut ring,
        )?;
    }
    for view in &ring {
        printer.view(view)?;
    }
    printer.out.flush()?;
    Ok(())
}

/// Prints the last `n` matching records, scanning segments from the newest back while fewer
/// matched. Returns a cursor at the journal's end to follow from (if `follow`).
fn last_n(
    dir: &Path,
    selection: Selection,
    n: u64,
    decoder: &mut FrameDecoder,
    printer: &mut Printer<'_>,
    follow: bool,
) -> anyhow::Result<Option<Cursor>> {
    let Some(segments) = Segments::scan(dir).with_context(|| journal_context(dir))? else {
        // Wholly compressed (no writer): read it from the start.
        return forward(dir, selection, Some(n), decoder, printer).map(Some);
    };
    let end = segments.end().with_context(|| journal_context(dir))?;
    let end_segment = segments.index_of(end);
    segments
        .preload(end_segment, decoder)
        .with_context(|| journal_context(dir))?;
    if n == 0 {
        let reader = FrameReader::open(dir, StartAt::End).with_context(|| journal_context(dir))?;
        return Ok(follow.then_some(Cursor { reader, selection }));
    }
    let candidates: Vec<u64> = segments
        .indexes
        .iter()
        .copied()
        .filter(|&i| i <= end_segment)
        .collect();
    let mut backlog: VecDeque<Box<View>> = VecDeque::new();
    let mut newest_cursor = None;
    let mut scanned_epoch = None;
    for (k, &index) in candidates.iter().enumerate().rev() {
        let newest = k + 1 == candidates.len();
        let stop = if newest {
            end
        } else {
            segments.start_of(candidates[k + 1]).0
        };
        let reader = FrameReader::open(dir, StartAt::Position(segments.start_of(index)))
            .with_context(|| journal_context(dir))?;
        let epoch = reader.tailer().epoch();
        if !newest && scanned_epoch != Some(epoch) {
            // An older run: its own instrument defs.
            segments
                .preload(index, decoder)
                .with_context(|| journal_context(dir))?;
        }
        scanned_epoch = Some(epoch);
        let mut cursor = Cursor {
            reader,
            selection: Selection {
                end: Some(stop),
                ..selection.clone()
            },
        };
        let mut ring = VecDeque::new();
        loop {
            match cursor.step(decoder).with_context(|| journal_context(dir))? {
                Step::View(view) => {
                    ring.push_back(view);
                    if ring.len() as u64 > n {
                        ring.pop_front();
                    }
                }
                Step::Skipped | Step::Restart(_) => {}
                Step::Missing(e) => warn(printer, &e)?,
                Step::Idle | Step::Past => break,
            }
        }
        let room = n as usize - backlog.len();
        for view in ring.into_iter().rev().take(room) {
            backlog.push_front(view);
        }
        if newest {
            newest_cursor = Some(cursor);
        }
        if backlog.len() as u64 >= n {
            break;
        }
    }
    for view in &backlog {
        printer.view(view)?;
    }
    if candidates.len() > 1 && follow {
        // Older runs' defs may have replaced the newest run's: put those back to follow.
        segments
            .preload(end_segment, decoder)
            .with_context(|| journal_context(dir))?;
    }
    Ok(newest_cursor.filter(|_| follow))
}

/// Prints records as they come until `stop`.
fn follow(
    mut cursor: Cursor,
    decoder: &mut FrameDecoder,
    printer: &mut Printer<'_>,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    cursor.selection.end = None;
    let mut unflushed = 0;
    while !stop.load(Ordering::Relaxed) {
        match cursor.step(decoder).context("following the journal")? {
            Step::View(view) => {
                printer.view(&view)?;
                unflushed += 1;
                if unflushed >= FLUSH_EVERY_LINES {
                    printer.out.flush()?;
                    unflushed = 0;
                }
            }
            Step::Skipped => {}
            Step::Restart(restart) => printer.restart(&restart)?,
            Step::Missing(e) => warn(printer, &e)?,
            Step::Idle | Step::Past => {
                printer.out.flush()?;
                unflushed = 0;
                std::thread::sleep(IDLE_SLEEP);
            }
        }
    }
    printer.out.flush()?;
    Ok(())
}

fn warn(printer: &mut Printer<'_>, e: &levibot_shm::ShmError) -> io::Result<()> {
    printer.out.flush()?;
    eprintln!("levictl tail: {e}");
    Ok(())
}

struct Printer<'a> {
    out: BufWriter<StdoutLock<'a>>,
    json: bool,
    /// The writer run of the last record printed: a human listing marks where a run begins.
    last_epoch: Option<u64>,
}

impl Printer<'_> {
    fn view(&mut self, view: &View) -> io::Result<()> {
        if self.json {
            writeln!(self.out, "{}", view.to_json())?;
        } else {
            if self.last_epoch.is_some_and(|e| e != view.meta.epoch) {
                writeln!(
                    self.out,
                    "-- writer restarted: epoch {} --",
                    view.meta.epoch
                )?;
            }
            writeln!(self.out, "{}", view.human())?;
        }
        self.last_epoch = Some(view.meta.epoch);
        Ok(())
    }

    /// A restart seen while following (JSON output has no markers: `epoch` tells runs apart).
    fn restart(&mut self, restart: &WriterRestart) -> io::Result<()> {
        if !self.json {
            if restart.new_journal {
                writeln!(
                    self.out,
                    "-- journal replaced: reading the new one from its beginning (epoch {}) --",
                    restart.new_epoch
                )?;
            } else {
                writeln!(
                    self.out,
                    "-- writer restarted: epoch {} -> {} --",
                    restart.old_epoch, restart.new_epoch
                )?;
            }
            self.out.flush()?;
        }
        self.last_epoch = Some(restart.new_epoch);
        Ok(())
    }
}
