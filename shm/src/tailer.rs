//! The reader side: a tailer follows the journal read-only from any position, across segment
//! rollovers and writer restarts, and never sees a partial frame.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::clock::TscCalibration;
use crate::error::{Result, ShmError};
use crate::journal::{SegmentFile, list_segments, open_segment_file};
use crate::layout::*;
use crate::segment::{SegmentMap, Slot};

/// Where a tailer starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// The first frame of the oldest segment still on disk (raw or compressed).
    Beginning,
    /// After the last frame committed when the tailer opens.
    End,
    /// At a frame's position, as returned by an append or by [`Tailer::position`].
    Position(Position),
}

/// A committed frame, borrowed from the tailer's mapping.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub position: Position,
    pub record_type: RecordType,
    pub writer_id: u16,
    pub sequence: u64,
    /// Raw TSC stamp taken when the frame was claimed; see [`Tailer::calibration`].
    pub tsc: u64,
    pub payload: &'a [u8],
}

/// A writer restart seen by a tailer: a segment of a new writer run, or a new journal in place
/// of the one it was reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterRestart {
    pub old_epoch: u64,
    pub new_epoch: u64,
    /// The journal directory was emptied and started again; the tailer restarted at its
    /// beginning.
    pub new_journal: bool,
}

/// What one poll found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Polled {
    /// Frames handed to the callback.
    pub frames: usize,
    /// Set when the poll crossed into a new writer run.
    pub writer_restart: Option<WriterRestart>,
}

/// Idle polls between two checks that the segment file is still the one mapped (a `stat`).
const IDLE_POLLS_PER_FILE_CHECK: u32 = 1024;

/// Follows a journal read-only. Single-threaded; open one per reader.
pub struct Tailer {
    dir: PathBuf,
    segment: SegmentMap,
    /// Inode of the mapped segment file (0 for a decompressed one).
    inode: u64,
    offset: usize,
    /// The segment's claim counter as last loaded (see `SegmentMap::slot_below_tail`).
    tail_seen: usize,
    /// Where read-ahead hints have reached in the segment (see `SegmentMap::prefetch`).
    prefetched: usize,
    epoch: u64,
    idle_polls: u32,
}

/// How far ahead of the frame being read the tailer asks for cache lines, bytes.
const READ_AHEAD: usize = 4096;
/// A cache line.
const LINE: usize = 64;

