//! `journal`: journal files that a bad disk or another process wrote, read the way
//! `levictl tail` reads them (`journal_view::open_cursor`, a `Tailer` underneath) and rendered
//! (the human line and the JSON object of every frame).
//!
//! Once per process, a small valid journal (64 KiB segments; instrument defs, book tickers,
//! depth diffs, trades, orders, reports, daemon events, the config text, raw messages and a
//! record type nobody knows) is written with `Journal` + `Appender`; its first segment's bytes
//! are the template. Each input then becomes the segment file in a scratch directory:
//!
//! - byte 0, bits 0-1: `0` patches the template (the rest is `[offset_lo, offset_hi, len,
//!   bytes...]*`, written over it), `1` keeps the template's header (its tail at the end) and
//!   takes the rest as the frames (zeros after), `2` takes the rest as the whole file (any
//!   length), `3` patches the template and writes it gzip-compressed (`.lvj.gz`);
//! - bit 2 with mode 3: the rest is the `.lvj.gz` file itself;
//! - bit 3: a valid segment follows it (the next index), so the reader crosses over;
//! - bits 4-5: the segment's index (0, 1, or the last two that segment file names, 10 digits,
//!   can carry: the name and, when patching, the header's `segment_index`);
//! - bits 6-7: where the cursor starts (`levictl tail --from`): the beginning, the position of
//!   the template's third frame, a time (a binary search over the segments' first frames), or
//!   the beginning with only order records of one symbol wanted.
//!
//! Checked: no panic (no SIGBUS either: a short file is refused before it is mapped); the read
//! ends (at most [`STEPS_MAX`] steps: frames are at least 32 bytes); every error names the
//! journal file or directory.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use levibot_shm::layout::{
    FRAME_HEADER_LEN, HEADER_LEN, align_frame, compressed_file_name, segment_file_name,
};
use levibot_shm::records::{
    AggTrade, BookTicker, DaemonEvent, DepthDiff, ExecutionReport, FixSeqNums, InstrumentDef,
    Level, OrderRequest, Record, RiskReject, SentOrder, Trade, daemon_event, exec_type, ord_type,
    order_kind, record_type, side, time_in_force,
};
use levibot_shm::{Journal, JournalConfig, RecordType, ShmError, list_segments};
use levibot_view::{self as journal_view, Bound, FrameDecoder, Selection, Step};

/// The segment size of the template (the smallest there is).
pub const SEGMENT_SIZE: usize = levibot_shm::layout::SEGMENT_SIZE_MIN;
/// Steps of a cursor over two segments: more than their frames, restarts and missing segments.
pub const STEPS_MAX: usize = 2 * SEGMENT_SIZE / 32 + 64;
/// The position of the template's third frame in its segment (after two instrument defs).
const THIRD_FRAME: u64 =
    (HEADER_LEN + 2 * align_frame(FRAME_HEADER_LEN + size_of::<InstrumentDef>())) as u64;
/// A time inside the template's run (its header's wall-clock reference is the time it was
/// written: a search from here reads its headers and first frames).
const TEMPLATE_UNIX_NS: u64 = 1_795_654_923_000_000_000;
/// The largest index a segment file name carries (10 digits).
const INDEX_LAST: u64 = 9_999_999_999;
/// Byte offset of `segment_index` in a segment header (`levibot_shm::layout`).
const OFF_SEGMENT_INDEX: usize = 24;
/// Byte offset of `tail` in a segment header.
const OFF_TAIL: usize = 128;

struct Setup {
    /// The first segment of the valid journal.
    template: Vec<u8>,
    /// Where each input's files go.
    dir: PathBuf,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let root = crate::scratch::process_dir("journal");
        let template = write_valid_journal(&root.join("valid"));
        let dir = root.join("read");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        assert_eq!(template.len(), SEGMENT_SIZE);
        Setup { template, dir }
    })
}

