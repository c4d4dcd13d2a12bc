//! `--archive`: the journal read from levibot-archiver's archive (a directory or
//! `s3://bucket/prefix`) instead of a journal directory, by `tail`, `export` and
//! `capture check`. The archive is read by `levibot_archiver::read` (its module doc says which
//! segments a range fetches and where they go); here, the choice between the two inputs and
//! the range the commands' time options give.

use std::path::Path;

use anyhow::{Context as _, bail};
use levibot_archiver::read::{ArchiveArgs, Fetched, Range, fetch};
use levibot_view::Bound;

/// What a command reads: the journal directory, or the archive.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    Journal(&'a Path),
    Archive(&'a ArchiveArgs),
}

impl<'a> Input<'a> {
    /// `--archive` if given, else the journal directory. `journal_given`: `--journal` was on
    /// the command line (not its default or `LEVIBOT_JOURNAL`), which names another input.
    pub fn choose(
        journal: &'a Path,
        journal_given: bool,
        archive: &'a ArchiveArgs,
    ) -> anyhow::Result<Input<'a>> {
        match (&archive.archive, journal_given) {
            (Some(_), true) => bail!(
                "--journal and --archive both name the journal to read: give one (the archive's \
                 journal directories are made from it; --cache-dir keeps them)"
            ),
            (Some(_), false) => Ok(Input::Archive(archive)),
            (None, _) => Ok(Input::Journal(journal)),
        }
    }
}

/// The archive's range from a command's bounds: times only (a position names a place in one
/// journal directory, and an archive holds as many as the box made).
pub fn range(from: Option<Bound>, until: Option<Bound>) -> anyhow::Result<Range> {
    let time = |bound: Option<Bound>, flag: &str| match bound {
        None => Ok(None),
        Some(Bound::Time(t)) => Ok(Some(t)),
        Some(Bound::Position(p)) => bail!(
            "{flag} {p}: with --archive, a time (RFC 3339, a UTC day, or relative: 2h), not a \
             journal position"
        ),
    };
    Ok(Range {
        from_ns: time(from, "--from")?,
        until_ns: time(until, "--until")?,
        from_run_start: false,
    })
}

/// Fetches the range, naming the archive in errors.
pub fn fetch_range(args: &ArchiveArgs, range: Range) -> anyhow::Result<Fetched> {
    fetch(args, range).with_context(|| {
        format!(
            "reading the archive {}",
            args.archive.as_deref().unwrap_or_default()
        )
    })
}
