//! Counters: fixed, cache-line-padded slots in a shared-memory file, one writer each, read by
//! any number of read-only readers (Aeron's CnC counters and AeronStat are the model).
//!
//! ```text
//!  counters file (COUNTERS_HEADER_LEN + capacity * 2 * COUNTER_SLOT_LEN bytes)
//! +----------------------------------------------------------------+ 0
//! | 0 u64 magic "LEVICNTR"   8 u16 major   10 u16 minor             |
//! | 12 u32 capacity          16 u64 epoch  24 u64 created_unix_ns   |
//! | 32 u32 writer_pid        36..4096 reserved                      |
//! +----------------------------------------------------------------+ 4096
//! | metadata[capacity], 128 bytes each:                             |
//! |   0 u32 state (0 free, 1 allocated; published last, release)    |
//! |   4 u32 type_id    8 u32 label_len    12 u32 reserved           |
//! |   16 label, UTF-8, up to COUNTER_LABEL_LEN_MAX bytes            |
//! +----------------------------------------------------------------+ 4096 + capacity * 128
//! | values[capacity], 128 bytes each: 0 i64 value, then padding so  |
//! | that no two writers share a cache line or an adjacent-line pair |
//! +----------------------------------------------------------------+
//! ```

use std::cell::Cell;
use std::fs::{self, File, OpenOptions};
use std::marker::PhantomData;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

use memmap2::{Mmap, MmapMut, MmapOptions};

use crate::clock::unix_now_ns;
use crate::error::{Result, ShmError};
use crate::layout::{
    LAYOUT_VERSION_MAJOR, LAYOUT_VERSION_MINOR, le_u16, le_u32, le_u64, reads_major_version,
};
use crate::reserve;
use crate::segment::TempFile;

/// Magic number at offset 0: the ASCII bytes `LEVICNTR`.
pub const COUNTERS_MAGIC: u64 = u64::from_le_bytes(*b"LEVICNTR");
/// Bytes before the metadata records.
pub const COUNTERS_HEADER_LEN: usize = 4096;
/// Bytes of one metadata record and of one value slot: two cache lines, because the adjacent
/// line prefetcher pulls lines in pairs.
pub const COUNTER_SLOT_LEN: usize = 128;
/// Longest counter label.
pub const COUNTER_LABEL_LEN_MAX: usize = COUNTER_SLOT_LEN - 16;
/// Most counters one file may hold.
pub const COUNTERS_CAPACITY_MAX: usize = 16 * 1024;

// Offsets in the header and in a metadata record, as drawn in the module doc; public for
// readers outside this crate, as the segment layout's.
pub const OFF_CAPACITY: usize = 12;
pub const OFF_EPOCH: usize = 16;
pub const OFF_CREATED_UNIX_NS: usize = 24;
pub const OFF_WRITER_PID: usize = 32;
pub const META_OFF_TYPE_ID: usize = 4;
pub const META_OFF_LABEL_LEN: usize = 8;
pub const META_OFF_LABEL: usize = 16;
pub const STATE_ALLOCATED: u32 = 1;

const fn file_len(capacity: usize) -> usize {
    COUNTERS_HEADER_LEN + capacity * 2 * COUNTER_SLOT_LEN
}

/// The writer process's counters file.
pub struct CountersWriter {
    inner: Arc<CountersMapping>,
    next_id: AtomicU32,
}

struct CountersMapping {
    path: PathBuf,
    capacity: usize,
    base: *mut u8,
    _map: MmapMut,
}

// SAFETY: `base` points into `_map`, owned alongside; shared mutation is only through atomics,
// and each value slot has a single writer (the one `Counter` handed out for it).
unsafe impl Send for CountersMapping {}
// SAFETY: as above.
unsafe impl Sync for CountersMapping {}

