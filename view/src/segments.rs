//! Seeking without reading the whole journal: [`Segments`] probes segment headers (a writer
//! run's epoch, a segment's first time) and learns the instrument defs a run journaled at its
//! start.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use levibot_shm::{Position, ShmError, StartAt, Tailer, list_segments};

use crate::reader::{Event, FrameReader};
use crate::view::FrameDecoder;

/// Frames read from the start of a run to find its `INSTRUMENT_DEF`s (journaled at start-up).
pub const PRELOAD_FRAMES_MAX: usize = 65_536;

/// The journal's segments, to seek by probing their headers instead of reading every frame.
#[derive(Clone, Debug)]
pub struct Segments {
    pub dir: PathBuf,
    pub segment_size: u64,
    /// Indexes of the segment files present (raw or compressed), ascending.
    pub indexes: Vec<u64>,
    /// Which of them are compressed (same order).
    compressed: Vec<bool>,
}

/// Segment header fields read without mapping the file (see `levibot_shm::layout`).
const HEADER_OFF_SEGMENT_SIZE: usize = 16;
const HEADER_OFF_EPOCH: usize = 32;
const HEADER_PREFIX_LEN: usize = 40;

/// The start of a raw segment's header, magic checked.
fn read_header(path: &Path) -> Result<[u8; HEADER_PREFIX_LEN], ShmError> {
    let mut header = [0u8; HEADER_PREFIX_LEN];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .map_err(|e| ShmError::Io {
            path: path.to_owned(),
            op: "read header",
            source: e,
        })?;
    let magic = le_u64(&header, 0);
    if magic != levibot_shm::layout::SEGMENT_MAGIC {
        return Err(ShmError::BadMagic {
            path: path.to_owned(),
            found: magic,
            expected: levibot_shm::layout::SEGMENT_MAGIC,
        });
    }
    Ok(header)
}

fn le_u64(bytes: &[u8], offset: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(word)
}

impl Segments {
    /// `Ok(None)` when no uncompressed segment is there to give the segment size (a journal
    /// wholly compressed: read it from its beginning).
    pub fn scan(dir: &Path) -> Result<Option<Segments>, ShmError> {
        let listing = list_segments(dir)?;
        let Some(raw) = listing.iter().find(|s| !s.compressed) else {
            return Ok(None);
        };
        let size = le_u64(&read_header(&raw.path)?, HEADER_OFF_SEGMENT_SIZE);
        let sizes = levibot_shm::layout::SEGMENT_SIZE_MIN as u64
            ..=levibot_shm::layout::SEGMENT_SIZE_MAX as u64;
        if !size.is_power_of_two() || !sizes.contains(&size) {
            // Tailer::open reports what is wrong with it, naming the offset.
            Tailer::open(dir, StartAt::Beginning)?;
            return Ok(None);
        }
        Ok(Some(Segments {
            dir: dir.to_owned(),
            segment_size: size,
            indexes: listing.iter().map(|s| s.index).collect(),
            compressed: listing.iter().map(|s| s.compressed).collect(),
        }))
    }

    pub fn start_of(&self, index: u64) -> Position {
        Position(index * self.segment_size + levibot_shm::layout::HEADER_LEN as u64)
    }

    pub fn index_of(&self, position: u64) -> u64 {
        position / self.segment_size
    }

    fn open_segment(&self, index: u64) -> Result<FrameReader, ShmError> {
        FrameReader::open(&self.dir, StartAt::Position(self.start_of(index)))
    }

    /// The end of the journal now: the position after the last committed frame.
    pub fn end(&self) -> Result<u64, ShmError> {
        Ok(Tailer::open(&self.dir, StartAt::End)?.position().0)
    }

    /// The writer run of a segment: read from a raw segment's header; a compressed one is
    /// opened (decompressed) by a tailer.
    fn epoch_of(&self, index: u64) -> Result<u64, ShmError> {
        let at = self.indexes.partition_point(|&i| i < index);
        if self.indexes.get(at) == Some(&index) && !self.compressed[at] {
            let path = self.dir.join(levibot_shm::layout::segment_file_name(index));
            return Ok(le_u64(&read_header(&path)?, HEADER_OFF_EPOCH));
        }
        Ok(self.open_segment(index)?.tailer().epoch())
    }

    /// Time of a segment's first frame (`None`: empty).
    fn first_time_of(&self, index: u64) -> Result<Option<u64>, ShmError> {
        let mut reader = self.open_segment(index)?;
        // A restart comes before the frame it was seen with; a missing segment is skipped.
        for _ in 0..4 {
            match reader.next_event()? {
                Event::Frame(meta, _) => {
                    return Ok((self.index_of(meta.position) == index).then_some(meta.unix_ns));
                }
                Event::Restart(_) | Event::Missing(_) => {}
                Event::Idle => return Ok(None),
            }
        }
        Ok(None)
    }

    /// The first segment of the writer run that wrote segment `index`. A run's segments are
    /// contiguous, so this is a binary search (a few header reads).
    pub fn run_start(&self, index: u64) -> Result<u64, ShmError> {
        let upto = self.indexes.partition_point(|&i| i <= index);
        if upto == 0 {
            return Ok(index);
        }
        let epoch = self.epoch_of(self.indexes[upto - 1])?;
        // Invariant: indexes[hi] is of the run; indexes[..lo] are not.
        let (mut lo, mut hi) = (0, upto - 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.epoch_of(self.indexes[mid])? == epoch {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(self.indexes[hi])
    }

    /// The last segment whose first frame is at or before `unix_ns` (the first segment if none
    /// is): where a scan for records from that time starts.
    pub fn segment_at_time(&self, unix_ns: u64) -> Result<u64, ShmError> {
        let Some(&first) = self.indexes.first() else {
            return Ok(0);
        };
        // Invariant: indexes[lo] starts at or before the time (or lo == 0); indexes[hi..] after.
        let (mut lo, mut hi) = (0, self.indexes.len());
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match self.first_time_of(self.indexes[mid])? {
                Some(t) if t <= unix_ns => lo = mid,
                _ => hi = mid,
            }
        }
        Ok(if lo == 0 { first } else { self.indexes[lo] })
    }

    /// Learns the instrument defs journaled at the start of the run that wrote segment `index`.
    pub fn preload(&self, index: u64, decoder: &mut FrameDecoder) -> Result<(), ShmError> {
        let first = self.run_start(index)?;
        let mut reader = self.open_segment(first)?;
        for _ in 0..PRELOAD_FRAMES_MAX {
            match reader.next_event()? {
                Event::Frame(meta, _) => {
                    if self.index_of(meta.position) != first {
                        break;
                    }
                    decoder.learn(meta.record_type, reader.payload());
                }
                Event::Restart(_) | Event::Missing(_) | Event::Idle => break,
            }
        }
        Ok(())
    }
}
