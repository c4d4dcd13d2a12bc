//! Reserving a file's space before it is mapped: a write to a page of a shared mapping that the
//! filesystem has no room for is a SIGBUS, not an error, so every page a mapping may touch is
//! allocated up front, where a full filesystem is an `ENOSPC` we can return.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use rustix::fs::{FallocateFlags, fallocate};
use rustix::io::Errno;

/// Bytes of zeros written per call when the filesystem cannot `fallocate`.
const ZERO_FILL_CHUNK_BYTES: usize = 1 << 16;

/// Allocates `[0, len)` of a new, empty `file` (extending it to `len`). Where the filesystem does
/// not support `fallocate`, writes zeros over the whole range instead, which allocates it too.
pub(crate) fn reserve_new(file: &File, len: u64) -> io::Result<()> {
    match fallocate_retrying(file, len) {
        Err(e) if is_unsupported(&e) => zero_fill(file, len),
        other => other,
    }
}

/// Allocates whatever pages of an existing `file` of `len` bytes are still holes (a segment
/// written by a build that did not reserve space), leaving its contents alone. Where the
/// filesystem cannot `fallocate`, does nothing: zero-filling would overwrite the contents.
pub(crate) fn reserve_existing(file: &File, len: u64) -> io::Result<()> {
    match fallocate_retrying(file, len) {
        Err(e) if is_unsupported(&e) => Ok(()),
        other => other,
    }
}

/// Whether an I/O error means the filesystem (or the user's quota) is full.
pub(crate) fn is_no_space(e: &io::Error) -> bool {
    matches!(Errno::from_io_error(e), Some(Errno::NOSPC | Errno::DQUOT))
}

/// The errno's name, for messages.
pub(crate) fn errno_name(e: &io::Error) -> &'static str {
    match Errno::from_io_error(e) {
        Some(Errno::NOSPC) => "ENOSPC",
        Some(Errno::DQUOT) => "EDQUOT",
        _ => "I/O error",
    }
}

fn fallocate_retrying(file: &File, len: u64) -> io::Result<()> {
    loop {
        match fallocate(file, FallocateFlags::empty(), 0, len) {
            Err(Errno::INTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}

fn is_unsupported(e: &io::Error) -> bool {
    matches!(
        Errno::from_io_error(e),
        Some(Errno::OPNOTSUPP | Errno::NOSYS)
    )
}

fn zero_fill(file: &File, len: u64) -> io::Result<()> {
    let zeros = vec![0u8; ZERO_FILL_CHUNK_BYTES];
    let mut offset = 0u64;
    while offset < len {
        let n = (len - offset).min(ZERO_FILL_CHUNK_BYTES as u64) as usize;
        file.write_all_at(&zeros[..n], offset)?;
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn zero_fill_allocates_the_whole_length() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("f")).unwrap();
        let len = 3 * ZERO_FILL_CHUNK_BYTES as u64 + 100;
        zero_fill(&file, len).unwrap();
        let meta = file.metadata().unwrap();
        assert_eq!(meta.len(), len);
        assert!(meta.blocks() * 512 >= len, "{} blocks", meta.blocks());
    }

    #[test]
    fn reserve_new_sizes_and_allocates_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("f")).unwrap();
        reserve_new(&file, 1 << 20).unwrap();
        let meta = file.metadata().unwrap();
        assert_eq!(meta.len(), 1 << 20);
        assert!(meta.blocks() * 512 >= 1 << 20, "{} blocks", meta.blocks());
    }

    #[test]
    fn no_space_errors_are_recognised() {
        assert!(is_no_space(&io::Error::from_raw_os_error(
            Errno::NOSPC.raw_os_error()
        )));
        assert!(is_no_space(&io::Error::from_raw_os_error(
            Errno::DQUOT.raw_os_error()
        )));
        assert!(!is_no_space(&io::Error::from_raw_os_error(
            Errno::IO.raw_os_error()
        )));
        let e = io::Error::from_raw_os_error(Errno::NOSPC.raw_os_error());
        assert_eq!(errno_name(&e), "ENOSPC");
    }
}