/// Writes a journal with one or more frames of every kind `levictl` renders, and returns the
/// bytes of its first segment.
fn write_valid_journal(dir: &Path) -> Vec<u8> {
    let mut config = JournalConfig::new(dir);
    config.segment_size = SEGMENT_SIZE;
    config.prefault = false;
    let journal = Journal::open(&config).expect("a journal in the scratch directory");
    let mut a = journal.appender(3).expect("an appender");
    let mut append = |rt: RecordType, payload: &[u8]| {
        a.append(rt, payload).expect("room in the first segment");
    };
    let nkn = InstrumentDef::new(0, "NKNUSDT", (1, 4), (1, 0)).expect("a def");
    let rune = InstrumentDef::new(1, "RUNEEUR", (5, 3), (1, 1)).expect("a def");
    append(record_type::INSTRUMENT_DEF, nkn.to_bytes());
    append(record_type::INSTRUMENT_DEF, rune.to_bytes());
    append(
        record_type::CONFIG_TEXT,
        b"[daemon]\nlog_level = \"info\"\n",
    );
    let event = |kind, value| DaemonEvent {
        unix_ns: 1_795_654_923_000_000_000,
        value,
        kind,
        source: 2,
        peer_uid: 1000,
    };
    append(
        record_type::DAEMON_EVENT,
        event(daemon_event::STARTED, 0).to_bytes(),
    );
    append(
        record_type::DAEMON_EVENT,
        event(daemon_event::TRADING_STATE, 2).to_bytes(),
    );
    let mut raw = vec![0u8; 16];
    raw.extend_from_slice(br#"{"e":"bookTicker","s":"NKNUSDT"}"#);
    append(record_type::RAW_MESSAGE, &raw);
    let book = BookTicker {
        recv_tsc: 5,
        update_id: 7,
        bid_px: 351,
        bid_qty: 100,
        ask_px: 352,
        ask_qty: 200,
        instrument_id: 0,
        reserved: 0,
    };
    append(record_type::BOOK_TICKER, book.to_bytes());
    let mut diff = DepthDiff {
        recv_tsc: 6,
        event_time_ms: 1,
        first_update_id: 8,
        final_update_id: 9,
        instrument_id: 1,
        bid_count: 2,
        ask_count: 1,
        chunk: 0,
        chunk_count: 1,
        reserved: 0,
        levels: [Level::default(); levibot_shm::records::DEPTH_LEVELS_PER_RECORD],
    };
    diff.levels[0] = Level { px: 200, qty: 15 };
    diff.levels[1] = Level { px: 199, qty: 0 };
    diff.levels[2] = Level { px: 201, qty: 3 };
    append(record_type::DEPTH_DIFF, diff.to_bytes());
    let trade = Trade {
        instrument_id: 0,
        px: 351,
        qty: 40,
        trade_id: 11,
        flags: 1,
        ..Trade::default()
    };
    append(record_type::TRADE, trade.to_bytes());
    let agg = AggTrade {
        instrument_id: 1,
        px: 200,
        qty: 5,
        agg_id: 3,
        first_trade_id: 1,
        last_trade_id: 2,
        ..AggTrade::default()
    };
    append(record_type::AGG_TRADE, agg.to_bytes());
    let request = OrderRequest {
        created_tsc: 600,
        risk_tsc: 800,
        client_order_id: 42,
        px: 3512,
        qty: 100,
        instrument_id: 0,
        kind: order_kind::NEW,
        side: side::BUY,
        ord_type: ord_type::LIMIT,
        time_in_force: time_in_force::GTC,
        ..OrderRequest::default()
    };
    append(record_type::ORDER_REQUEST, request.to_bytes());
    let sent = SentOrder {
        request,
        recv_tsc: 200,
        decoded_tsc: 400,
        strategy_start_tsc: 500,
        risk_start_tsc: 700,
        encode_start_tsc: 900,
        encoded_tsc: 2_600,
        msg_seq_num: 7,
        encoded_len: 180,
        ..SentOrder::default()
    };
    append(record_type::ORDER_SENT, sent.to_bytes());
    let reject = RiskReject {
        request,
        ..RiskReject::default()
    };
    append(record_type::RISK_REJECT, reject.to_bytes());
    let report = ExecutionReport {
        client_order_id: 42,
        venue_order_id: 9,
        px: 3512,
        last_px: 3512,
        last_qty: 50,
        cum_qty: 50,
        leaves_qty: 50,
        instrument_id: 0,
        exec_type: exec_type::TRADE,
        ord_status: b'1',
        side: side::BUY,
        ..ExecutionReport::default()
    };
    append(record_type::EXECUTION_REPORT, report.to_bytes());
    let seq = FixSeqNums {
        next_sender: 8,
        next_target: 5,
    };
    append(record_type::FIX_SEQ_NUMS, seq.to_bytes());
    append(RecordType(0x999), b"a type nobody knows");
    drop(a);
    drop(journal);
    let first = list_segments(dir)
        .expect("the journal's segments")
        .into_iter()
        .find(|s| !s.compressed)
        .expect("a raw segment");
    std::fs::read(&first.path).unwrap_or_else(|e| panic!("{}: {e}", first.path.display()))
}

fn le_u64_at(bytes: &mut [u8], offset: usize, value: u64) {
    bytes[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
}

/// `[offset_lo, offset_hi, len, bytes...]*` written over `segment` (cut at its end).
fn patch(segment: &mut [u8], mut patches: &[u8]) {
    while let [lo, hi, len, rest @ ..] = patches {
        let offset = usize::from(u16::from_le_bytes([*lo, *hi]));
        let len = usize::from(*len).min(rest.len());
        let end = (offset + len).min(segment.len());
        segment[offset..end].copy_from_slice(&rest[..end - offset]);
        patches = &rest[len..];
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("in memory");
    encoder.finish().expect("in memory")
}

pub fn journal(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let setup = setup();
    let dir = &setup.dir;
    // The previous input's files.
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let _ = std::fs::remove_file(entry.path());
    }
    let index: u64 = match (mode >> 4) & 3 {
        0 => 0,
        1 => 1,
        2 => INDEX_LAST - 1,
        _ => INDEX_LAST,
    };
    let mut template = setup.template.clone();
    le_u64_at(&mut template, OFF_SEGMENT_INDEX, index);
    let (name, bytes) = match mode & 3 {
        0 => {
            patch(&mut template, rest);
            (segment_file_name(index), template)
        }
        1 => {
            template.truncate(HEADER_LEN);
            le_u64_at(&mut template, OFF_TAIL, SEGMENT_SIZE as u64);
            template.extend_from_slice(&rest[..rest.len().min(SEGMENT_SIZE - HEADER_LEN)]);
            template.resize(SEGMENT_SIZE, 0);
            (segment_file_name(index), template)
        }
        2 => (segment_file_name(index), rest.to_vec()),
        _ if mode & 4 != 0 => (compressed_file_name(index), rest.to_vec()),
        _ => {
            patch(&mut template, rest);
            (compressed_file_name(index), gzip(&template))
        }
    };
    let path = dir.join(&name);
    std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if mode & 8 != 0
        && let Some(next) = index.checked_add(1)
    {
        let mut valid = setup.template.clone();
        le_u64_at(&mut valid, OFF_SEGMENT_INDEX, next);
        let next_path = dir.join(segment_file_name(next));
        std::fs::write(&next_path, &valid)
            .unwrap_or_else(|e| panic!("{}: {e}", next_path.display()));
    }
    let base = index.saturating_mul(SEGMENT_SIZE as u64);
    let selection = match mode >> 6 {
        0 => Selection::default(),
        1 => Selection {
            from: Some(Bound::Position(base + THIRD_FRAME)),
            ..Selection::default()
        },
        2 => Selection {
            from: Some(Bound::Time(TEMPLATE_UNIX_NS)),
            ..Selection::default()
        },
        _ => Selection {
            types: vec![record_type::ORDER_SENT, record_type::EXECUTION_REPORT],
            symbol: Some("nknusdt".to_owned()),
            ..Selection::default()
        },
    };
    read_all(dir, selection);
}

/// Reads and renders the whole journal in `dir` as `levictl tail` would.
fn read_all(dir: &Path, selection: Selection) {
    let named = |e: &ShmError| {
        let text = e.to_string();
        assert!(
            text.contains(&*dir.to_string_lossy()),
            "an error that names neither the file nor the directory: {text}"
        );
    };
    let mut decoder = FrameDecoder::new();
    let mut cursor = match journal_view::open_cursor(dir, selection, &mut decoder) {
        Ok(cursor) => cursor,
        Err(e) => return named(&e),
    };
    // Follow: no end, as `levictl tail --follow`.
    cursor.selection.end = None;
    for _ in 0..STEPS_MAX {
        match cursor.step(&mut decoder) {
            Ok(Step::View(view)) => {
                let line = view.human();
                assert!(
                    !line.chars().any(char::is_control),
                    "a human line with a control character: {line:?}"
                );
                let json = view.to_json();
                let value: serde_json::Value =
                    serde_json::from_str(&json).expect("the JSON object reads back");
                assert!(value.is_object());
                let columns: Vec<&str> = view.fields().iter().map(|f| f.0).collect();
                let mut row = String::new();
                view.csv_row(&columns, &mut row);
            }
            Ok(Step::Skipped | Step::Restart(_)) => {}
            Ok(Step::Missing(e)) => named(&e),
            Ok(Step::Idle | Step::Past) => return,
            Err(e) => return named(&e),
        }
    }
    panic!("the cursor did not reach the end in {STEPS_MAX} steps");
}
