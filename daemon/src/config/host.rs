//! What the config is checked against outside the file: group names, and the filesystem that
//! holds the journal.

use std::io;
use std::path::{Path, PathBuf};

use levibot_shm::counters::{COUNTER_SLOT_LEN, COUNTERS_HEADER_LEN};

use crate::run::COUNTERS_CAPACITY;

/// Where group names are looked up (`control::group_gid`): groups made by `systemd-sysusers`
/// or `groupadd` are there; groups only a directory service knows are not seen.
pub(super) const GROUP_FILE: &str = "/etc/group";
/// Longest group name (as `groupadd` and systemd accept).
pub(super) const GROUP_NAME_LEN_MAX: usize = 32;

/// Bytes of the daemon's counters file (`counters.lvc`, beside the segments).
pub(super) const COUNTERS_FILE_LEN: u64 =
    (COUNTERS_HEADER_LEN + COUNTERS_CAPACITY * 2 * COUNTER_SLOT_LEN) as u64;

const TMPFS_MAGIC: u32 = 0x0102_1994;
const RAMFS_MAGIC: u32 = 0x8584_58f6;

/// A group name as a config value: `[A-Za-z0-9_][A-Za-z0-9_.-]*` with an optional final `$`,
/// 1..=32 bytes, not all digits (that would be a gid).
pub(super) fn group_name(value: &toml::Value) -> Result<String, String> {
    let name = super::reader::string(GROUP_NAME_LEN_MAX)(value)?;
    let body = name.strip_suffix('$').unwrap_or(&name);
    let first_ok = body
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    let rest_ok = body
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !first_ok || !rest_ok {
        return Err(format!(
            "{name:?} is not a group name (letters, digits, '_', '.', '-'; not starting with \
             '-' or '.')"
        ));
    }
    if body.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{name:?} is a number: give the group's name, not its gid"
        ));
    }
    Ok(name)
}

/// The filesystem a directory is (or will be) on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Filesystem {
    /// What was asked about: the directory, or its nearest existing ancestor.
    pub(super) examined: PathBuf,
    /// Total size (`f_blocks * f_frsize`); `None` when the filesystem reports none (ramfs).
    pub(super) size: Option<u64>,
    /// `tmpfs` or `ramfs` when it is one.
    pub(super) kind: Option<&'static str>,
}

impl Filesystem {
    /// `"tmpfs, 16 MiB"`, for problems.
    pub(super) fn describe(&self) -> String {
        let size = self
            .size
            .map_or_else(|| "size unknown".to_owned(), |s| format!("{} MiB", s >> 20));
        match self.kind {
            Some(kind) => format!("{kind}, {size}"),
            None => size,
        }
    }
}

/// The filesystem of `dir`, or of its nearest existing ancestor when it does not exist yet (the
/// daemon creates it).
pub(super) fn filesystem_of(dir: &Path) -> Result<Filesystem, String> {
    let mut candidate = Some(dir);
    while let Some(path) = candidate {
        let path = if path.as_os_str().is_empty() {
            Path::new(".")
        } else {
            path
        };
        match rustix::fs::statvfs(path) {
            Ok(st) => {
                let size = st.f_blocks.checked_mul(st.f_frsize).filter(|&s| s > 0);
                // Magic numbers are 32 bits; f_type is wider on some targets.
                let kind = rustix::fs::statfs(path)
                    .ok()
                    .and_then(|fs| match fs.f_type as u32 {
                        TMPFS_MAGIC => Some("tmpfs"),
                        RAMFS_MAGIC => Some("ramfs"),
                        _ => None,
                    });
                return Ok(Filesystem {
                    examined: path.to_owned(),
                    size,
                    kind,
                });
            }
            Err(rustix::io::Errno::NOENT) => candidate = path.parent(),
            Err(e) => {
                return Err(format!("{}: {}", path.display(), io::Error::from(e)));
            }
        }
    }
    Err(format!("{}: no existing ancestor", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_checked() {
        let check = |s: &str| group_name(&toml::Value::String(s.to_owned()));
        for good in ["levibot-ops", "ops_1", "_trading", "machine$", "a.b"] {
            assert_eq!(check(good).unwrap(), good);
        }
        for bad in [
            "",
            "-ops",
            ".ops",
            "a:b",
            "a b",
            "a,b",
            "1000",
            &"g".repeat(33),
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_directory_not_made_yet_is_on_its_parents_filesystem() {
        let dir = std::env::temp_dir();
        let here = filesystem_of(&dir).unwrap();
        let later = filesystem_of(&dir.join("not/made/yet")).unwrap();
        assert_eq!(later.examined, dir);
        assert_eq!(later.size, here.size);
        assert!(filesystem_of(Path::new("relative/not/made")).is_ok());
    }
}
