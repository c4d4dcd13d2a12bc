//! Property test: the fast path and the general (simd-json) path decode to the same event, on
//! every corpus message and on generated messages: in the documented layout (which the fast path
//! must take), and with fields shuffled and whitespace added (which it must hand over).
//! `LEVIBOT_TEST_SEED` replays a run.

use levibot_gateway::binance::Decoder;
use levibot_gateway::capture::{Recording, capture_lines, testdata_dir};
use levibot_gateway::instrument::Instrument;
use levibot_testkit::seed;

fn corpus_decoder() -> Decoder {
    Decoder::new(
        Recording::testdata()
            .unwrap()
            .snapshot_instruments()
            .unwrap(),
    )
}

/// Both paths on one message: (fast-or-fallback result, general result), as comparable text.
fn both(decoder: &mut Decoder, msg: &[u8]) -> (String, String) {
    let fast = format!("{:?}", decoder.decode(msg, 5));
    let general = format!("{:?}", decoder.decode_general(msg, 5));
    (fast, general)
}

#[test]
fn both_paths_agree_on_the_corpus() {
    let mut decoder = corpus_decoder();
    let data = std::fs::read(testdata_dir().join("BINANCE.ws.1.0")).unwrap();
    for line in capture_lines(&data) {
        let line = line.unwrap();
        let (fast, general) = both(&mut decoder, line.body);
        assert_eq!(fast, general, "line {}", line.line);
        assert!(fast.starts_with("Ok("), "line {}: {fast}", line.line);
    }
}

/// Inputs the differential fuzzer (fuzz/fuzz_targets/decode.rs) found the paths disagreeing on.
#[test]
fn both_paths_agree_on_fuzzer_findings() {
    let mut decoder = corpus_decoder();
    let findings: [&[u8]; 1] = [
        // Invalid UTF-8 in the stream name: the fast path accepted it, simd-json does not.
        b"{\"stream\":\"\xffnknusdt@bookTicker\",\"data\":{\"u\":1,\"s\":\"NKNUSDT\",\"b\":\"0.3521\",\"B\":\"1\",\"a\":\"0.3526\",\"A\":\"1\"}}",
    ];
    for msg in findings {
        let (fast, general) = both(&mut decoder, msg);
        assert_eq!(fast, general, "{}", String::from_utf8_lossy(msg));
        assert!(fast.starts_with("Err("), "{fast}");
    }
}

