//! Make before break: the merge of two connections' messages while the feed moves from an old
//! connection to a new one, so that the books see one stream without a gap or a duplicate.
//!
//! Both connections carry the same streams. Each message is classified by a small scanner
//! ([`Merge::classify`]: the stream name of the combined-stream wrapper, then one id); then:
//!
//! - **Depth diffs** (`U`, `u`) of a symbol come from one connection at a time, its *source*
//!   (the old one at first). A diff from the new connection whose `u` is at most the last one
//!   delivered is a duplicate (dropped); if its `u` is exactly the last one delivered, the new
//!   connection has caught up and becomes the symbol's source (its next diff continues the
//!   stream). A diff whose `U` is the last `u + 1` continues the stream exactly: it is delivered
//!   and the new connection becomes the symbol's source. One that is ahead (the old connection
//!   has not delivered what comes before it yet) is *held* (one message, in a fixed buffer of
//!   the feed) until the old connection catches up with it. The old connection's diffs of a
//!   symbol whose source is the new one are dropped (the new one delivers them). This is
//!   Binance's `U`/`u` rule applied between two connections, with the exact continuation the
//!   books (and `FeedStage`'s gap check) ask of a synced stream; each connection's own diffs
//!   are continuous, so a switch at either point loses nothing.
//! - **bookTicker, aggTrade and trade** of a symbol carry an increasing id (`u`, `a`, `t`):
//!   whichever connection brings a newer one first delivers it; an older or equal one from the
//!   other connection is a duplicate.
//! - **Anything else** (klines, what does not parse) comes from the old connection until the
//!   switch, then from the new one; at that instant one such message may be lost.
//!
//! When one of the two connections is gone (the old one ended before the switch, or the new
//! one failed), the merge keeps dropping duplicates and moves every symbol to the survivor at
//! its next diff, exact or not: a diff that does not continue the stream is then a gap the
//! books see, and the normal resync (a snapshot of that symbol) repairs it.
//!
//! Every table is allocated when the feed starts; the merge never allocates or blocks.

/// Which connection a message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conn {
    Old,
    New,
}

/// What a message is, for the merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A depth diff of symbol `symbol` (its index in the feed's list).
    Depth {
        symbol: usize,
        first: u64,
        last: u64,
    },
    /// A message with an increasing id: `kind` 0 bookTicker (`u`), 1 aggTrade (`a`), 2 trade
    /// (`t`).
    Ordered { symbol: usize, kind: usize, id: u64 },
    /// Anything else.
    Other,
}

/// The kinds of [`Key::Ordered`].
const ORDERED_KINDS: usize = 3;

/// What to do with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it to the books.
    Deliver,
    /// A duplicate, or not this connection's to give.
    Drop,
    /// Ahead of the old connection: keep it until the old one catches up.
    Hold,
}

/// Which connections are still up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Both,
    /// The old connection is gone (retired at the switch or the bound, or lost).
    OldGone,
    /// The new connection failed before the switch.
    NewGone,
}

/// The merge state of a rollover (see the module doc).
#[derive(Debug)]
pub struct Merge {
    /// Lower-case symbol bytes and their index, sorted for a binary search.
    names: Vec<(Box<[u8]>, usize)>,
    mode: Mode,
    /// Per symbol: the last depth `u` delivered since the rollover began (0: none yet).
    applied: Vec<u64>,
    /// Per symbol: where its depth diffs come from.
    source: Vec<Conn>,
    /// Symbols whose source is the new connection.
    on_new: usize,
    /// Per symbol and ordered kind: the last id delivered, and from which connection.
    last_id: Vec<[(u64, Conn); ORDERED_KINDS]>,
    /// Whether the streams include depth (else nothing waits for diffs).
    depth: bool,
}

impl Merge {
    /// The merge for `symbols` (as configured, any case); `depth`: whether a depth stream is
    /// subscribed. Cold path: allocates every table.
    pub fn new(symbols: &[&str], depth: bool) -> Merge {
        let mut names: Vec<(Box<[u8]>, usize)> = symbols
            .iter()
            .enumerate()
            .map(|(i, s)| (s.to_ascii_lowercase().into_bytes().into_boxed_slice(), i))
            .collect();
        names.sort();
        let n = symbols.len();
        Merge {
            names,
            mode: Mode::Both,
            applied: vec![0; n],
            source: vec![Conn::Old; n],
            on_new: 0,
            last_id: vec![[(0, Conn::Old); ORDERED_KINDS]; n],
            depth,
        }
    }

