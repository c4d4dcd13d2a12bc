//! Where the daemon's files are, so that every tool finds them without being told.
//!
//! One directory holds everything a running daemon shares: the journal's segments, the
//! counters file and the control socket. `levibotd` (its config's `journal.dir`), `levictl` and
//! the exporter all default to [`DEFAULT_DIR`]; `LEVIBOT_JOURNAL` (or a `--journal` flag)
//! points them elsewhere.

use std::path::{Path, PathBuf};

/// The default directory: tmpfs, so appends never wait for a disk.
pub const DEFAULT_DIR: &str = "/dev/shm/levibot";
/// The environment variable that overrides [`DEFAULT_DIR`] for the tools.
pub const DIR_ENV: &str = "LEVIBOT_JOURNAL";
/// The counters file, inside the directory.
pub const COUNTERS_FILE_NAME: &str = "counters.lvc";
/// The control socket, inside the directory unless the config puts it elsewhere.
pub const CONTROL_SOCKET_FILE_NAME: &str = "control.sock";

/// The directory to use: `explicit` (a `--journal` flag), else `$LEVIBOT_JOURNAL`, else
/// [`DEFAULT_DIR`].
pub fn resolve_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_owned();
    }
    match std::env::var_os(DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(DEFAULT_DIR),
    }
}

/// The counters file of the journal in `dir`.
pub fn counters_path(dir: &Path) -> PathBuf {
    dir.join(COUNTERS_FILE_NAME)
}

/// The default control socket of the journal in `dir`.
pub fn control_socket_path(dir: &Path) -> PathBuf {
    dir.join(CONTROL_SOCKET_FILE_NAME)
}
