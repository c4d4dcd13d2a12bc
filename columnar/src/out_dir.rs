//! An output directory: which `DIR` may be written ([`OutRules`]), the staging directory
//! `DIR.partial` it is written under and the rename that publishes it complete
//! ([`Staging`]), the manifest that marks it as ours, and the partition paths of an export
//! inside it ([`Partition`]).

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use levibot_view::{RecordKind, format_unix_ns};
use rustix::fs::{CWD, RenameFlags, renameat_with};

use crate::{ExportError, Producer};

/// The manifest at the top of an export: what marks a directory as a parquet export of
/// levictl (which a later export may replace), and what it holds.
pub const MANIFEST: &str = "_levictl_export.json";

/// The partition value of records without a symbol.
pub const NO_SYMBOL: &str = "_";

/// Ns in a UTC day.
const DAY_NS: u64 = 86_400_000_000_000;

/// What marks an output directory as ours, what it may hold, and whether a new one replaces
/// it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutRules {
    /// The flag that names the directory, for errors (`--out`).
    pub flag: &'static str,
    /// The manifest's file name at the top of the directory, and its `format`.
    pub manifest: &'static str,
    pub format: &'static str,
    /// What such a directory is, for errors (`parquet export of levictl`).
    pub what: &'static str,
    /// Whether a directory of ours is replaced as a whole; otherwise `DIR` must be absent or
    /// empty.
    pub replace_previous: bool,
    /// What else one of ours holds at its top, besides the manifest and `type=...`
    /// directories.
    pub entries: &'static [&'static str],
}

/// `levictl export --format parquet`'s directory: a previous export is replaced.
pub const EXPORT_RULES: OutRules = OutRules {
    flag: "--out",
    manifest: MANIFEST,
    format: "levictl-parquet",
    what: "parquet export of levictl",
    replace_previous: true,
    entries: &[],
};

impl OutRules {
    /// Whether `out` may be written (as [`Staging::begin`] checks it again): before the work
    /// that fills it, so that a refused `DIR` costs nothing.
    pub fn check(&self, out: &Path) -> Result<(), ExportError> {
        check_out_dir(out, self).map(|_| ())
    }

    /// [`OutRules::check`], and whether `out.partial` is free or an unfinished output of
    /// ours (which [`Staging::begin`] removes).
    pub fn check_staging(&self, out: &Path, producer: Producer) -> Result<(), ExportError> {
        self.check(out)?;
        stale_partial(&partial_path(out), self, producer).map(|_| ())
    }
}

/// Whether `partial` holds an unfinished output of ours (`true`: to be removed) or nothing;
/// anything else there is refused.
fn stale_partial(
    partial: &Path,
    rules: &OutRules,
    producer: Producer,
) -> Result<bool, ExportError> {
    if fs::symlink_metadata(partial).is_err() {
        return Ok(false);
    }
    if partial.is_dir() && is_ours(partial, rules)? {
        return Ok(true);
    }
    Err(ExportError::OutDir {
        flag: rules.flag,
        path: partial.to_owned(),
        why: format!(
            "is in the way of the export ({} writes there first); remove it",
            producer.name
        ),
    })
}

/// What `DIR` is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutDir {
    /// Absent, or an empty directory.
    Free,
    /// A previous output of ours: replaced as a whole once the new one is complete.
    Previous,
}

fn io_error(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> ExportError {
    let path = path.to_owned();
    move |source| ExportError::Io { path, op, source }
}

/// Whether `dir` holds an output of ours and nothing else: the manifest, with its format,
/// `type=...` directories and the rules' other entries.
fn is_ours(dir: &Path, rules: &OutRules) -> Result<bool, ExportError> {
    let manifest = match fs::read(dir.join(rules.manifest)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_error(&dir.join(rules.manifest), "reading")(e)),
    };
    let format = serde_json::from_slice::<serde_json::Value>(&manifest)
        .ok()
        .and_then(|m| m["format"].as_str().map(str::to_owned));
    if format.as_deref() != Some(rules.format) {
        return Ok(false);
    }
    for entry in fs::read_dir(dir).map_err(io_error(dir, "listing"))? {
        let entry = entry.map_err(io_error(dir, "listing"))?;
        let name = entry.file_name();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let ours = (name == rules.manifest && !is_dir)
            || name.to_str().is_some_and(|n| rules.entries.contains(&n))
            || (is_dir && name.to_str().is_some_and(|n| n.starts_with("type=")));
        if !ours {
            return Ok(false);
        }
    }
    Ok(true)
}

