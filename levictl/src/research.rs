//! `levictl research`: datasets for the research loop (docs/research.md), built from the
//! journal's feature snapshots. [`forward`]: forward mid returns joined to each snapshot.

pub mod forward;
