//! A stream message as the live feed decoded it ([`InputKind::Decoded`]): the journal's own
//! market records (`BOOK_TICKER`, `DEPTH_DIFF` chunks, `TRADE`, `AGG_TRADE`), read back as the
//! engine's [`MarketRecord`]s. One function for both sides of a backtest: the engine hands them
//! on as its feed stage would after decoding, the venue applies them.
//!
//! [`InputKind::Decoded`]: super::InputKind::Decoded

use bytemuck::Zeroable;
use levibot_engine::pipeline::MarketRecord;
use levibot_shm::RecordType;
use levibot_shm::records::{
    AggTrade, BookTicker, DEPTH_LEVELS_PER_CHUNK, DEPTH_LEVELS_PER_RECORD, DepthChunk,
    DepthChunkOf, DepthDiff, Level, Record, Trade, record_type,
};

/// The records of one message: `bytes` holds records of type `kind` back to back, as
/// [`record_of`] gives them. A length that is not a whole number of records ends the message
/// where the last whole one does.
///
/// A journal's depth chunk holds up to 32 levels; the engine's ([`DepthChunk`]) up to 8. Each
/// journal chunk is cut into engine chunks, numbered again through the update: `chunk_count`
/// is what the update's journal chunks make together. An update some of whose journal chunks
/// are missing is numbered one chunk longer than it is, so that a book never takes it for
/// whole (it counts the chunk lost and resyncs, as with the journal's own numbering).
pub fn market_records(kind: RecordType, bytes: &[u8]) -> MarketRecords<'_> {
    MarketRecords {
        kind,
        rest: bytes,
        cutting: None,
        numbering: Numbering::default(),
    }
}

/// The iterator [`market_records`] gives. Written out, not as `from_fn(..).flatten()`: each
/// adapter moved the record once more per message, on both sides of a backtest (a tenth of the
/// decoded pass's instructions, by callgrind, when a depth record was 560 bytes).
pub struct MarketRecords<'a> {
    kind: RecordType,
    rest: &'a [u8],
    /// The journal depth chunk being cut into engine chunks, and its next level.
    cutting: Option<(&'a [u8], usize)>,
    numbering: Numbering,
}

/// Where the engine chunks of the update being read stand.
#[derive(Clone, Copy, Debug, Default)]
struct Numbering {
    final_update_id: u64,
    next_chunk: u16,
    chunk_count: u16,
}

impl Iterator for MarketRecords<'_> {
    type Item = MarketRecord;

    #[inline]
    fn next(&mut self) -> Option<MarketRecord> {
        loop {
            if let Some((record, level)) = self.cutting {
                return Some(MarketRecord::Depth(self.cut(record, level)));
            }
            let len = record_len(self.kind, self.rest).filter(|&len| len <= self.rest.len())?;
            let (record, after) = self.rest.split_at(len);
            let parsed = match self.kind {
                record_type::BOOK_TICKER => {
                    BookTicker::from_bytes(record).map(MarketRecord::BookTicker)
                }
                record_type::DEPTH_DIFF => {
                    if let Some(head) = depth_header(record) {
                        self.number(&head);
                        self.rest = after;
                        return Some(MarketRecord::Depth(self.cut(record, 0)));
                    }
                    None
                }
                record_type::TRADE => Trade::from_bytes(record).map(MarketRecord::Trade),
                record_type::AGG_TRADE => AggTrade::from_bytes(record).map(MarketRecord::AggTrade),
                _ => None,
            };
            self.rest = after;
            if parsed.is_some() {
                return parsed;
            }
        }
    }
}

