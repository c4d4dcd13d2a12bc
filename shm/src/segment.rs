//! One segment file, mapped: header access, the frame commit protocol, and frame scanning.
//!
//! Every raw-pointer access to a mapping in this crate is here. The invariants it relies on:
//! - `base` points to `size` bytes that stay mapped as long as the [`SegmentMap`] lives (the
//!   mapping or buffer is owned by it), and `size` is the file size checked against the header.
//! - Atomic fields (`tail`, `heartbeat`, `epoch`, `pid`, `flags`, writer slots, each frame's
//!   `frame_len`) sit at offsets aligned to their size, because the mapping is page-aligned and
//!   the offsets are multiples of 8 (headers) or of `FRAME_ALIGNMENT` (frames).
//! - A byte range of a frame is written only by the writer that claimed it (the atomic add on
//!   `tail` hands each claim a disjoint range), and only before its `frame_len` is committed.
//!   Readers touch a frame's bytes other than `frame_len` only after loading a positive
//!   `frame_len` with acquire ordering, after which nobody writes them again.
//! - Readers read nothing at or past the header's `tail` (the claim counter): no writer has
//!   touched those bytes yet, and on a full tmpfs faulting their page in would be a SIGBUS.
//! - A writable segment's pages are all allocated when it is created (`reserve`), so a
//!   writer's stores never fault on a full filesystem either.
//! - Read-only mappings get only Relaxed/Acquire atomic loads, which Rust allows on read-only
//!   memory for these sizes.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

use memmap2::{Mmap, MmapMut, MmapOptions};

use crate::clock::TscCalibration;
use crate::error::{Result, ShmError};
use crate::layout::*;
use crate::reserve;

/// Immutable facts from a segment header, read when the segment is opened.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SegmentInfo {
    pub index: u64,
    pub size: usize,
    pub version_major: u16,
    pub version_minor: u16,
    pub created_unix_ns: u64,
    pub calibration: TscCalibration,
    /// Whether the sealed flag was set when the header was read.
    pub sealed: bool,
}

enum Backing {
    ReadOnly(#[allow(dead_code)] Mmap),
    Writable(#[allow(dead_code)] MmapMut),
    /// A decompressed segment; `u64` elements keep the atomics aligned.
    Owned(#[allow(dead_code)] Box<[u64]>),
}

/// A mapped segment. Read accessors work on any backing; the writer's go through
/// [`WritableSegment`].
pub(crate) struct SegmentMap {
    path: PathBuf,
    info: SegmentInfo,
    base: *mut u8,
    _backing: Backing,
}

// SAFETY: the pointer refers to memory owned by `_backing`, which is Send + Sync; all shared
// mutation goes through atomics or through disjoint claimed ranges (see the module invariants).
unsafe impl Send for SegmentMap {}
// SAFETY: as above.
unsafe impl Sync for SegmentMap {}

/// What lies at a frame-aligned offset of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// A committed frame with a payload of `payload_len` bytes, `aligned` bytes in all.
    Frame { aligned: usize },
    /// Committed padding to skip.
    Padding { aligned: usize },
    /// Claimed and still being written (or left so by a killed writer).
    Claimed { aligned: usize },
    /// Nothing claimed here yet.
    Empty,
    /// The end of the segment.
    End,
}

/// The fields of a committed frame.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FrameHeader {
    pub record_type: RecordType,
    pub writer_id: u16,
    pub sequence: u64,
    pub tsc: u64,
    pub payload_len: usize,
}

impl SegmentMap {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn info(&self) -> &SegmentInfo {
        &self.info
    }

    pub fn index(&self) -> u64 {
        self.info.index
    }

    pub fn size(&self) -> usize {
        self.info.size
    }

    fn atomic_u64(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset.is_multiple_of(8) && offset + 8 <= HEADER_LEN);
        // SAFETY: offset is a header field inside the mapping, 8-aligned (module invariants);
        // the reference lives no longer than `self`, which owns the mapping.
        unsafe { AtomicU64::from_ptr(self.base.add(offset).cast()) }
    }

