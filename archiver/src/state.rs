//! What is archived: the state file (`state.json` in the state dir, written atomically after
//! every step) and the per-day manifests (`manifest.json` beside each day's objects).
//!
//! A segment is named by its writer run's epoch and its index (`<epoch>-<index>`): an index
//! alone repeats when the journal is made anew (after a reboot, `/dev/shm` is empty and indices
//! start at 0 again), and the raw and the compressed file of one segment have one name, so a
//! segment compressed between two polls is still archived once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::{StoreError, write_atomically};

/// The state file's name in the state dir.
pub const STATE_FILE_NAME: &str = "state.json";
/// The counters file's name in the state dir.
pub const COUNTERS_FILE_NAME: &str = "archiver.lvc";
/// The manifest's name in each day's directory.
pub const MANIFEST_NAME: &str = "manifest.json";
/// The state file is read into memory: this is the most it may take.
const STATE_LEN_MAX: u64 = 64 << 20;
const STATE_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: larger than {STATE_LEN_MAX} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path}: not a state file of this archiver: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(transparent)]
    Write(#[from] StoreError),
}

/// One archived segment, as the state file and the manifest record it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The object's key under the target (`<box>/<day>/<epoch>/<file name>`).
    pub object: String,
    /// The segment's file name as archived (`journal-N.lvj` or `journal-N.lvj.gz`).
    pub file: String,
    pub index: u64,
    pub epoch: u64,
    pub compressed: bool,
    pub size: u64,
    pub sha256: String,
    /// When the segment was created (its first frame is later), Unix ns.
    pub created_unix_ns: u64,
    /// The UTC day of `created_unix_ns`, `YYYY-MM-DD`.
    pub day: String,
}

/// An upload that was started and not yet verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InProgress {
    pub object: String,
    /// The multipart upload's id, to abort it after a crash.
    pub upload_id: Option<String>,
}

/// One target's part of the state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetState {
    /// Archived and verified segments by `<epoch>-<index>`, while their files are still in the
    /// journal (the manifests keep them for good).
    pub archived: BTreeMap<String, Entry>,
    /// Archived segments whose day's manifest does not list them yet.
    pub unlisted: Vec<String>,
    pub in_progress: Option<InProgress>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub targets: BTreeMap<String, TargetState>,
}

/// A segment's name in the state: `<epoch>-<index>`.
pub fn segment_id(epoch: u64, index: u64) -> String {
    format!("{epoch}-{index:010}")
}

impl State {
    /// Reads the state file; an absent one is an empty state.
    pub fn load(state_dir: &Path) -> Result<State, StateError> {
        use std::io::Read;
        let path = state_dir.join(STATE_FILE_NAME);
        let read = |source| StateError::Read {
            path: path.clone(),
            source,
        };
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(State {
                    version: STATE_VERSION,
                    targets: BTreeMap::new(),
                });
            }
            Err(e) => return Err(read(e)),
        };
        let mut bytes = Vec::new();
        file.take(STATE_LEN_MAX + 1)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        if bytes.len() as u64 > STATE_LEN_MAX {
            return Err(StateError::TooLarge { path });
        }
        let state: State = serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if state.version != STATE_VERSION {
            return Err(StateError::Corrupt {
                path,
                reason: format!(
                    "version {}, this archiver writes {STATE_VERSION}",
                    state.version
                ),
            });
        }
        Ok(state)
    }

    /// Writes the state file atomically (fsync, rename, fsync of the directory).
    pub fn save(&self, state_dir: &Path) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| StateError::Corrupt {
            path: state_dir.join(STATE_FILE_NAME),
            reason: e.to_string(),
        })?;
        write_atomically(&state_dir.join(STATE_FILE_NAME), &bytes)?;
        Ok(())
    }

    pub fn target(&mut self, name: &str) -> &mut TargetState {
        self.targets.entry(name.to_owned()).or_default()
    }
}

/// A day's manifest: every object archived for the day, written after the objects it lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "box")]
    pub box_name: String,
    pub day: String,
    /// By object key, so that a manifest rewritten after a crash lists each once.
    pub objects: BTreeMap<String, Entry>,
}

/// The UTC calendar day (`YYYY-MM-DD`) of a Unix time in ns.
pub fn utc_day(unix_ns: u64) -> String {
    // Days since 1970-01-01 to a civil date (the proleptic Gregorian calendar), by eras of
    // 400 years (146097 days) starting on March 1st, so that the leap day ends a year.
    let days = (unix_ns / 1_000_000_000 / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Whether `day` is spelled `YYYY-MM-DD`.
pub fn is_day(day: &str) -> bool {
    let b = day.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_days_of_known_times() {
        assert_eq!(utc_day(0), "1970-01-01");
        // 2000-02-29T12:00:00Z, a leap day of a year divisible by 400.
        assert_eq!(utc_day(951_825_600 * 1_000_000_000), "2000-02-29");
        // 2024-12-31T23:59:59Z and one second later.
        assert_eq!(utc_day(1_735_689_599 * 1_000_000_000), "2024-12-31");
        assert_eq!(utc_day(1_735_689_600 * 1_000_000_000), "2025-01-01");
        assert!(is_day("2025-01-01"));
        assert!(!is_day("2025-1-01"));
        assert!(!is_day("../../etc"));
    }
}