impl<'a> MarketRecords<'a> {
    /// Numbers the update that the journal chunk with fixed fields `head` (at the head of
    /// `rest`) belongs to, if it starts one: its chunks are the valid depth chunks from here
    /// with its ids.
    fn number(&mut self, head: &DepthHeader) {
        if self.numbering.chunk_count != 0
            && head.chunk != 0
            && head.final_update_id == self.numbering.final_update_id
        {
            return;
        }
        if head.chunk_count <= 1 {
            // The common case, an update in one journal chunk: nothing to scan.
            self.numbering = Numbering {
                final_update_id: head.final_update_id,
                next_chunk: 0,
                chunk_count: pieces_of(head.bid_count as usize + head.ask_count as usize) as u16,
            };
            return;
        }
        let (mut pieces, mut journal_chunks, mut whole) = (0usize, 0u16, true);
        let mut rest = self.rest;
        while let Some(len) = record_len(self.kind, rest).filter(|&len| len <= rest.len()) {
            let (chunk, after) = rest.split_at(len);
            rest = after;
            let Some(h) = depth_header(chunk) else {
                continue;
            };
            if h.final_update_id != head.final_update_id || (journal_chunks > 0 && h.chunk == 0) {
                break;
            }
            whole &= h.chunk == journal_chunks && h.chunk_count == head.chunk_count;
            journal_chunks = journal_chunks.saturating_add(1);
            pieces += pieces_of(h.bid_count as usize + h.ask_count as usize);
        }
        whole &= journal_chunks == head.chunk_count.max(1);
        self.numbering = Numbering {
            final_update_id: head.final_update_id,
            next_chunk: 0,
            chunk_count: (pieces + usize::from(!whole)).min(u16::MAX as usize) as u16,
        };
    }

    /// The engine chunk of the journal chunk `record` from its level `from`; notes where the
    /// next one starts, if the record has more levels.
    #[inline]
    fn cut(&mut self, record: &'a [u8], from: usize) -> DepthChunk {
        let mut piece = DepthChunk::zeroed();
        let fixed = DepthChunk::FIXED_LEN;
        let level_len = size_of::<Level>();
        bytemuck::bytes_of_mut(&mut piece)[..fixed].copy_from_slice(&record[..fixed]);
        let (bids, levels) = (
            piece.bid_count as usize,
            piece.bid_count as usize + piece.ask_count as usize,
        );
        let to = (from + DEPTH_LEVELS_PER_CHUNK).min(levels);
        bytemuck::bytes_of_mut(&mut piece)[fixed..fixed + (to - from) * level_len]
            .copy_from_slice(&record[fixed + from * level_len..fixed + to * level_len]);
        piece.bid_count = (bids.clamp(from, to) - from) as u16;
        piece.ask_count = (to - from) as u16 - piece.bid_count;
        let numbering = &mut self.numbering;
        piece.chunk = numbering
            .next_chunk
            .min(numbering.chunk_count.saturating_sub(1));
        piece.chunk_count = numbering.chunk_count.max(1);
        numbering.next_chunk = numbering.next_chunk.saturating_add(1);
        self.cutting = (to < levels).then_some((record, to));
        piece
    }
}

/// A journal depth chunk's fixed fields (its levels left out): read without copying the
/// levels.
type DepthHeader = DepthChunkOf<0>;

/// The fixed fields of the depth chunk `record` (a whole one: see [`record_len`]), if its
/// counts are valid for a journal chunk (as [`DepthDiff::counts_are_valid`]: the header's own
/// `N` is 0).
#[inline]
fn depth_header(record: &[u8]) -> Option<DepthHeader> {
    let header: DepthHeader =
        bytemuck::try_pod_read_unaligned(record.get(..DepthHeader::FIXED_LEN)?).ok()?;
    let levels = header.bid_count as usize + header.ask_count as usize;
    (levels <= DEPTH_LEVELS_PER_RECORD && header.chunk < header.chunk_count.max(1))
        .then_some(header)
}