/// What `DIR` is, or why it may not be written: it must be absent, an empty directory, or
/// (where the rules replace one) a previous output of ours (see [`is_ours`]).
fn check_out_dir(dir: &Path, rules: &OutRules) -> Result<OutDir, ExportError> {
    let refused = |why: &str| ExportError::OutDir {
        flag: rules.flag,
        path: dir.to_owned(),
        why: why.to_owned(),
    };
    let meta = match fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(OutDir::Free),
        Err(e) => return Err(io_error(dir, "reading")(e)),
    };
    if !meta.is_dir() {
        return Err(refused("not a directory (nor is a symbolic link followed)"));
    }
    let empty = fs::read_dir(dir)
        .map_err(io_error(dir, "listing"))?
        .next()
        .is_none();
    if empty {
        Ok(OutDir::Free)
    } else if !rules.replace_previous {
        Err(refused(&format!(
            "not empty; give a new or empty directory (a previous {} is not replaced)",
            rules.what
        )))
    } else if is_ours(dir, rules)? {
        Ok(OutDir::Previous)
    } else {
        let mut holds = vec![rules.manifest];
        holds.extend(rules.entries);
        Err(refused(&format!(
            "not empty, and not a previous {} (those hold {} and type=... directories only); \
             give a new or empty directory",
            rules.what,
            holds.join(", ")
        )))
    }
}

/// Where an output is written before it is complete: `OUT.partial`, beside it.
pub fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

/// Writes the manifest (its format, then `fields`) into the top of an output of ours.
pub(crate) fn write_manifest(
    dir: &Path,
    rules: &OutRules,
    fields: &serde_json::Value,
) -> Result<(), ExportError> {
    let mut manifest = serde_json::json!({ "format": rules.format });
    if let (Some(all), Some(more)) = (manifest.as_object_mut(), fields.as_object()) {
        all.extend(more.clone());
    }
    let path = dir.join(rules.manifest);
    let text = serde_json::to_string_pretty(&manifest).expect("JSON values serialize");
    fs::write(&path, text + "\n").map_err(io_error(&path, "writing"))
}

/// An output being written: `DIR` checked, `DIR.partial` made fresh with a manifest saying
/// it is incomplete; [`Staging::finish`] completes the manifest and publishes it as `DIR`.
/// Dropped unfinished (an error on the way), the partial directory is removed: nothing
/// half-written is left to be mistaken for an output. One writer into a `DIR` at a time.
#[derive(Debug)]
pub struct Staging {
    out: PathBuf,
    partial: PathBuf,
    rules: OutRules,
    producer: Producer,
    done: bool,
}

impl Staging {
    /// Checks `out` against `rules` and makes `out.partial`. A partial directory of ours left
    /// by a writer that did not finish is removed first; anything else there is refused.
    pub fn begin(out: &Path, rules: OutRules, producer: Producer) -> Result<Staging, ExportError> {
        check_out_dir(out, &rules)?;
        let partial = partial_path(out);
        if stale_partial(&partial, &rules, producer)? {
            fs::remove_dir_all(&partial).map_err(io_error(&partial, "removing"))?;
        }
        fs::create_dir(&partial).map_err(io_error(&partial, "creating"))?;
        let staging = Staging {
            out: out.to_owned(),
            partial,
            rules,
            producer,
            done: false,
        };
        write_manifest(
            &staging.partial,
            &rules,
            &serde_json::json!({"complete": false}),
        )?;
        Ok(staging)
    }

    /// The directory to write into (`DIR.partial`).
    pub fn path(&self) -> &Path {
        &self.partial
    }

    /// Completes the manifest (`complete: true` and `fields`) and moves the output to `DIR`:
    /// a rename when `DIR` is free, an exchange of the two (then the old one removed) when it
    /// holds a previous output, so that `DIR` always holds a whole one.
    pub fn finish(mut self, fields: &serde_json::Value) -> Result<(), ExportError> {
        let mut manifest = serde_json::json!({"complete": true});
        if let (Some(all), Some(more)) = (manifest.as_object_mut(), fields.as_object()) {
            all.extend(more.clone());
        }
        write_manifest(&self.partial, &self.rules, &manifest)?;
        // Again: DIR may have changed while the output was written.
        let state = check_out_dir(&self.out, &self.rules)?;
        self.publish(state)?;
        self.done = true;
        Ok(())
    }

