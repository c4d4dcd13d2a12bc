//! [`ModelInForce`]: which model a `signal` strategy votes with, and since when. The lineage's
//! anchor: feature snapshots carry the model's 8-byte id and orders its first 4 bytes
//! (`model_tag`); this record ties the id to the file's whole SHA-256 and its path.

use bytemuck::{Pod, Zeroable};

use super::record_type;
use crate::layout::RecordType;

/// A `model_id` as it is shown (JSON, metrics' labels): 16 hex digits, the first 16 of the
/// model file's `sha256sum`.
pub fn model_id_hex(model_id: u64) -> String {
    format!("{model_id:016x}")
}

/// The longest model path a [`ModelInForce`] carries (Linux's `PATH_MAX`).
pub const MODEL_PATH_LEN_MAX: usize = 4096;

/// Precedes the model file's path (UTF-8, the rest of the payload) in a `MODEL_IN_FORCE`
/// frame. Journaled by the daemon when it starts and with every reload that changes a model,
/// one per instrument of a `signal` strategy, before the strategy can take it: every feature
/// snapshot and order made with the model comes after this record in the journal (the
/// strategy takes it at its next event; its snapshots' `model_id` show when). A strategy
/// voting with its weights has `model_id` 0, a zero `sha256` and no path.
///
/// ```text
///   0 u64 unix_ns (when the daemon journaled it)
///   8 u64 model_id (the SHA-256's first 8 bytes, big-endian; 0: the weights vote)
///  16 [u8; 32] sha256 (of the model file's bytes)
///  48 u32 instrument_id
///  52 u32 reload (0: the daemon's start; n: the value of the RELOADED or LIMIT_SET event
///     that follows it)
///  56 path, UTF-8, to the payload's end (at most MODEL_PATH_LEN_MAX bytes)
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct ModelInForce {
    pub unix_ns: u64,
    pub model_id: u64,
    pub sha256: [u8; 32],
    pub instrument_id: u32,
    pub reload: u32,
}

const _: () = assert!(size_of::<ModelInForce>() == 56);

impl ModelInForce {
    /// The journal record type.
    pub const RECORD_TYPE: RecordType = record_type::MODEL_IN_FORCE;

    /// The payload: this header, then `path` (cut at [`MODEL_PATH_LEN_MAX`] bytes, on a
    /// character boundary).
    pub fn payload(&self, path: &str) -> Vec<u8> {
        let mut end = path.len().min(MODEL_PATH_LEN_MAX);
        while !path.is_char_boundary(end) {
            end -= 1;
        }
        let mut out = Vec::with_capacity(size_of::<Self>() + end);
        out.extend_from_slice(bytemuck::bytes_of(self));
        out.extend_from_slice(&path.as_bytes()[..end]);
        out
    }

    /// The header and the path of a `MODEL_IN_FORCE` payload; `None` if it is shorter than a
    /// header, its path longer than [`MODEL_PATH_LEN_MAX`] or not UTF-8.
    pub fn split(payload: &[u8]) -> Option<(ModelInForce, &str)> {
        let head = payload.get(..size_of::<Self>())?;
        let path = &payload[head.len()..];
        if path.len() > MODEL_PATH_LEN_MAX {
            return None;
        }
        Some((
            bytemuck::pod_read_unaligned(head),
            std::str::from_utf8(path).ok()?,
        ))
    }

    /// The SHA-256 as 64 hex digits (empty for the weights).
    pub fn sha256_hex(&self) -> String {
        if self.model_id == 0 && self.sha256 == [0; 32] {
            return String::new();
        }
        self.sha256.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_with_its_path() {
        let mut sha256 = [0u8; 32];
        sha256[0] = 0xab;
        sha256[31] = 0x01;
        let r = ModelInForce {
            unix_ns: 7,
            model_id: 0xab00_0000_0000_0000,
            sha256,
            instrument_id: 3,
            reload: 2,
        };
        let payload = r.payload("/etc/levibot/model.json");
        assert_eq!(payload.len(), 56 + 23);
        let (back, path) = ModelInForce::split(&payload).unwrap();
        assert_eq!((back, path), (r, "/etc/levibot/model.json"));
        assert!(back.sha256_hex().starts_with("ab00"));
        assert!(back.sha256_hex().ends_with("01"));
        assert_eq!(back.sha256_hex().len(), 64);
        assert_eq!(ModelInForce::default().sha256_hex(), "");
    }

    #[test]
    fn short_long_and_non_utf8_payloads_are_refused() {
        let r = ModelInForce::default();
        assert!(ModelInForce::split(&r.payload("")[..55]).is_none());
        let mut bad = r.payload("");
        bad.extend_from_slice(&[0xff, 0xfe]);
        assert!(ModelInForce::split(&bad).is_none());
        let long = "é".repeat(MODEL_PATH_LEN_MAX); // 2 bytes each: cut at a boundary
        let payload = r.payload(&long);
        assert_eq!(payload.len(), 56 + MODEL_PATH_LEN_MAX);
        assert!(ModelInForce::split(&payload).is_some());
        let mut too_long = payload;
        too_long.push(b'x');
        assert!(ModelInForce::split(&too_long).is_none());
    }
}
