//! hftbacktest's event files, written one row at a time: a NumPy `.npy` of the structured
//! `event_dtype`, or an `.npz` (a zip, stored uncompressed, with that `.npy` as `data.npy`).
//!
//! The `.npy` header (NumPy format 1.0) holds the row count, which is known only at the end:
//! the header is written with room for any count and rewritten by [`EventWriter::finish`]
//! (padded with spaces to the same length, which NumPy allows). hftbacktest's reader wants the
//! rows to start at a multiple of 64 bytes into the `.npy` (`10 + header length`), as NumPy
//! itself pads. The zip's local header is likewise patched at the end with the entry's size and
//! CRC-32 (the header's CRC combined with the rows'). An `.npz` holds at most 4 GiB (no zip64):
//! write a `.npy` for more.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use flate2::Crc;

/// One row of hftbacktest's event array (`hftbacktest.types.event_dtype`, 64 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EventRow {
    pub ev: u64,
    pub exch_ts: i64,
    pub local_ts: i64,
    pub px: f64,
    pub qty: f64,
    pub order_id: u64,
    pub ival: i64,
    pub fval: f64,
}

/// Bytes of one row.
pub const ROW_BYTES: usize = 64;

/// The `descr` of `event_dtype`, as NumPy writes it.
pub const EVENT_DESCR: &str = "[('ev', '<u8'), ('exch_ts', '<i8'), ('local_ts', '<i8'), \
     ('px', '<f8'), ('qty', '<f8'), ('order_id', '<u8'), ('ival', '<i8'), ('fval', '<f8')]";

impl EventRow {
    pub fn to_bytes(&self) -> [u8; ROW_BYTES] {
        let mut b = [0u8; ROW_BYTES];
        b[0..8].copy_from_slice(&self.ev.to_le_bytes());
        b[8..16].copy_from_slice(&self.exch_ts.to_le_bytes());
        b[16..24].copy_from_slice(&self.local_ts.to_le_bytes());
        b[24..32].copy_from_slice(&self.px.to_le_bytes());
        b[32..40].copy_from_slice(&self.qty.to_le_bytes());
        b[40..48].copy_from_slice(&self.order_id.to_le_bytes());
        b[48..56].copy_from_slice(&self.ival.to_le_bytes());
        b[56..64].copy_from_slice(&self.fval.to_le_bytes());
        b
    }
}

/// The name of the array in an `.npz` (hftbacktest reads `data`).
const ENTRY_NAME: &[u8] = b"data.npy";
const LOCAL_HEADER_LEN: u64 = 30 + ENTRY_NAME.len() as u64;
/// A fixed DOS date and time (1980-01-01 00:00): the same input gives the same bytes.
const DOS_TIME: u16 = 0;
const DOS_DATE: u16 = (1 << 5) | 1;

/// The `.npy` header dictionary for `rows` rows, padded with spaces to `len` bytes (newline
/// last), or unpadded if `len` is 0.
fn npy_header(rows: u64, len: usize) -> Vec<u8> {
    let mut h = format!("{{'descr': {EVENT_DESCR}, 'fortran_order': False, 'shape': ({rows},), }}")
        .into_bytes();
    let len = if len == 0 {
        // Room for any count, rows aligned to 64 bytes: 10 + header length.
        let widest = npy_header_len_unpadded(u64::MAX);
        (10 + widest + 1).div_ceil(64) * 64 - 10
    } else {
        len
    };
    h.resize(len - 1, b' ');
    h.push(b'\n');
    h
}

fn npy_header_len_unpadded(rows: u64) -> usize {
    format!("{{'descr': {EVENT_DESCR}, 'fortran_order': False, 'shape': ({rows},), }}").len()
}

/// Streams event rows into a `.npy` or `.npz` file.
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
    zip: bool,
    header_len: usize,
    rows: u64,
    crc: Crc,
}

impl EventWriter {
    /// Creates `path` (`.npz`: a zip; anything else: a bare `.npy`).
    pub fn create(path: &Path) -> Result<EventWriter> {
        let zip = path.extension().is_some_and(|e| e == "npz");
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = EventWriter {
            path: path.to_owned(),
            out: BufWriter::with_capacity(1 << 20, file),
            zip,
            header_len: 0,
            rows: 0,
            crc: Crc::new(),
        };
        if zip {
            // Patched by `finish`.
            w.out.write_all(&[0u8; LOCAL_HEADER_LEN as usize])?;
        }
        let header = npy_header(0, 0);
        w.header_len = header.len();
        w.out.write_all(&npy_preamble(header.len()))?;
        w.out.write_all(&header)?;
        Ok(w)
    }

