//! The on-disk (on-shm) layout of a journal segment: one place for every offset and limit.
//!
//! A journal is a directory of segment files `journal-<index:010>.lvj`, all of one size (a power
//! of two fixed when the journal is created). Sealed segments may be compressed to
//! `journal-<index:010>.lvj.gz`. A segment is a 4 KiB header followed by frames:
//!
//! ```text
//!  segment file (segment_size bytes, zero-filled when created)
//! +--------------------------------------------------------------+ 0
//! | header (HEADER_LEN = 4096)                                   |
//! |   0 u64 magic "LEVIJRNL"      8 u16 major   10 u16 minor     |
//! |  12 u32 header_len           16 u64 segment_size             |
//! |  24 u64 segment_index        32 u64 epoch (writer run id)    |
//! |  40 u64 created_unix_ns      48 f64 tsc_ticks_per_ns         |
//! |  56 u64 tsc_ref              64 u64 unix_ns_ref              |
//! |  72 u32 writer_pid           76 u32 flags (bit 0: sealed)    |
//! | 128 u64 tail: claim counter, own 128-byte line (atomic)      |
//! | 256 u64 heartbeat_unix_ns, own 128-byte line (atomic)        |
//! | 512 u64 writer_first_sequence[64]: per writer, the sequence  |
//! |         of its first frame in this segment (0 = none)        |
//! | 1024..4096 reserved, zero                                    |
//! +--------------------------------------------------------------+ 4096
//! | frame | frame | ... | padding frame to the end or zeros      |
//! +--------------------------------------------------------------+ segment_size
//!
//!  frame (FRAME_ALIGNMENT = 32; the next frame starts at the aligned end)
//! +------------------+------------------+--------------------------+
//! | 0 i32 frame_len  | 4 u16 record_type | 6 u16 writer_id         |
//! | 8 u64 sequence (per writer, from 1)                           |
//! | 16 u64 tsc (raw TSC when appended)                            |
//! | 24 u32 payload_len                 | 28 u32 reserved (0)      |
//! | 32.. payload (payload_len bytes), zero padding to alignment   |
//! +----------------------------------------------------------------+
//! ```
//!
//! `frame_len` is the commit word: 0 means nothing was claimed there yet, a negative value
//! `-len` means a writer claimed `len` bytes and is still filling them, a positive value is a
//! committed frame of `len` bytes (header + payload, before alignment). It is written last with
//! release ordering, so a reader that loads it with acquire ordering sees the whole frame. The
//! negative claim marker is what lets recovery measure and cut a frame that a killed writer left
//! half-written (Aeron's log buffers do the same).
//!
//! All integers are little-endian; the crate refuses to build for big-endian targets.

#[cfg(not(target_endian = "little"))]
compile_error!("the journal layout is little-endian; big-endian targets are not supported");

/// Magic number at offset 0 of every segment: the ASCII bytes `LEVIJRNL`.
pub const SEGMENT_MAGIC: u64 = u64::from_le_bytes(*b"LEVIJRNL");
/// Major layout version, written in every segment and counters file. Readers take the major
/// versions from [`LAYOUT_VERSION_MAJOR_OLDEST`] to this one and refuse others.
/// 2: a `DepthDiff` payload ends after its levels (1 wrote all 32 levels, 560 bytes); a
/// reader of 1 would refuse the shorter payloads.
pub const LAYOUT_VERSION_MAJOR: u16 = 2;
/// The oldest major layout version this build reads (a journal a previous release wrote).
pub const LAYOUT_VERSION_MAJOR_OLDEST: u16 = 1;
/// Minor layout version: additions that older readers of the same major can ignore.
/// Major 1, minor 1: `RawMessageHeader::snapshot_of` names a REST snapshot's instrument;
/// `OrderRequest::flags` (post-only). Major 2 starts at minor 0 with both.
pub const LAYOUT_VERSION_MINOR: u16 = 0;

