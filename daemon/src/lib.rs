//! `levibotd`: the daemon around the engine's pipeline (cold path only). The binary is
//! `src/main.rs`; the demo (`levibot-demo`, crate `levibot-demo`) runs this library against the
//! simulated venue, so the production binary links no simulator.
//!
//! - [`config`]: the TOML configuration, validated all at once (every problem named by its key).
//! - [`run`]: the daemon's life: start, recover, reconcile, trade, reload, kill, stop.
//! - the control socket's handler (`state.rs`); the socket itself is `levibot_control`.
//! - [`recovery`]: state rebuilt from the journal after a crash, from the last checkpoint on.
//! - [`checkpoint`]: the shadow replay that writes those checkpoints as the journal grows.
//! - [`strategies`]: one strategy per instrument, each with its own parameters.
//! - [`logging`]: logs to stderr, as text or JSON (journald keeps them).

pub mod checkpoint;
pub mod config;
mod faults;
pub mod logging;
pub mod recovery;
pub mod run;
mod state;
pub mod strategies;

/// Makes a panic on any thread end the process, in every build: the release profile aborts
/// on panic, and a debug build (the tests') must not quietly lose a thread (a feed connector,
/// a control connection) and go on. Abort is a signal the tests, systemd and operators see.
/// The panic's message is printed first, as usual.
pub fn abort_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::abort();
    }));
}
