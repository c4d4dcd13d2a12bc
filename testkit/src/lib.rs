//! Test support shared by LeviBot's crates (a dev-dependency only).
//!
//! - [`CountingAllocator`]: counts the allocations each thread makes, to prove that a hot path
//!   allocates nothing in steady state. A test binary installs it with
//!   `#[global_allocator] static A: CountingAllocator = CountingAllocator;` and compares
//!   [`allocations`] before and after the code under test.
//! - [`seed`]: a PRNG seed from `LEVIBOT_TEST_SEED` or the clock, printed so a failure replays.
//! - [`Tmpfs`]: a small tmpfs mounted for a test (root only), to fill a filesystem for real.
//! - [`reset`]: closes a TCP connection with a reset, as a peer that crashes or a middlebox does.
//! - [`workspace_bin`]: another package's binary, built for the test that runs it.
//! - [`python3_runs`]: whether this machine's Python has what an interop test needs.
//! - [`stdout_of`]: runs a command that must succeed.
//! - [`xgboost_predict`]: XGBoost's own predictions, the research tests' oracle;
//!   [`train_on_journal`]: a dataset and a model from a journal, as a quant makes them.
//! - [`moto`]: moto's S3 server on loopback, and boto3 to look into it.
//! - [`retrain`]: `scripts/research/retrain` run as its unit runs it.

mod bins;
pub mod moto;
mod xgboost;

pub use bins::workspace_bin;
pub use xgboost::{XgboostPredictions, train_on_journal, xgboost_predict};

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Forwards to the system allocator and counts allocations and reallocations per thread.
pub struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator runs during thread teardown too, after the counter is gone.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded unchanged to the system allocator; we only count.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations made so far by the calling thread (when [`CountingAllocator`] is installed).
pub fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

/// Whether this machine's `python3` runs `code` without an error (`import duckdb`, or an
/// assertion on a package's version): the interop tests check their Python peers with it, and
/// fail saying that `scripts/install-test-deps` installs them.
pub fn python3_runs(code: &str) -> bool {
    std::process::Command::new("python3")
        .args(["-c", code])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `command`, which must succeed (else the test fails with its stderr); its stdout.
pub fn stdout_of(command: &mut std::process::Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `scripts/research/retrain --config SETTINGS` with `python3`: the retrain's tests (the
/// backtest's and the daemon's) run the script as the timer's unit does.
pub fn retrain(settings: &std::path::Path) -> std::process::Output {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/research/retrain");
    std::process::Command::new("python3")
        .arg(script)
        .arg("--config")
        .arg(settings)
        .output()
        .expect("python3 runs")
}

/// A seed from `LEVIBOT_TEST_SEED`, or from the clock; printed so that a failure can be replayed.
pub fn seed() -> u64 {
    let seed = std::env::var("LEVIBOT_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
    eprintln!("seed: {seed} (replay with LEVIBOT_TEST_SEED={seed})");
    seed
}

/// A tmpfs mounted on a fresh temporary directory, unmounted when dropped (also when the test
/// fails): a filesystem of a known, small size that a test may fill. Mounting needs root (CI
/// runs as root).
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it: `4m`). `None`, with a printed
    /// reason, when this process is not root; a refused mount as root fails the test.
    pub fn mount(size: &str) -> Option<Tmpfs> {
        if !rustix::process::geteuid().is_root() {
            println!("skipped: needs root to mount a tmpfs (CI runs as root)");
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount -t tmpfs on {}: {}",
            dir.path().display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Some(Tmpfs { dir })
    }

    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Fills what is left of the filesystem (as another program's files fill a shared
    /// /dev/shm); returns the file that took it.
    pub fn fill(&self) -> std::path::PathBuf {
        fill_up(self.path())
    }
}

/// Takes every byte left on the filesystem of `dir` with a file; returns its path.
pub fn fill_up(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("the filler file");
    for chunk in [64 * 1024, 4096, 1] {
        let bytes = vec![0xa5u8; chunk];
        while file.write_all(&bytes).and_then(|()| file.flush()).is_ok() {}
    }
    path
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Something still maps a file there (a child that outlived the test): detach it.
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Closes `stream` with a TCP reset (RST) instead of an orderly close (FIN): SO_LINGER on with
/// a zero timeout, then close. The other end's next read fails with `ConnectionReset`.
pub fn reset(stream: std::net::TcpStream) {
    rustix::net::sockopt::set_socket_linger(&stream, Some(std::time::Duration::ZERO))
        .expect("SO_LINGER");
    drop(stream);
}
