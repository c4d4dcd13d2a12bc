//! The archive watermark: what `levibot-archiver` has copied, for the daemon's retention.
//!
//! The contract between the two processes is one small text file that the archiver writes
//! atomically (a temporary file, fsync, rename) in its own state dir, and that the daemon's
//! maintenance thread reads, read-only, before each retention pass:
//!
//! ```text
//! levibot-archive-watermark 1
//! # <epoch> <index>: every segment of writer run <epoch> with an index <= <index> that the
//! # journal still holds is archived and verified on every target
//! 1733612345678901234 41
//! 1733698765432109876 3
//! ```
//!
//! One line per writer run (a segment header's `epoch`) that still has segments in the
//! journal. A segment is archived if its epoch is listed with an index at or above its own.
//! The archiver moves a run's mark only over a contiguous run of archived segments (every
//! file of that epoch it lists, sealed or not, up to the mark), so that a segment it has not
//! seen yet, or not sealed yet, can never fall below the mark: indices only grow within a run,
//! and a new run has a new epoch.
//!
//! The daemon never writes the file and the archiver never writes the journal. A missing,
//! unreadable or malformed file means that nothing is archived, never that everything is.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::error::{Result, ShmError};

/// The file's name in the archiver's state dir.
pub const WATERMARK_FILE_NAME: &str = "archived.watermark";
/// The first line: what the file is and the version of its format.
pub const WATERMARK_MAGIC_LINE: &str = "levibot-archive-watermark 1";
/// The file is read whole: this is the most it may take.
pub const WATERMARK_LEN_MAX: usize = 64 * 1024;
/// Writer runs one file may list (a journal holding this many runs is far past any retention).
pub const WATERMARK_EPOCHS_MAX: usize = 1024;

/// Per writer run (epoch), the index up to which every segment is archived.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchiveWatermark {
    by_epoch: BTreeMap<u64, u64>,
}

impl ArchiveWatermark {
    /// Nothing archived.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks every segment of `epoch` up to `index` archived (a lower mark than the one held
    /// is ignored: a mark never goes back).
    pub fn set(&mut self, epoch: u64, index: u64) {
        let mark = self.by_epoch.entry(epoch).or_insert(index);
        *mark = (*mark).max(index);
    }

    /// Whether segment `index` of writer run `epoch` is archived.
    pub fn covers(&self, epoch: u64, index: u64) -> bool {
        self.by_epoch.get(&epoch).is_some_and(|&mark| index <= mark)
    }

    /// The marks, by epoch.
    pub fn marks(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.by_epoch.iter().map(|(&e, &i)| (e, i))
    }

    pub fn is_empty(&self) -> bool {
        self.by_epoch.is_empty()
    }