    fn atomic_u32(&self, offset: usize) -> &AtomicU32 {
        debug_assert!(offset.is_multiple_of(4) && offset + 4 <= HEADER_LEN);
        // SAFETY: as for `atomic_u64`, 4-aligned.
        unsafe { AtomicU32::from_ptr(self.base.add(offset).cast()) }
    }

    fn frame_len_word(&self, offset: usize) -> &AtomicI32 {
        debug_assert!(
            offset.is_multiple_of(FRAME_ALIGNMENT) && offset + FRAME_HEADER_LEN <= self.size()
        );
        // SAFETY: a frame offset is FRAME_ALIGNMENT-aligned and a frame header fits before the
        // end of the mapping (callers check `offset < size`, and size is a multiple of 32).
        unsafe { AtomicI32::from_ptr(self.base.add(offset + FRAME_OFF_LEN).cast()) }
    }

    /// The writer run that last opened this segment for writing.
    pub fn epoch(&self) -> u64 {
        self.atomic_u64(OFF_EPOCH).load(Ordering::Acquire)
    }

    pub fn writer_pid(&self) -> u32 {
        self.atomic_u32(OFF_WRITER_PID).load(Ordering::Relaxed)
    }

    pub fn heartbeat_unix_ns(&self) -> u64 {
        self.atomic_u64(OFF_HEARTBEAT_UNIX_NS)
            .load(Ordering::Relaxed)
    }

    /// The claim counter: the offset the next claim would get (may exceed the size).
    pub fn claimed_tail(&self) -> usize {
        self.atomic_u64(OFF_TAIL).load(Ordering::Acquire) as usize
    }

    fn corrupt(&self, offset: usize, frame_len: i64, reason: &'static str) -> ShmError {
        ShmError::CorruptFrame {
            path: self.path.clone(),
            offset,
            frame_len,
            reason,
        }
    }

    /// What lies at `offset` (frame-aligned, `HEADER_LEN <= offset <= size`).
    #[inline]
    pub fn slot_at(&self, offset: usize) -> Result<Slot> {
        self.slot_below_tail(offset, &mut 0)
    }

    /// As [`slot_at`](Self::slot_at), with `tail_seen`, the caller's copy of the claim counter
    /// (0 to start; reloaded only when `offset` reaches it, so that a reader keeping up does not
    /// pull the writers' contended cache line for every frame).
    ///
    /// Nothing at or past the claimed tail is read: it is "not yet" (`Empty`). No writer has
    /// touched those bytes, so a reader must not fault their page in (on a tmpfs the fault would
    /// allocate it, and on a full one raise SIGBUS). A cached tail stays a safe bound: claims only
    /// add to it, and recovery's `set_tail(size)` lowers it only from past the end.
    #[inline]
    pub fn slot_below_tail(&self, offset: usize, tail_seen: &mut usize) -> Result<Slot> {
        let size = self.size();
        if offset >= size {
            return Ok(Slot::End);
        }
        if offset >= *tail_seen {
            *tail_seen = self.claimed_tail();
            if offset >= *tail_seen {
                return Ok(Slot::Empty);
            }
        }
        let len = self.frame_len_word(offset).load(ordering::READ);
        if len == 0 {
            return Ok(Slot::Empty);
        }
        let unsigned = len.unsigned_abs() as usize;
        if unsigned < FRAME_HEADER_LEN {
            return Err(self.corrupt(offset, len as i64, "is shorter than a frame header"));
        }
        let aligned = align_frame(unsigned);
        if aligned > size - offset {
            return Err(self.corrupt(offset, len as i64, "runs past the end of the segment"));
        }
        if len < 0 {
            return Ok(Slot::Claimed { aligned });
        }
        let header = self.frame_header(offset);
        if header.payload_len != unsigned - FRAME_HEADER_LEN {
            return Err(self.corrupt(offset, len as i64, "disagrees with the payload_len field"));
        }
        if header.record_type.is_padding() {
            // Not read further. (Recovery may pad past an old tail before it sets the tail to
            // the segment size.)
            return Ok(Slot::Padding { aligned });
        }
        // A frame lies inside its writer's claim: its payload is read only below the tail. The
        // claim came before the commit we just acquired, so a reload sees it.
        if aligned > tail_seen.saturating_sub(offset) {
            *tail_seen = self.claimed_tail();
            if aligned > tail_seen.saturating_sub(offset) {
                return Err(self.corrupt(offset, len as i64, "runs past the claimed tail"));
            }
        }
        Ok(Slot::Frame { aligned })
    }

