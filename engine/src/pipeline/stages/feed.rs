//! The feed stage: venue bytes to decoded records, with the stream's continuity checked per
//! instrument and both the bytes and the records journaled (deferred). Its own file because it
//! is the pipeline's first stage, the one that faces the venue's market data.

use levibot_gateway::binance::{
    Decoder, DepthUpdate, LEVELS_PER_MESSAGE_MAX, MESSAGE_LEN_MAX, MarketEvent,
};
use levibot_shm::codes::label;
use levibot_shm::counters::{Counter, CountersWriter};
use levibot_shm::records::DEPTH_LEVELS_PER_CHUNK;
use levibot_shm::{Appender, ShmError};

use super::{StageClock, counter};
use crate::pipeline::{Decoded, MarketRecord};
use crate::recorder::{MarketDataRecorder, depth_chunks};

/// Decodes venue messages and journals both the exact bytes and the decoded events.
///
/// Journaling is deferred work: the message's bytes and records wait in fixed buffers until
/// [`journal_pending`](Self::journal_pending) (the agent's deferred work, after the rest of a
/// fused pipeline has handled the message), or until the next message arrives.
pub struct FeedStage {
    decoder: Decoder,
    recorder: MarketDataRecorder,
    clock: StageClock,
    messages: Counter,
    decode_errors: Counter,
    journal_errors: Counter,
    /// The last message's bytes (capacity `MESSAGE_LEN_MAX`, never grown) and receive stamp.
    pending_raw: Vec<u8>,
    pending_recv_tsc: Option<u64>,
    /// The last message's records (capacity `RECORDS_PER_MESSAGE_MAX`, never grown).
    pending_records: Vec<MarketRecord>,
    /// The last depth update's `u` of each instrument id (0: none yet), or its snapshot's
    /// `lastUpdateId` while `after_snapshot`: a stream whose next `U` is not `u + 1` (or, after
    /// a snapshot, does not straddle it) has lost an update.
    last_final_update_id: Vec<u64>,
    after_snapshot: Vec<bool>,
    stream_gaps: Counter,
    /// Whether the bytes and records are journaled (always, live; a backtest may leave them
    /// out: its input already holds them).
    journal_market: bool,
}

impl FeedStage {
    /// `appender` journals the raw bytes (source `source_id`) and the decoded events.
    pub fn new(
        decoder: Decoder,
        appender: Appender,
        source_id: u32,
        clock: StageClock,
        counters: &CountersWriter,
    ) -> Result<FeedStage, ShmError> {
        let instruments_len = decoder.instruments().len();
        Ok(FeedStage {
            decoder,
            recorder: MarketDataRecorder::new(appender, source_id),
            clock,
            messages: counter(counters, label::FEED_MESSAGES)?,
            decode_errors: counter(counters, label::FEED_DECODE_ERRORS)?,
            journal_errors: counter(counters, label::FEED_JOURNAL_ERRORS)?,
            pending_raw: Vec::with_capacity(MESSAGE_LEN_MAX),
            pending_recv_tsc: None,
            pending_records: Vec::with_capacity(Self::RECORDS_PER_MESSAGE_MAX),
            last_final_update_id: vec![0; instruments_len],
            after_snapshot: vec![false; instruments_len],
            stream_gaps: counter(counters, label::FEED_STREAM_GAPS)?,
            journal_market: true,
        })
    }

    /// Whether market data is journaled from now on (`true` unless said otherwise). Only a
    /// backtest turns it off, for a run whose input already holds the market: its journal
    /// then has the orders, reports, risk and the run's events, not the bytes and records.
    pub fn set_journal_market(&mut self, on: bool) {
        self.journal_pending();
        self.journal_market = on;
    }

