//! The binaries of the workspace's other packages, for tests that run them: `levibotd`'s tests
//! start `levictl`, the exporter's tests start `levibotd`. Cargo hands a test only its own
//! package's binaries (`CARGO_BIN_EXE_<name>`), so this builds the one asked for, in the
//! test's own target directory and profile, once per test process, and returns its path.
//! The build is what keeps `cargo nextest run -p levibot-daemon` from running a stale binary.
//! nextest runs each test in a process of its own, so each would ask cargo again (half a
//! second or more each): `scripts/test` builds every binary first and says so with
//! `LEVIBOT_BINS_BUILT=1`, and then a binary that is there is taken as it is.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Set to `1` by `scripts/test`, which has built every binary of the workspace first.
pub const BINS_BUILT_ENV: &str = "LEVIBOT_BINS_BUILT";

/// The path of binary `name` of workspace package `package`, built if it is not up to date.
/// Panics with cargo's own output if the build fails.
pub fn workspace_bin(package: &str, name: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    // The test runs from <target>/<profile dir>/deps/<test>-<hash>.
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("a test binary lives in <target>/<profile>/deps");
    let target_dir = profile_dir.parent().expect("<target>/<profile>");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => panic!("{}: no profile directory", exe.display()),
    };
    let path = profile_dir.join(name);
    if std::env::var_os(BINS_BUILT_ENV).is_some_and(|v| v == "1") && path.is_file() {
        built.insert(name.to_owned(), path.clone());
        return path;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--package",
            package,
            "--bin",
            name,
            "--profile",
            profile,
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("could not run cargo to build {name}: {e}"));
    assert!(
        output.status.success(),
        "cargo build --package {package} --bin {name} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(path.is_file(), "{} was not built", path.display());
    built.insert(name.to_owned(), path.clone());
    path
}
