//! Reading the archive back: what `levictl tail`, `export` and `capture check` and
//! `levibot-backtest run` do with `--archive LOCATION` in place of a journal directory.
//!
//! # What is fetched
//!
//! The location is a directory (a `dir` target) or `s3://bucket/prefix` (an `s3` target), with
//! the archiver's own checks and credentials ([`S3Config::new`]). The box is `--box`, or the
//! only box under the location (an error lists them when there are several). The time range
//! (`from`, `until`, Unix ns; each tool names them `--from`/`--until`) is resolved from the
//! day manifests alone, so that only the segments it needs are fetched, never the rest of a
//! day or of the bucket:
//!
//! - the days' manifests from the day of `from` to the day of `until` are read (one listing of
//!   the box's days, then one GET per manifest);
//! - a segment holds the records from its creation to the next one's, but the journal creates
//!   the next segment *ahead* of the rollover (so that a rollover makes no syscall), so the
//!   records at `from` may be in the segment before the last one created at or before `from`:
//!   both are fetched. Days before `from`'s are read back (up to [`LOOKBACK_DAYS_MAX`] days
//!   that have a manifest) until those are found;
//! - every segment created before `until` (a segment created at or after `until` holds only
//!   later records);
//! - and the first segment of the writer run the range starts in, wherever it is: a run
//!   journals its instrument definitions and its config once, at its start, and the readers
//!   name symbols (and the backtest finds its config) from them. Readers of a journal with a
//!   gap after that segment seek past it, as they do on a pruned journal; those that replay a
//!   session straight through from its start (the backtest, `capture check`) ask for every
//!   segment of the run from its first ([`Range::from_run_start`]).
//!
//! The tools then apply the range to records too (a segment also holds records outside it).
//!
//! # Where it goes
//!
//! Every object is verified while it is copied: its size and SHA-256 must be the manifest's, or
//! the read stops with an error naming the object ([`ReadError::Corrupt`]). Objects land in
//! local journal directories that the existing readers (`levibot-view`'s cursor, the shm
//! tailer, the backtest's journal input) read as they read `/dev/shm/levibot`, with nothing of
//! the archive's own format to learn.
//!
//! One directory per *journal*, not per writer run: a daemon that restarts keeps its journal
//! directory, its new run (a new epoch) going on at the next segment index, so that one
//! journal directory on the box holds several runs, and its readers expect that (restart
//! markers, each run's instrument definitions). The archive keeps each run's segments under
//! its epoch; read back, the runs that continued one journal are put back together into one
//! directory, exactly the files the box had. Segment indices start again at 0 when a journal
//! is made anew (a reboot empties `/dev/shm`), so the segments, in creation order, start a new
//! directory whenever an index does not grow: two segments with one index never share a
//! directory, and a directory is never a mix of two journals. The directories, in time order,
//! are `<cache>/<box>/<epoch of its first segment>/`.
//!
//! The cache is a directory the user names (`--cache-dir`), kept afterwards: objects already
//! there with the manifest's SHA-256 are not fetched again, and segment files of an earlier
//! read that this range does not select are removed, so each directory holds this range
//! only. Without `--cache-dir`, a temporary directory removed when [`Fetched`] is dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use levibot_shm::layout::parse_segment_file_name;

use crate::archive::{ArchiveError, read_manifest};
use crate::config::{S3Config, S3Parts, TargetKind, is_box_name};
use crate::state::{Entry, MANIFEST_NAME, is_day, utc_day};
use crate::store::{Store, StoreError};

/// Days with a manifest read before the day of `from`, at most, to find the segments that
/// hold the records at `from` and the start of their writer run.
pub const LOOKBACK_DAYS_MAX: usize = 62;
/// Boxes, or days of one box, listed at most.
const LISTED_MAX: usize = 100_000;
/// Segments one read fetches at most.
pub const SEGMENTS_MAX: usize = 100_000;
/// One request to the store, at most.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Where the archive is and how to reach it: the options every tool that reads it takes.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ArchiveArgs {
    /// Read the journal from levibot-archiver's archive instead of a journal directory: a
    /// directory (a `dir` target) or s3://BUCKET/PREFIX (an `s3` target).
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub archive: Option<String>,
    /// With --archive: the box whose journal to read (default: the only box in the archive).
    #[arg(long = "box", value_name = "NAME", requires = "archive")]
    pub box_name: Option<String>,
    /// With --archive: keep the fetched segments in this directory (one journal directory per
    /// journal, under <DIR>/<box>/); what is there already and verifies is not fetched again.
    /// Default: a temporary directory, removed afterwards.
    #[arg(long, value_name = "DIR", requires = "archive")]
    pub cache_dir: Option<PathBuf>,
    #[command(flatten)]
    pub s3: S3Args,
}