    /// A REST depth snapshot of `instrument_id` (a live feed's resync), journaled raw and handed
    /// on as [`MarketRecord::Snapshot`] chunks. A body that does not decode is counted. Cold
    /// path (a connect or a gap), but allocation-free all the same.
    pub fn on_snapshot(&mut self, instrument_id: u32, body: &[u8], mut emit: impl FnMut(Decoded)) {
        self.journal_pending();
        let recv_tsc = self.clock.now_tsc();
        if self.journal_market
            && self
                .recorder
                .record_raw_snapshot(recv_tsc, instrument_id, body)
                .is_err()
        {
            self.journal_errors.increment();
        }
        let snapshot = match self.decoder.decode_snapshot(body, instrument_id) {
            Ok(snapshot) => snapshot,
            Err(_) => {
                self.decode_errors.increment();
                return;
            }
        };
        let decoded_tsc = self.clock.now_tsc();
        if let Some(last) = self.last_final_update_id.get_mut(instrument_id as usize) {
            // The stream's continuity is checked against the snapshot from here.
            *last = snapshot.last_update_id;
            self.after_snapshot[instrument_id as usize] = true;
        }
        let as_update = DepthUpdate {
            instrument_id,
            recv_tsc,
            event_time_ms: 0,
            first_update_id: snapshot.last_update_id,
            final_update_id: snapshot.last_update_id,
            bids: snapshot.bids,
            asks: snapshot.asks,
        };
        for chunk in depth_chunks(&as_update) {
            emit(Decoded {
                record: MarketRecord::Snapshot(chunk),
                due_tsc: recv_tsc,
                recv_tsc,
                decoded_tsc,
            });
        }
    }

    /// Whether the last message was a depth update that did not continue its stream (`U` not
    /// the previous `u + 1`): its instrument, for the source to fetch a new snapshot.
    #[inline]
    fn check_continuity(&mut self, instrument_id: u32, first: u64, last: u64) -> Option<u32> {
        let i = instrument_id as usize;
        let slot = self.last_final_update_id.get_mut(i)?;
        let after_snapshot = &mut self.after_snapshot[i];
        let gap = if *after_snapshot {
            // Binance's rule after a snapshot at `L`: updates with `u <= L` are old news; the
            // first one after must straddle `L + 1`.
            if last <= *slot {
                return None;
            }
            *after_snapshot = false;
            first > *slot + 1
        } else {
            *slot != 0 && first != *slot + 1
        };
        *slot = last;
        if gap {
            self.stream_gaps.increment();
            return Some(instrument_id);
        }
        None
    }

    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// A stamp of the stage's clock.
    #[inline]
    pub fn now_tsc(&self) -> u64 {
        self.clock.now_tsc()
    }

    /// Most records one message can become (a depth update's chunks): what an outbox must have
    /// room for before the next message.
    pub const RECORDS_PER_MESSAGE_MAX: usize =
        LEVELS_PER_MESSAGE_MAX.div_ceil(DEPTH_LEVELS_PER_CHUNK);

    /// Decodes one message and hands its records to `emit`; its bytes and records are
    /// journaled by the next [`journal_pending`](Self::journal_pending) (the previous message's
    /// are, first, if still pending). A message that does not decode is journaled and counted,
    /// never lost.
    ///
    /// Returns the instrument whose depth stream has just lost an update, if any (the source
    /// then fetches a new snapshot; the book has already noticed and waits for it).
    #[inline]
    pub fn on_message(
        &mut self,
        bytes: &[u8],
        due_tsc: u64,
        mut emit: impl FnMut(Decoded),
    ) -> Option<u32> {
        self.journal_pending();
        let recv_tsc = self.clock.now_tsc();
        self.messages.increment();
        let event = self.decoder.decode(bytes, recv_tsc);
        let decoded_tsc = self.clock.now_tsc();
        let pending = &mut self.pending_records;
        let journal_market = self.journal_market;
        let mut hand_on = |record| {
            emit(Decoded {
                record,
                due_tsc,
                recv_tsc,
                decoded_tsc,
            });
            // Kept to be journaled after the event (a copy of the record, a depth chunk's 176
            // bytes at most: not when the market is not journaled).
            if journal_market {
                pending.push(record);
            }
        };
        match &event {
            Ok(MarketEvent::BookTicker(t)) => hand_on(MarketRecord::BookTicker(*t)),
            Ok(MarketEvent::Trade(t)) => hand_on(MarketRecord::Trade(*t)),
            Ok(MarketEvent::AggTrade(t)) => hand_on(MarketRecord::AggTrade(*t)),
            Ok(MarketEvent::Depth(d)) => {
                for chunk in depth_chunks(d) {
                    hand_on(MarketRecord::Depth(chunk));
                }
            }
            Ok(MarketEvent::Skipped(_)) => {}
            Err(_) => self.decode_errors.increment(),
        }
        let gap = match &event {
            Ok(MarketEvent::Depth(d)) => {
                Some((d.instrument_id, d.first_update_id, d.final_update_id))
            }
            _ => None,
        };
        if bytes.len() <= self.pending_raw.capacity() {
            self.pending_raw.extend_from_slice(bytes);
            self.pending_recv_tsc = Some(recv_tsc);
        } else if self.journal_market && self.recorder.record_raw(recv_tsc, bytes).is_err() {
            // Longer than any message the decoder takes: journaled now rather than copied.
            self.journal_errors.increment();
        }
        gap.and_then(|(id, first, last)| self.check_continuity(id, first, last))
    }