impl std::fmt::Debug for Tailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tailer")
            .field("dir", &self.dir)
            .field("position", &self.position())
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl Tailer {
    /// Opens the journal in `dir` read-only at `start`.
    pub fn open(dir: impl AsRef<Path>, start: StartAt) -> Result<Tailer> {
        let dir = dir.as_ref().to_owned();
        let listing = list_segments(&dir)?;
        let first = listing
            .first()
            .ok_or_else(|| ShmError::NoJournal { dir: dir.clone() })?;
        let tailer = match start {
            StartAt::Beginning => Tailer::at_segment_start(dir.clone(), first)?,
            StartAt::End => {
                // The newest segment with anything claimed in it: segments after it are empty
                // (the spare `maintain` prepares, or a new run's first), and the tailer reaches
                // them by following.
                let mut newest = first;
                for file in listing.iter().rev().filter(|s| !s.compressed) {
                    newest = file;
                    if open_segment_file(file)?.claimed_tail() > HEADER_LEN {
                        break;
                    }
                }
                let mut tailer = Tailer::at_segment_start(dir.clone(), newest)?;
                let (end, _) = tailer.segment.walk_committed(HEADER_LEN, |_, _| {})?;
                tailer.offset = end;
                tailer
            }
            StartAt::Position(position) => {
                let size = open_segment_file(first)?.size();
                let (index, offset) = position.split(size);
                let file = listing.iter().find(|s| s.index == index).ok_or_else(|| {
                    ShmError::SegmentMissing {
                        path: dir.join(segment_file_name(index)),
                        index,
                        resumed_at: None,
                    }
                })?;
                let mut tailer = Tailer::at_segment_start(dir.clone(), file)?;
                // Valid positions are frame boundaries: walk to it over committed frames.
                let mut at = HEADER_LEN;
                while at < offset {
                    match tailer.segment.slot_at(at)? {
                        Slot::Frame { aligned } | Slot::Padding { aligned } => at += aligned,
                        _ => break,
                    }
                }
                if at != offset {
                    return Err(ShmError::InvalidPosition {
                        path: tailer.segment.path().to_owned(),
                        position: position.0,
                    });
                }
                tailer.offset = offset;
                tailer
            }
        };
        Ok(tailer)
    }

    fn at_segment_start(dir: PathBuf, file: &SegmentFile) -> Result<Tailer> {
        let segment = open_segment_file(file)?;
        Ok(Tailer {
            dir,
            inode: inode_of(file),
            epoch: segment.epoch(),
            segment,
            offset: HEADER_LEN,
            tail_seen: 0,
            prefetched: 0,
            idle_polls: 0,
        })
    }

    /// The position of the next frame this tailer will read.
    pub fn position(&self) -> Position {
        Position::new(self.segment.index(), self.offset, self.segment.size())
    }

    /// TSC calibration of the segment being read: turns `Frame::tsc` into time.
    pub fn calibration(&self) -> TscCalibration {
        self.segment.info().calibration
    }

    /// The writer run of the segment being read.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Pid of the writer of the segment being read.
    pub fn writer_pid(&self) -> u32 {
        self.segment.writer_pid()
    }

    /// The writer's last heartbeat (ns since the Unix epoch), as recorded in this segment.
    pub fn writer_heartbeat_unix_ns(&self) -> u64 {
        self.segment.heartbeat_unix_ns()
    }

    pub fn segment_path(&self) -> &Path {
        self.segment.path()
    }

    /// Hands up to `frames_max` committed frames to `on_frame`, in journal order, and returns at
    /// once when there is nothing more (it never waits). Padding is skipped.
    ///
    /// A missing segment (deleted or pruned while this tailer was behind) is returned as
    /// [`ShmError::SegmentMissing`] once; the tailer has then moved on to the next segment that
    /// exists, and the next poll goes on from there.
    pub fn poll(
        &mut self,
        frames_max: usize,
        mut on_frame: impl FnMut(&Frame<'_>),
    ) -> Result<Polled> {
        let mut polled = Polled::default();
        while polled.frames < frames_max {
            match self
                .segment
                .slot_below_tail(self.offset, &mut self.tail_seen)?
            {
                Slot::Frame { aligned } => {
                    let header = self.segment.frame_header(self.offset);
                    on_frame(&Frame {
                        position: self.position(),
                        record_type: header.record_type,
                        writer_id: header.writer_id,
                        sequence: header.sequence,
                        tsc: header.tsc,
                        payload: self.segment.payload(self.offset, header.payload_len),
                    });
                    self.offset += aligned;
                    polled.frames += 1;
                    self.prefetched = self.prefetched.max(self.offset);
                    let ahead = (self.offset + READ_AHEAD).min(self.tail_seen);
                    while self.prefetched < ahead {
                        self.segment.prefetch(self.prefetched, self.tail_seen);
                        self.prefetched += LINE;
                    }
                }
                Slot::Padding { aligned } => self.offset += aligned,
                Slot::Claimed { .. } | Slot::Empty => break,
                Slot::End => match self.next_segment()? {
                    Some(restart) => {
                        polled.writer_restart = polled.writer_restart.or(restart);
                    }
                    None => break,
                },
            }
        }
        if polled.frames == 0 && polled.writer_restart.is_none() {
            polled.writer_restart = self.check_writer_when_idle()?;
        } else {
            self.idle_polls = 0;
        }
        Ok(polled)
    }

    /// Moves to the segment after the current one. `Ok(None)` if it does not exist yet,
    /// `Ok(Some(restart))` once moved.
    fn next_segment(&mut self) -> Result<Option<Option<WriterRestart>>> {
        let next = self.segment.index() + 1;
        let raw = self.dir.join(segment_file_name(next));
        let compressed = self.dir.join(compressed_file_name(next));
        let file = if raw.exists() {
            SegmentFile {
                index: next,
                compressed: false,
                path: raw,
            }
        } else if compressed.exists() {
            SegmentFile {
                index: next,
                compressed: true,
                path: compressed,
            }
        } else {
            // Not there: either not created yet (wait), or gone while later ones exist (report).
            let later = list_segments(&self.dir)?
                .into_iter()
                .find(|s| s.index > next);
            let Some(later) = later else {
                return Ok(None);
            };
            let resumed_at = later.index;
            self.switch_to(&later, false)?;
            return Err(ShmError::SegmentMissing {
                path: raw,
                index: next,
                resumed_at: Some(resumed_at),
            });
        };
        Ok(Some(self.switch_to(&file, false)?))
    }

    /// Moves to the start of `file`; `new_journal` when it belongs to a journal started afresh.
    fn switch_to(
        &mut self,
        file: &SegmentFile,
        new_journal: bool,
    ) -> Result<Option<WriterRestart>> {
        let segment = open_segment_file(file)?;
        let new_epoch = segment.epoch();
        self.segment = segment;
        self.inode = inode_of(file);
        self.offset = HEADER_LEN;
        self.tail_seen = 0;
        self.prefetched = 0;
        Ok(self.note_epoch(new_epoch, new_journal))
    }

    fn note_epoch(&mut self, new_epoch: u64, new_journal: bool) -> Option<WriterRestart> {
        if new_epoch == self.epoch && !new_journal {
            return None;
        }
        let restart = WriterRestart {
            old_epoch: self.epoch,
            new_epoch,
            new_journal,
        };
        self.epoch = new_epoch;
        Some(restart)
    }

    /// With nothing to read: has the writer restarted in place, or has the journal been replaced?
    fn check_writer_when_idle(&mut self) -> Result<Option<WriterRestart>> {
        let epoch = self.segment.epoch();
        if epoch != self.epoch {
            return Ok(self.note_epoch(epoch, false));
        }
        self.idle_polls += 1;
        if self.idle_polls < IDLE_POLLS_PER_FILE_CHECK || self.inode == 0 {
            return Ok(None);
        }
        self.idle_polls = 0;
        let same_file = std::fs::metadata(self.segment.path()).is_ok_and(|m| m.ino() == self.inode);
        if same_file {
            return Ok(None);
        }
        // Our segment is gone or replaced. If nothing newer exists, the journal was started
        // again from scratch: follow the new one from its beginning.
        let listing = list_segments(&self.dir)?;
        let replaced = match listing.last() {
            Some(last) => last.index <= self.segment.index(),
            None => false,
        };
        if !replaced {
            return Ok(None);
        }
        self.switch_to(listing.first().expect("listing is not empty"), true)
    }
}

fn inode_of(file: &SegmentFile) -> u64 {
    if file.compressed {
        0
    } else {
        std::fs::metadata(&file.path).map_or(0, |m| m.ino())
    }
}
