//! A LeviBot journal as backtest input: the venue's exact bytes the feed journaled
//! (`RAW_MESSAGE` frames of the feed's writer), each at its receive stamp, so a live session
//! replays through the engine again with other parameters. REST depth snapshots name their
//! instrument in the frame's header (layout 1.1; a 1.0 journal's snapshots cannot be placed
//! and are skipped, counted); the journal's own `INSTRUMENT_DEF`s give its symbols. What the
//! daemon and its operators did to trading comes too ([`InputKind::Trading`]): the daemon's
//! start (it trades nothing until it resumes), its resumes, halts and kills, at their times. The journal
//! is read as `levictl tail` reads it (read-only, segment by segment, gzip'd ones too), one
//! frame at a time: memory does not grow with its length.

use std::path::{Path, PathBuf};

use levibot_shm::codes::writer_id;
use levibot_shm::records::{
    DaemonEvent, InstrumentDef, RawMessageHeader, Record, daemon_event, record_type,
};
use levibot_shm::{ShmError, StartAt, Tailer};

use super::{InputError, InputEvent, InputKind, InputSource, TradingChange, decoded};

/// Frames one `next_event` reads at most while looking for a market message (a bound on the
/// work of a call; the next call goes on).
const FRAMES_PER_CALL_MAX: usize = 1 << 16;

/// Journal frames, read in order.
pub struct JournalSource {
    dir: PathBuf,
    tailer: Tailer,
    /// Symbols by the journal's instrument id.
    symbols: Vec<Option<String>>,
    /// The last market message: its bytes, kind, receive time and snapshot symbol.
    bytes: Vec<u8>,
    kind: InputKind,
    recv_ns: u64,
    symbol: String,
    /// Snapshots whose instrument the journal does not say (layout 1.0).
    pub snapshots_unplaced: u64,
    /// Decoded mode ([`open_decoded`](Self::open_decoded)): the run's symbols, in its
    /// instrument-id order, and each journal instrument id's run id (`None`: not in the run).
    decoded_for: Option<Vec<String>>,
    run_ids: Vec<Option<u32>>,
    /// Whether a market message (not a trading change) was handed out yet.
    market_seen: bool,
}

fn shm_error(dir: &Path, e: ShmError) -> InputError {
    InputError::Format {
        path: dir.to_owned(),
        line: 0,
        problem: e.to_string(),
    }
}

impl JournalSource {
    pub fn open(dir: &Path) -> Result<JournalSource, InputError> {
        let tailer = Tailer::open(dir, StartAt::Beginning).map_err(|e| shm_error(dir, e))?;
        Ok(JournalSource {
            dir: dir.to_owned(),
            tailer,
            symbols: Vec::new(),
            bytes: Vec::with_capacity(4096),
            kind: InputKind::Stream,
            recv_ns: 0,
            symbol: String::new(),
            snapshots_unplaced: 0,
            decoded_for: None,
            run_ids: Vec::new(),
            market_seen: false,
        })
    }

    /// The journal's decoded market records instead of its raw stream messages
    /// ([`InputKind::Decoded`]: one event per message, a depth update's chunks together),
    /// their instrument ids made those of `symbols` (the run's instruments in id order);
    /// records of other instruments are skipped. Snapshots and trading changes come as with
    /// [`open`](Self::open).
    pub fn open_decoded(dir: &Path, symbols: &[&str]) -> Result<JournalSource, InputError> {
        let mut source = JournalSource::open(dir)?;
        source.decoded_for = Some(symbols.iter().map(|s| s.to_ascii_uppercase()).collect());
        Ok(source)
    }
}

impl JournalSource {
    /// Why a journal gave no market message at all: what it lacks, and the likely reason.
    fn no_market(&self) -> InputError {
        let problem = match (&self.decoded_for, self.snapshots_unplaced) {
            (Some(_), _) => "no decoded market record of the run's instruments from the feed: \
                             a journal written without the market (--no-market-journal), or \
                             of other instruments; without --decoded its raw bytes are read"
                .to_owned(),
            (None, 0) => "no market message from the feed: a journal written without the \
                          market (--no-market-journal), or a feed that received nothing"
                .to_owned(),
            (None, n) => format!(
                "no market message from the feed but {n} REST snapshots it cannot place \
                 (journal layout 1.0)"
            ),
        };
        InputError::Format {
            path: self.dir.clone(),
            line: 0,
            problem,
        }
    }
}

/// The first config text the daemon journaled in `dir` (it journals it at every start), if
/// any within the journal's first frames.
pub fn journal_config_text(dir: &Path) -> Result<Option<String>, InputError> {
    let mut tailer = Tailer::open(dir, StartAt::Beginning).map_err(|e| shm_error(dir, e))?;
    let mut text = None;
    let mut frames = 0;
    while text.is_none() && frames < FRAMES_PER_CALL_MAX {
        let polled = tailer
            .poll(256, |frame| {
                if text.is_none() && frame.record_type == record_type::CONFIG_TEXT {
                    text = Some(String::from_utf8_lossy(frame.payload).into_owned());
                }
            })
            .map_err(|e| shm_error(dir, e))?;
        if polled.frames == 0 {
            break;
        }
        frames += polled.frames;
    }
    Ok(text)
}

