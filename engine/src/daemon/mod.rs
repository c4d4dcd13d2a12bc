//! `levibotd`: the daemon around the pipeline (cold path only).
//!
//! - [`config`]: the TOML configuration, validated all at once (every problem named by its key).
//! - [`control`]: the control socket (`levictl status|kill|resume|reload|set`).
//! - [`recovery`]: state rebuilt from the journal after a crash.
pub mod checkpoint;
pub mod config;
pub mod control;
pub mod recovery;
pub mod run;
pub mod strategies;
