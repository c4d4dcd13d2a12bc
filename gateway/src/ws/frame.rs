//! RFC 6455 frame headers (section 5.2): parsing the server's, writing our masked ones.
//!
//! ```text
//!  0               1               2               3
//!  0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               | Masking-key, if MASK set to 1 |
//! +-------------------------------+-------------------------------+
//! | Masking-key (continued)       |          Payload Data         |
//! +-------------------------------- - - - - - - - - - - - - - - - +
//! ```

use super::{CONTROL_PAYLOAD_LEN_MAX, FRAME_HEADER_LEN_MAX};

/// A frame's opcode (RFC 6455 section 5.2; 0x3-0x7 and 0xB-0xF are reserved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Opcode {
    Continuation = 0x0,
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
}

impl Opcode {
    /// The opcode of a 4-bit value, `None` for a reserved one.
    pub fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    /// Close, Ping and Pong: at most [`CONTROL_PAYLOAD_LEN_MAX`] bytes, never fragmented.
    pub fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    /// RSV1-3, as the top three bits of the low nibble (`0b111` = all set).
    pub rsv: u8,
    /// The raw 4-bit opcode (see [`Opcode::from_bits`]).
    pub opcode_bits: u8,
    pub mask: Option<[u8; 4]>,
    /// Bytes of the header, extended length and mask key included.
    pub header_len: usize,
    /// Payload length as the frame declares it.
    pub payload_len: u64,
}

/// Why a header could not be parsed at all (the codec checks the rest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// A 64-bit length with its most significant bit set (RFC 6455 5.2: it MUST be 0).
    LengthMsbSet,
}

/// Parses the header at the start of `buf`: `Ok(None)` if `buf` does not hold all of it yet.
pub fn parse_header(buf: &[u8]) -> Result<Option<FrameHeader>, HeaderError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    let masked = b1 & 0x80 != 0;
    let len7 = b1 & 0x7F;
    let ext_len = match len7 {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let header_len = 2 + ext_len + if masked { 4 } else { 0 };
    if buf.len() < header_len {
        return Ok(None);
    }
    let payload_len = match len7 {
        126 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
        127 => {
            let mut be = [0u8; 8];
            be.copy_from_slice(&buf[2..10]);
            let len = u64::from_be_bytes(be);
            if len >> 63 != 0 {
                return Err(HeaderError::LengthMsbSet);
            }
            len
        }
        n => u64::from(n),
    };
    let mask = masked.then(|| {
        let at = 2 + ext_len;
        [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]
    });
    Ok(Some(FrameHeader {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 0x7,
        opcode_bits: b0 & 0x0F,
        mask,
        header_len,
        payload_len,
    }))
}

/// XORs `payload` with `key` (RFC 6455 5.3), as if it started at byte `offset` of the payload.
pub fn apply_mask(payload: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= key[(offset + i) & 3];
    }
}

/// The header length a frame of `payload_len` bytes needs, masked (as every client frame is).
pub fn masked_header_len(payload_len: usize) -> usize {
    match payload_len {
        0..=125 => 2 + 4,
        126..=0xFFFF => 4 + 4,
        _ => 10 + 4,
    }
}

/// Writes one complete masked frame (FIN set) into `out`; returns its length, or `None` if `out`
/// is too small. The payload is copied and masked with `key`.
pub fn write_masked_frame(
    out: &mut [u8],
    opcode: Opcode,
    payload: &[u8],
    key: [u8; 4],
) -> Option<usize> {
    let header_len = masked_header_len(payload.len());
    let total = header_len.checked_add(payload.len())?;
    if out.len() < total {
        return None;
    }
    debug_assert!(header_len <= FRAME_HEADER_LEN_MAX);
    debug_assert!(!opcode.is_control() || payload.len() <= CONTROL_PAYLOAD_LEN_MAX);
    out[0] = 0x80 | opcode as u8;
    let mut at = 2;
    match payload.len() {
        len @ 0..=125 => out[1] = 0x80 | len as u8,
        len @ 126..=0xFFFF => {
            out[1] = 0x80 | 126;
            out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            at = 4;
        }
        len => {
            out[1] = 0x80 | 127;
            out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            at = 10;
        }
    }
    out[at..at + 4].copy_from_slice(&key);
    at += 4;
    out[at..total].copy_from_slice(payload);
    apply_mask(&mut out[at..total], key, 0);
    Some(total)
}
