//! What the archiver publishes for others in its state dir: the archive watermark
//! (`archived.watermark`, which the daemon's retention reads, [`levibot_shm::watermark`]) and
//! its counters (`archiver.lvc`, which the exporter reads).
//!
//! Both get mode 0640 and the group of the journal directory (`levibot`): whoever may read the
//! journal may read what became of it, and nobody else (the archiver runs with `UMask=0077`,
//! its `state.json` stays 0600). The state dir itself is 0751 (`StateDirectoryMode=`): the
//! daemon and the exporter may open these two files by name, never list the directory. The
//! archiver may give a file that group because it is a member (`SupplementaryGroups=levibot`);
//! if it is not, the files keep its own group, and it says so once.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use levibot_shm::ArchiveWatermark;
use levibot_shm::watermark::WATERMARK_FILE_NAME;

use crate::archive::Journaled;
use crate::state::{COUNTERS_FILE_NAME, State, segment_id};
use crate::store::{StoreError, write_atomically_shared};

/// The mode of the files others read.
pub const SHARED_FILE_MODE: u32 = 0o640;

/// The watermark of what every target in `targets` has archived: per writer run, the last
/// index of the unbroken run of its segments (sealed or not, as the journal lists them now)
/// that every target has. A segment not sealed yet, or whose header could not be read this
/// pass, ends the run, so that no segment the archiver has not seen falls below a mark.
pub fn watermark(journaled: &Journaled, state: &State, targets: &[String]) -> ArchiveWatermark {
    let everywhere = |id: &str| {
        targets.iter().all(|name| {
            state
                .targets
                .get(name)
                .is_some_and(|t| t.archived.contains_key(id))
        })
    };
    let mut mark = ArchiveWatermark::new();
    let mut broken = std::collections::BTreeSet::new();
    for segment in &journaled.segments {
        if journaled
            .unreadable_from
            .is_some_and(|from| segment.index >= from)
        {
            break;
        }
        if broken.contains(&segment.epoch) {
            continue;
        }
        if segment.sealed && everywhere(&segment_id(segment.epoch, segment.index)) {
            mark.set(segment.epoch, segment.index);
        } else {
            broken.insert(segment.epoch);
        }
    }
    mark
}

/// Publishes the watermark and the counters file's mode and group, when they changed.
pub struct Publisher {
    state_dir: PathBuf,
    journal_dir: PathBuf,
    /// What was last written, and the group it was given.
    written: Option<(ArchiveWatermark, Option<u32>)>,
    /// The group the counters file has been given.
    counters_gid: Option<Option<u32>>,
    /// A chown was refused (said once).
    warned: bool,
}

impl Publisher {
    pub fn new(state_dir: &Path, journal_dir: &Path) -> Publisher {
        Publisher {
            state_dir: state_dir.to_owned(),
            journal_dir: journal_dir.to_owned(),
            written: None,
            counters_gid: None,
            warned: false,
        }
    }

    /// The journal directory's group, if there is one to give (no journal yet: none).
    fn journal_gid(&self) -> Option<u32> {
        std::fs::metadata(&self.journal_dir).ok().map(|m| m.gid())
    }

    /// Writes `mark` (atomically) if it differs from what was written, or the group to give
    /// it changed; gives the counters file its mode and group.
    pub fn publish(&mut self, mark: ArchiveWatermark) -> Result<(), StoreError> {
        let gid = self.share_counters()?;
        if self
            .written
            .as_ref()
            .is_some_and(|(written, written_gid)| *written == mark && *written_gid == gid)
        {
            return Ok(());
        }
        let path = self.state_dir.join(WATERMARK_FILE_NAME);
        let chowned =
            write_atomically_shared(&path, mark.to_text().as_bytes(), SHARED_FILE_MODE, gid)?;
        self.warn_unless(chowned, &path, gid);
        self.written = Some((mark, gid));
        Ok(())
    }

    /// Gives the counters file its mode and the journal's group, unless it has them already
    /// (at start, so that the exporter reads it before the first pass ends). Returns the group.
    pub fn share_counters(&mut self) -> Result<Option<u32>, StoreError> {
        let gid = self.journal_gid();
        if self.counters_gid != Some(gid) {
            let path = self.state_dir.join(COUNTERS_FILE_NAME);
            self.share(&path, gid)?;
            self.counters_gid = Some(gid);
        }
        Ok(gid)
    }

    /// Mode 0640 and group `gid` for an existing file.
    fn share(&mut self, path: &Path, gid: Option<u32>) -> Result<(), StoreError> {
        let io = |op| {
            move |source| StoreError::Io {
                path: path.to_owned(),
                op,
                source,
            }
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(SHARED_FILE_MODE))
            .map_err(io("chmod"))?;
        let chowned = gid.is_none_or(|g| std::os::unix::fs::chown(path, None, Some(g)).is_ok());
        self.warn_unless(chowned, path, gid);
        Ok(())
    }

    fn warn_unless(&mut self, chowned: bool, path: &Path, gid: Option<u32>) {
        if !chowned && !self.warned {
            self.warned = true;
            tracing::warn!(
                "{}: cannot give it group {} (the journal's): the daemon and the exporter may \
                 not read it; is the archiver a member of that group (SupplementaryGroups=)?",
                path.display(),
                gid.unwrap_or_default()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::Listed;
    use crate::state::Entry;

    fn archived_on(state: &mut State, target: &str, epoch: u64, index: u64) {
        let entry = Entry {
            object: String::new(),
            file: String::new(),
            index,
            epoch,
            compressed: false,
            size: 0,
            sha256: String::new(),
            created_unix_ns: 0,
            day: String::new(),
        };
        state
            .target(target)
            .archived
            .insert(segment_id(epoch, index), entry);
    }

    #[test]
    fn a_mark_stops_at_the_first_segment_of_its_run_not_archived_everywhere() {
        let listed = |index, epoch, sealed| Listed {
            index,
            epoch,
            sealed,
        };
        let mut journaled = Journaled {
            sealed: Vec::new(),
            // Run 7: 0 archived, 1 not sealed yet, 2 archived. Run 9: 3, 4 and 5 archived
            // on both targets but 5, which only "a" has.
            segments: vec![
                listed(0, 7, true),
                listed(1, 7, false),
                listed(2, 7, true),
                listed(3, 9, true),
                listed(4, 9, true),
                listed(5, 9, true),
            ],
            unreadable_from: None,
        };
        let mut state = State::default();
        for (epoch, index) in [(7, 0), (7, 2), (9, 3), (9, 4), (9, 5)] {
            archived_on(&mut state, "a", epoch, index);
            if index != 5 {
                archived_on(&mut state, "b", epoch, index);
            }
        }
        let targets = ["a".to_owned(), "b".to_owned()];
        let mark = watermark(&journaled, &state, &targets);
        assert_eq!(mark.marks().collect::<Vec<_>>(), [(7, 0), (9, 4)]);
        // A header unreadable this pass stops every run there.
        journaled.unreadable_from = Some(4);
        let mark = watermark(&journaled, &state, &targets);
        assert_eq!(mark.marks().collect::<Vec<_>>(), [(7, 0), (9, 3)]);
        // A target with nothing: nothing is archived everywhere.
        let targets = ["a".to_owned(), "c".to_owned()];
        assert!(watermark(&journaled, &state, &targets).is_empty());
    }
}