/// Whether this build reads segments (and counters files) of a major layout version.
pub fn reads_major_version(major: u16) -> bool {
    (LAYOUT_VERSION_MAJOR_OLDEST..=LAYOUT_VERSION_MAJOR).contains(&major)
}

/// Bytes before the first frame of a segment.
pub const HEADER_LEN: usize = 4096;
/// Bytes of a frame header.
pub const FRAME_HEADER_LEN: usize = 32;
/// Frames start at multiples of this; it is the frame header's size, so a padding frame always fits.
pub const FRAME_ALIGNMENT: usize = 32;

/// Smallest allowed segment size.
pub const SEGMENT_SIZE_MIN: usize = 64 * 1024;
/// Largest allowed segment size: `frame_len` is an `i32`, and a padding frame may span a segment.
pub const SEGMENT_SIZE_MAX: usize = 1 << 30;
/// Largest payload of one frame, whatever the segment size: room for a 5,000-level REST depth
/// snapshot as the venue sent it. A journal also caps payloads at a quarter of its segment.
pub const PAYLOAD_LEN_MAX: usize = 1 << 20;
/// Writer ids are `0..WRITERS_MAX`; each has a slot in the segment header.
pub const WRITERS_MAX: usize = 64;

// Header field offsets, as drawn in the module doc. Public: a reader in another language, or
// a tool that checks a segment by hand, needs the same numbers.
pub const OFF_MAGIC: usize = 0;
pub const OFF_VERSION_MAJOR: usize = 8;
pub const OFF_VERSION_MINOR: usize = 10;
pub const OFF_HEADER_LEN: usize = 12;
pub const OFF_SEGMENT_SIZE: usize = 16;
pub const OFF_SEGMENT_INDEX: usize = 24;
pub const OFF_EPOCH: usize = 32;
pub const OFF_CREATED_UNIX_NS: usize = 40;
pub const OFF_TSC_TICKS_PER_NS: usize = 48;
pub const OFF_TSC_REF: usize = 56;
pub const OFF_UNIX_NS_REF: usize = 64;
pub const OFF_WRITER_PID: usize = 72;
pub const OFF_FLAGS: usize = 76;
pub const OFF_TAIL: usize = 128;
pub const OFF_HEARTBEAT_UNIX_NS: usize = 256;
pub const OFF_WRITER_FIRST_SEQUENCE: usize = 512;

/// Header flag: every frame of the segment is committed (or cut) through its end. Only sealed
/// segments are compressed or pruned, and recovery scans only unsealed ones.
pub const FLAG_SEALED: u32 = 1;

// Frame header field offsets, as drawn in the module doc (public, as the header's).
pub const FRAME_OFF_LEN: usize = 0;
pub const FRAME_OFF_RECORD_TYPE: usize = 4;
pub const FRAME_OFF_WRITER_ID: usize = 6;
pub const FRAME_OFF_SEQUENCE: usize = 8;
pub const FRAME_OFF_TSC: usize = 16;
pub const FRAME_OFF_PAYLOAD_LEN: usize = 24;

const _: () = assert!(OFF_WRITER_FIRST_SEQUENCE + WRITERS_MAX * 8 <= HEADER_LEN);
const _: () = assert!(OFF_TAIL.is_multiple_of(128) && OFF_HEARTBEAT_UNIX_NS.is_multiple_of(128));
const _: () = assert!(HEADER_LEN.is_multiple_of(FRAME_ALIGNMENT));
const _: () = assert!(FRAME_HEADER_LEN == FRAME_ALIGNMENT);
const _: () = assert!(SEGMENT_SIZE_MAX <= i32::MAX as usize + 1);
const _: () = assert!(PAYLOAD_LEN_MAX + FRAME_HEADER_LEN <= SEGMENT_SIZE_MAX / 4);

/// The memory orderings of the frame commit protocol, in one place so that the loom model in
/// `tests/loom_protocol.rs` checks exactly what `segment.rs` does.
pub mod ordering {
    use std::sync::atomic::Ordering;

