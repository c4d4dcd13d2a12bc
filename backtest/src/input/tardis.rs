//! Tardis CSV, streamed.
