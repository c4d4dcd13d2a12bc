//! LeviBot's engine: the agent runtime (pinned threads, idle strategies, SPSC rings), order
//! books and incremental features, strategies, pre-trade risk, and the `levibotd` daemon.
//!
//! Empty until issues 3 (books, features), 4 (strategies, risk, agents) and 6 (daemon); see
//! ARCHITECTURE.md.
