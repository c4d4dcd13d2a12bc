//! The HTML report (`levibot-backtest run --report DIR`). Data made by arithmetic (an hour of
//! a sine-wave mid, fills every five minutes, the position and drawdown they imply, a latency
//! histogram) is rendered, and the page is checked as text (one SVG per chart, the summary,
//! escaping, nothing from outside the file, the same bytes twice, degenerate data) and then in
//! headless Chromium: its DOM after load, and a screenshot that is not blank.
//!
//! Needs Debian's `chromium` (scripts/install-test-deps installs it).

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use levibot_backtest::report::{
    Curve, InstrumentReport, ReportData, ReportFill, render_html, write_report,
};

/// 2024-03-01 00:00:00 UTC.
const T0: u64 = 1_709_251_200_000_000_000;
const SECOND: u64 = 1_000_000_000;
/// Seven charts: equity, drawdown, mid and position of two instruments, latency.
const CHARTS: usize = 7;
/// The curves' colour (`.equity`, `.mid` and the latency bars): #1f77b4.
const BLUE: [u8; 3] = [0x1f, 0x77, 0xb4];
const GREEN: [u8; 3] = [0x2c, 0xa0, 0x2c];
const RED: [u8; 3] = [0xd6, 0x27, 0x28];

fn curve(name: &str, unit: &str, points: Vec<(u64, f64)>) -> Curve {
    Curve {
        name: name.to_owned(),
        unit: unit.to_owned(),
        points,
    }
}

fn mid_at(t: u64) -> f64 {
    let minutes = (t - T0) as f64 / 60e9;
    100.0 + 2.0 * (minutes / 20.0 * std::f64::consts::TAU).sin()
}

/// An hour of BTC-USDT: the mid every 2 s, a fill every 5 minutes (buys and sells in turn,
/// makers and takers in turn), the position they make; a flat ETH-USDT without fills.
fn sample() -> ReportData {
    let times: Vec<u64> = (0..=1800).map(|i| T0 + 2 * SECOND * i).collect();
    let mid: Vec<(u64, f64)> = times.iter().map(|&t| (t, mid_at(t))).collect();
    let fills: Vec<ReportFill> = (1..12u64)
        .map(|i| {
            let t = T0 + 300 * SECOND * i;
            let buy = i % 2 == 1;
            ReportFill {
                t_ns: t,
                px: mid_at(t) + if buy { -0.01 } else { 0.01 },
                qty: 0.5,
                buy,
                maker: i % 4 < 2,
            }
        })
        .collect();
    let mut position = vec![(T0, 0.0)];
    for fill in &fills {
        let held = position.last().map_or(0.0, |&(_, q)| q);
        position.push((
            fill.t_ns,
            held + if fill.buy { fill.qty } else { -fill.qty },
        ));
    }
    let equity: Vec<(u64, f64)> = times
        .iter()
        .map(|&t| {
            (
                t,
                10_000.0 + 25.0 * (mid_at(t) - 100.0) + (t - T0) as f64 / 1e12,
            )
        })
        .collect();
    let mut peak = f64::MIN;
    let drawdown = equity
        .iter()
        .map(|&(t, v)| {
            peak = peak.max(v);
            (t, v - peak)
        })
        .collect();
    ReportData {
        title: "levibot-backtest: mm-btc on 2024-03-01".to_owned(),
        summary: vec![
            ("Net PnL".to_owned(), "12.34 USDT".to_owned()),
            ("Fills".to_owned(), "11".to_owned()),
            ("Max drawdown".to_owned(), "-49.80 USDT".to_owned()),
        ],
        equity: curve("Equity", "USDT", equity),
        drawdown: curve("Drawdown", "USDT", drawdown),
        instruments: vec![
            InstrumentReport {
                symbol: "BTC-USDT".to_owned(),
                mid: curve("mid", "USDT", mid),
                fills,
                position: curve("position", "BTC", position),
            },
            InstrumentReport {
                symbol: "ETH-USDT".to_owned(),
                mid: curve(
                    "mid",
                    "USDT",
                    vec![(T0, 3000.0), (T0 + 3600 * SECOND, 3000.0)],
                ),
                fills: Vec::new(),
                position: curve("position", "ETH", vec![(T0, 0.0)]),
            },
        ],
        latency_us: [
            1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0,
        ]
        .iter()
        .enumerate()
        .map(|(i, &bound)| (bound, 1000 / (1 + (i as u64).abs_diff(5).pow(2))))
        .collect(),
    }
}