    /// The header of the committed frame at `offset`. Call only after `slot_at` returned a
    /// committed slot there (that acquire load orders these reads).
    #[inline]
    pub fn frame_header(&self, offset: usize) -> FrameHeader {
        // SAFETY: the frame at `offset` is committed (caller contract), so its 32 header bytes are
        // inside the mapping and no longer written; unaligned reads need no alignment.
        unsafe {
            let p = self.base.add(offset);
            FrameHeader {
                record_type: RecordType(p.add(FRAME_OFF_RECORD_TYPE).cast::<u16>().read()),
                writer_id: p.add(FRAME_OFF_WRITER_ID).cast::<u16>().read(),
                sequence: p.add(FRAME_OFF_SEQUENCE).cast::<u64>().read(),
                tsc: p.add(FRAME_OFF_TSC).cast::<u64>().read(),
                payload_len: p.add(FRAME_OFF_PAYLOAD_LEN).cast::<u32>().read() as usize,
            }
        }
    }

    /// Asks the CPU to bring the cache line at `offset` in, if it lies below `tail` (bytes a
    /// writer has claimed: see `slot_below_tail`). A reader's read-ahead: frames are read in
    /// order, and each first touch of a line is otherwise a wait on memory (measured: a
    /// backtest replaying a journal spent a fifth of its time there). A hint: it reads nothing
    /// and never faults.
    #[inline]
    pub fn prefetch(&self, offset: usize, tail: usize) {
        if offset >= tail.min(self.size()) {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `offset` is inside the mapping (checked above); a prefetch dereferences
        // nothing and cannot fault.
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(self.base.add(offset).cast::<i8>());
        }
    }

    /// The payload of the committed frame at `offset` whose header says `payload_len`.
    #[inline]
    pub fn payload(&self, offset: usize, payload_len: usize) -> &[u8] {
        debug_assert!(offset + FRAME_HEADER_LEN + payload_len <= self.size());
        // SAFETY: `slot_at` checked that the committed frame, payload included, lies inside the
        // mapping; committed bytes are never written again while the mapping lives.
        unsafe { std::slice::from_raw_parts(self.base.add(offset + FRAME_HEADER_LEN), payload_len) }
    }

    /// Walks committed frames from `offset` until something is not committed or the end.
    /// Returns where it stopped and what was there.
    pub fn walk_committed(
        &self,
        mut offset: usize,
        mut on_frame: impl FnMut(usize, &FrameHeader),
    ) -> Result<(usize, Slot)> {
        let mut tail_seen = 0;
        loop {
            match self.slot_below_tail(offset, &mut tail_seen)? {
                Slot::Frame { aligned } => {
                    on_frame(offset, &self.frame_header(offset));
                    offset += aligned;
                }
                Slot::Padding { aligned } => offset += aligned,
                stop => return Ok((offset, stop)),
            }
        }
    }

    /// Opens a segment file read-only, checking its header and size. Maps every page at once
    /// if `done` (its writers have moved on to a later segment) or it is sealed: one call
    /// instead of a page fault every few pages read (measured: a tenth of a journal replay's
    /// time). Such a segment is whole, its pages reserved by its writer; mapping is best
    /// effort (a page that cannot be mapped now faults when read, as without). A live segment
    /// is not mapped ahead: a reader must not fault in pages no writer has touched (see
    /// `slot_below_tail`).
    pub fn open_read_only(path: &Path, done: bool) -> Result<SegmentMap> {
        let file = File::open(path).map_err(|e| ShmError::io(path, "open", e))?;
        let info = read_and_check_header(path, &file)?;
        let mut options = MmapOptions::new();
        options.len(info.size);
        if done || info.sealed {
            options.populate();
        }
        // SAFETY: a shared read-only mapping of a file whose size matches the header; the writer
        // never truncates a segment (see ARCHITECTURE.md), so every access stays in bounds.
        let map = unsafe { options.map(&file) }.map_err(|e| ShmError::io(path, "mmap", e))?;
        let base = map.as_ptr() as *mut u8;
        Ok(SegmentMap {
            path: path.to_owned(),
            info,
            base,
            _backing: Backing::ReadOnly(map),
        })
    }