impl CountersWriter {
    /// Creates (or replaces) the counters file at `path` with room for `capacity` counters. The
    /// file is written under a temporary name and renamed, so readers see a whole file. Its space
    /// is allocated first: a full filesystem is [`ShmError::NoSpace`], never a SIGBUS later.
    pub fn create(path: impl AsRef<Path>, capacity: usize, epoch: u64) -> Result<CountersWriter> {
        let path = path.as_ref();
        if capacity == 0 || capacity > COUNTERS_CAPACITY_MAX {
            return Err(ShmError::Config {
                key: "counters.capacity",
                reason: format!("{capacity} is not in 1..={COUNTERS_CAPACITY_MAX}"),
            });
        }
        let tmp = TempFile::new(path.with_extension("lvc.tmp"));
        let len = file_len(capacity);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp.path)
            .map_err(|e| {
                ShmError::io_or_no_space(&tmp.path, "create", "counters file", len as u64, e)
            })?;
        // On a full filesystem, a store to a page of a shared mapping that has no room is a
        // SIGBUS: allocate every page first, where no room is an error.
        reserve::reserve_new(&file, len as u64).map_err(|e| {
            ShmError::io_or_no_space(&tmp.path, "fallocate", "counters file", len as u64, e)
        })?;
        // SAFETY: a shared writable mapping of a file we just created, sized and allocated.
        let mut map = unsafe { MmapOptions::new().len(len).populate().map_mut(&file) }
            .map_err(|e| ShmError::io(&tmp.path, "mmap", e))?;
        map[0..8].copy_from_slice(&COUNTERS_MAGIC.to_le_bytes());
        map[8..10].copy_from_slice(&LAYOUT_VERSION_MAJOR.to_le_bytes());
        map[10..12].copy_from_slice(&LAYOUT_VERSION_MINOR.to_le_bytes());
        map[OFF_CAPACITY..OFF_CAPACITY + 4].copy_from_slice(&(capacity as u32).to_le_bytes());
        map[OFF_EPOCH..OFF_EPOCH + 8].copy_from_slice(&epoch.to_le_bytes());
        map[OFF_CREATED_UNIX_NS..OFF_CREATED_UNIX_NS + 8]
            .copy_from_slice(&unix_now_ns().to_le_bytes());
        map[OFF_WRITER_PID..OFF_WRITER_PID + 4].copy_from_slice(&std::process::id().to_le_bytes());
        fs::rename(&tmp.path, path).map_err(|e| ShmError::io(path, "rename", e))?;
        tmp.keep();
        let base = map.as_mut_ptr();
        Ok(CountersWriter {
            inner: Arc::new(CountersMapping {
                path: path.to_owned(),
                capacity,
                base,
                _map: map,
            }),
            next_id: AtomicU32::new(0),
        })
    }

    /// Allocates the next counter slot with a label and a type id (cold path). The returned
    /// [`Counter`] is the slot's only writer.
    pub fn allocate(&self, label: &str, type_id: u32) -> Result<Counter> {
        if label.len() > COUNTER_LABEL_LEN_MAX {
            return Err(ShmError::LabelTooLong {
                len: label.len(),
                max: COUNTER_LABEL_LEN_MAX,
            });
        }
        let m = &*self.inner;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) as usize;
        if id >= m.capacity {
            self.next_id.store(m.capacity as u32, Ordering::Relaxed);
            return Err(ShmError::CountersFull {
                path: m.path.clone(),
                capacity: m.capacity,
            });
        }
        let meta = COUNTERS_HEADER_LEN + id * COUNTER_SLOT_LEN;
        // The record is ours alone (ids are handed out once) and unpublished until `state` is set.
        // SAFETY: `id < capacity` keeps the record inside the (page-aligned) mapping; 4/8-aligned.
        unsafe {
            let p = m.base.add(meta);
            p.add(META_OFF_TYPE_ID).cast::<u32>().write(type_id);
            p.add(META_OFF_LABEL_LEN)
                .cast::<u32>()
                .write(label.len() as u32);
            std::ptr::copy_nonoverlapping(label.as_ptr(), p.add(META_OFF_LABEL), label.len());
            AtomicU32::from_ptr(p.cast()).store(STATE_ALLOCATED, Ordering::Release);
        }
        // SAFETY: as above; the value slot is 128-aligned.
        let value = unsafe { m.base.add(value_offset(m.capacity, id)).cast::<i64>() };
        Ok(Counter {
            _mapping: self.inner.clone(),
            value,
            id,
            _not_sync: PhantomData,
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }
}

fn value_offset(capacity: usize, id: usize) -> usize {
    COUNTERS_HEADER_LEN + capacity * COUNTER_SLOT_LEN + id * COUNTER_SLOT_LEN
}

/// One counter slot, written only through this handle. `Send` (move it to the thread that owns
/// the count) but not `Sync` and not `Clone`, so it has one writer. Updates are plain
/// load-and-store with release ordering: no locked instruction, a few cycles.
pub struct Counter {
    _mapping: Arc<CountersMapping>,
    value: *mut i64,
    id: usize,
    _not_sync: PhantomData<Cell<()>>,
}

// SAFETY: the slot is written by whichever single thread holds the handle; moving the handle
// moves the right to write. The mapping it points into is kept alive by `_mapping`.
unsafe impl Send for Counter {}

impl Counter {
    #[inline]
    fn atomic(&self) -> &AtomicI64 {
        // SAFETY: `value` is an 8-aligned slot inside the mapping kept alive by `_mapping`.
        unsafe { AtomicI64::from_ptr(self.value) }
    }

    pub fn id(&self) -> usize {
        self.id
    }

    #[inline]
    pub fn get(&self) -> i64 {
        self.atomic().load(Ordering::Relaxed)
    }

    #[inline]
    pub fn set(&self, value: i64) {
        self.atomic().store(value, Ordering::Release);
    }

    #[inline]
    pub fn add(&self, delta: i64) {
        let a = self.atomic();
        a.store(
            a.load(Ordering::Relaxed).wrapping_add(delta),
            Ordering::Release,
        );
    }