impl InputSource for JournalSource {
    fn next_event(&mut self) -> Result<Option<InputEvent<'_>>, InputError> {
        for _ in 0..FRAMES_PER_CALL_MAX {
            let mut found = false;
            let (symbols, bytes) = (&mut self.symbols, &mut self.bytes);
            let (decoded_for, run_ids) = (self.decoded_for.as_deref(), &mut self.run_ids);
            let (kind, recv_tsc, snapshot_of) = (&mut self.kind, &mut 0u64, &mut None);
            let mut event_ns = None;
            let mut unplaced = 0;
            let polled = self
                .tailer
                .poll(1, |frame| match frame.record_type {
                    record_type::INSTRUMENT_DEF => {
                        if let Some(def) = InstrumentDef::from_bytes(frame.payload) {
                            let id = def.instrument_id as usize;
                            if id < 1 << 16 {
                                if symbols.len() <= id {
                                    symbols.resize(id + 1, None);
                                }
                                symbols[id] = def.symbol().map(str::to_owned);
                                if let Some(wanted) = decoded_for {
                                    if run_ids.len() <= id {
                                        run_ids.resize(id + 1, None);
                                    }
                                    run_ids[id] = def.symbol().and_then(|s| {
                                        wanted.iter().position(|w| w == s).map(|i| i as u32)
                                    });
                                }
                            }
                        }
                    }
                    DaemonEvent::RECORD_TYPE => {
                        let Some(e) = DaemonEvent::from_bytes(frame.payload) else {
                            return;
                        };
                        let change = match (e.kind, e.value) {
                            // The daemon starts halted, and resumes once reconciled.
                            (daemon_event::STARTED, _) => TradingChange::Halt,
                            (daemon_event::CANCEL_ALL, _) => TradingChange::HaltAndCancelAll,
                            (daemon_event::TRADING_STATE, 0) => TradingChange::Resume,
                            (daemon_event::TRADING_STATE, _) => TradingChange::Halt,
                            _ => return,
                        };
                        *kind = InputKind::Trading;
                        bytes.clear();
                        bytes.push(change as u8);
                        event_ns = Some(e.unix_ns);
                        found = true;
                    }
                    market
                        if decoded_for.is_some()
                            && frame.writer_id == writer_id::FEED
                            && decoded::record_of(market, frame.payload).is_some() =>
                    {
                        let Some(record) = decoded::record_of(market, frame.payload) else {
                            return;
                        };
                        let Some(run_id) = decoded::instrument_id(market, record)
                            .and_then(|id| run_ids.get(id as usize).copied().flatten())
                        else {
                            return;
                        };
                        // A depth update's chunks come one after another: gathered, the
                        // message is whole at its last.
                        let (chunk, chunk_count) = decoded::chunk_of(market, record);
                        if chunk == 0 || *kind != InputKind::Decoded(market) {
                            bytes.clear();
                        }
                        let start = bytes.len();
                        bytes.extend_from_slice(record);
                        decoded::set_instrument_id(market, &mut bytes[start..], run_id);
                        *kind = InputKind::Decoded(market);
                        *recv_tsc = decoded::recv_tsc(market, record).unwrap_or(0);
                        found = chunk + 1 >= chunk_count;
                    }
                    record_type::RAW_MESSAGE if frame.writer_id == writer_id::FEED => {
                        let Some((header, body)) = RawMessageHeader::split(frame.payload) else {
                            return;
                        };
                        let is_snapshot = body.starts_with(b"{\"lastUpdateId\"");
                        if decoded_for.is_some() && !is_snapshot {
                            // Its decoded records stand for it.
                            return;
                        }
                        *kind = if is_snapshot {
                            InputKind::Snapshot
                        } else {
                            InputKind::Stream
                        };
                        if *kind == InputKind::Snapshot && header.snapshot_instrument().is_none() {
                            unplaced += 1;
                            return;
                        }
                        *snapshot_of = header.snapshot_instrument();
                        *recv_tsc = header.recv_tsc;
                        bytes.clear();
                        bytes.extend_from_slice(body);
                        found = true;
                    }
                    _ => {}
                })
                .map_err(|e| shm_error(&self.dir, e))?;
            self.snapshots_unplaced += unplaced;
            if polled.frames == 0 && polled.writer_restart.is_none() {
                if !self.market_seen {
                    return Err(self.no_market());
                }
                return Ok(None);
            }
            if !found {
                continue;
            }
            let recv_tsc = *recv_tsc;
            let snapshot_of = *snapshot_of;
            self.recv_ns =
                event_ns.unwrap_or_else(|| self.tailer.calibration().to_unix_ns(recv_tsc));
            self.symbol.clear();
            if let Some(id) = snapshot_of {
                match self.symbols.get(id as usize).and_then(Option::as_deref) {
                    Some(s) => self.symbol.push_str(s),
                    None => {
                        self.snapshots_unplaced += 1;
                        continue;
                    }
                }
            }
            self.market_seen |= self.kind != InputKind::Trading;
            return Ok(Some(InputEvent {
                kind: self.kind,
                recv_ns: self.recv_ns,
                exchange_ns: None,
                symbol: (self.kind == InputKind::Snapshot).then_some(self.symbol.as_str()),
                bytes: &self.bytes,
            }));
        }
        Err(InputError::Format {
            path: self.dir.clone(),
            line: 0,
            problem: format!("no market message in {FRAMES_PER_CALL_MAX} frames"),
        })
    }
}
