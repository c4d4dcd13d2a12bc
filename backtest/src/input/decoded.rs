//! A stream message as the live feed decoded it ([`InputKind::Decoded`]): the journal's own
//! market records (`BOOK_TICKER`, `DEPTH_DIFF` chunks, `TRADE`, `AGG_TRADE`), read back as the
//! engine's [`MarketRecord`]s. One function for both sides of a backtest: the engine hands them
//! on as its feed stage would after decoding, the venue applies them.
//!
//! [`InputKind::Decoded`]: super::InputKind::Decoded

use levibot_engine::pipeline::MarketRecord;
use levibot_shm::RecordType;
use levibot_shm::records::{AggTrade, BookTicker, DepthDiff, Record, Trade, record_type};

/// The records of one message: `bytes` holds records of type `kind` back to back, as
/// [`record_of`] gives them. A length that is not a whole number of records ends the message
/// where the last whole one does.
pub fn market_records(kind: RecordType, bytes: &[u8]) -> MarketRecords<'_> {
    MarketRecords { kind, rest: bytes }
}

/// The iterator [`market_records`] gives. Written out, not as `from_fn(..).flatten()`: each
/// adapter moved the record (a depth chunk is 560 bytes) once more per message, on both sides
/// of a backtest (a tenth of the decoded pass's instructions, by callgrind).
pub struct MarketRecords<'a> {
    kind: RecordType,
    rest: &'a [u8],
}

impl Iterator for MarketRecords<'_> {
    type Item = MarketRecord;

    #[inline]
    fn next(&mut self) -> Option<MarketRecord> {
        loop {
            let len = record_len(self.kind, self.rest).filter(|&len| len <= self.rest.len())?;
            let (record, after) = self.rest.split_at(len);
            self.rest = after;
            let parsed = match self.kind {
                record_type::BOOK_TICKER => {
                    BookTicker::from_bytes(record).map(MarketRecord::BookTicker)
                }
                record_type::DEPTH_DIFF => DepthDiff::from_bytes(record)
                    .filter(DepthDiff::counts_are_valid)
                    .map(MarketRecord::Depth),
                record_type::TRADE => Trade::from_bytes(record).map(MarketRecord::Trade),
                record_type::AGG_TRADE => AggTrade::from_bytes(record).map(MarketRecord::AggTrade),
                _ => None,
            };
            if parsed.is_some() {
                return parsed;
            }
        }
    }
}

/// The length of the record of type `kind` at the start of `bytes` (a depth chunk's from its
/// counts), or `None` for another type or a depth chunk whose fixed fields are not all there.
fn record_len(kind: RecordType, bytes: &[u8]) -> Option<usize> {
    match kind {
        record_type::BOOK_TICKER => Some(size_of::<BookTicker>()),
        record_type::DEPTH_DIFF => DepthDiff::payload_len_of(bytes),
        record_type::TRADE => Some(size_of::<Trade>()),
        record_type::AGG_TRADE => Some(size_of::<AggTrade>()),
        _ => None,
    }
}

/// A journal payload's decoded market record as messages hold them back to back: a depth
/// chunk ends after its levels, whichever layout wrote it (layout 1 wrote all 32 levels).
/// `None` for another record type, or a payload that is not one whole record.
pub fn record_of(kind: RecordType, payload: &[u8]) -> Option<&[u8]> {
    let len = record_len(kind, payload)?;
    let whole = payload.len() == len
        || (kind == record_type::DEPTH_DIFF && payload.len() == size_of::<DepthDiff>());
    whole.then(|| &payload[..len])
}

/// Where a decoded market record type keeps its instrument id, bytes from its start.
fn instrument_id_offset(kind: RecordType) -> Option<usize> {
    match kind {
        record_type::BOOK_TICKER => Some(std::mem::offset_of!(BookTicker, instrument_id)),
        record_type::DEPTH_DIFF => Some(std::mem::offset_of!(DepthDiff, instrument_id)),
        record_type::TRADE => Some(std::mem::offset_of!(Trade, instrument_id)),
        record_type::AGG_TRADE => Some(std::mem::offset_of!(AggTrade, instrument_id)),
        _ => None,
    }
}

// Every decoded market record starts with its receive stamp: read in place, not copied out.
const _: () = assert!(
    std::mem::offset_of!(BookTicker, recv_tsc) == 0
        && std::mem::offset_of!(DepthDiff, recv_tsc) == 0
        && std::mem::offset_of!(Trade, recv_tsc) == 0
        && std::mem::offset_of!(AggTrade, recv_tsc) == 0
);

/// The little-endian `N` bytes at `at` in `record`, if there.
fn field<const N: usize>(record: &[u8], at: usize) -> Option<[u8; N]> {
    record.get(at..at + N)?.try_into().ok()
}

/// Sets the instrument id of a decoded market record ([`record_of`]) in place (a journal's
/// ids are its own; a backtest's are its config's). Written where the record keeps it, not
/// through a copy of the record.
pub fn set_instrument_id(kind: RecordType, record: &mut [u8], instrument_id: u32) {
    if let Some(at) = instrument_id_offset(kind)
        && record_len(kind, record) == Some(record.len())
    {
        record[at..at + 4].copy_from_slice(&instrument_id.to_le_bytes());
    }
}