    /// Appends one row.
    pub fn push(&mut self, row: &EventRow) -> Result<()> {
        let bytes = row.to_bytes();
        if self.zip {
            self.crc.update(&bytes);
        }
        self.out
            .write_all(&bytes)
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.rows += 1;
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes the row count into the header (and the zip's directory), and closes the file.
    pub fn finish(mut self) -> Result<u64> {
        let header = npy_header(self.rows, self.header_len);
        let mut npy_head = npy_preamble(self.header_len);
        npy_head.extend_from_slice(&header);
        let npy_len = npy_head.len() as u64 + self.rows * ROW_BYTES as u64;
        if self.zip {
            if npy_len >= u64::from(u32::MAX) || self.rows == u64::MAX {
                bail!(
                    "{}: {} bytes is more than an .npz without zip64 holds: write a .npy",
                    self.path.display(),
                    npy_len
                );
            }
            let mut crc = Crc::new();
            crc.update(&npy_head);
            crc.combine(&self.crc);
            let crc = crc.sum();
            let size = npy_len as u32;
            let central_at = LOCAL_HEADER_LEN + npy_len;
            // Central directory: one entry, then its end record.
            let mut cd = Vec::with_capacity(46 + ENTRY_NAME.len() + 22);
            cd.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            cd.extend_from_slice(&20u16.to_le_bytes()); // made by
            cd.extend_from_slice(&20u16.to_le_bytes()); // needed
            cd.extend_from_slice(&0u16.to_le_bytes()); // flags
            cd.extend_from_slice(&0u16.to_le_bytes()); // stored
            cd.extend_from_slice(&DOS_TIME.to_le_bytes());
            cd.extend_from_slice(&DOS_DATE.to_le_bytes());
            cd.extend_from_slice(&crc.to_le_bytes());
            cd.extend_from_slice(&size.to_le_bytes());
            cd.extend_from_slice(&size.to_le_bytes());
            cd.extend_from_slice(&(ENTRY_NAME.len() as u16).to_le_bytes());
            cd.extend_from_slice(&[0u8; 2 + 2 + 2 + 2]); // extra, comment, disk, internal attrs
            cd.extend_from_slice(&0u32.to_le_bytes()); // external attrs
            cd.extend_from_slice(&0u32.to_le_bytes()); // local header at 0
            cd.extend_from_slice(ENTRY_NAME);
            let cd_len = cd.len() as u32;
            cd.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
            cd.extend_from_slice(&[0u8; 4]); // disk numbers
            cd.extend_from_slice(&1u16.to_le_bytes());
            cd.extend_from_slice(&1u16.to_le_bytes());
            cd.extend_from_slice(&cd_len.to_le_bytes());
            cd.extend_from_slice(&(central_at as u32).to_le_bytes());
            cd.extend_from_slice(&0u16.to_le_bytes()); // comment
            self.out.write_all(&cd)?;

            let mut local = Vec::with_capacity(LOCAL_HEADER_LEN as usize);
            local.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
            local.extend_from_slice(&20u16.to_le_bytes());
            local.extend_from_slice(&0u16.to_le_bytes());
            local.extend_from_slice(&0u16.to_le_bytes());
            local.extend_from_slice(&DOS_TIME.to_le_bytes());
            local.extend_from_slice(&DOS_DATE.to_le_bytes());
            local.extend_from_slice(&crc.to_le_bytes());
            local.extend_from_slice(&size.to_le_bytes());
            local.extend_from_slice(&size.to_le_bytes());
            local.extend_from_slice(&(ENTRY_NAME.len() as u16).to_le_bytes());
            local.extend_from_slice(&0u16.to_le_bytes());
            local.extend_from_slice(ENTRY_NAME);
            local.extend_from_slice(&npy_head);
            self.out.seek(SeekFrom::Start(0))?;
            self.out.write_all(&local)?;
        } else {
            self.out.seek(SeekFrom::Start(0))?;
            self.out.write_all(&npy_head)?;
        }
        let file = self
            .out
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", self.path.display()))?;
        file.sync_all()
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(self.rows)
    }
}

/// Magic, version 1.0 and the header's length.
fn npy_preamble(header_len: usize) -> Vec<u8> {
    let mut p = b"\x93NUMPY\x01\x00".to_vec();
    p.extend_from_slice(&(header_len as u16).to_le_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_leaves_room_for_any_count_and_aligns_the_rows() {
        let h = npy_header(0, 0);
        assert_eq!((10 + h.len()) % 64, 0);
        assert!(h.len() > npy_header_len_unpadded(u64::MAX));
        let full = npy_header(u64::MAX - 1, h.len());
        assert_eq!(full.len(), h.len());
        assert_eq!(*full.last().unwrap(), b'\n');
    }

    #[test]
    fn a_row_is_its_fields_little_endian_in_order() {
        let row = EventRow {
            ev: 1,
            exch_ts: 2,
            local_ts: 3,
            px: 4.5,
            qty: 6.0,
            order_id: 7,
            ival: -8,
            fval: 9.25,
        };
        let b = row.to_bytes();
        assert_eq!(&b[0..8], &1u64.to_le_bytes());
        assert_eq!(&b[24..32], &4.5f64.to_le_bytes());
        assert_eq!(&b[48..56], &(-8i64).to_le_bytes());
        assert_eq!(&b[56..64], &9.25f64.to_le_bytes());
    }
}
