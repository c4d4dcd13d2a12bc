//! `levictl research`: datasets for the research loop (docs/research.md), built from the
//! journal's feature snapshots. [`forward`]: forward mid returns joined to each snapshot;
//! [`dataset`]: the command that writes them as Parquet.

pub mod dataset;
pub mod forward;
