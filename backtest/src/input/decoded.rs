//! A stream message as the live feed decoded it ([`InputKind::Decoded`]): the journal's own
//! market records (`BOOK_TICKER`, `DEPTH_DIFF` chunks, `TRADE`, `AGG_TRADE`), read back as the
//! engine's [`MarketRecord`]s. One function for both sides of a backtest: the engine hands them
//! on as its feed stage would after decoding, the venue applies them.
//!
//! [`InputKind::Decoded`]: super::InputKind::Decoded

use levibot_engine::pipeline::MarketRecord;
use levibot_shm::RecordType;
use levibot_shm::records::{AggTrade, BookTicker, DepthDiff, Record, Trade, record_type};

/// The records of one message: `bytes` holds records of type `kind` back to back. A length
/// that is not a whole number of records ends the message where the last whole one does.
pub fn market_records(kind: RecordType, bytes: &[u8]) -> impl Iterator<Item = MarketRecord> + '_ {
    let size = record_size(kind).unwrap_or(usize::MAX);
    bytes
        .chunks_exact(size.min(bytes.len().max(1)))
        .filter(move |chunk| chunk.len() == size)
        .filter_map(move |chunk| match kind {
            record_type::BOOK_TICKER => BookTicker::from_bytes(chunk).map(MarketRecord::BookTicker),
            record_type::DEPTH_DIFF => DepthDiff::from_bytes(chunk)
                .filter(DepthDiff::counts_are_valid)
                .map(MarketRecord::Depth),
            record_type::TRADE => Trade::from_bytes(chunk).map(MarketRecord::Trade),
            record_type::AGG_TRADE => AggTrade::from_bytes(chunk).map(MarketRecord::AggTrade),
            _ => None,
        })
}

/// The payload size of a decoded market record type, or `None` for another type.
pub fn record_size(kind: RecordType) -> Option<usize> {
    match kind {
        record_type::BOOK_TICKER => Some(size_of::<BookTicker>()),
        record_type::DEPTH_DIFF => Some(size_of::<DepthDiff>()),
        record_type::TRADE => Some(size_of::<Trade>()),
        record_type::AGG_TRADE => Some(size_of::<AggTrade>()),
        _ => None,
    }
}

/// Sets the instrument id of a decoded market record in place (a journal's ids are its own;
/// a backtest's are its config's).
pub fn set_instrument_id(kind: RecordType, record: &mut [u8], instrument_id: u32) {
    fn set<R: Record>(record: &mut [u8], f: impl FnOnce(&mut R)) {
        if let Some(mut r) = R::from_bytes(record) {
            f(&mut r);
            record.copy_from_slice(r.to_bytes());
        }
    }
    match kind {
        record_type::BOOK_TICKER => set::<BookTicker>(record, |r| r.instrument_id = instrument_id),
        record_type::DEPTH_DIFF => set::<DepthDiff>(record, |r| r.instrument_id = instrument_id),
        record_type::TRADE => set::<Trade>(record, |r| r.instrument_id = instrument_id),
        record_type::AGG_TRADE => set::<AggTrade>(record, |r| r.instrument_id = instrument_id),
        _ => {}
    }
}

/// The instrument a decoded market record is of.
pub fn instrument_id(kind: RecordType, record: &[u8]) -> Option<u32> {
    market_records(kind, record).next().map(|r| match r {
        MarketRecord::BookTicker(t) => t.instrument_id,
        MarketRecord::Depth(d) | MarketRecord::Snapshot(d) => d.instrument_id,
        MarketRecord::Trade(t) => t.instrument_id,
        MarketRecord::AggTrade(t) => t.instrument_id,
        MarketRecord::Resync | MarketRecord::Stale => u32::MAX,
    })
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
    fn the_instrument_id_is_rewritten_in_place() {
        let t = Trade {
            instrument_id: 7,
            px: 12,
            ..Trade::default()
        };
        let mut bytes = t.to_bytes().to_vec();
        set_instrument_id(record_type::TRADE, &mut bytes, 2);
        assert_eq!(instrument_id(record_type::TRADE, &bytes), Some(2));
        assert!(matches!(
            market_records(record_type::TRADE, &bytes).next(),
            Some(MarketRecord::Trade(r)) if r.px == 12 && r.instrument_id == 2
        ));
    }
}
