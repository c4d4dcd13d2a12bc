//! `levibot-bench wire`: wire-to-wire latency over loopback, as a venue sees it: from the moment
//! it writes a market-data frame to the moment the order that frame caused arrives on its FIX
//! session.
//!
//! The venue is a thread of this benchmark (pinned to one core, busy): a WebSocket server
//! writing a synthetic Binance stream (the engine's `SyntheticSource`), the REST snapshot, and a
//! FIX acceptor (venue-sim's `FixAcceptor` and matching engine, which acknowledges our orders).
//! After writing each frame it polls the FIX socket until an order arrives or the next frame is
//! due; the first order after a frame is that frame's (frames are spaced well beyond the
//! latency). The trader is the whole pipeline (`WsFeed`, the maker, risk, `FixVenue`), fused on
//! the other core.
//!
//! Baseline, same run: the same venue thread against an *echo* trader that answers each frame
//! with a fixed FIX-sized message as soon as it reads it: the floor of two loopback hops and
//! their system calls.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use hdrhistogram::Histogram;
use levibot_engine::idle::IdleStrategy;
use levibot_engine::pipeline::reference::{SYNTHETIC_MID_TICKS, maker_spec};
use levibot_engine::pipeline::{
    FixVenue, Layout, MessageSource, OwnedSnapshot, Pipeline, Polled, SyntheticSource, WsFeed,
    WsFeedConfig,
};
use levibot_engine::ring::Rtrb;
use levibot_engine::runner::{RunnerConfig, available_cores};
use levibot_engine::strategy::maker::Maker;
use levibot_gateway::capture::Recording;
use levibot_gateway::fix::{FixSession, SessionConfig, SessionSeqNums};
use levibot_gateway::instrument::{Instrument, InstrumentTable};
use levibot_gateway::ws::frame::Opcode;
use levibot_gateway::ws::{RestEndpoint, Stream};
use levibot_shm::counters::CountersWriter;
use levibot_shm::{Journal, JournalConfig, RetentionPolicy, TscCalibration};
use levibot_sim::feed::FeedEncoder;
use levibot_sim::fix_acceptor::FixAcceptor;
use levibot_sim::matching::MatchingEngine;
use levibot_sim::md_server::wire::{
    Route, http_response, parse_request, upgrade_response, write_frame,
};
use serde_json::{Value, json};

use crate::report::{MachineInfo, latency_histogram, round3};
use crate::scratch::ScratchDir;

/// Longest the setup (connections, logon, snapshot) may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Frames at the start of a run left out of the figures.
const WARMUP_FRACTION: f64 = 0.1;

#[derive(Args, Debug)]
pub struct WireArgs {
    /// Market-data frames a second.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=50_000))]
    rate: u64,
    /// Frames per run.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(100..=10_000_000))]
    messages: u64,
    /// Where to put the scratch journal (default /dev/shm).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Also print every figure as one JSON object, on the last line of stdout.
    #[arg(long)]
    json: bool,
}

/// What one run measured.
struct Run {
    histogram: Histogram<u64>,
    frames: u64,
    /// Frames after which no order came before the next frame was due.
    unanswered: u64,
}

impl Run {
    fn to_json(&self) -> Value {
        let h = &self.histogram;
        json!({
            "frames": self.frames,
            "answered": h.len(),
            "unanswered": self.unanswered,
            "p50_ns": h.value_at_quantile(0.5),
            "p90_ns": h.value_at_quantile(0.9),
            "p99_ns": h.value_at_quantile(0.99),
            "p999_ns": h.value_at_quantile(0.999),
            "max_ns": h.max(),
        })
    }
}

