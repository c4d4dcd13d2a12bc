//! Scratch directories for the targets that need files (`config`, `journal`): one per target
//! and process, made once, under the system's temporary directory. A fuzzer process exits
//! without running destructors, so each new one first removes the directories of processes
//! that no longer run (`/proc/<pid>` gone).

use std::path::{Path, PathBuf};

const PREFIX: &str = "levibot-fuzzing-";

/// A new empty directory `levibot-fuzzing-<target>-<pid>` in the temporary directory; the
/// directories of dead processes are removed first.
pub fn process_dir(target: &str) -> PathBuf {
    let tmp = std::env::temp_dir();
    remove_stale(&tmp);
    let dir = tmp.join(format!("{PREFIX}{target}-{}", std::process::id()));
    // Left over by an earlier process with the same pid: start clean.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

fn remove_stale(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let Some(pid) = rest
            .rsplit_once('-')
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