/// Engine chunks a journal chunk of `levels` levels is cut into (one, for none).
#[inline]
fn pieces_of(levels: usize) -> usize {
    levels.div_ceil(DEPTH_LEVELS_PER_CHUNK).max(1)
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
        d.chunk_count = 1;
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
            matches!(read[..], [MarketRecord::Depth(a), MarketRecord::Depth(b)]
                if a.to_bytes() == d.to_bytes() && b.to_bytes() == d.to_bytes())
        );
    }

    /// A 70-level update as a journal chunked by 32 holds it (layout 1 and 2 writers).
    fn journal_chunks_of(bids: &[Level], asks: &[Level]) -> Vec<DepthDiff> {
        let all: Vec<(bool, Level)> = bids
            .iter()
            .map(|l| (true, *l))
            .chain(asks.iter().map(|l| (false, *l)))
            .collect();
        let count = all.len().div_ceil(DEPTH_LEVELS_PER_RECORD) as u16;
        all.chunks(DEPTH_LEVELS_PER_RECORD)
            .enumerate()
            .map(|(i, levels)| {
                let mut d = DepthDiff::zeroed();
                (d.instrument_id, d.event_time_ms) = (4, 99);
                (d.first_update_id, d.final_update_id) = (10, 12);
                (d.chunk, d.chunk_count) = (i as u16, count);
                d.bid_count = levels.iter().filter(|(bid, _)| *bid).count() as u16;
                d.ask_count = levels.len() as u16 - d.bid_count;
                for (slot, (_, level)) in d.levels.iter_mut().zip(levels) {
                    *slot = *level;
                }
                d
            })
            .collect()
    }

    #[test]
    fn a_journal_chunk_of_32_levels_is_cut_as_the_live_feed_chunks() {
        // 40 bids down from 1000, 30 asks up from 2000.
        let side = |best: i64, step: i64, n: i64| -> Vec<Level> {
            (0..n)
                .map(|i| Level {
                    px: best + step * i,
                    qty: i + 1,
                })
                .collect()
        };
        let (bids, asks) = (side(1000, -1, 40), side(2000, 1, 30));
        let journal = journal_chunks_of(&bids, &asks);
        assert_eq!(journal.len(), 3);
        let bytes: Vec<u8> = journal.iter().flat_map(|d| d.to_bytes().to_vec()).collect();
        let read: Vec<DepthChunk> = market_records(record_type::DEPTH_DIFF, &bytes)
            .map(|r| match r {
                MarketRecord::Depth(d) => d,
                other => panic!("not a depth chunk: {other:?}"),
            })
            .collect();
        // The oracle: how the live feed chunks the same update (70 levels, 8 a chunk: 9).
        let update = levibot_gateway::binance::DepthUpdate {
            instrument_id: 4,
            recv_tsc: 0,
            event_time_ms: 99,
            first_update_id: 10,
            final_update_id: 12,
            bids: &bids,
            asks: &asks,
        };
        let live: Vec<DepthChunk> = levibot_engine::recorder::depth_chunks(&update).collect();
        assert_eq!(live.len(), 9);
        assert_eq!(read, live);

        // Its middle journal chunk lost: 4 + 1 engine chunks read, numbered as 6, so that no
        // book takes the update for whole.
        let mut torn = journal[0].to_bytes().to_vec();
        torn.extend_from_slice(journal[2].to_bytes());
        let read: Vec<(u16, u16)> = market_records(record_type::DEPTH_DIFF, &torn)
            .map(|r| match r {
                MarketRecord::Depth(d) => (d.chunk, d.chunk_count),
                other => panic!("not a depth chunk: {other:?}"),
            })
            .collect();
        assert_eq!(read, (0..5).map(|i| (i, 6)).collect::<Vec<_>>());

        // Two updates back to back are numbered each from 0.
        let mut next = journal_chunks_of(&bids[..3], &[]);
        (next[0].first_update_id, next[0].final_update_id) = (13, 13);
        let mut two = bytes.clone();
        two.extend_from_slice(next[0].to_bytes());
        let last = market_records(record_type::DEPTH_DIFF, &two).last();
        assert!(matches!(last, Some(MarketRecord::Depth(d))
            if (d.chunk, d.chunk_count, d.bid_count, d.final_update_id) == (0, 1, 3, 13)));
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