    /// Reads a gzip-compressed segment into memory.
    pub fn open_compressed(path: &Path) -> Result<SegmentMap> {
        let (mut decoder, header) = gunzip_header(path)?;
        let info = check_header(path, &header, None)?;
        let mut words = vec![0u64; info.size / 8].into_boxed_slice();
        // SAFETY: viewing an initialised `[u64]` as bytes of the same length is always valid.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), info.size) };
        bytes[..HEADER_LEN].copy_from_slice(&header);
        decoder
            .read_exact(&mut bytes[HEADER_LEN..])
            .map_err(|e| ShmError::io(path, "gunzip frames", e))?;
        let base = words.as_mut_ptr().cast::<u8>();
        Ok(SegmentMap {
            path: path.to_owned(),
            info,
            base,
            _backing: Backing::Owned(words),
        })
    }
}

/// A compressed segment's decoder, and the header it gave first (not checked yet).
fn gunzip_header(path: &Path) -> Result<(impl Read, [u8; HEADER_LEN])> {
    let file = File::open(path).map_err(|e| ShmError::io(path, "open", e))?;
    let mut decoder = flate2::read::GzDecoder::new(std::io::BufReader::new(file));
    let mut header = [0u8; HEADER_LEN];
    decoder
        .read_exact(&mut header)
        .map_err(|e| ShmError::io(path, "gunzip header", e))?;
    Ok((decoder, header))
}

/// Reads the header of a segment file (without mapping it) and checks it against the file size.
pub(crate) fn read_and_check_header(path: &Path, file: &File) -> Result<SegmentInfo> {
    Ok(read_checked_header(path, file)?.1)
}

/// The header of a segment file, raw or compressed, checked: without mapping the file or
/// decompressing past the header. Recovery reads every segment's writer slots this way and
/// opens in full only the segments whose frames it must walk.
pub(crate) fn read_segment_header(path: &Path, compressed: bool) -> Result<[u8; HEADER_LEN]> {
    if compressed {
        let (_, header) = gunzip_header(path)?;
        check_header(path, &header, None)?;
        Ok(header)
    } else {
        let file = File::open(path).map_err(|e| ShmError::io(path, "open", e))?;
        Ok(read_checked_header(path, &file)?.0)
    }
}

fn read_checked_header(path: &Path, file: &File) -> Result<([u8; HEADER_LEN], SegmentInfo)> {
    let len = file
        .metadata()
        .map_err(|e| ShmError::io(path, "stat", e))?
        .len();
    if len < HEADER_LEN as u64 {
        return Err(ShmError::Truncated {
            path: path.to_owned(),
            len,
            expected: HEADER_LEN as u64,
        });
    }
    let mut header = [0u8; HEADER_LEN];
    file.read_exact_at(&mut header, 0)
        .map_err(|e| ShmError::io(path, "read header", e))?;
    let info = check_header(path, &header, Some(len))?;
    Ok((header, info))
}

/// The TSC rates a header may hold, in ticks per ns (1 kHz to 1 THz; real counters tick at
/// 0.1 to 10 per ns). Outside them a header is corrupt: a rate near 0 would turn a stamp into a
/// time past what `TscCalibration::to_unix_ns` computes without overflowing.
const TSC_TICKS_PER_NS_MIN: f64 = 1e-6;
const TSC_TICKS_PER_NS_MAX: f64 = 1e6;

