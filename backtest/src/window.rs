//! The part of the input a run evaluates (`--trade-from`, `--until`): a held-out window.
//!
//! ```text
//!   input:   |---- warm-up ----|========= evaluated =========|  (not read)
//!                              ^ trade_from_ns               ^ until_ns
//!   engine:  books, features   strategies decide, risk       the input ends here; what is
//!            keep up; halted   passes as the session did     in flight drains as after any end
//!   results: mids remembered   every event counts, from a
//!            only              start at trade_from_ns
//! ```
//!
//! Before `trade_from_ns` the market replays through the venue and the engine as always, so
//! books, features and the strategies' view of them are warm, but the engine is halted (the
//! kill switch's `Halt`: risk refuses and the strategies are paused, as on a daemon's start)
//! and no order can leave. A replayed journal's trading changes (the daemon's start, resumes,
//! halts, kills) are followed, not applied: at `trade_from_ns` the engine takes the state the
//! session was in then (trading, or halted), and from then on every change applies at its
//! time, as without a window. A capture or Tardis input, which has no such changes, trades
//! from `trade_from_ns`.
//!
//! The results count from `trade_from_ns`: market messages before it are not counted, and each
//! instrument's last mid before it is handed on at `trade_from_ns` (so equity, drawdown and
//! the ratios' intervals start there, with the marks the market had). Nothing else comes
//! before it (no order was sent).
//!
//! `until_ns`: the input ends at its first message received at or after it (a journal's
//! trading changes included), then the run drains in-flight requests and reports as at any
//! end of input ([`crate::run::DRAIN_AFTER_INPUT_NS`]).

use crate::input::{InputError, InputEvent, InputSource, TradingChange};
use crate::results::ResultEvent;
use levibot_engine::pipeline::TradingCommand;

/// The evaluated part of a run's input; `Default`: all of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// Strategies trade, and results count, from this receive time on (ns since the Unix
    /// epoch); `None`: from the start.
    pub trade_from_ns: Option<u64>,
    /// The input ends before its first message received at or after this time; `None`: at
    /// its end.
    pub until_ns: Option<u64>,
}

/// Why a window cannot be: it is empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "--trade-from ({trade_from_ns} ns) is not before --until ({until_ns} ns): nothing to evaluate"
)]
pub struct EmptyWindow {
    pub trade_from_ns: u64,
    pub until_ns: u64,
}

impl Window {
    /// The window, if it is not empty.
    pub fn new(trade_from_ns: Option<u64>, until_ns: Option<u64>) -> Result<Window, EmptyWindow> {
        match (trade_from_ns, until_ns) {
            (Some(from), Some(until)) if from >= until => Err(EmptyWindow {
                trade_from_ns: from,
                until_ns: until,
            }),
            _ => Ok(Window {
                trade_from_ns,
                until_ns,
            }),
        }
    }
}

/// `--trade-from`/`--until`: an RFC 3339 time (as levictl takes it) as ns since the Unix
/// epoch. Not a time relative to now: the same command line makes the same run.
pub fn parse_time(text: &str) -> Result<u64, String> {
    levibot_view::parse_rfc3339(text).ok_or_else(|| {
        format!("{text:?} is not an RFC 3339 time such as 2026-11-26T01:02:03Z or 2026-11-26")
    })
}

/// An input that ends at `until_ns` (see [`Window::until_ns`]).
pub struct Until<'a> {
    inner: &'a mut dyn InputSource,
    until_ns: Option<u64>,
    ended: bool,
}

impl<'a> Until<'a> {
    pub fn new(inner: &'a mut dyn InputSource, until_ns: Option<u64>) -> Until<'a> {
        Until {
            inner,
            until_ns,
            ended: false,
        }
    }
}

impl InputSource for Until<'_> {
    fn next_event(&mut self) -> Result<Option<InputEvent<'_>>, InputError> {
        if self.ended {
            return Ok(None);
        }
        let until = self.until_ns.unwrap_or(u64::MAX);
        match self.inner.next_event()? {
            Some(event) if event.recv_ns < until => Ok(Some(event)),
            Some(_) => {
                self.ended = true;
                Ok(None)
            }
            None => Ok(None),
        }
    }
}

/// What the engine's trading is, before and after `trade_from_ns`: the replayed session's
/// changes are followed while the engine is held halted, then handed on.
#[derive(Clone, Copy, Debug)]
pub struct TradeGate {
    /// `Some` until the gate opens.
    from_ns: Option<u64>,
    /// Whether the replayed session was trading (a capture's is, from its start).
    session_trading: bool,
}