    fn publish(&self, state: OutDir) -> Result<(), ExportError> {
        let (partial, out) = (&self.partial, &self.out);
        let renaming = io_error(out, "renaming the complete export to");
        match state {
            OutDir::Free => fs::rename(partial, out).map_err(renaming),
            OutDir::Previous => {
                match renameat_with(CWD, partial, CWD, out, RenameFlags::EXCHANGE) {
                    Ok(()) => {}
                    // A filesystem without RENAME_EXCHANGE: out is missing for a moment.
                    Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
                        fs::remove_dir_all(out).map_err(io_error(out, "removing"))?;
                        return fs::rename(partial, out).map_err(renaming);
                    }
                    Err(e) => return Err(renaming(e.into())),
                }
                // `partial` holds the previous output now; the new one is in place whatever
                // becomes of it.
                if let Err(e) = fs::remove_dir_all(partial) {
                    eprintln!(
                        "{}: removing the previous export (now {}): {e}",
                        self.producer.context,
                        partial.display()
                    );
                }
                Ok(())
            }
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_dir_all(&self.partial);
        }
    }
}

/// One partition: a record type, a UTC date and a symbol.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Partition {
    pub kind: RecordKind,
    /// Days since the Unix epoch (UTC) of the records' time.
    pub day: u64,
    /// `None`: records without a symbol.
    pub symbol: Option<std::sync::Arc<str>>,
}

impl Partition {
    pub fn day_of(unix_ns: u64) -> u64 {
        unix_ns / DAY_NS
    }

    /// `YYYY-MM-DD`.
    pub fn date(&self) -> String {
        let mut date = format_unix_ns(self.day * DAY_NS);
        date.truncate("YYYY-MM-DD".len());
        date
    }

    /// The symbol as the partition value: [`NO_SYMBOL`] without one.
    pub fn symbol_value(&self) -> String {
        self.symbol.as_deref().map_or(NO_SYMBOL.to_owned(), escape)
    }

    /// `type=<name>/date=<YYYY-MM-DD>/symbol=<SYMBOL>` under `root`.
    pub fn dir(&self, root: &Path) -> PathBuf {
        root.join(format!("type={}", self.kind.name()))
            .join(format!("date={}", self.date()))
            .join(format!("symbol={}", self.symbol_value()))
    }

    /// The file of part `n` of this partition.
    pub fn file(&self, root: &Path, n: u32) -> PathBuf {
        let mut name = OsString::from(format!("part-{n:05}"));
        name.push(".parquet");
        self.dir(root).join(name)
    }
}

/// A symbol as a path segment: letters, digits, `-`, `_` and `.` as they are; anything else (a
/// leading `.`, and a symbol that is [`NO_SYMBOL`] itself) percent-encoded as Hive does, which
/// DuckDB and pyarrow decode. Venues' symbols are letters and digits.
fn escape(symbol: &str) -> String {
    if symbol == NO_SYMBOL {
        return "%5F".to_owned();
    }
    let mut out = String::with_capacity(symbol.len());
    for (i, b) in symbol.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_paths_are_hive_style_and_escape_odd_symbols() {
        let p = Partition {
            kind: RecordKind::Trade,
            day: Partition::day_of(1_795_654_923_123_456_789),
            symbol: Some("NKNUSDT".into()),
        };
        assert_eq!(
            p.file(Path::new("/x"), 3),
            Path::new("/x/type=trade/date=2026-11-26/symbol=NKNUSDT/part-00003.parquet")
        );
        let none = Partition { symbol: None, ..p };
        assert_eq!(none.symbol_value(), "_");
        assert_eq!(escape("../A/B=_"), "%2E.%2FA%2FB%3D_");
        assert_eq!(escape("_"), "%5F");
        assert_eq!(escape("1000SATS-USD.P_X"), "1000SATS-USD.P_X");
        let midnight = Partition {
            day: Partition::day_of(1_795_651_200_000_000_000),
            ..none.clone()
        };
        assert_eq!(midnight.date(), "2026-11-26");
        assert_eq!(
            Partition::day_of(1_795_651_199_999_999_999) + 1,
            midnight.day
        );
    }
}
