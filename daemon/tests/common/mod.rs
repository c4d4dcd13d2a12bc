//! What the daemon's tests share: the crash harness of the recovery and checkpoint tests
//! ([`crash`]), and the harness that runs the `levibotd` binary against venue-sim
//! ([`harness`]).

// Each test binary uses part of it.
#[allow(dead_code)]
pub mod crash;
pub mod harness;
