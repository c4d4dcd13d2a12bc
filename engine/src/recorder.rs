//! Journals market data as it arrives: the exact bytes the venue sent (replay needs them) and the
//! decoded event with its receive stamp. Hot path: no allocation; records are built on the stack
//! and written in place into the journal frame.

use bytemuck::Zeroable;
use levibot_gateway::binance::{DepthUpdate, MarketEvent};
use levibot_shm::records::{
    DEPTH_LEVELS_PER_CHUNK, DepthChunk, Level, RawMessageHeader, Record, record_type,
};
use levibot_shm::{Appender, Position, Result};

/// Appends market data to the journal through one writer's appender.
#[derive(Debug)]
pub struct MarketDataRecorder {
    appender: Appender,
    /// Which connection the raw bytes came from (the daemon's numbering).
    source_id: u32,
}

impl MarketDataRecorder {
    pub fn new(appender: Appender, source_id: u32) -> Self {
        MarketDataRecorder {
            appender,
            source_id,
        }
    }

    /// Appends the venue's bytes exactly as received.
    #[inline]
    pub fn record_raw(&mut self, recv_tsc: u64, bytes: &[u8]) -> Result<Position> {
        self.record_raw_of(recv_tsc, None, bytes)
    }

    /// [`record_raw`](Self::record_raw) for a REST depth snapshot of `instrument_id`, whose
    /// body does not name its symbol: the header does, so a replay knows whose book it is.
    pub fn record_raw_snapshot(
        &mut self,
        recv_tsc: u64,
        instrument_id: u32,
        body: &[u8],
    ) -> Result<Position> {
        self.record_raw_of(recv_tsc, Some(instrument_id), body)
    }

    fn record_raw_of(
        &mut self,
        recv_tsc: u64,
        snapshot_of: Option<u32>,
        bytes: &[u8],
    ) -> Result<Position> {
        let header = RawMessageHeader {
            recv_tsc,
            source_id: self.source_id,
            snapshot_of: snapshot_of.map_or(0, |id| id.saturating_add(1)),
        };
        let header_len = size_of::<RawMessageHeader>();
        self.appender
            .append_with(record_type::RAW_MESSAGE, header_len + bytes.len(), |buf| {
                buf[..header_len].copy_from_slice(bytemuck::bytes_of(&header));
                buf[header_len..].copy_from_slice(bytes);
            })
    }

    /// Appends a decoded event; a depth update becomes as many [`DepthChunk`]s as its levels
    /// need. Skipped streams append nothing.
    #[inline]
    pub fn record_event(&mut self, event: &MarketEvent<'_>) -> Result<()> {
        match event {
            MarketEvent::BookTicker(t) => self.append(t),
            MarketEvent::Trade(t) => self.append(t),
            MarketEvent::AggTrade(t) => self.append(t),
            MarketEvent::Depth(d) => self.record_depth(d),
            MarketEvent::Skipped(_) => Ok(()),
        }
    }

    /// Appends one fixed-size record.
    #[inline]
    pub fn append<R: Record>(&mut self, record: &R) -> Result<()> {
        self.appender.append(R::RECORD_TYPE, record.to_bytes())?;
        Ok(())
    }

    fn record_depth(&mut self, update: &DepthUpdate<'_>) -> Result<()> {
        for diff in depth_chunks(update) {
            self.append(&diff)?;
        }
        Ok(())
    }
}

/// A depth update as the [`DepthChunk`]s that carry it (as many chunks of 8 levels as its
/// levels need, at least one): what the journal and the pipeline's rings hold.
#[inline]
pub fn depth_chunks<'a>(update: &'a DepthUpdate<'_>) -> impl Iterator<Item = DepthChunk> + 'a {
    let total = update.bids.len() + update.asks.len();
    let chunk_count = total.div_ceil(DEPTH_LEVELS_PER_CHUNK).max(1);
    let level_at = move |i: usize| -> Level {
        if i < update.bids.len() {
            update.bids[i]
        } else {
            update.asks[i - update.bids.len()]
        }
    };
    (0..chunk_count).map(move |chunk| {
        let start = chunk * DEPTH_LEVELS_PER_CHUNK;
        let end = (start + DEPTH_LEVELS_PER_CHUNK).min(total);
        let mut diff = DepthChunk::zeroed();
        diff.recv_tsc = update.recv_tsc;
        diff.event_time_ms = update.event_time_ms;
        diff.first_update_id = update.first_update_id;
        diff.final_update_id = update.final_update_id;
        diff.instrument_id = update.instrument_id;
        diff.chunk = chunk as u16;
        diff.chunk_count = chunk_count as u16;
        diff.bid_count = update.bids.len().clamp(start, end).saturating_sub(start) as u16;
        diff.ask_count = (end - start) as u16 - diff.bid_count;
        for (slot, i) in diff.levels.iter_mut().zip(start..end) {
            *slot = level_at(i);
        }
        diff
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use levibot_shm::records::DepthDiff;
    use levibot_shm::{Journal, JournalConfig, RetentionPolicy, StartAt, Tailer};

    #[test]
    fn depth_updates_are_chunked_and_raw_bytes_kept() {
        let dir = std::env::temp_dir().join(format!("levibot-recorder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = JournalConfig {
            dir: dir.clone(),
            segment_size: 1 << 20,
            prefault: false,
            retention: RetentionPolicy::keep_all(),
        };
        let journal = Journal::open(&config).unwrap();
        let mut recorder = MarketDataRecorder::new(journal.appender(0).unwrap(), 3);
        let bids: Vec<Level> = (0..40)
            .map(|i| Level {
                px: 1000 - i,
                qty: i + 1,
            })
            .collect();
        let asks: Vec<Level> = (0..30)
            .map(|i| Level {
                px: 2000 + i,
                qty: 0,
            })
            .collect();
        let update = DepthUpdate {
            instrument_id: 2,
            recv_tsc: 77,
            event_time_ms: 5,
            first_update_id: 10,
            final_update_id: 12,
            bids: &bids,
            asks: &asks,
        };
        recorder.record_raw(77, b"{\"raw\":1}").unwrap();
        recorder.record_event(&MarketEvent::Depth(update)).unwrap();

        let mut tailer = Tailer::open(&dir, StartAt::Beginning).unwrap();
        let mut raw = Vec::new();
        let mut chunks = Vec::new();
        tailer
            .poll(16, |f| match f.record_type {
                record_type::RAW_MESSAGE => raw.push(f.payload.to_vec()),
                record_type::DEPTH_DIFF => chunks.push(DepthDiff::from_bytes(f.payload).unwrap()),
                other => panic!("unexpected {other:?}"),
            })
            .unwrap();
        assert_eq!(&raw[0][16..], b"{\"raw\":1}");
        let header: RawMessageHeader = bytemuck::pod_read_unaligned(&raw[0][..16]);
        assert_eq!((header.recv_tsc, header.source_id), (77, 3));
        // 70 levels, 8 a chunk; read back as readers do, as journal chunks of up to 32.
        assert_eq!(chunks.len(), 9);
        let got_bids: Vec<Level> = chunks.iter().flat_map(|c| c.bids().to_vec()).collect();
        let got_asks: Vec<Level> = chunks.iter().flat_map(|c| c.asks().to_vec()).collect();
        assert_eq!((got_bids, got_asks), (bids, asks));
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(
                (
                    c.chunk as usize,
                    c.chunk_count,
                    c.first_update_id,
                    c.final_update_id
                ),
                (i, 9, 10, 12)
            );
        }
        drop(recorder);
        drop(journal);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
