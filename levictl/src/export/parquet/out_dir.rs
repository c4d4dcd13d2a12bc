//! The export's directory: which `--out DIR` may be written ([`check_out_dir`]), the partition
//! paths inside it ([`Partition`]), the manifest that marks an export as levictl's, and the
//! rename that publishes a complete export ([`publish`]).

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use levibot_view::{RecordKind, format_unix_ns};
use rustix::fs::{CWD, RenameFlags, renameat_with};

use super::ParquetExportError;

/// The manifest at the top of an export: what marks a directory as a parquet export of
/// levictl (which a later export may replace), and what it holds.
pub const MANIFEST: &str = "_levictl_export.json";

/// The manifest's `format`.
const MANIFEST_FORMAT: &str = "levictl-parquet";

/// The partition value of records without a symbol.
pub const NO_SYMBOL: &str = "_";

/// Ns in a UTC day.
const DAY_NS: u64 = 86_400_000_000_000;

/// What `--out DIR` is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutDir {
    /// Absent, or an empty directory.
    Free,
    /// A previous export of levictl: replaced as a whole once the new one is complete.
    PreviousExport,
}

fn io_error(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> ParquetExportError {
    let path = path.to_owned();
    move |source| ParquetExportError::Io { path, op, source }
}

/// Whether `dir` holds a parquet export of levictl and nothing else: the manifest, with its
/// format, and `type=...` directories.
fn is_export(dir: &Path) -> Result<bool, ParquetExportError> {
    let manifest = match fs::read(dir.join(MANIFEST)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_error(&dir.join(MANIFEST), "reading")(e)),
    };
    let format = serde_json::from_slice::<serde_json::Value>(&manifest)
        .ok()
        .and_then(|m| m["format"].as_str().map(str::to_owned));
    if format.as_deref() != Some(MANIFEST_FORMAT) {
        return Ok(false);
    }
    for entry in fs::read_dir(dir).map_err(io_error(dir, "listing"))? {
        let entry = entry.map_err(io_error(dir, "listing"))?;
        let name = entry.file_name();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let ours = (name == MANIFEST && !is_dir)
            || (is_dir && name.to_str().is_some_and(|n| n.starts_with("type=")));
        if !ours {
            return Ok(false);
        }
    }
    Ok(true)
}

/// What `--out` is, or why it may not be written: it must be absent, an empty directory, or a
/// previous export (see [`is_export`]).
pub fn check_out_dir(dir: &Path) -> Result<OutDir, ParquetExportError> {
    let refused = |why: &str| ParquetExportError::OutDir {
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
    } else if is_export(dir)? {
        Ok(OutDir::PreviousExport)
    } else {
        Err(refused(&format!(
            "not empty, and not a previous parquet export of levictl (those hold {MANIFEST} and \
             type=... directories only); give a new or empty directory"
        )))
    }
}

/// Where an export is written before it is complete: `DIR.partial`, beside it.
pub fn partial_dir(out: &Path) -> PathBuf {
    super::super::partial_path(out)
}

/// Makes a fresh `partial` directory with a manifest saying it is incomplete. A `partial` left
/// by an export that did not finish is removed first; anything else there is refused.
pub fn create_partial(partial: &Path) -> Result<(), ParquetExportError> {
    if fs::symlink_metadata(partial).is_ok() {
        if !(partial.is_dir() && is_export(partial)?) {
            return Err(ParquetExportError::OutDir {
                path: partial.to_owned(),
                why: "is in the way of the export (levictl writes there first); remove it"
                    .to_owned(),
            });
        }
        fs::remove_dir_all(partial).map_err(io_error(partial, "removing"))?;
    }
    fs::create_dir(partial).map_err(io_error(partial, "creating"))?;
    write_manifest(partial, &serde_json::json!({"complete": false}))
}

/// Writes the manifest (`fields` and its format) into an export's directory.
pub fn write_manifest(dir: &Path, fields: &serde_json::Value) -> Result<(), ParquetExportError> {
    let mut manifest = serde_json::json!({ "format": MANIFEST_FORMAT });
    if let (Some(all), Some(more)) = (manifest.as_object_mut(), fields.as_object()) {
        all.extend(more.clone());
    }
    let path = dir.join(MANIFEST);
    let text = serde_json::to_string_pretty(&manifest).expect("JSON values serialize");
    fs::write(&path, text + "\n").map_err(io_error(&path, "writing"))
}

/// Moves the complete export in `partial` to `out`: a rename when `out` is free, an exchange
/// of the two (then the old one removed) when it holds a previous export, so that `out` always
/// holds a whole export.
pub fn publish(partial: &Path, out: &Path, state: OutDir) -> Result<(), ParquetExportError> {
    let renaming = io_error(out, "renaming the complete export to");
    match state {
        OutDir::Free => fs::rename(partial, out).map_err(renaming),
        OutDir::PreviousExport => {
            match renameat_with(CWD, partial, CWD, out, RenameFlags::EXCHANGE) {
                Ok(()) => {}
                // A filesystem without RENAME_EXCHANGE: out is missing for a moment.
                Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
                    fs::remove_dir_all(out).map_err(io_error(out, "removing"))?;
                    return fs::rename(partial, out).map_err(renaming);
                }
                Err(e) => return Err(renaming(e.into())),
            }
            // `partial` holds the previous export now; the new one is in place whatever
            // becomes of it.
            if let Err(e) = fs::remove_dir_all(partial) {
                eprintln!(
                    "levictl export: removing the previous export (now {}): {e}",
                    partial.display()
                );
            }
            Ok(())
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