    #[inline]
    pub fn increment(&self) {
        self.add(1);
    }

    /// Raises the value to `value` if it is larger (for maxima such as the longest duty cycle).
    #[inline]
    pub fn set_max(&self, value: i64) {
        if value > self.get() {
            self.set(value);
        }
    }
}

/// One counter as a reader sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterValue {
    pub id: usize,
    pub type_id: u32,
    pub label: String,
    pub value: i64,
}

/// A read-only view of a counters file.
pub struct CountersReader {
    path: PathBuf,
    capacity: usize,
    inode: u64,
    map: Mmap,
}

impl CountersReader {
    /// Maps the counters file read-only and checks its header.
    pub fn open(path: impl AsRef<Path>) -> Result<CountersReader> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| ShmError::io(path, "open", e))?;
        let meta = file.metadata().map_err(|e| ShmError::io(path, "stat", e))?;
        let len = meta.len();
        if len < COUNTERS_HEADER_LEN as u64 {
            return Err(ShmError::Truncated {
                path: path.to_owned(),
                len,
                expected: COUNTERS_HEADER_LEN as u64,
            });
        }
        // SAFETY: a read-only mapping of at least the header; its size is checked below before
        // anything past the header is read, and the writer never shrinks the file.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| ShmError::io(path, "mmap", e))?;
        let magic = le_u64(&map, 0);
        if magic != COUNTERS_MAGIC {
            return Err(ShmError::BadMagic {
                path: path.to_owned(),
                found: magic,
                expected: COUNTERS_MAGIC,
            });
        }
        let (major, minor) = (le_u16(&map, 8), le_u16(&map, 10));
        if !reads_major_version(major) {
            return Err(ShmError::UnsupportedVersion {
                path: path.to_owned(),
                major,
                minor,
            });
        }
        let capacity = le_u32(&map, OFF_CAPACITY) as usize;
        if capacity == 0 || capacity > COUNTERS_CAPACITY_MAX {
            return Err(ShmError::CorruptHeader {
                path: path.to_owned(),
                offset: OFF_CAPACITY,
                reason: format!("capacity {capacity} is not in 1..={COUNTERS_CAPACITY_MAX}"),
            });
        }
        if len != file_len(capacity) as u64 {
            return Err(ShmError::Truncated {
                path: path.to_owned(),
                len,
                expected: file_len(capacity) as u64,
            });
        }
        Ok(CountersReader {
            path: path.to_owned(),
            capacity,
            inode: meta.ino(),
            map,
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn epoch(&self) -> u64 {
        le_u64(&self.map, OFF_EPOCH)
    }

    pub fn writer_pid(&self) -> u32 {
        le_u32(&self.map, OFF_WRITER_PID)
    }

    /// Whether the file at the path is no longer the one mapped (the writer restarted and
    /// created a new one): reopen to follow it.
    pub fn is_replaced(&self) -> bool {
        !std::fs::metadata(&self.path).is_ok_and(|m| m.ino() == self.inode)
    }

    fn load_u32(&self, offset: usize) -> u32 {
        let p = self.map.as_ptr().wrapping_add(offset);
        // SAFETY: callers pass 4-aligned offsets inside the mapping (capacity was checked against
        // the file length); an acquire load is allowed on read-only memory.
        unsafe { AtomicU32::from_ptr(p as *mut u32).load(Ordering::Acquire) }
    }

    /// The value of counter `id`, if allocated.
    pub fn value(&self, id: usize) -> Option<i64> {
        if id >= self.capacity
            || self.load_u32(COUNTERS_HEADER_LEN + id * COUNTER_SLOT_LEN) != STATE_ALLOCATED
        {
            return None;
        }
        let p = self
            .map
            .as_ptr()
            .wrapping_add(value_offset(self.capacity, id));
        // SAFETY: an 8-aligned value slot inside the mapping (id < capacity).
        Some(unsafe { AtomicI64::from_ptr(p as *mut i64).load(Ordering::Acquire) })
    }

    /// Every allocated counter, in id order.
    pub fn counters(&self) -> Vec<CounterValue> {
        (0..self.capacity)
            .filter_map(|id| {
                let value = self.value(id)?;
                let meta = COUNTERS_HEADER_LEN + id * COUNTER_SLOT_LEN;
                let type_id = self.load_u32(meta + META_OFF_TYPE_ID);
                let label_len =
                    (self.load_u32(meta + META_OFF_LABEL_LEN) as usize).min(COUNTER_LABEL_LEN_MAX);
                let label_bytes =
                    &self.map[meta + META_OFF_LABEL..meta + META_OFF_LABEL + label_len];
                Some(CounterValue {
                    id,
                    type_id,
                    label: String::from_utf8_lossy(label_bytes).into_owned(),
                    value,
                })
            })
            .collect()
    }
}