/// Checks a segment header; `file_len`, when known, must equal the segment size.
pub(crate) fn check_header(path: &Path, h: &[u8], file_len: Option<u64>) -> Result<SegmentInfo> {
    let magic = le_u64(h, OFF_MAGIC);
    if magic != SEGMENT_MAGIC {
        return Err(ShmError::BadMagic {
            path: path.to_owned(),
            found: magic,
            expected: SEGMENT_MAGIC,
        });
    }
    let (major, minor) = (le_u16(h, OFF_VERSION_MAJOR), le_u16(h, OFF_VERSION_MINOR));
    if !reads_major_version(major) {
        return Err(ShmError::UnsupportedVersion {
            path: path.to_owned(),
            major,
            minor,
        });
    }
    let corrupt = |offset: usize, reason: String| ShmError::CorruptHeader {
        path: path.to_owned(),
        offset,
        reason,
    };
    let header_len = le_u32(h, OFF_HEADER_LEN) as usize;
    if header_len != HEADER_LEN {
        return Err(corrupt(
            OFF_HEADER_LEN,
            format!("header_len {header_len}, expected {HEADER_LEN}"),
        ));
    }
    let size = le_u64(h, OFF_SEGMENT_SIZE);
    if !size.is_power_of_two() || size < SEGMENT_SIZE_MIN as u64 || size > SEGMENT_SIZE_MAX as u64 {
        return Err(corrupt(
            OFF_SEGMENT_SIZE,
            format!(
                "segment_size {size} is not a power of two in {SEGMENT_SIZE_MIN}..={SEGMENT_SIZE_MAX}"
            ),
        ));
    }
    if let Some(len) = file_len
        && len != size
    {
        return Err(ShmError::Truncated {
            path: path.to_owned(),
            len,
            expected: size,
        });
    }
    let index = le_u64(h, OFF_SEGMENT_INDEX);
    if let Some((named, _)) = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_segment_file_name)
        && named != index
    {
        return Err(corrupt(
            OFF_SEGMENT_INDEX,
            format!("segment_index {index} but the file is named for {named}"),
        ));
    }
    let tail = le_u64(h, OFF_TAIL);
    if tail < HEADER_LEN as u64 {
        return Err(corrupt(
            OFF_TAIL,
            format!("tail {tail} is inside the header"),
        ));
    }
    let ticks_per_ns = f64::from_bits(le_u64(h, OFF_TSC_TICKS_PER_NS));
    if !(TSC_TICKS_PER_NS_MIN..=TSC_TICKS_PER_NS_MAX).contains(&ticks_per_ns) {
        return Err(corrupt(
            OFF_TSC_TICKS_PER_NS,
            format!(
                "tsc_ticks_per_ns {ticks_per_ns} is not a clock rate in \
                 {TSC_TICKS_PER_NS_MIN:e}..={TSC_TICKS_PER_NS_MAX:e}"
            ),
        ));
    }
    Ok(SegmentInfo {
        index,
        size: size as usize,
        version_major: major,
        version_minor: minor,
        created_unix_ns: le_u64(h, OFF_CREATED_UNIX_NS),
        calibration: TscCalibration {
            ticks_per_ns,
            tsc_ref: le_u64(h, OFF_TSC_REF),
            unix_ns_ref: le_u64(h, OFF_UNIX_NS_REF),
        },
        sealed: le_u32(h, OFF_FLAGS) & FLAG_SEALED != 0,
    })
}

/// A temporary file, removed when dropped unless [`remove`](TempFile::remove)d first.
pub(crate) struct TempFile {
    pub path: PathBuf,
    armed: bool,
}

impl TempFile {
    pub fn new(path: PathBuf) -> TempFile {
        TempFile { path, armed: true }
    }

    pub fn remove(mut self) -> Result<()> {
        self.armed = false;
        fs::remove_file(&self.path).map_err(|e| ShmError::io(&self.path, "remove", e))
    }