/// Where `needle` first occurs, with a message naming it when it does not.
fn at(html: &str, needle: &str) -> usize {
    html.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} is not in the page"))
}

#[test]
fn the_page_has_its_parts_in_order_and_one_svg_per_chart() {
    let html = render_html(&sample());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), CHARTS);
    assert_eq!(html.matches("</svg>").count(), CHARTS);
    for row in [
        "<th scope=\"row\">Net PnL</th><td>12.34 USDT</td>",
        "<th scope=\"row\">Fills</th><td>11</td>",
        "<th scope=\"row\">Max drawdown</th><td>-49.80 USDT</td>",
    ] {
        at(&html, row);
    }
    let order = [
        "<h1>levibot-backtest: mm-btc on 2024-03-01</h1>",
        "<table class=\"summary\">",
        ">Equity (USDT)</text>",
        ">Drawdown (USDT)</text>",
        ">BTC-USDT: mid (USDT)</text>",
        ">BTC-USDT: position (BTC)</text>",
        ">ETH-USDT: mid (USDT)</text>",
        ">ETH-USDT: position (ETH)</text>",
        ">Order round trip (µs)</text>",
    ];
    let places: Vec<usize> = order.iter().map(|part| at(&html, part)).collect();
    assert!(places.is_sorted(), "{places:?}");

    // Fills: one group per kind (buys up, sells down; makers hollow), each fill with its
    // tooltip, and a legend that counts them: 11 fills, i = 1..=11.
    for (kind, count) in [
        ("buy maker", 3),
        ("buy taker", 3),
        ("sell maker", 2),
        ("sell taker", 3),
    ] {
        at(&html, &format!("<g class=\"fill {kind}\">"));
        let label = kind.replace(' ', ", ");
        at(&html, &format!("{label} ({count})</text>"));
        assert_eq!(
            html.matches(&format!("<title>{label} 0.5 @ ")).count(),
            count
        );
    }
    // Buys point up, sells down (the shape, besides the colour of their class).
    assert_eq!(html.matches("l5 9h-10z\"><title>buy").count(), 6);
    assert_eq!(html.matches("l5 -9h-10z\"><title>sell").count(), 5);
    at(&html, ", 00:05:00.000</title>");
    at(&html, "no fills</text>");

    // Time axes: round UTC times, and the date in the caption.
    for label in [
        ">00:10:00</text>",
        ">00:50:00</text>",
        "time (UTC), 2024-03-01",
    ] {
        at(&html, label);
    }
    at(&html, "2024-03-01 00:00:00 to 2024-03-01 01:00:00 UTC");
    // Latency: a bar per bucket, labels that read as a log scale.
    assert_eq!(html.matches("µs: ").count(), 11);
    for label in [
        ">1</text>",
        ">10</text>",
        ">100</text>",
        ">1k</text>",
        ">2k</text>",
    ] {
        at(&html, label);
    }
    at(&html, "<title>≤ 50 µs: 1000</title>");
}