    /// A new rollover begins (no allocation).
    pub fn reset(&mut self) {
        self.mode = Mode::Both;
        self.applied.fill(0);
        self.source.fill(Conn::Old);
        self.on_new = 0;
        self.last_id.fill([(0, Conn::Old); ORDERED_KINDS]);
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Symbols whose depth comes from the new connection.
    pub fn on_new(&self) -> usize {
        self.on_new
    }

    /// Whether every symbol's depth comes from the new connection (at once without depth).
    pub fn all_on_new(&self) -> bool {
        !self.depth || self.on_new == self.source.len()
    }

    /// Whether every symbol's depth comes from the old connection again.
    pub fn all_on_old(&self) -> bool {
        self.on_new == 0
    }

    /// The old connection is gone: the new one delivers everything from now on.
    pub fn old_gone(&mut self) {
        self.mode = Mode::OldGone;
    }

    /// The new connection failed: the old one delivers everything again.
    pub fn new_gone(&mut self) {
        self.mode = Mode::NewGone;
    }

    /// Whether any symbol is not on the new connection.
    pub fn any_on_old(&self) -> bool {
        self.depth && self.on_new < self.source.len()
    }

    /// Classifies a combined-stream message (`{"stream":"<symbol>@<kind>","data":{...}}`).
    /// Hot path: scans the first bytes, no allocation.
    pub fn classify(&self, bytes: &[u8]) -> Key {
        let Some(stream) = string_after(bytes, b"\"stream\":\"") else {
            return Key::Other;
        };
        let Some(at) = stream.iter().position(|&b| b == b'@') else {
            return Key::Other;
        };
        let (symbol, kind) = (&stream[..at], &stream[at + 1..]);
        let Ok(found) = self
            .names
            .binary_search_by(|(name, _)| name.as_ref().cmp(symbol))
        else {
            return Key::Other;
        };
        let symbol = self.names[found].1;
        let data = &bytes[stream_end(bytes, stream)..];
        let number = |key: &[u8]| number_after(data, key);
        let ordered = |kind: usize, key: &[u8]| match number(key) {
            Some(id) => Key::Ordered { symbol, kind, id },
            None => Key::Other,
        };
        if kind == b"depth" || kind.starts_with(b"depth@") {
            return match (number(b"\"U\":"), number(b"\"u\":")) {
                (Some(first), Some(last)) => Key::Depth {
                    symbol,
                    first,
                    last,
                },
                _ => Key::Other,
            };
        }
        match kind {
            b"bookTicker" => ordered(0, b"\"u\":"),
            b"aggTrade" => ordered(1, b"\"a\":"),
            b"trade" => ordered(2, b"\"t\":"),
            _ => Key::Other,
        }
    }

    /// What to do with a message of `key` from `conn` (also for a held message, asked again).
    pub fn verdict(&mut self, conn: Conn, key: Key) -> Verdict {
        match key {
            Key::Depth {
                symbol,
                first,
                last,
            } => self.depth_verdict(conn, symbol, first, last),
            Key::Ordered { symbol, kind, id } => {
                let slot = &mut self.last_id[symbol][kind];
                if id > slot.0 || (id == slot.0 && conn == slot.1) {
                    *slot = (id, conn);
                    Verdict::Deliver
                } else {
                    Verdict::Drop
                }
            }
            Key::Other => {
                let primary = match self.mode {
                    Mode::Both | Mode::NewGone => Conn::Old,
                    Mode::OldGone => Conn::New,
                };
                if conn == primary {
                    Verdict::Deliver
                } else {
                    Verdict::Drop
                }
            }
        }
    }

    fn depth_verdict(&mut self, conn: Conn, i: usize, first: u64, last: u64) -> Verdict {
        if self.source[i] == conn {
            self.applied[i] = last;
            return Verdict::Deliver;
        }
        // The other connection is this symbol's source.
        let survivor = match self.mode {
            Mode::Both => Conn::New,
            Mode::OldGone => Conn::New,
            Mode::NewGone => Conn::Old,
        };
        if conn != survivor {
            // The old connection, while the new one delivers this symbol.
            return Verdict::Drop;
        }
        let applied = self.applied[i];
        if applied != 0 && last <= applied {
            if last == applied {
                // Caught up exactly: this connection's next diff continues what was delivered.
                self.move_to(i, conn);
            }
            return Verdict::Drop;
        }
        let exact = applied != 0 && first == applied + 1;
        if !exact && self.mode == Mode::Both {
            // Ahead of what the old connection delivered (or straddling it): wait for it.
            return Verdict::Hold;
        }
        // Exact, or the other connection is gone: this one delivers from now on (a diff that
        // does not continue the stream is a gap the books see and resync).
        self.move_to(i, conn);
        self.applied[i] = last;
        Verdict::Deliver
    }

    fn move_to(&mut self, i: usize, conn: Conn) {
        if self.source[i] != conn {
            self.source[i] = conn;
            match conn {
                Conn::New => self.on_new += 1,
                Conn::Old => self.on_new -= 1,
            }
        }
    }
}

/// The bytes of the JSON string right after `key` (which ends with its opening quote).
fn string_after<'a>(bytes: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let start = find(bytes, key)? + key.len();
    let len = bytes[start..].iter().position(|&b| b == b'"')?;
    Some(&bytes[start..start + len])
}

