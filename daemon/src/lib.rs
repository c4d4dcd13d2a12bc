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