impl TradeGate {
    pub fn new(trade_from_ns: Option<u64>) -> TradeGate {
        TradeGate {
            from_ns: trade_from_ns,
            session_trading: true,
        }
    }

    /// The command that holds the engine before the gate opens (at the run's start), if
    /// there is a gate.
    pub fn hold(&self) -> Option<TradingCommand> {
        self.from_ns.map(|_| TradingCommand::Halt)
    }

    /// When the gate opens, while it has not.
    pub fn opens_at(&self) -> Option<u64> {
        self.from_ns
    }

    /// Opens the gate if `now_ns` reached it: the command that gives the engine the
    /// session's state then (`Resume` if it was trading; nothing if halted, as it is held).
    pub fn open_at(&mut self, now_ns: u64) -> Option<TradingCommand> {
        let from = self.from_ns?;
        if now_ns < from {
            return None;
        }
        self.from_ns = None;
        self.session_trading.then_some(TradingCommand::Resume)
    }

    /// A trading change of the replayed session: the command for the engine now (`None`
    /// while the gate holds, when it is only remembered).
    pub fn change(&mut self, change: TradingChange) -> Option<TradingCommand> {
        let command = match change {
            TradingChange::Halt => TradingCommand::Halt,
            TradingChange::HaltAndCancelAll => TradingCommand::HaltAndCancelAll,
            TradingChange::Resume => TradingCommand::Resume,
        };
        if self.from_ns.is_none() {
            return Some(command);
        }
        self.session_trading = change == TradingChange::Resume;
        None
    }
}

/// The results' side of a window: events before `trade_from_ns` are not counted, but each
/// instrument's last mid is remembered and handed on at `trade_from_ns`, before the first
/// event at or after it (or at the end).
#[derive(Clone, Debug, Default)]
pub struct ResultsGate {
    from_ns: Option<u64>,
    /// The last mid of each instrument before `from_ns`, by instrument id.
    mids: Vec<(u32, i64)>,
}

impl ResultsGate {
    pub fn new(trade_from_ns: Option<u64>) -> ResultsGate {
        ResultsGate {
            from_ns: trade_from_ns,
            mids: Vec::new(),
        }
    }

    /// Hands `event` on to `results` if it counts, the remembered mids first when it is the
    /// first event at or after the start.
    pub fn on_event(&mut self, event: &ResultEvent, results: &mut dyn FnMut(&ResultEvent)) {
        let Some(from) = self.from_ns else {
            return results(event);
        };
        match *event {
            ResultEvent::Message { t_ns } if t_ns < from => {}
            ResultEvent::Mid {
                t_ns,
                instrument_id,
                bid_plus_ask,
            } if t_ns < from => match self.mids.iter_mut().find(|(id, _)| *id == instrument_id) {
                Some(mid) => mid.1 = bid_plus_ask,
                None => self.mids.push((instrument_id, bid_plus_ask)),
            },
            // Nothing else comes before the start (no order leaves): counted if it did.
            _ if event.t_ns().is_none_or(|t| t < from) => results(event),
            _ => {
                self.open(results);
                results(event);
            }
        }
    }

    /// The run ended at `end_ns`: the remembered mids go on if the start is within the run.
    pub fn finish(&mut self, end_ns: u64, results: &mut dyn FnMut(&ResultEvent)) {
        if self.from_ns.is_some_and(|from| from <= end_ns) {
            self.open(results);
        }
    }

