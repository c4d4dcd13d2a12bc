//! `levibotd`: the daemon around the pipeline (cold path only).
//!
//! - [`config`]: the TOML configuration, validated all at once (every problem named by its key).
//! - [`run`]: the daemon's life: start, recover, reconcile, trade, reload, kill, stop.
//! - [`control`]: the control socket (`levictl status|kill|resume|reload|set`).
//! - [`recovery`]: state rebuilt from the journal after a crash, from the last checkpoint on.
//! - [`checkpoint`]: the shadow replay that writes those checkpoints as the journal grows.
//! - [`strategies`]: one strategy per instrument, each with its own parameters.

pub mod checkpoint;
pub mod config;
pub mod control;
mod faults;
pub mod recovery;
pub mod run;
mod shared;
pub mod strategies;