/// A JSON field: key and raw JSON value.
type Field = (&'static str, String);

fn quoted(s: impl std::fmt::Display) -> String {
    format!("\"{s}\"")
}

/// A random decimal of up to `units_max` units of `scale`, sometimes with trailing zeros cut.
fn decimal(
    rng: &mut fastrand::Rng,
    units_max: i64,
    scale: levibot_gateway::decimal::Scale,
) -> String {
    let units = rng.i64(0..units_max);
    let full = format!("{:.*}", scale.exp as usize, scale.to_decimal(units));
    if rng.bool() && full.contains('.') {
        full.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        full
    }
}

/// A random event for `i` in the documented field order: (stream suffix, fields).
fn event(rng: &mut fastrand::Rng, i: &Instrument) -> (&'static str, Vec<Field>) {
    let symbol = quoted(i.symbol);
    let px = |rng: &mut fastrand::Rng| quoted(decimal(rng, 1_000_000_000, i.price_scale));
    let id = rng.u64(..1 << 40);
    match rng.u8(..4) {
        0 => {
            let fields = vec![
                ("u", id.to_string()),
                ("s", symbol),
                ("b", px(rng)),
                ("B", px(rng)),
                ("a", px(rng)),
                ("A", px(rng)),
            ];
            ("bookTicker", fields)
        }
        1 => {
            let levels = |rng: &mut fastrand::Rng| {
                let n = rng.usize(0..6);
                let items: Vec<String> = (0..n)
                    .map(|_| {
                        let p = decimal(rng, 1_000_000_000, i.price_scale);
                        let q = decimal(rng, 1_000_000_000_000, i.qty_scale);
                        format!("[\"{p}\",\"{q}\"]")
                    })
                    .collect();
                format!("[{}]", items.join(","))
            };
            let bids = levels(rng);
            let asks = levels(rng);
            let fields = vec![
                ("e", quoted("depthUpdate")),
                ("E", rng.u64(..1 << 42).to_string()),
                ("s", symbol),
                ("U", id.to_string()),
                ("u", (id + rng.u64(..50)).to_string()),
                ("b", bids),
                ("a", asks),
            ];
            ("depth@100ms", fields)
        }
        2 => {
            let fields = vec![
                ("e", quoted("trade")),
                ("E", rng.u64(..1 << 42).to_string()),
                ("s", symbol),
                ("t", id.to_string()),
                ("p", px(rng)),
                ("q", px(rng)),
                ("T", rng.u64(..1 << 42).to_string()),
                ("m", rng.bool().to_string()),
                ("M", "true".to_string()),
            ];
            ("trade", fields)
        }
        _ => {
            let fields = vec![
                ("e", quoted("aggTrade")),
                ("E", rng.u64(..1 << 42).to_string()),
                ("s", symbol),
                ("a", id.to_string()),
                ("p", px(rng)),
                ("q", px(rng)),
                ("f", rng.u64(..1 << 40).to_string()),
                ("l", rng.u64(..1 << 40).to_string()),
                ("T", rng.u64(..1 << 42).to_string()),
                ("m", rng.bool().to_string()),
                ("M", "true".to_string()),
            ];
            ("aggTrade", fields)
        }
    }
}

fn whitespace(rng: &mut fastrand::Rng, on: bool) -> &'static str {
    if on {
        [" ", "\n", "\t ", "  \r\n", ""][rng.usize(..5)]
    } else {
        ""
    }
}

fn render(rng: &mut fastrand::Rng, stream: &str, fields: &[Field], spaced: bool) -> String {
    let mut data = String::from("{");
    for (n, (key, value)) in fields.iter().enumerate() {
        if n > 0 {
            data.push(',');
        }
        let (a, b, c) = (
            whitespace(rng, spaced),
            whitespace(rng, spaced),
            whitespace(rng, spaced),
        );
        data.push_str(&format!("{a}\"{key}\"{b}:{c}{value}"));
    }
    data.push('}');
    let ws = whitespace(rng, spaced);
    if rng.u8(..4) == 0 && spaced {
        format!("{{\"data\":{data},{ws}\"stream\":\"x@{stream}\"}}")
    } else {
        format!("{{{ws}\"stream\":\"x@{stream}\",\"data\":{ws}{data}{ws}}}")
    }
}

#[test]
fn both_paths_agree_on_generated_messages() {
    let seed = seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut decoder = corpus_decoder();
    let instruments: Vec<Instrument> = decoder.instruments().iter().cloned().collect();
    for n in 0..5_000 {
        let i = &instruments[rng.usize(..instruments.len())];
        let (stream, mut fields) = event(&mut rng, i);

        // The documented layout: the fast path must take it, and agree with the general path.
        let canonical = render(&mut rng, stream, &fields, false);
        let fast_before = decoder.stats().fast_path;
        let (fast, general) = both(&mut decoder, canonical.as_bytes());
        assert_eq!(fast, general, "seed {seed}, message {n}: {canonical}");
        assert!(fast.starts_with("Ok("), "seed {seed}: {canonical}: {fast}");
        assert_eq!(
            decoder.stats().fast_path,
            fast_before + 1,
            "fast path refused {canonical}"
        );

        // Shuffled fields and whitespace: the same event, whichever path decodes it.
        rng.shuffle(&mut fields);
        let messy = render(&mut rng, stream, &fields, true);
        let (fast_messy, general_messy) = both(&mut decoder, messy.as_bytes());
        assert_eq!(fast_messy, general_messy, "seed {seed}: {messy}");
        assert_eq!(fast_messy, fast, "seed {seed}: {messy} vs {canonical}");
    }
}