pub fn run(args: &WireArgs) -> Result<()> {
    let cores = available_cores();
    if cores.len() < 2 {
        bail!("the wire benchmark needs 2 cores (the venue and the trader each busy-spin on one)");
    }
    let machine = MachineInfo::detect();
    let all = Recording::testdata()
        .context("loading the corpus instruments")?
        .instruments()?;
    let table = InstrumentTable::select(&all, &["NKNUSDT"])?;
    let nkn = table.get(0).context("NKNUSDT")?.clone();
    let scratch = ScratchDir::create(args.dir.as_deref())?;
    eprintln!("levibot-bench wire: the pipeline...");
    let pipeline = scratch.with_dir("pipeline", |dir| {
        measure(args, &table, &nkn, &cores, Trader::Pipeline(dir))
    })?;
    eprintln!("levibot-bench wire: the echo baseline...");
    let echo = measure(args, &table, &nkn, &cores, Trader::Echo)?;
    scratch.remove()?;
    let ratio = pipeline.histogram.value_at_quantile(0.5) as f64
        / echo.histogram.value_at_quantile(0.5).max(1) as f64;
    println!(
        "levibot-bench wire: market-data frame written -> order read, over loopback, {} frames at {}/s",
        args.messages, args.rate
    );
    println!("{}", machine.summary_line());
    println!(
        "  {:<26} {:>8} {:>8} {:>8} {:>8} {:>10} {:>11}",
        "trader", "p50", "p90", "p99", "p99.9", "max", "unanswered"
    );
    for (name, run) in [("pipeline (fused)", &pipeline), ("echo (baseline)", &echo)] {
        let h = &run.histogram;
        println!(
            "  {:<26} {:>8} {:>8} {:>8} {:>8} {:>10} {:>11}",
            name,
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.9),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max(),
            run.unanswered
        );
    }
    println!("pipeline / echo at p50: {ratio:.2}x (ns)");
    if args.json {
        println!(
            "{}",
            json!({
                "benchmark": "wire",
                "rate_per_sec": args.rate,
                "messages": args.messages,
                "machine": machine.to_json(),
                "pipeline": pipeline.to_json(),
                "echo_baseline": echo.to_json(),
                "p50_pipeline_over_echo": round3(ratio),
            })
        );
    }
    Ok(())
}

enum Trader<'a> {
    /// The whole pipeline, journaling into this directory.
    Pipeline(&'a std::path::Path),
    /// Answers each frame at once with a fixed message.
    Echo,
}

/// A running trader, stopped on drop.
enum Running {
    Pipeline(levibot_engine::pipeline::RunningPipeline, Journal),
    Echo(Arc<AtomicBool>, std::thread::JoinHandle<()>),
}

impl Running {
    fn stop(self) -> Result<()> {
        match self {
            Running::Pipeline(running, journal) => {
                running.stop().context("stopping the pipeline")?;
                drop(journal);
            }
            Running::Echo(stop, thread) => {
                stop.store(true, Ordering::Relaxed);
                let _ = thread.join();
            }
        }
        Ok(())
    }
}

fn measure(
    args: &WireArgs,
    table: &InstrumentTable,
    nkn: &Instrument,
    cores: &[usize],
    trader: Trader<'_>,
) -> Result<Run> {
    let md = TcpListener::bind("127.0.0.1:0")?;
    let fix = TcpListener::bind("127.0.0.1:0")?;
    let (md_addr, fix_addr) = (md.local_addr()?, fix.local_addr()?);
    let calibration = TscCalibration::measure(&quanta::Clock::new());
    let mut source = SyntheticSource::new(
        nkn,
        SYNTHETIC_MID_TICKS,
        args.messages + 1_000,
        7,
        None,
        &calibration,
    )?;
    let snapshot = source.snapshot();
    let venue_core = cores[0];
    let trader_core = cores[1];
    let running = match trader {
        Trader::Pipeline(dir) => start_pipeline(table, nkn, md_addr, fix_addr, trader_core, dir)?,
        Trader::Echo => start_echo(md_addr, fix_addr, trader_core)?,
    };
    let echo = matches!(running, Running::Echo(..));
    // The venue on a thread of its own, pinned: this thread keeps the process's CPU set.
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            core_affinity::set_for_current(core_affinity::CoreId { id: venue_core });
            venue(args, table, &md, &fix, &mut source, &snapshot, echo)
        })
        .join()
        .unwrap_or_else(|_| bail!("the venue thread panicked"))
    });
    running.stop()?;
    result
}