    fn open(&mut self, results: &mut dyn FnMut(&ResultEvent)) {
        let Some(from) = self.from_ns.take() else {
            return;
        };
        self.mids.sort_unstable();
        for &(instrument_id, bid_plus_ask) in &self.mids {
            results(&ResultEvent::Mid {
                t_ns: from,
                instrument_id,
                bid_plus_ask,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::InputKind;
    use crate::results::{FillEvent, ResultEvent};

    #[test]
    fn an_empty_window_is_refused() {
        assert!(Window::new(Some(5), Some(5)).is_err());
        assert!(Window::new(Some(6), Some(5)).is_err());
        assert_eq!(
            Window::new(Some(4), Some(5)),
            Ok(Window {
                trade_from_ns: Some(4),
                until_ns: Some(5)
            })
        );
        assert_eq!(Window::new(None, None), Ok(Window::default()));
    }

    /// Messages received at these times.
    struct Times(Vec<u64>, usize);

    impl InputSource for Times {
        fn next_event(&mut self) -> Result<Option<InputEvent<'_>>, InputError> {
            let Some(&t) = self.0.get(self.1) else {
                return Ok(None);
            };
            self.1 += 1;
            Ok(Some(InputEvent {
                kind: InputKind::Stream,
                recv_ns: t,
                exchange_ns: None,
                symbol: None,
                bytes: b"{}",
            }))
        }
    }

    #[test]
    fn the_input_ends_before_its_first_message_at_or_after_until() {
        let read = |until| {
            let mut inner = Times(vec![1, 2, 3, 3, 4, 2], 0);
            let mut input = Until::new(&mut inner, until);
            let mut seen = Vec::new();
            while let Some(e) = input.next_event().unwrap() {
                seen.push(e.recv_ns);
            }
            // Ended for good: nothing more even when asked again.
            assert!(input.next_event().unwrap().is_none());
            seen
        };
        assert_eq!(read(None), [1, 2, 3, 3, 4, 2]);
        assert_eq!(read(Some(3)), [1, 2]);
        assert_eq!(read(Some(1)), Vec::<u64>::new());
    }

    #[test]
    fn the_gate_holds_then_gives_the_engine_the_sessions_state() {
        // No gate: changes apply as they come, nothing is held.
        let mut open = TradeGate::new(None);
        assert_eq!(open.hold(), None);
        assert_eq!(open.open_at(0), None);
        assert_eq!(open.change(TradingChange::Halt), Some(TradingCommand::Halt));

        // A capture (no changes): held, then trading from the start of the window.
        let mut capture = TradeGate::new(Some(100));
        assert_eq!(capture.hold(), Some(TradingCommand::Halt));
        assert_eq!(capture.open_at(99), None);
        assert_eq!(capture.opens_at(), Some(100));
        assert_eq!(capture.open_at(100), Some(TradingCommand::Resume));
        assert_eq!(capture.opens_at(), None);
        assert_eq!(capture.open_at(200), None);

        // A session that started (halted), resumed, then was killed before the window: it
        // stays halted; its next resume applies.
        let mut killed = TradeGate::new(Some(100));
        for change in [
            TradingChange::Halt,
            TradingChange::Resume,
            TradingChange::HaltAndCancelAll,
        ] {
            assert_eq!(killed.change(change), None);
        }
        assert_eq!(killed.open_at(150), None);
        assert_eq!(
            killed.change(TradingChange::Resume),
            Some(TradingCommand::Resume)
        );

        // One that resumed before the window trades from its start.
        let mut resumed = TradeGate::new(Some(100));
        assert_eq!(resumed.change(TradingChange::Halt), None);
        assert_eq!(resumed.change(TradingChange::Resume), None);
        assert_eq!(resumed.open_at(100), Some(TradingCommand::Resume));
    }

    fn mid(t_ns: u64, instrument_id: u32, bid_plus_ask: i64) -> ResultEvent {
        ResultEvent::Mid {
            t_ns,
            instrument_id,
            bid_plus_ask,
        }
    }

    #[test]
    fn results_count_from_the_start_with_the_last_mids_before_it() {
        let fill = ResultEvent::Fill(FillEvent {
            t_ns: 130,
            instrument_id: 1,
            client_order_id: 1,
            side: levibot_shm::records::side::BUY,
            px: 10,
            qty: 1,
            fee_scaled: 0,
            maker: false,
            queue_ahead: 0,
            order_first_fill: true,
        });
        let events = [
            ResultEvent::Message { t_ns: 10 },
            mid(10, 2, 50),
            mid(20, 1, 7),
            mid(30, 2, 60),
            ResultEvent::Message { t_ns: 120 },
            mid(120, 1, 9),
            fill,
        ];
        let mut gate = ResultsGate::new(Some(100));
        let mut got = Vec::new();
        for e in &events {
            gate.on_event(e, &mut |e| got.push(*e));
        }
        gate.finish(200, &mut |e| got.push(*e));
        assert_eq!(
            got,
            [
                mid(100, 1, 7),
                mid(100, 2, 60),
                ResultEvent::Message { t_ns: 120 },
                mid(120, 1, 9),
                fill,
            ]
        );

        // A run that ends in the warm-up counts nothing; one whose events all came before the
        // start gets the mids at the start when it ends after it.
        for (end, want) in [(99, vec![]), (150, vec![mid(100, 1, 7)])] {
            let mut gate = ResultsGate::new(Some(100));
            let mut got = Vec::new();
            gate.on_event(&mid(20, 1, 7), &mut |e| got.push(*e));
            gate.finish(end, &mut |e| got.push(*e));
            assert_eq!(got, want);
        }

        // No window: everything as it comes.
        let mut gate = ResultsGate::new(None);
        let mut got = Vec::new();
        for e in &events {
            gate.on_event(e, &mut |e| got.push(*e));
        }
        gate.finish(200, &mut |e| got.push(*e));
        assert_eq!(got, events);
    }
}