/// How to reach an S3-compatible store: the `[[target]]` keys of levibot-archiver's
/// configuration, as options.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct S3Args {
    /// For s3:// locations: the store's URL (unset: AWS S3), e.g. https://minio.internal:9000.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// For s3:// locations: the bucket's region (default us-east-1).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// For s3:// locations: allow a plain http:// endpoint (loopback tests only).
    #[arg(long)]
    pub allow_http: bool,
    /// For s3:// locations: a TOML file with access_key_id, secret_access_key and optionally
    /// session_token, readable by its owner and group only (default: the AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN environment variables).
    #[arg(long, value_name = "FILE")]
    pub credentials_file: Option<PathBuf>,
}

impl S3Args {
    /// A location: `s3://...` with these options, or a directory.
    pub fn location(&self, location: &str) -> Result<TargetKind, ReadError> {
        if location.starts_with("s3://") {
            let config = S3Config::new(S3Parts {
                url: location,
                endpoint: self.endpoint.clone(),
                region: self.region.clone(),
                allow_http: self.allow_http,
                credentials_file: self.credentials_file.as_deref(),
            })
            .map_err(|(key, reason)| ReadError::Location {
                location: location.to_owned(),
                // The configuration's words for its keys, as the options spell them.
                reason: format!(
                    "{}: {}",
                    option_of(key),
                    reason.replace("allow_http = true", "--allow-http")
                ),
            })?;
            return Ok(TargetKind::S3(config));
        }
        if location.contains("://") {
            return Err(ReadError::Location {
                location: location.to_owned(),
                reason: "a directory or s3://bucket/prefix".into(),
            });
        }
        Ok(TargetKind::Dir {
            dir: PathBuf::from(location),
        })
    }

    /// The client of a location.
    pub fn store(&self, location: &str) -> Result<Store, ReadError> {
        Ok(Store::new(&self.location(location)?, REQUEST_TIMEOUT)?)
    }
}

/// The command-line option of a configuration key.
fn option_of(key: &str) -> &'static str {
    match key {
        "endpoint" => "--endpoint",
        "credentials_file" => "--credentials-file",
        _ => "the location",
    }
}

/// The time range of a read, ns since the Unix epoch: `from` inclusive, `until` exclusive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    pub from_ns: Option<u64>,
    pub until_ns: Option<u64>,
    /// Every segment of the writer run live at `from`, from its first, with no gap: for the
    /// readers that replay a session from its start and read a journal straight through (the
    /// backtest's input, `capture check`), which end at a missing segment.
    pub from_run_start: bool,
}

/// Why the archive could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("--archive {location}: {reason}")]
    Location { location: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Manifest(#[from] ArchiveError),
    #[error("{manifest}: {reason}")]
    BadEntry { manifest: String, reason: String },
    #[error("no box in the archive {location}")]
    NoBox { location: String },
    #[error("the archive {location} holds several boxes: give --box with one of {}", boxes.join(", "))]
    WhichBox {
        location: String,
        boxes: Vec<String>,
    },
    #[error("--box {name:?}: not a box name")]
    BadBox { name: String },
    #[error("box {name} has nothing archived in {location}")]
    NoSuchBox { name: String, location: String },
    #[error(
        "{object}: {size} bytes, SHA-256 {sha256}; its manifest says {expected_size} bytes, {expected_sha256}: not read"
    )]
    Corrupt {
        object: String,
        size: u64,
        sha256: String,
        expected_size: u64,
        expected_sha256: String,
    },
    #[error("{object}: listed in its manifest, not in the archive")]
    Missing { object: String },
    #[error("--cache-dir {}: holds journal segments: give a directory of its own", dir.display())]
    CacheIsJournal { dir: PathBuf },
    #[error("the range selects more than {SEGMENTS_MAX} segments: narrow it with --from/--until")]
    TooMany,
    #[error("{path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
}