#[test]
fn every_string_from_the_data_is_escaped() {
    let mut data = sample();
    data.title = "<script>alert(1)</script>".to_owned();
    data.summary
        .push(("P&L <b>".to_owned(), "\"1\" & '2'".to_owned()));
    data.instruments[0].symbol = "\"><img src=x onerror=alert(1)>".to_owned();
    data.equity.unit = "<i>".to_owned();
    let html = render_html(&data);
    assert!(!html.contains("<script"), "the page has no script at all");
    assert!(!html.contains("<img") && !html.contains("<b>") && !html.contains("<i>"));
    at(
        &html,
        "<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>",
    );
    at(&html, "<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>");
    at(
        &html,
        "<th scope=\"row\">P&amp;L &lt;b&gt;</th><td>&quot;1&quot; &amp; &#39;2&#39;</td>",
    );
    at(
        &html,
        "<h2>&quot;&gt;&lt;img src=x onerror=alert(1)&gt;</h2>",
    );
    at(
        &html,
        "aria-label=\"&quot;&gt;&lt;img src=x onerror=alert(1)&gt;: mid\"",
    );
    at(&html, "Equity (&lt;i&gt;)");
}

#[test]
fn the_page_needs_nothing_from_outside_the_file() {
    let html = render_html(&sample());
    for outside in [
        "http:", "https:", "//", " src=", "href=", "@import", "url(", "<link",
    ] {
        assert!(!html.contains(outside), "{outside:?} in the page");
    }
}

#[test]
fn the_same_data_gives_the_same_bytes() {
    let data = sample();
    let first = render_html(&data);
    assert_eq!(first, render_html(&data.clone()));
    let dir = tempfile::tempdir().unwrap();
    let path = write_report(&dir.path().join("a/b"), &data).unwrap();
    assert_eq!(path, dir.path().join("a/b/report.html"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
}

/// No `NaN`, `inf` or `-0.0` anywhere, and every chart drawn.
fn assert_clean(html: &str, charts: usize) {
    assert_eq!(html.matches("<svg").count(), charts);
    let words: Vec<&str> = html
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '.')
        .collect();
    for bad in ["NaN", "inf", "-inf", "-0.0"] {
        assert!(!words.contains(&bad), "{bad} in the page");
    }
}

#[test]
fn empty_and_degenerate_data_render() {
    let empty = render_html(&ReportData::default());
    assert_clean(&empty, 3);
    assert_eq!(empty.matches("no data</text>").count(), 2);
    at(&empty, "no latency data</text>");
    at(&empty, "No summary.");

    let mut data = ReportData {
        equity: curve("", "", vec![(T0, 5.0)]),
        drawdown: curve(
            "",
            "",
            vec![(T0, 0.0), (T0 + SECOND, 0.0), (T0 + 2 * SECOND, 0.0)],
        ),
        latency_us: vec![
            (f64::NAN, 3),
            (1.0, 0),
            (f64::INFINITY, 2),
            (f64::NEG_INFINITY, 1),
        ],
        ..ReportData::default()
    };
    let wild = [
        f64::NAN,
        f64::INFINITY,
        f64::MAX,
        -f64::MAX,
        1e-300,
        f64::MIN_POSITIVE,
        5e-324,
        f64::NEG_INFINITY,
        -0.0,
    ];
    let fills = wild.iter().enumerate().map(|(i, &px)| ReportFill {
        t_ns: T0 + i as u64,
        px,
        qty: px,
        buy: i % 2 == 0,
        maker: i % 3 == 0,
    });
    let instruments = [
        ("huge", vec![(0, 1e300), (u64::MAX, -1e300)]),
        (
            "tiny",
            vec![(T0, 1e-300), (T0 + 1, 3e-300), (T0 + 2, 2e-300)],
        ),
        (
            "wild",
            wild.iter()
                .enumerate()
                .map(|(i, &v)| (T0 + i as u64, v))
                .collect(),
        ),
        ("none finite", vec![(T0, f64::NAN), (T0 + 1, f64::INFINITY)]),
        ("empty", Vec::new()),
    ];
    for (symbol, points) in instruments {
        data.instruments.push(InstrumentReport {
            symbol: symbol.to_owned(),
            mid: curve("", "", points.clone()),
            fills: if symbol == "wild" {
                fills.clone().collect()
            } else {
                Vec::new()
            },
            position: curve("", "", points),
        });
    }
    let html = render_html(&data);
    assert_clean(&html, 3 + 2 * 5);
    // The infinite bound is the overflow bucket; NaN and -inf bounds are left out.
    at(&html, "<title>≤ ∞ µs: 2</title>");
    assert_eq!(html.matches("µs: ").count(), 2);
    // A single point is a dot.
    at(&html, "<circle class=\"equity dot\"");
    assert_eq!(render_html(&data), html);
}

// ------------------------------------------------------------------------------ Chromium

/// Debian's chromium on `PATH` (the package installs /usr/bin/chromium).
fn chromium() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("chromium"))
            .find(|binary| binary.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "chromium is not installed: run scripts/install-test-deps \
             (it installs Debian's chromium package)"
        )
    })
}