fn start_pipeline(
    table: &InstrumentTable,
    nkn: &Instrument,
    md_addr: SocketAddr,
    fix_addr: SocketAddr,
    core: usize,
    dir: &std::path::Path,
) -> Result<Running> {
    let feed = WsFeed::start(WsFeedConfig {
        addr: md_addr,
        host: md_addr.to_string(),
        rest: RestEndpoint {
            addr: md_addr,
            host: md_addr.to_string(),
            tls: None,
        },
        symbols: vec![("NKNUSDT".into(), nkn.id)],
        streams: vec![Stream::Depth100ms, Stream::BookTicker, Stream::AggTrade],
        ping_interval: Duration::from_secs(3_600),
        pong_timeout: Duration::from_secs(3_600),
        tls: None,
        reconnect_after: levibot_engine::pipeline::ws_feed::RECONNECT_AFTER_BINANCE,
    })?;
    let session = FixSession::new(
        SessionConfig {
            sender_comp_id: "LEVIBOT".into(),
            target_comp_id: "VENUE".into(),
            heart_bt_int_s: 30,
            reset_seq_num: true,
            binance_logon: None,
        },
        table.clone(),
        SessionSeqNums::default(),
    )?;
    let venue = FixVenue::connect(fix_addr, session)?;
    let spec = maker_spec(table.clone(), nkn, OwnedSnapshot::none(nkn.id))?;
    let journal = Journal::open(&JournalConfig {
        dir: dir.to_owned(),
        segment_size: 256 << 20,
        prefault: true,
        retention: RetentionPolicy::keep_all(),
    })?;
    let counters = CountersWriter::create(dir.join("counters.lvc"), 256, journal.epoch())?;
    let (pipeline, _controls) = Pipeline::<_, Maker, FixVenue, Rtrb>::assemble(
        spec, feed, venue, &journal, &counters, true,
    )?;
    let layout = Layout::Fused {
        pipeline: RunnerConfig {
            core_id: Some(core),
            idle: IdleStrategy::BusySpin,
        },
    };
    let running = pipeline.start(&layout, &counters)?;
    Ok(Running::Pipeline(running, journal))
}

