//! A seeded synthetic market as backtest input, generated as it is read: the simulated
//! venue's random walks (`levibot_gateway::source::SyntheticSource`, the generator of the
//! committed recording), one per symbol, interleaved in turn, one message every
//! `interval_ns`, each made at the venue 1 ms before it is received. Each symbol's REST
//! snapshot comes first. For benchmarks and long tests: as long as wanted, no file, memory
//! fixed.

use levibot_gateway::instrument::Instrument;
use levibot_gateway::source::{MessageSource, Polled, SyntheticSource};
use levibot_shm::TscCalibration;

use super::{InputError, InputEvent, InputKind, InputSource};

/// How far before its receive time a synthetic message was made at the venue, ms.
const FEED_LATENCY_MS: u64 = 1;

/// The synthetic market.
pub struct SyntheticInput {
    sources: Vec<SyntheticSource>,
    snapshots: Vec<(String, String)>,
    next_snapshot: usize,
    next_source: usize,
    recv_ns: u64,
    interval_ns: u64,
    messages_left: u64,
    current: Vec<u8>,
}

impl SyntheticInput {
    /// `messages` stream messages over `instruments` (each with its starting mid, ticks), from
    /// `start_ns`, one every `interval_ns`.
    pub fn new(
        instruments: &[(&Instrument, i64)],
        messages: u64,
        seed: u64,
        start_ns: u64,
        interval_ns: u64,
    ) -> Result<SyntheticInput, InputError> {
        let calibration = TscCalibration {
            ticks_per_ns: 1.0,
            tsc_ref: 0,
            unix_ns_ref: 0,
        };
        let mut sources = Vec::new();
        let mut snapshots = Vec::new();
        for (k, (instrument, mid_ticks)) in instruments.iter().enumerate() {
            let source = SyntheticSource::new(
                instrument,
                *mid_ticks,
                u64::MAX,
                seed.wrapping_add(k as u64),
                None,
                &calibration,
            )
            .map_err(|e| InputError::Format {
                path: "synthetic".into(),
                line: 0,
                problem: e.to_string(),
            })?;
            snapshots.push((
                instrument.symbol.to_string(),
                levibot_sim::synth::snapshot_json(instrument, &source),
            ));
            sources.push(source);
        }
        Ok(SyntheticInput {
            sources,
            snapshots,
            next_snapshot: 0,
            next_source: 0,
            recv_ns: start_ns,
            interval_ns: interval_ns.max(1),
            messages_left: messages,
            current: Vec::with_capacity(512),
        })
    }
}

impl InputSource for SyntheticInput {
    fn next_event(&mut self) -> Result<Option<InputEvent<'_>>, InputError> {
        if let Some((symbol, body)) = self.snapshots.get(self.next_snapshot) {
            self.next_snapshot += 1;
            return Ok(Some(InputEvent {
                kind: InputKind::Snapshot,
                recv_ns: self.recv_ns,
                exchange_ns: None,
                symbol: Some(symbol),
                bytes: body.as_bytes(),
            }));
        }
        if self.messages_left == 0 || self.sources.is_empty() {
            return Ok(None);
        }
        self.messages_left -= 1;
        self.recv_ns += self.interval_ns;
        let k = self.next_source;
        self.next_source = (k + 1) % self.sources.len();
        let source = &mut self.sources[k];
        source.set_event_time_ms((self.recv_ns / 1_000_000).saturating_sub(FEED_LATENCY_MS));
        let Polled::Message { bytes, .. } = source.poll(0) else {
            return Ok(None);
        };
        self.current.clear();
        self.current.extend_from_slice(bytes);
        Ok(Some(InputEvent {
            kind: InputKind::Stream,
            recv_ns: self.recv_ns,
            exchange_ns: None,
            symbol: None,
            bytes: &self.current,
        }))
    }
}
