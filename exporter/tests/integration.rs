//! levibot-exporter's tests: the binary on a written journal (endpoints, every metric, promtool),
//! and the page delivered through Debian's Prometheus and Alertmanager.
//!
//! One test binary for the whole crate (`autotests = false` in Cargo.toml): a 2-core machine
//! links one binary here instead of one per file. Each file below is a module; nextest runs
//! each test in its own process, as before.

mod archive;
mod exporter;
mod paging;