    /// Keeps the file (it was renamed away or is wanted).
    pub fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            // An error is already on its way to the caller. (`Journal::open` removes any
            // journal `.tmp` left over.)
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Outcome of a claim on a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The frame fits at this offset.
    Fits(usize),
    /// This claim crossed the end: its claimer pads from here to the end, then rolls over.
    Crossed(usize),
    /// Somebody else crossed the end already: roll over.
    Full,
}

/// The header fields a writer sets on a frame (the length is the commit word, set last).
#[derive(Clone, Copy, Debug)]
pub(crate) struct FrameStamp {
    pub record_type: RecordType,
    pub writer_id: u16,
    pub sequence: u64,
    pub tsc: u64,
}

/// A segment mapped read-write by the writer process.
pub(crate) struct WritableSegment {
    map: SegmentMap,
}

impl std::ops::Deref for WritableSegment {
    type Target = SegmentMap;
    fn deref(&self) -> &SegmentMap {
        &self.map
    }
}

impl WritableSegment {
    /// Creates segment `index` in `dir`: written under a temporary name of its own, then
    /// published with an exclusive link, so that a reader never opens a file without its header.
    /// If another creator in this process (a rollover racing `maintain`) published the same
    /// index first, this opens that file instead: there is only ever one file per index.
    ///
    /// Every page is allocated before the file is mapped (see `reserve`), so that a full
    /// filesystem is [`ShmError::NoSpace`] here rather than a SIGBUS at some later append; the
    /// temporary file is removed on any error.
    pub fn create(
        dir: &Path,
        index: u64,
        size: usize,
        epoch: u64,
        calibration: &TscCalibration,
        created_unix_ns: u64,
        prefault: bool,
    ) -> Result<WritableSegment> {
        let path = dir.join(segment_file_name(index));
        static TMP_NONCE: AtomicU64 = AtomicU64::new(0);
        let nonce = TMP_NONCE.fetch_add(1, Ordering::Relaxed);
        let tmp = TempFile::new(dir.join(format!("{}.{nonce}.tmp", segment_file_name(index))));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp.path)
            .map_err(|e| {
                ShmError::io_or_no_space(&tmp.path, "create", "journal segment", size as u64, e)
            })?;
        reserve::reserve_new(&file, size as u64).map_err(|e| {
            ShmError::io_or_no_space(&tmp.path, "fallocate", "journal segment", size as u64, e)
        })?;
        let mut options = MmapOptions::new();
        options.len(size);
        if prefault {
            options.populate();
        }
        // SAFETY: a shared writable mapping of a file we just sized and allocated; nobody else
        // has it open yet.
        let mapped = unsafe { options.map_mut(&file) };
        let mut map = mapped.map_err(|e| ShmError::io(&tmp.path, "mmap", e))?;
        let h = &mut map[..HEADER_LEN];
        h[OFF_MAGIC..OFF_MAGIC + 8].copy_from_slice(&SEGMENT_MAGIC.to_le_bytes());
        h[OFF_VERSION_MAJOR..OFF_VERSION_MAJOR + 2]
            .copy_from_slice(&LAYOUT_VERSION_MAJOR.to_le_bytes());
        h[OFF_VERSION_MINOR..OFF_VERSION_MINOR + 2]
            .copy_from_slice(&LAYOUT_VERSION_MINOR.to_le_bytes());
        h[OFF_HEADER_LEN..OFF_HEADER_LEN + 4].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        h[OFF_SEGMENT_SIZE..OFF_SEGMENT_SIZE + 8].copy_from_slice(&(size as u64).to_le_bytes());
        h[OFF_SEGMENT_INDEX..OFF_SEGMENT_INDEX + 8].copy_from_slice(&index.to_le_bytes());
        h[OFF_EPOCH..OFF_EPOCH + 8].copy_from_slice(&epoch.to_le_bytes());
        let now = created_unix_ns;
        h[OFF_CREATED_UNIX_NS..OFF_CREATED_UNIX_NS + 8].copy_from_slice(&now.to_le_bytes());
        h[OFF_TSC_TICKS_PER_NS..OFF_TSC_TICKS_PER_NS + 8]
            .copy_from_slice(&calibration.ticks_per_ns.to_bits().to_le_bytes());
        h[OFF_TSC_REF..OFF_TSC_REF + 8].copy_from_slice(&calibration.tsc_ref.to_le_bytes());
        h[OFF_UNIX_NS_REF..OFF_UNIX_NS_REF + 8]
            .copy_from_slice(&calibration.unix_ns_ref.to_le_bytes());
        h[OFF_WRITER_PID..OFF_WRITER_PID + 4].copy_from_slice(&std::process::id().to_le_bytes());
        h[OFF_TAIL..OFF_TAIL + 8].copy_from_slice(&(HEADER_LEN as u64).to_le_bytes());
        h[OFF_HEARTBEAT_UNIX_NS..OFF_HEARTBEAT_UNIX_NS + 8].copy_from_slice(&now.to_le_bytes());
        let info = check_header(&tmp.path, &map[..HEADER_LEN], Some(size as u64))?;
        let published = fs::hard_link(&tmp.path, &path);
        tmp.remove()?;
        match published {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return WritableSegment::open(&path);
            }
            Err(e) => return Err(ShmError::io(&path, "link", e)),
        }
        let base = map.as_mut_ptr();
        Ok(WritableSegment {
            map: SegmentMap {
                path,
                info,
                base,
                _backing: Backing::Writable(map),
            },
        })
    }

    /// Opens an existing segment read-write for recovery, first allocating any page it still
    /// lacks (a segment from a build that made them sparse), so that repairing it cannot SIGBUS
    /// on a full filesystem.
    pub fn open_for_repair(path: &Path) -> Result<WritableSegment> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| ShmError::io(path, "open", e))?;
        let info = read_and_check_header(path, &file)?;
        reserve::reserve_existing(&file, info.size as u64).map_err(|e| {
            ShmError::io_or_no_space(path, "fallocate", "journal segment", info.size as u64, e)
        })?;
        WritableSegment::map(path, &file, info)
    }

    /// Opens an existing segment read-write (for recovery and sealing).
    pub fn open(path: &Path) -> Result<WritableSegment> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| ShmError::io(path, "open", e))?;
        let info = read_and_check_header(path, &file)?;
        WritableSegment::map(path, &file, info)
    }

    fn map(path: &Path, file: &File, info: SegmentInfo) -> Result<WritableSegment> {
        // SAFETY: a shared writable mapping of a file whose size matches its header; we hold the
        // journal's writer lock, so no other process writes it.
        let mut map = unsafe { MmapOptions::new().len(info.size).map_mut(file) }
            .map_err(|e| ShmError::io(path, "mmap", e))?;
        let base = map.as_mut_ptr();
        Ok(WritableSegment {
            map: SegmentMap {
                path: path.to_owned(),
                info,
                base,
                _backing: Backing::Writable(map),
            },
        })
    }

    /// Claims `aligned` bytes (a multiple of `FRAME_ALIGNMENT`) with one atomic add.
    #[inline]
    pub fn claim(&self, aligned: usize) -> Claim {
        let offset = self
            .atomic_u64(OFF_TAIL)
            .fetch_add(aligned as u64, ordering::CLAIM) as usize;
        let size = self.size();
        if offset + aligned <= size {
            Claim::Fits(offset)
        } else if offset < size {
            Claim::Crossed(offset)
        } else {
            Claim::Full
        }
    }

    /// Fills and commits a frame in a range this writer claimed.
    ///
    /// # Safety
    /// `[offset, offset + align_frame(FRAME_HEADER_LEN + payload_len))` must have been handed to
    /// the caller by [`claim`](Self::claim) (or be owned by recovery) and not committed yet.
    #[inline]
    pub unsafe fn write_frame(
        &self,
        offset: usize,
        stamp: FrameStamp,
        payload_len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) {
        let frame_len = (FRAME_HEADER_LEN + payload_len) as i32;
        let len_word = self.frame_len_word(offset);
        // The claim marker goes first, so that recovery can measure this frame if we die here.
        len_word.store(-frame_len, ordering::CLAIM_MARKER);
        // SAFETY: the range is ours alone (caller contract) and inside the mapping.
        let payload = unsafe {
            let p = self.base.add(offset);
            p.add(FRAME_OFF_RECORD_TYPE)
                .cast::<u16>()
                .write(stamp.record_type.0);
            p.add(FRAME_OFF_WRITER_ID)
                .cast::<u16>()
                .write(stamp.writer_id);
            p.add(FRAME_OFF_SEQUENCE)
                .cast::<u64>()
                .write(stamp.sequence);
            p.add(FRAME_OFF_TSC).cast::<u64>().write(stamp.tsc);
            p.add(FRAME_OFF_PAYLOAD_LEN)
                .cast::<u32>()
                .write(payload_len as u32);
            p.add(FRAME_OFF_PAYLOAD_LEN + 4).cast::<u32>().write(0);
            std::slice::from_raw_parts_mut(p.add(FRAME_HEADER_LEN), payload_len)
        };
        // If `fill` unwinds, the frame is committed as padding so that readers are not blocked.
        struct CommitAsPaddingOnUnwind<'a> {
            segment: &'a WritableSegment,
            offset: usize,
            frame_len: i32,
        }
        impl Drop for CommitAsPaddingOnUnwind<'_> {
            fn drop(&mut self) {
                // SAFETY: same claimed range as the enclosing call.
                unsafe {
                    self.segment
                        .base
                        .add(self.offset + FRAME_OFF_RECORD_TYPE)
                        .cast::<u16>()
                        .write(RecordType::PADDING.0)
                };
                self.segment
                    .frame_len_word(self.offset)
                    .store(self.frame_len, ordering::COMMIT);
            }
        }
        let guard = CommitAsPaddingOnUnwind {
            segment: self,
            offset,
            frame_len,
        };
        fill(payload);
        std::mem::forget(guard);
        len_word.store(frame_len, ordering::COMMIT);
    }

    /// Commits padding over `[offset, offset + aligned)`.
    ///
    /// # Safety
    /// As for [`write_frame`](Self::write_frame): the range is the caller's and not committed.
    pub unsafe fn write_padding(&self, offset: usize, aligned: usize, writer_id: u16) {
        debug_assert!(aligned >= FRAME_HEADER_LEN && aligned.is_multiple_of(FRAME_ALIGNMENT));
        // SAFETY: forwarded caller contract; padding has no payload bytes to fill.
        unsafe {
            self.write_frame(
                offset,
                FrameStamp {
                    record_type: RecordType::PADDING,
                    writer_id,
                    sequence: 0,
                    tsc: 0,
                },
                aligned - FRAME_HEADER_LEN,
                |_| {},
            )
        }
    }

    /// Records `writer_id`'s next sequence as its first in this segment (for recovery).
    pub fn set_writer_first_sequence(&self, writer_id: u16, sequence: u64) {
        self.atomic_u64(OFF_WRITER_FIRST_SEQUENCE + writer_id as usize * 8)
            .store(sequence, Ordering::Release);
    }

    pub fn set_tail(&self, offset: usize) {
        self.atomic_u64(OFF_TAIL)
            .store(offset as u64, Ordering::Release);
    }

    pub fn set_heartbeat(&self, unix_ns: u64) {
        self.atomic_u64(OFF_HEARTBEAT_UNIX_NS)
            .store(unix_ns, Ordering::Relaxed);
    }

    pub fn set_sealed(&self) {
        self.atomic_u32(OFF_FLAGS)
            .fetch_or(FLAG_SEALED, Ordering::Release);
    }

    /// Scans forward from a zero `frame_len` at `offset` for the next non-zero commit word below
    /// `limit`. A writer killed between its claim and its claim marker wrote nothing, so its whole
    /// range is zero, and the first non-zero aligned word after it is the next frame's header.
    pub fn next_written_offset(&self, offset: usize, limit: usize) -> Option<usize> {
        (offset..limit.min(self.size()))
            .step_by(FRAME_ALIGNMENT)
            .find(|&o| self.frame_len_word(o).load(ordering::READ) != 0)
    }
}