/// The instrument a decoded market record ([`record_of`]) is of.
pub fn instrument_id(kind: RecordType, record: &[u8]) -> Option<u32> {
    if record_len(kind, record)? != record.len() {
        return None;
    }
    field(record, instrument_id_offset(kind)?).map(u32::from_le_bytes)
}

/// The receive stamp a decoded market record ([`record_of`]) carries.
pub fn recv_tsc(kind: RecordType, record: &[u8]) -> Option<u64> {
    if record_len(kind, record)? != record.len() {
        return None;
    }
    field(record, 0).map(u64::from_le_bytes)
}

/// A depth chunk's index in its update and its update's chunk count (at least 1); `(0, 1)`
/// for every other record.
pub fn chunk_of(kind: RecordType, record: &[u8]) -> (u16, u16) {
    if kind != record_type::DEPTH_DIFF || DepthDiff::payload_len_of(record) != Some(record.len()) {
        return (0, 1);
    }
    let at = |offset| field(record, offset).map_or(0, u16::from_le_bytes);
    (
        at(std::mem::offset_of!(DepthDiff, chunk)),
        at(std::mem::offset_of!(DepthDiff, chunk_count)).max(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_whole_and_a_torn_tail_is_dropped() {
        let mut a = DepthDiff::from_bytes(&[0; size_of::<DepthDiff>()]).unwrap();
        a.instrument_id = 3;
        a.chunk_count = 2;
        a.bid_count = 1;
        let mut b = a;
        b.chunk = 1;
        let mut bytes = a.to_bytes().to_vec();
        bytes.extend_from_slice(b.to_bytes());
        assert_eq!(chunk_of(record_type::DEPTH_DIFF, b.to_bytes()), (1, 2));
        assert_eq!(chunk_of(record_type::TRADE, b.to_bytes()), (0, 1));
        let mut stamped = a;
        stamped.recv_tsc = 0x0102_0304_0506_0708;
        assert_eq!(
            recv_tsc(record_type::DEPTH_DIFF, stamped.to_bytes()),
            Some(0x0102_0304_0506_0708)
        );
        assert_eq!(
            instrument_id(record_type::DEPTH_DIFF, stamped.to_bytes()),
            Some(3)
        );
        let read: Vec<_> = market_records(record_type::DEPTH_DIFF, &bytes).collect();
        assert_eq!(read.len(), 2);
        assert!(matches!(read[1], MarketRecord::Depth(d) if d.chunk == 1));
        bytes.truncate(bytes.len() - 1);
        assert_eq!(market_records(record_type::DEPTH_DIFF, &bytes).count(), 1);
        // Counts past the record: refused, never a panic downstream.
        let mut bad = a;
        bad.bid_count = 40;
        assert_eq!(
            market_records(record_type::DEPTH_DIFF, bad.to_bytes()).count(),
            0
        );
        assert_eq!(market_records(record_type::RAW_MESSAGE, &bytes).count(), 0);
        assert_eq!(market_records(record_type::TRADE, &[]).count(), 0);
    }

    #[test]
    fn a_depth_chunk_is_kept_through_its_levels_whichever_layout_wrote_it() {
        let mut d = DepthDiff::from_bytes(&[0; size_of::<DepthDiff>()]).unwrap();
        d.bid_count = 1;
        d.ask_count = 2;
        d.levels[2].px = 7;
        let layout_2 = d.to_bytes();
        assert_eq!(layout_2.len(), 48 + 3 * 16);
        // Layout 1: all 32 levels, the unused ones zero.
        let mut layout_1 = layout_2.to_vec();
        layout_1.resize(size_of::<DepthDiff>(), 0);
        let layout_1 = &layout_1[..];
        assert_eq!(record_of(record_type::DEPTH_DIFF, layout_1), Some(layout_2));
        assert_eq!(record_of(record_type::DEPTH_DIFF, layout_2), Some(layout_2));
        // Neither: a payload cut inside its levels, or longer than its levels but not whole.
        assert_eq!(record_of(record_type::DEPTH_DIFF, &layout_1[..100]), None);
        assert_eq!(record_of(record_type::DEPTH_DIFF, &layout_1[..200]), None);
        assert_eq!(record_of(record_type::TRADE, layout_2), None);
        let mut bytes = layout_2.to_vec();
        bytes.extend_from_slice(layout_2);
        let read: Vec<_> = market_records(record_type::DEPTH_DIFF, &bytes).collect();
        assert!(
            matches!(read[..], [MarketRecord::Depth(a), MarketRecord::Depth(b)] if a == d && b == d)
        );
    }

    #[test]
    fn the_instrument_id_is_rewritten_in_place() {
        let t = Trade {
            instrument_id: 7,
            px: 12,
            ..Trade::default()
        };
        let mut bytes = t.to_bytes().to_vec();
        set_instrument_id(record_type::TRADE, &mut bytes, 2);
        assert_eq!(instrument_id(record_type::TRADE, &bytes), Some(2));
        assert_eq!(instrument_id(record_type::TRADE, &bytes[1..]), None);
        assert_eq!(instrument_id(record_type::RAW_MESSAGE, &bytes), None);
        assert!(matches!(
            market_records(record_type::TRADE, &bytes).next(),
            Some(MarketRecord::Trade(r)) if r.px == 12 && r.instrument_id == 2
        ));
    }
}
