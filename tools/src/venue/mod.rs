//! `venue-sim`, the simulated venue (issue 5): a matching engine with the instruments' exchange
//! filters; its market-data and FIX order-entry servers come next.
//!
//! - [`matching`]: price-time-priority books, order entry to owner notices and feed updates.

pub mod matching;