    /// The file's text. At most [`WATERMARK_EPOCHS_MAX`] runs are written: the newest ones
    /// (epochs are wall-clock based), since older runs leave the journal first.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{WATERMARK_MAGIC_LINE}\n# <epoch> <index>: every segment of writer run <epoch> \
             with an index <= <index> that the journal still holds is archived and verified on \
             every target\n"
        );
        let skip = self.by_epoch.len().saturating_sub(WATERMARK_EPOCHS_MAX);
        for (epoch, index) in self.by_epoch.iter().skip(skip) {
            text.push_str(&format!("{epoch} {index}\n"));
        }
        text
    }

    /// Parses the file's text; `path` names it in errors, which give the line.
    pub fn parse(path: &Path, text: &[u8]) -> Result<Self> {
        let bad = |line: usize, reason: String| ShmError::Watermark {
            path: path.to_owned(),
            line,
            reason,
        };
        if text.len() > WATERMARK_LEN_MAX {
            return Err(bad(0, format!("larger than {WATERMARK_LEN_MAX} bytes")));
        }
        let text = std::str::from_utf8(text).map_err(|e| bad(0, format!("not UTF-8: {e}")))?;
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
        match lines.next() {
            Some((_, WATERMARK_MAGIC_LINE)) => {}
            Some((n, other)) => {
                return Err(bad(n, format!("{other:?} is not {WATERMARK_MAGIC_LINE:?}")));
            }
            None => return Err(bad(1, "empty".into())),
        }
        let mut mark = ArchiveWatermark::new();
        for (n, line) in lines {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_ascii_whitespace();
            let (Some(epoch), Some(index), None) = (words.next(), words.next(), words.next())
            else {
                return Err(bad(n, format!("{line:?} is not \"<epoch> <index>\"")));
            };
            let number = |word: &str| {
                word.parse::<u64>()
                    .map_err(|e| bad(n, format!("{word:?}: {e}")))
            };
            let (epoch, index) = (number(epoch)?, number(index)?);
            if mark.by_epoch.insert(epoch, index).is_some() {
                return Err(bad(n, format!("epoch {epoch} is listed twice")));
            }
            if mark.by_epoch.len() > WATERMARK_EPOCHS_MAX {
                return Err(bad(n, format!("more than {WATERMARK_EPOCHS_MAX} epochs")));
            }
        }
        Ok(mark)
    }

    /// Reads and parses the file at `path` (at most [`WATERMARK_LEN_MAX`] bytes). Cold path:
    /// the daemon calls it from its maintenance thread only.
    pub fn read(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| ShmError::io(path, "open", e))?;
        let mut bytes = Vec::new();
        file.take(WATERMARK_LEN_MAX as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ShmError::io(path, "read", e))?;
        ArchiveWatermark::parse(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ArchiveWatermark> {
        ArchiveWatermark::parse(Path::new("w"), text.as_bytes())
    }

    #[test]
    fn reads_back_what_it_writes() {
        let mut mark = ArchiveWatermark::new();
        mark.set(7, 3);
        mark.set(9, 0);
        mark.set(7, 2); // never goes back
        let read = parse(&mark.to_text()).unwrap();
        assert_eq!(read, mark);
        assert_eq!(read.marks().collect::<Vec<_>>(), [(7, 3), (9, 0)]);
        assert!(!read.is_empty() && ArchiveWatermark::new().is_empty());
        assert!(read.covers(7, 0) && read.covers(7, 3) && !read.covers(7, 4));
        assert!(read.covers(9, 0) && !read.covers(9, 1));
        assert!(
            !read.covers(8, 0),
            "an epoch not listed has nothing archived"
        );
    }

    #[test]
    fn refuses_what_is_not_a_watermark_naming_the_line() {
        for (text, line, says) in [
            ("", 1, "empty"),
            ("levibot-archive-watermark 2\n", 1, "is not"),
            ("levibot-archive-watermark 1\n7 3\nseven 3\n", 3, "seven"),
            (
                "levibot-archive-watermark 1\n7\n",
                2,
                "is not \"<epoch> <index>\"",
            ),
            ("levibot-archive-watermark 1\n7 3 4\n", 2, "is not"),
            ("levibot-archive-watermark 1\n7 3\n7 4\n", 3, "twice"),
            ("levibot-archive-watermark 1\n7 -3\n", 2, "-3"),
        ] {
            match parse(text) {
                Err(ShmError::Watermark {
                    line: got, reason, ..
                }) => {
                    assert_eq!(got, line, "{text:?}: {reason}");
                    assert!(reason.contains(says), "{text:?}: {reason}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let long = format!("{WATERMARK_MAGIC_LINE}\n{}", "#".repeat(WATERMARK_LEN_MAX));
        assert!(parse(&long).is_err());
        let many: String = (0..=WATERMARK_EPOCHS_MAX)
            .map(|e| format!("{e} 1\n"))
            .collect();
        assert!(parse(&format!("{WATERMARK_MAGIC_LINE}\n{many}")).is_err());
    }

    #[test]
    fn a_file_of_the_largest_size_is_read_and_one_byte_more_is_refused() {
        let dir = std::env::temp_dir().join(format!("levibot-watermark-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(WATERMARK_FILE_NAME);
        let head = format!("{WATERMARK_MAGIC_LINE}\n7 3\n#");
        let largest = format!("{head}{}", "x".repeat(WATERMARK_LEN_MAX - head.len()));
        std::fs::write(&path, &largest).unwrap();
        assert!(ArchiveWatermark::read(&path).unwrap().covers(7, 3));
        assert!(parse(&largest).is_ok());
        std::fs::write(&path, format!("{largest}x")).unwrap();
        let error = ArchiveWatermark::read(&path).unwrap_err().to_string();
        assert!(error.contains("larger than"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writes_at_most_the_newest_epochs_it_may() {
        let mut mark = ArchiveWatermark::new();
        for epoch in 0..WATERMARK_EPOCHS_MAX as u64 + 5 {
            mark.set(epoch, 1);
        }
        let read = parse(&mark.to_text()).unwrap();
        assert!(!read.covers(4, 1) && read.covers(5, 1));
    }
}