/// How long one Chromium run may take; a loaded machine takes seconds, a hang is killed.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs headless Chromium on `page` with `args`; its standard output. Fails, with its
/// standard error, if it fails or outlives `CHROMIUM_TIMEOUT`.
// The timeout on the Chromium child is the machine's time, not a backtest's: the
// virtual-clock rule (clippy.toml) is for the code a backtest runs.
#[allow(clippy::disallowed_methods)]
fn run_chromium(profile: &Path, page: &Path, args: &[String]) -> Vec<u8> {
    let mut child = Command::new(chromium())
        // --no-sandbox: Chromium's sandbox refuses to run as root, and CI runs as root.
        // --disable-dev-shm-usage: a container's /dev/shm may be too small for it.
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
        ])
        .args(["--hide-scrollbars", "--window-size=1200,3000"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a hung run is killed with its renderers and helpers.
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", chromium().display()));
    // Read both pipes while it runs, so that a full pipe cannot stall it.
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let until = Instant::now() + CHROMIUM_TIMEOUT;
    let mut status = None;
    while status.is_none() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
        status = child.try_wait().unwrap();
    }
    // A helper that outlives it would hold the pipes open: give them a few seconds to close.
    let grace = Instant::now() + Duration::from_secs(5);
    let closed = || stdout.lock().unwrap().1 && stderr.lock().unwrap().1;
    while status.is_some() && !closed() && Instant::now() < grace {
        std::thread::sleep(Duration::from_millis(50));
    }
    if status.is_none() || !closed() {
        kill_group(child.id());
    }
    let _ = child.wait();
    let stderr = String::from_utf8_lossy(&stderr.lock().unwrap().0).into_owned();
    match status {
        Some(status) if status.success() => std::mem::take(&mut stdout.lock().unwrap().0),
        Some(status) => panic!("chromium {args:?} failed ({status}):\n{stderr}"),
        None => panic!("chromium {args:?} ran past {CHROMIUM_TIMEOUT:?}, killed:\n{stderr}"),
    }
}

/// What a pipe has given so far, and whether it has closed.
type Drained = Arc<Mutex<(Vec<u8>, bool)>>;

fn drain(mut from: impl Read + Send + 'static) -> Drained {
    let drained = Drained::default();
    let into = Arc::clone(&drained);
    std::thread::spawn(move || {
        let mut chunk = [0; 8192];
        while let Ok(n @ 1..) = from.read(&mut chunk) {
            into.lock().unwrap().0.extend_from_slice(&chunk[..n]);
        }
        into.lock().unwrap().1 = true;
    });
    drained
}

/// SIGKILL to the process group `pgid` (a Chromium run's, led by the process spawned), by the
/// shell's `kill`: the test needs no crate for it.
fn kill_group(pgid: u32) {
    let _ = Command::new("sh")
        .args(["-c", "kill -KILL -- \"-$1\"", "sh", &pgid.to_string()])
        .status();
}