fn io_error<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> ReadError + 'a {
    move |source| ReadError::Io {
        path: path.to_owned(),
        op,
        source,
    }
}

/// A read, materialized: local journal directories, oldest first.
#[derive(Debug)]
pub struct Fetched {
    pub box_name: String,
    /// One journal directory per journal the range covers (several only when the box's
    /// journal was made anew within it), oldest first.
    pub journals: Vec<PathBuf>,
    /// The segments read, in order (their manifest entries).
    pub segments: Vec<Entry>,
    /// Segments copied from the archive; the others were in the cache already.
    pub fetched: usize,
    _temp: Option<tempfile::TempDir>,
}

impl Fetched {
    /// The one journal directory, or an error for a range that covers several journals (the
    /// tools that read one journal at a time: Parquet export, backtest).
    pub fn single_journal(&self) -> Result<&Path, String> {
        match self.journals.as_slice() {
            [only] => Ok(only),
            [] => Err(format!(
                "box {}: no archived segment in this range",
                self.box_name
            )),
            several => Err(format!(
                "box {}: the range covers {} journals (the journal was made anew at {}): \
                 narrow it with --from/--until to one of them",
                self.box_name,
                several.len(),
                several[1..]
                    .iter()
                    .filter_map(|dir| {
                        let epoch = dir.file_name()?.to_str()?.parse::<u64>().ok()?;
                        self.segments
                            .iter()
                            .find(|e| e.epoch == epoch)
                            .map(|e| rfc3339_seconds(e.created_unix_ns))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// A time as the operator gives it back (RFC 3339, UTC, seconds).
fn rfc3339_seconds(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        utc_day(unix_ns),
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Reads the range of the archive `args` names into local journal directories (blocking: a
/// runtime of its own for the store's client).
pub fn fetch(args: &ArchiveArgs, range: Range) -> Result<Fetched, ReadError> {
    let location = args.archive.as_deref().ok_or_else(|| ReadError::Location {
        location: String::new(),
        reason: "no --archive given".into(),
    })?;
    let store = args.s3.store(location)?;
    block_on(fetch_from(
        &store,
        location,
        args.box_name.as_deref(),
        args.cache_dir.as_deref(),
        range,
    ))
}

/// Runs a future on a current-thread runtime made for it.
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime starts")
        .block_on(future)
}

/// [`fetch`] from a store.
pub async fn fetch_from(
    store: &Store,
    location: &str,
    box_name: Option<&str>,
    cache_dir: Option<&Path>,
    range: Range,
) -> Result<Fetched, ReadError> {
    let box_name = match box_name {
        Some(name) if !is_box_name(name) => {
            return Err(ReadError::BadBox {
                name: name.to_owned(),
            });
        }
        Some(name) => name.to_owned(),
        None => only_box(store, location).await?,
    };
    let days: Vec<String> = store
        .list_dirs(&box_name, LISTED_MAX)
        .await?
        .into_iter()
        .filter(|d| is_day(d))
        .collect();
    if days.is_empty() {
        return Err(ReadError::NoSuchBox {
            name: box_name,
            location: location.to_owned(),
        });
    }
    let from_day = range.from_ns.map(utc_day);
    let until_day = range.until_ns.map(|u| utc_day(u.saturating_sub(1)));
    let in_range = |d: &String| {
        from_day.as_ref().is_none_or(|f| d >= f) && until_day.as_ref().is_none_or(|u| d <= u)
    };
    let mut entries = Vec::new();
    for day in days.iter().filter(|d| in_range(d)) {
        entries.extend(day_entries(store, &box_name, day).await?);
    }
    let mut earlier = days
        .iter()
        .rev()
        .filter(|d| from_day.as_ref().is_some_and(|f| *d < f));
    let mut looked_back = 0;
    loop {
        sort(&mut entries);
        if !needs_earlier(&entries, range) || looked_back >= LOOKBACK_DAYS_MAX {
            break;
        }
        let Some(day) = earlier.next() else { break };
        entries.extend(day_entries(store, &box_name, day).await?);
        looked_back += 1;
    }
    let selected = select(&entries, range);
    if selected.len() > SEGMENTS_MAX {
        return Err(ReadError::TooMany);
    }
    let (root, temp) = match cache_dir {
        // A journal directory (the daemon's, say) is never written into.
        Some(dir) if levibot_shm::list_segments(dir).is_ok_and(|s| !s.is_empty()) => {
            return Err(ReadError::CacheIsJournal {
                dir: dir.to_owned(),
            });
        }
        Some(dir) => (dir.to_owned(), None),
        None => {
            let temp = tempfile::Builder::new()
                .prefix("levibot-archive-")
                .tempdir()
                .map_err(io_error(
                    &std::env::temp_dir(),
                    "create a temporary directory",
                ))?;
            (temp.path().to_owned(), Some(temp))
        }
    };
    let mut journals = Vec::new();
    let mut fetched = 0;
    for group in journals_of(&selected) {
        let dir = root.join(&box_name).join(group[0].epoch.to_string());
        fetched += materialize(store, &dir, group).await?;
        journals.push(dir);
    }
    Ok(Fetched {
        box_name,
        journals,
        segments: selected,
        fetched,
        _temp: temp,
    })
}

/// The one box under the location, or an error listing them.
async fn only_box(store: &Store, location: &str) -> Result<String, ReadError> {
    let boxes: Vec<String> = store
        .list_dirs("", LISTED_MAX)
        .await?
        .into_iter()
        .filter(|b| is_box_name(b))
        .collect();
    match boxes.as_slice() {
        [] => Err(ReadError::NoBox {
            location: location.to_owned(),
        }),
        [only] => Ok(only.clone()),
        _ => Err(ReadError::WhichBox {
            location: location.to_owned(),
            boxes,
        }),
    }
}

/// A day's manifest's entries, each checked to name an object of this box and day and a
/// segment file (a manifest is read from outside: its names become local paths).
async fn day_entries(store: &Store, box_name: &str, day: &str) -> Result<Vec<Entry>, ReadError> {
    let key = format!("{box_name}/{day}/{MANIFEST_NAME}");
    let Some(manifest) = read_manifest(store, &key).await? else {
        return Ok(Vec::new());
    };
    let bad = |reason: String| ReadError::BadEntry {
        manifest: store.describe(&key),
        reason,
    };
    if manifest.objects.len() > SEGMENTS_MAX {
        return Err(bad(format!("more than {SEGMENTS_MAX} objects")));
    }
    for (object, entry) in &manifest.objects {
        let expected = format!("{box_name}/{day}/{}/{}", entry.epoch, entry.file);
        if *object != entry.object || entry.object != expected || entry.day != day {
            return Err(bad(format!(
                "{object}: not {expected}, the key of its entry"
            )));
        }
        if parse_segment_file_name(&entry.file) != Some((entry.index, entry.compressed)) {
            return Err(bad(format!(
                "{object}: {:?} is not the file name of segment {} ({})",
                entry.file,
                entry.index,
                if entry.compressed {
                    "compressed"
                } else {
                    "raw"
                }
            )));
        }
    }
    Ok(manifest.objects.into_values().collect())
}

/// Creation order (index order within a journal; a reboot's journal after the one before it).
fn sort(entries: &mut [Entry]) {
    entries.sort_by_key(|e| (e.created_unix_ns, e.epoch, e.index));
}

/// Where a read starts in `entries` (sorted): the segment before the last one created at or
/// before `from` when both are of one writer run, since a run creates its next segment ahead
/// of its use (a run's first segment is made when it starts: nothing of the run before it
/// goes on being written).
fn start_of(entries: &[Entry], from_ns: Option<u64>) -> usize {
    let Some(from) = from_ns else { return 0 };
    let upto = entries.partition_point(|e| e.created_unix_ns <= from);
    match upto {
        0 | 1 => 0,
        n if entries[n - 1].epoch == entries[n - 2].epoch
            && entries[n - 1].index == entries[n - 2].index + 1 =>
        {
            n - 2
        }
        n => n - 1,
    }
}

/// The first segment of the writer run of `entries[at]`, if `entries` reach back to it: the
/// run's earliest segment there is index 0 (a new journal) or has a segment of another run
/// before it.
fn run_start(entries: &[Entry], at: usize) -> Option<usize> {
    let epoch = entries.get(at)?.epoch;
    let first = entries.iter().position(|e| e.epoch == epoch)?;
    (first > 0 || entries[first].index == 0).then_some(first)
}

/// Whether days before those read are needed: fewer than the two segments created at or
/// before `from` that the start needs, or not the start of the writer run the read begins in.
fn needs_earlier(entries: &[Entry], range: Range) -> bool {
    let Some(from) = range.from_ns else {
        return false;
    };
    let upto = entries.partition_point(|e| e.created_unix_ns <= from);
    if upto == 0 || (upto == 1 && entries[0].index != 0) {
        return true;
    }
    run_start(entries, start_of(entries, range.from_ns)).is_none()
}

/// The segments a range needs, in order (see the module doc), from `entries` sorted.
fn select(entries: &[Entry], range: Range) -> Vec<Entry> {
    let start = start_of(entries, range.from_ns);
    let end = range.until_ns.map_or(entries.len(), |u| {
        entries.partition_point(|e| e.created_unix_ns < u)
    });
    if start >= end {
        return Vec::new();
    }
    let mut selected = Vec::with_capacity(end - start + 1);
    match run_start(entries, start).filter(|&first| first < start) {
        Some(first) if range.from_run_start => return entries[first..end].to_vec(),
        Some(first) => selected.push(entries[first].clone()),
        None => {}
    }
    selected.extend_from_slice(&entries[start..end]);
    selected
}

/// `selected` cut into journals: a new one wherever a segment index does not grow.
fn journals_of(selected: &[Entry]) -> Vec<&[Entry]> {
    let mut journals = Vec::new();
    let mut begin = 0;
    for i in 1..=selected.len() {
        if i == selected.len() || selected[i].index <= selected[i - 1].index {
            if begin < i {
                journals.push(&selected[begin..i]);
            }
            begin = i;
        }
    }
    journals
}

/// Puts `entries` (one journal's) into `dir`, verified; removes other segment files there.
/// Returns how many were copied from the store.
async fn materialize(store: &Store, dir: &Path, entries: &[Entry]) -> Result<usize, ReadError> {
    std::fs::create_dir_all(dir).map_err(io_error(dir, "create_dir_all"))?;
    let wanted: BTreeMap<&str, &Entry> = entries.iter().map(|e| (e.file.as_str(), e)).collect();
    let listing = std::fs::read_dir(dir).map_err(io_error(dir, "read_dir"))?;
    for item in listing {
        let item = item.map_err(io_error(dir, "read_dir"))?;
        let name = item.file_name().to_string_lossy().into_owned();
        let stale = parse_segment_file_name(&name).is_some() && !wanted.contains_key(name.as_str());
        if stale || name.ends_with(".partial") {
            std::fs::remove_file(item.path()).map_err(io_error(&item.path(), "remove"))?;
        }
    }
    let mut fetched = 0;
    for entry in entries {
        let path = dir.join(&entry.file);
        if cached(&path, entry).await? {
            continue;
        }
        let partial = dir.join(format!("{}.partial", entry.file));
        let object = store.describe(&entry.object);
        let got = store.download(&entry.object, &partial).await;
        let got = match got {
            Ok(Some(got)) => got,
            Ok(None) => {
                let _ = std::fs::remove_file(&partial);
                return Err(ReadError::Missing { object });
            }
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e.into());
            }
        };
        if got.size != entry.size || got.sha256 != entry.sha256 {
            let _ = std::fs::remove_file(&partial);
            return Err(ReadError::Corrupt {
                object,
                size: got.size,
                sha256: got.sha256,
                expected_size: entry.size,
                expected_sha256: entry.sha256.clone(),
            });
        }
        std::fs::rename(&partial, &path).map_err(io_error(&path, "rename"))?;
        fetched += 1;
    }
    Ok(fetched)
}

/// Whether `path` holds the entry's object already (size, then SHA-256).
async fn cached(path: &Path, entry: &Entry) -> Result<bool, ReadError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() == entry.size => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_error(path, "stat")(e)),
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(false);
    };
    let local = Store::Dir {
        root: dir.to_owned(),
    };
    let digest = local.digest(&name.to_string_lossy()).await?;
    Ok(digest.is_some_and(|d| d.sha256 == entry.sha256))
}

#[cfg(test)]
mod tests;
