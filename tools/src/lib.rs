//! LeviBot's operator tools: `levictl` (tail, stat, export, status, kill, resume, reload),
//! `levibot-exporter` (the read-only Prometheus sidecar) and `venue-sim` (the simulated venue).
//!
//! Empty until issues 3 (`levictl capture check`), 5 (`venue-sim`), 6 (`levictl`) and 7
//! (`levibot-exporter`); see ARCHITECTURE.md.