    /// The claim: an atomic add on `tail` only has to hand out disjoint ranges; what a reader may
    /// see is ordered by each frame's own commit word.
    pub const CLAIM: Ordering = Ordering::Relaxed;
    /// The claim marker (`-len`): read only by recovery, after the writer process is gone.
    pub const CLAIM_MARKER: Ordering = Ordering::Relaxed;
    /// The commit (`+len`): publishes the header and payload written before it.
    pub const COMMIT: Ordering = Ordering::Release;
    /// A reader's load of `frame_len`: a positive value makes the whole frame visible.
    pub const READ: Ordering = Ordering::Acquire;
}

/// Little-endian field readers for headers read as bytes (before anything is mapped).
pub(crate) fn le_u64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

pub(crate) fn le_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

pub(crate) fn le_u16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(b[off..off + 2].try_into().expect("2 bytes"))
}

/// Rounds `len` up to the frame alignment.
#[inline]
pub const fn align_frame(len: usize) -> usize {
    (len + FRAME_ALIGNMENT - 1) & !(FRAME_ALIGNMENT - 1)
}

/// The type of a frame's payload. `0` is the journal's own padding; `1..0x100` are reserved for
/// the journal; the rest belong to the crates above (their record types are defined there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordType(pub u16);

impl RecordType {
    /// Fills the end of a segment or a frame cut by recovery; tailers skip it.
    pub const PADDING: RecordType = RecordType(0);
    /// The first record type free for users of the journal.
    pub const FIRST_USER: u16 = 0x100;

    /// Whether this is the journal's padding (never handed to a tailer's caller).
    #[inline]
    pub const fn is_padding(self) -> bool {
        self.0 == 0
    }
}

/// A frame's place in the journal: `segment_index * segment_size + offset_in_segment`.
/// Positions grow with every frame, across segments, so they order frames and survive restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position(pub u64);

impl Position {
    pub(crate) fn new(segment_index: u64, offset: usize, segment_size: usize) -> Self {
        Position(segment_index * segment_size as u64 + offset as u64)
    }

    /// The segment index and the byte offset inside it.
    pub fn split(self, segment_size: usize) -> (u64, usize) {
        (
            self.0 / segment_size as u64,
            (self.0 % segment_size as u64) as usize,
        )
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Segment file name for an index.
pub fn segment_file_name(index: u64) -> String {
    format!("journal-{index:010}.lvj")
}

/// Compressed segment file name for an index.
pub fn compressed_file_name(index: u64) -> String {
    format!("journal-{index:010}.lvj.gz")
}

/// Parses a segment or compressed segment file name into (index, compressed).
pub fn parse_segment_file_name(name: &str) -> Option<(u64, bool)> {
    let rest = name.strip_prefix("journal-")?;
    let (digits, compressed) = if let Some(d) = rest.strip_suffix(".lvj.gz") {
        (d, true)
    } else {
        (rest.strip_suffix(".lvj")?, false)
    };
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, compressed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_rounds_up_to_32() {
        assert_eq!(align_frame(0), 0);
        assert_eq!(align_frame(1), 32);
        assert_eq!(align_frame(32), 32);
        assert_eq!(align_frame(33), 64);
    }

    #[test]
    fn file_names_round_trip() {
        assert_eq!(segment_file_name(42), "journal-0000000042.lvj");
        assert_eq!(
            parse_segment_file_name("journal-0000000042.lvj"),
            Some((42, false))
        );
        assert_eq!(
            parse_segment_file_name("journal-0000000042.lvj.gz"),
            Some((42, true))
        );
        assert_eq!(parse_segment_file_name("journal-42.lvj"), None);
        assert_eq!(parse_segment_file_name("journal-0000000042.lvj.tmp"), None);
        assert_eq!(parse_segment_file_name("counters.lvc"), None);
    }

    #[test]
    fn positions_split_into_segment_and_offset() {
        let p = Position::new(3, 4096 + 64, 1 << 16);
        assert_eq!(p.split(1 << 16), (3, 4096 + 64));
    }
}