/// A trader that answers every market-data read with a FIX-sized message at once.
fn start_echo(md_addr: SocketAddr, fix_addr: SocketAddr, core: usize) -> Result<Running> {
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = Arc::clone(&stop);
    let thread = std::thread::Builder::new().name("echo-trader".into()).spawn(move || {
        core_affinity::set_for_current(core_affinity::CoreId { id: core });
        let Ok(mut md) = TcpStream::connect(md_addr) else { return };
        let Ok(mut fix) = TcpStream::connect(fix_addr) else { return };
        let _ = md.write_all(b"GET /stream?streams=nknusdt@depth@100ms HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
        let _ = md.set_nonblocking(true);
        let _ = fix.set_nodelay(true);
        let answer = [b'x'; 200];
        let mut buf = [0u8; 65536];
        while !thread_stop.load(Ordering::Relaxed) {
            match md.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {
                    if fix.write_all(&answer).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
                Err(_) => break,
            }
        }
    })?;
    Ok(Running::Echo(stop, thread))
}

/// The venue: accepts the trader, serves the snapshot, logs its FIX session on, then writes the
/// frames and times the orders.
#[allow(clippy::too_many_arguments)]
fn venue(
    args: &WireArgs,
    table: &InstrumentTable,
    md: &TcpListener,
    fix: &TcpListener,
    source: &mut SyntheticSource,
    snapshot: &OwnedSnapshot,
    echo: bool,
) -> Result<Run> {
    let nkn = table.get(0).context("NKNUSDT")?;
    let mut engine = MatchingEngine::new(&[nkn], 1)?;
    let feed = FeedEncoder::new(&[nkn]);
    let level = |l: &levibot_shm::records::Level| (l.px, l.qty);
    let snapshot_body = feed
        .snapshot(
            0,
            snapshot.last_update_id,
            &snapshot.bids.iter().map(level).collect::<Vec<_>>(),
            &snapshot.asks.iter().map(level).collect::<Vec<_>>(),
        )
        .context("the snapshot")?;
    md.set_nonblocking(true)?;
    fix.set_nonblocking(true)?;
    let deadline = Instant::now() + SETUP_TIMEOUT;
    let mut stream: Option<TcpStream> = None;
    let mut fix_stream: Option<TcpStream> = None;
    let mut acceptor = FixAcceptor::new("VENUE", 1, table.clone());
    let mut snapshot_served = echo;
    let mut buf = vec![0u8; 65536];
    // Setup: the WebSocket upgrade, the REST snapshot, the FIX logon.
    while stream.is_none()
        || !snapshot_served
        || fix_stream.is_none()
        || (!echo && acceptor.state() != levibot_sim::fix_acceptor::AcceptorState::Active)
    {
        if Instant::now() > deadline {
            bail!("the trader did not connect, fetch its snapshot and log on in time");
        }
        if let Ok((mut s, _)) = md.accept() {
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut request = Vec::new();
            let route = loop {
                let n = s.read(&mut buf)?;
                if n == 0 {
                    break None;
                }
                request.extend_from_slice(&buf[..n]);
                match parse_request(&request) {
                    Ok(Some((_, route))) => break Some(route),
                    Ok(None) => continue,
                    Err(_) => break None,
                }
            };
            match route {
                Some(Route::Stream { key, .. }) => {
                    s.write_all(&upgrade_response(&key))?;
                    s.set_nodelay(true)?;
                    stream = Some(s);
                }
                Some(Route::Depth { .. }) => {
                    s.write_all(&http_response(200, "application/json", &snapshot_body))?;
                    snapshot_served = true;
                }
                Some(Route::ExchangeInfo { .. }) | None => {}
            }
        }
        if fix_stream.is_none()
            && let Ok((s, _)) = fix.accept()
        {
            s.set_nonblocking(true)?;
            s.set_nodelay(true)?;
            fix_stream = Some(s);
        }
        if let Some(f) = fix_stream.as_mut()
            && !echo
        {
            pump_fix(f, &mut acceptor, &mut engine, &mut buf)?;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let (Some(mut stream), Some(mut fix_stream)) = (stream, fix_stream) else {
        bail!("setup ended without both connections");
    };
    let interval = Duration::from_nanos(1_000_000_000 / args.rate);
    let warmup = (args.messages as f64 * WARMUP_FRACTION) as u64;
    let mut histogram = latency_histogram()?;
    let mut unanswered = 0;
    let mut frame = Vec::with_capacity(1024);
    let mut next = Instant::now();
    for i in 0..args.messages {
        let bytes = match source.poll(0) {
            Polled::Message { bytes, .. } => bytes,
            _ => bail!("the synthetic stream ended early"),
        };
        frame.clear();
        write_frame(&mut frame, Opcode::Text, bytes);
        while Instant::now() < next {
            std::hint::spin_loop();
        }
        next += interval;
        let sent = Instant::now();
        stream.write_all(&frame)?;
        // The first order after this frame, before the next one is due.
        let answered = loop {
            let orders = if echo {
                match fix_stream.read(&mut buf) {
                    Ok(n) if n > 0 => 1,
                    Ok(_) => bail!("the echo trader went away"),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
                    Err(e) => return Err(e.into()),
                }
            } else {
                pump_fix(&mut fix_stream, &mut acceptor, &mut engine, &mut buf)?
            };
            if orders > 0 {
                break Some(sent.elapsed());
            }
            if Instant::now() >= next {
                break None;
            }
        };
        match answered {
            Some(latency) if i >= warmup => {
                histogram.saturating_record(latency.as_nanos() as u64);
            }
            Some(_) => {}
            None => unanswered += u64::from(i >= warmup),
        }
    }
    Ok(Run {
        histogram,
        frames: args.messages - warmup,
        unanswered,
    })
}

/// Reads what the trader's FIX session sent, lets the acceptor and the engine answer, writes the
/// answers; returns how many order messages arrived.
fn pump_fix(
    stream: &mut TcpStream,
    acceptor: &mut FixAcceptor,
    engine: &mut MatchingEngine,
    buf: &mut [u8],
) -> Result<usize> {
    let mut orders = 0;
    match stream.read(buf) {
        Ok(0) => bail!("the trader's FIX session closed"),
        Ok(n) => {
            let now = levibot_shm::clock::unix_now_ns();
            for outcome in acceptor.on_bytes(&buf[..n], engine, now) {
                orders += 1;
                for notice in &outcome.notices {
                    acceptor.deliver(notice, now);
                }
            }
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Err(e) => return Err(e.into()),
    }
    let out = acceptor.outbound().to_vec();
    if !out.is_empty() {
        stream.set_nonblocking(false)?;
        stream.write_all(&out)?;
        stream.set_nonblocking(true)?;
        acceptor.consume_outbound(out.len());
    }
    Ok(orders)
}