/// The offset just past `inner`, a sub-slice of `outer`.
fn stream_end(outer: &[u8], inner: &[u8]) -> usize {
    (inner.as_ptr() as usize - outer.as_ptr() as usize) + inner.len()
}

/// The unsigned integer right after `key` (spaces allowed before it).
fn number_after(bytes: &[u8], key: &[u8]) -> Option<u64> {
    let mut at = find(bytes, key)? + key.len();
    while bytes.get(at) == Some(&b' ') {
        at += 1;
    }
    let mut value: u64 = 0;
    let mut digits = 0;
    while let Some(&b) = bytes.get(at) {
        if !b.is_ascii_digit() {
            break;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        digits += 1;
        at += 1;
    }
    (digits > 0).then_some(value)
}

/// The first occurrence of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(symbol: &str, first: u64, last: u64) -> String {
        format!(
            r#"{{"stream":"{symbol}@depth@100ms","data":{{"e":"depthUpdate","E":1,"s":"X","U":{first},"u":{last},"b":[],"a":[["1.0","2.0"]]}}}}"#
        )
    }

    fn merge() -> Merge {
        Merge::new(&["NKNUSDT", "BTCUSDT"], true)
    }

    #[test]
    fn classifies_the_streams() {
        let m = merge();
        assert_eq!(
            m.classify(depth("btcusdt", 5, 9).as_bytes()),
            Key::Depth {
                symbol: 1,
                first: 5,
                last: 9
            }
        );
        let ticker = r#"{"stream":"nknusdt@bookTicker","data":{"u":400900217,"s":"NKNUSDT","b":"25.3","B":"31.2","a":"25.4","A":"40.6"}}"#;
        assert_eq!(
            m.classify(ticker.as_bytes()),
            Key::Ordered {
                symbol: 0,
                kind: 0,
                id: 400900217
            }
        );
        let agg = r#"{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"NKNUSDT","a": 26129,"p":"0.1","q":"100","f":100,"l":105,"T":1,"m":true,"M":true}}"#;
        assert_eq!(
            m.classify(agg.as_bytes()),
            Key::Ordered {
                symbol: 0,
                kind: 1,
                id: 26129
            }
        );
        let trade = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":12345,"p":"0.1","q":"100","T":1,"m":true,"M":true}}"#;
        assert_eq!(
            m.classify(trade.as_bytes()),
            Key::Ordered {
                symbol: 1,
                kind: 2,
                id: 12345
            }
        );
        for other in [
            r#"{"stream":"ethusdt@depth@100ms","data":{"U":1,"u":2}}"#,
            r#"{"stream":"nknusdt@kline_1m","data":{"t":1}}"#,
            r#"{"stream":"nknusdt@depth20","data":{"lastUpdateId":1}}"#,
            r#"{"stream":"nknusdt@depth","data":{"U":1}}"#,
            r#"{"stream":"nknusdt@depth","data":{"U":1,"u":99999999999999999999999}}"#,
            "}{ not JSON",
            "",
        ] {
            assert_eq!(m.classify(other.as_bytes()), Key::Other, "{other}");
        }
    }

    #[test]
    fn the_new_connection_takes_over_at_the_exact_continuation() {
        let mut m = merge();
        let d = |s, first, last| Key::Depth {
            symbol: s,
            first,
            last,
        };
        // The old connection delivers; the new one starts behind it, then catches up exactly:
        // symbol 0 is the new connection's from there.
        assert_eq!(m.verdict(Conn::Old, d(0, 10, 12)), Verdict::Deliver);
        assert_eq!(m.verdict(Conn::Old, d(0, 13, 14)), Verdict::Deliver);
        assert_eq!(m.verdict(Conn::New, d(0, 10, 12)), Verdict::Drop);
        assert_eq!(m.on_new(), 0);
        assert_eq!(m.verdict(Conn::New, d(0, 13, 14)), Verdict::Drop);
        assert_eq!(m.on_new(), 1);
        assert!(!m.all_on_new());
        // The old one's copies are dropped, the new one delivers.
        assert_eq!(m.verdict(Conn::Old, d(0, 15, 16)), Verdict::Drop);
        assert_eq!(m.verdict(Conn::New, d(0, 15, 16)), Verdict::Deliver);
        // Symbol 1: nothing known from the old connection yet: held; then it continues
        // exactly what the old one delivers.
        assert_eq!(m.verdict(Conn::New, d(1, 100, 101)), Verdict::Hold);
        assert_eq!(m.verdict(Conn::Old, d(1, 98, 99)), Verdict::Deliver);
        assert_eq!(m.verdict(Conn::New, d(1, 100, 101)), Verdict::Deliver);
        assert!(m.all_on_new());

        // Ahead and held, and the old connection delivers past it: a duplicate.
        let mut m = merge();
        assert_eq!(m.verdict(Conn::Old, d(0, 10, 12)), Verdict::Deliver);
        assert_eq!(m.verdict(Conn::New, d(0, 15, 16)), Verdict::Hold);
        assert_eq!(m.verdict(Conn::Old, d(0, 13, 14)), Verdict::Deliver);
        assert_eq!(m.verdict(Conn::Old, d(0, 15, 16)), Verdict::Deliver);
        assert_eq!(m.verdict(Conn::Old, d(0, 17, 18)), Verdict::Deliver);
        assert_eq!(m.verdict(Conn::New, d(0, 15, 16)), Verdict::Drop);
        assert_eq!(m.on_new(), 0);
        assert_eq!(m.verdict(Conn::New, d(0, 17, 18)), Verdict::Drop);
        assert_eq!(m.on_new(), 1);
    }

    #[test]
    fn a_straddling_diff_is_held_and_a_survivor_takes_over_at_once() {
        let mut m = merge();
        let d = |s, first, last| Key::Depth {
            symbol: s,
            first,
            last,
        };
        assert_eq!(m.verdict(Conn::Old, d(0, 10, 12)), Verdict::Deliver);
        // Batched differently: straddles 13 but does not start there.
        assert_eq!(m.verdict(Conn::New, d(0, 11, 14)), Verdict::Hold);
        m.old_gone();
        // Now it goes through (the books see the mismatch and resync).
        assert_eq!(m.verdict(Conn::New, d(0, 11, 14)), Verdict::Deliver);
        // A symbol the old connection never delivered: the new one's first diff goes through.
        assert_eq!(m.verdict(Conn::New, d(1, 5, 6)), Verdict::Deliver);
        assert!(m.all_on_new());

        // The new connection fails instead: symbols go back to the old one.
        let mut m = merge();
        assert_eq!(m.verdict(Conn::Old, d(0, 10, 12)), Verdict::Deliver);
        assert_eq!(m.verdict(Conn::New, d(0, 13, 13)), Verdict::Deliver);
        assert_eq!(m.verdict(Conn::Old, d(0, 13, 13)), Verdict::Drop);
        assert_eq!(m.verdict(Conn::New, d(0, 14, 15)), Verdict::Deliver);
        m.new_gone();
        assert_eq!(m.verdict(Conn::Old, d(0, 14, 15)), Verdict::Drop);
        assert!(m.all_on_old());
        assert_eq!(m.verdict(Conn::Old, d(0, 16, 17)), Verdict::Deliver);
        // A symbol the old connection is behind on: its next diff goes through (a gap the
        // books see, if one was lost with the new connection).
        let mut m = merge();
        assert_eq!(m.verdict(Conn::Old, d(1, 1, 2)), Verdict::Deliver);
        assert_eq!(m.verdict(Conn::New, d(1, 3, 3)), Verdict::Deliver);
        m.new_gone();
        assert_eq!(m.verdict(Conn::Old, d(1, 5, 6)), Verdict::Deliver);
        assert!(m.all_on_old());
    }

    #[test]
    fn ordered_messages_are_delivered_once() {
        let mut m = merge();
        let t = |id| Key::Ordered {
            symbol: 0,
            kind: 1,
            id,
        };
        assert_eq!(m.verdict(Conn::Old, t(5)), Verdict::Deliver);
        assert_eq!(m.verdict(Conn::New, t(5)), Verdict::Drop);
        assert_eq!(m.verdict(Conn::New, t(6)), Verdict::Deliver);
        assert_eq!(m.verdict(Conn::Old, t(6)), Verdict::Drop);
        assert_eq!(m.verdict(Conn::Old, t(7)), Verdict::Deliver);
        // The same id twice on one connection (a bookTicker without a new update id) passes.
        assert_eq!(m.verdict(Conn::Old, t(7)), Verdict::Deliver);
        assert_eq!(m.verdict(Conn::New, t(7)), Verdict::Drop);
        assert_eq!(m.verdict(Conn::Old, Key::Other), Verdict::Deliver);
        assert_eq!(m.verdict(Conn::New, Key::Other), Verdict::Drop);
        m.old_gone();
        assert_eq!(m.verdict(Conn::New, Key::Other), Verdict::Deliver);
        m.reset();
        assert_eq!(m.verdict(Conn::New, t(1)), Verdict::Deliver);
    }
}