    /// Records decoded earlier, not bytes (a backtest replaying a journal's decoded records):
    /// handed on and journaled as [`on_message`](Self::on_message) does a message's records,
    /// with the depth stream's continuity checked, and nothing decoded. Their receive stamps
    /// become this stage's now. At most [`RECORDS_PER_MESSAGE_MAX`](Self::RECORDS_PER_MESSAGE_MAX)
    /// records are taken (one message's worth); only market-data records are.
    #[inline]
    pub fn on_decoded(
        &mut self,
        records: impl Iterator<Item = MarketRecord>,
        mut emit: impl FnMut(Decoded),
    ) -> Option<u32> {
        self.journal_pending();
        let recv_tsc = self.clock.now_tsc();
        self.messages.increment();
        let mut gap = None;
        for mut record in records.take(Self::RECORDS_PER_MESSAGE_MAX) {
            match &mut record {
                MarketRecord::BookTicker(t) => t.recv_tsc = recv_tsc,
                MarketRecord::Trade(t) => t.recv_tsc = recv_tsc,
                MarketRecord::AggTrade(t) => t.recv_tsc = recv_tsc,
                MarketRecord::Depth(d) => {
                    d.recv_tsc = recv_tsc;
                    if d.chunk == 0 {
                        gap = Some((d.instrument_id, d.first_update_id, d.final_update_id));
                    }
                }
                MarketRecord::Snapshot(_) | MarketRecord::Resync | MarketRecord::Stale => continue,
            }
            emit(Decoded {
                record,
                due_tsc: recv_tsc,
                recv_tsc,
                decoded_tsc: recv_tsc,
            });
            if self.journal_market {
                self.pending_records.push(record);
            }
        }
        gap.and_then(|(id, first, last)| self.check_continuity(id, first, last))
    }

    /// Journals the last message's bytes and records, if still pending; returns how many
    /// frames it appended.
    #[inline]
    pub fn journal_pending(&mut self) -> usize {
        if !self.journal_market {
            self.pending_recv_tsc = None;
            self.pending_raw.clear();
            self.pending_records.clear();
            return 0;
        }
        let mut appended = 0;
        let mut failed = false;
        if let Some(recv_tsc) = self.pending_recv_tsc.take() {
            failed |= self
                .recorder
                .record_raw(recv_tsc, &self.pending_raw)
                .is_err();
            self.pending_raw.clear();
            appended += 1;
        }
        for record in &self.pending_records {
            failed |= match record {
                MarketRecord::BookTicker(t) => self.recorder.append(t),
                MarketRecord::Depth(d) => self.recorder.append(d),
                MarketRecord::Trade(t) => self.recorder.append(t),
                MarketRecord::AggTrade(t) => self.recorder.append(t),
                // A snapshot's raw body is journaled as it arrives (FeedStage::on_snapshot).
                MarketRecord::Snapshot(_) | MarketRecord::Resync | MarketRecord::Stale => Ok(()),
            }
            .is_err();
            appended += 1;
        }
        self.pending_records.clear();
        if failed {
            self.journal_errors.increment();
        }
        appended
    }
}