#[test]
fn headless_chromium_loads_the_page_and_draws_it() {
    let dir = tempfile::tempdir().unwrap();
    let page = write_report(&dir.path().join("report"), &sample()).unwrap();

    // The DOM after load: the summary table and every chart, as Chromium parsed them.
    let dom = run_chromium(
        &dir.path().join("profile-dom"),
        &page,
        &["--dump-dom".to_owned()],
    );
    let dom = String::from_utf8_lossy(&dom);
    at(&dom, "<table class=\"summary\">");
    at(&dom, "<th scope=\"row\">Net PnL</th><td>12.34 USDT</td>");
    assert_eq!(dom.matches("<svg").count(), CHARTS, "{dom}");
    assert_eq!(dom.matches("<g class=\"fill ").count(), 4);

    // The screenshot: the window's size, and drawn: a good share of it is not white, and the
    // curves' blue, the buys' green and the sells' red are there.
    let png = dir.path().join("report.png");
    let shot = format!("--screenshot={}", png.display());
    run_chromium(&dir.path().join("profile-shot"), &page, &[shot]);
    let bytes = std::fs::read(&png).unwrap();
    let (width, height, pixels) = decode_png(&bytes);
    assert_eq!((width, height), (1200, 3000));
    let near = |p: &[u8; 3], c: [u8; 3]| p.iter().zip(c).all(|(&a, b)| a.abs_diff(b) <= 12);
    let count = |c: [u8; 3]| pixels.iter().filter(|p| near(p, c)).count();
    let drawn = pixels.iter().filter(|p| p.iter().any(|&v| v < 235)).count();
    let share = drawn as f64 / pixels.len() as f64;
    let (blue, green, red) = (count(BLUE), count(GREEN), count(RED));
    eprintln!("screenshot: {share:.3} not white; blue {blue}, green {green}, red {red} pixels");
    assert!(
        share > 0.02,
        "the screenshot is nearly blank: {share:.4} not white"
    );
    assert!(blue > 2_000, "the curves' blue: {blue} pixels");
    assert!(
        green > 50 && red > 50,
        "fills: green {green}, red {red} pixels"
    );
}

/// The pixels of an 8-bit RGB or RGBA PNG, not interlaced (what Chromium writes), as RGB.
fn decode_png(bytes: &[u8]) -> (usize, usize, Vec<[u8; 3]>) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (mut header, mut data) = (None, Vec::new());
    let mut rest = &bytes[8..];
    while rest.len() >= 12 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let (kind, body) = (&rest[4..8], &rest[8..8 + len]);
        match kind {
            b"IHDR" => header = Some(body.to_vec()),
            b"IDAT" => data.extend_from_slice(body),
            _ => {}
        }
        rest = &rest[12 + len..];
    }
    let header = header.expect("a PNG without IHDR");
    let be = |at: usize| u32::from_be_bytes(header[at..at + 4].try_into().unwrap()) as usize;
    let (width, height) = (be(0), be(4));
    let (depth, colour, interlace) = (header[8], header[9], header[12]);
    let channels = match (depth, colour, interlace) {
        (8, 2, 0) => 3,
        (8, 6, 0) => 4,
        _ => panic!("PNG depth {depth}, colour type {colour}, interlace {interlace}: not read"),
    };
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&data[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = width * channels;
    assert_eq!(raw.len(), height * (stride + 1));
    // Undo each row's filter (PNG's five: none, sub, up, average, Paeth).
    let mut rows: Vec<u8> = Vec::with_capacity(height * stride);
    for y in 0..height {
        let line = &raw[y * (stride + 1)..(y + 1) * (stride + 1)];
        let start = rows.len();
        for x in 0..stride {
            let a = if x >= channels {
                rows[start + x - channels]
            } else {
                0
            };
            let b = if y > 0 { rows[start + x - stride] } else { 0 };
            let c = if y > 0 && x >= channels {
                rows[start + x - channels - stride]
            } else {
                0
            };
            let predicted = match line[0] {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = (
                        (p - i16::from(a)).abs(),
                        (p - i16::from(b)).abs(),
                        (p - i16::from(c)).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                filter => panic!("PNG filter {filter}"),
            };
            rows.push(line[1 + x].wrapping_add(predicted));
        }
    }
    let pixels = rows
        .chunks_exact(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (width, height, pixels)
}
