//! A capture in the corpus's format, streamed.
