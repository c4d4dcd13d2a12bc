//! `venue-sim`: the simulated venue. Market data in Binance Spot's formats (WebSocket streams
//! and the REST depth snapshot on one port) from a matching engine moved by synthetic traders
//! (`run`), or a recorded capture played back (`replay`).
//!
//! ```text
//! venue-sim run --md-addr 127.0.0.1:9443 --fix-addr 127.0.0.1:9878 --symbols NKNUSDT --rate 200
//! venue-sim replay --capture BINANCE.ws.1.0 --snapshots BINANCE.http.0.0 --md-addr 127.0.0.1:9443
//! ```
//!
//! It prints what it listens on to stdout (one `listening` line per endpoint), then runs until
//! `--duration` seconds have passed, or until SIGINT/SIGTERM end the process (their default
//! action: the OS closes the sockets; the simulator keeps no state worth saving).
//!
//! With `--fix-addr`, `run` also accepts FIX 4.4 order-entry sessions (TargetCompID
//! `--fix-comp-id`, default `VENUE`) that trade on the same books.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use levibot_gateway::capture::Recording;
use levibot_gateway::instrument::{Instrument, InstrumentTable};
use levibot_sim::md_server::{
    FeedConfig, Hub, MdConfig, MdServer, ReplayConfig, ReplaySnapshots, ReplayThread,
    SnapshotSource, load_capture,
};
use levibot_sim::sim::{SimVenue, SimVenueConfig};
use levibot_sim::synth;

/// Prints a line to stdout; a closed stdout (the reader went away) is not worth dying for.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Fair price of an instrument without a recorded snapshot, in ticks.
const FAIR_TICKS_DEFAULT: i64 = 10_000;
/// How often the main thread looks at the clock while it waits.
const MAIN_SLEEP: Duration = Duration::from_millis(100);

// pub(crate): packaging/examples/cli-docs.rs makes the man pages and completions from it.
#[derive(Parser, Debug)]
#[command(name = "venue-sim", version, about = "LeviBot's simulated venue")]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// A matching engine moved by synthetic traders, its market data served.
    Run(RunArgs),
    /// A recorded capture served as market data.
    Replay(ReplayArgs),
    /// Writes a seeded recording in the corpus's capture format (exchangeInfo, REST snapshots,
    /// stream) into a directory: the repository's `testdata/binance-spot-synthetic/`.
    Synth(SynthArgs),
}

#[derive(Args, Debug)]
struct SynthArgs {
    /// Directory to write BINANCE.0, BINANCE.http.0.0 and BINANCE.ws.1.0 into.
    #[arg(long)]
    out: PathBuf,
    /// Seed of the random walks and of the interleaving.
    #[arg(long, default_value_t = synth::TESTDATA_SEED)]
    seed: u64,
    /// Stream messages, over all symbols.
    #[arg(long, default_value_t = synth::TESTDATA_MESSAGES)]
    messages: usize,
}

#[derive(Args, Debug)]
struct ServerArgs {
    /// Address of the market-data server (WebSocket streams and REST snapshots).
    #[arg(long, default_value = "127.0.0.1:9443")]
    md_addr: SocketAddr,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds between the server's pings to each client.
    #[arg(long, default_value_t = 20.0)]
    ping_interval_s: f64,
    /// Seconds a client has to answer a ping before it is dropped.
    #[arg(long, default_value_t = 60.0)]
    pong_timeout_s: f64,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Symbols traded, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "NKNUSDT")]
    symbols: Vec<String>,
    /// Synthetic order actions a second, over all symbols.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Milliseconds between depth messages.
    #[arg(long, default_value_t = 100)]
    depth_interval_ms: u64,
    /// exchangeInfo file (bare JSON or a capture line); default: the synthetic venue's own
    /// (NKNUSDT, BLZETH, LRCBTC, RUNEEUR, BTCUSDT, ETHUSDT).
    #[arg(long)]
    exchange_info: Option<PathBuf>,
    /// Seed of the synthetic traders.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The REST API (`/api/v3/depth`) on an address of its own; the market-data address then
    /// serves the streams only, as Binance serves REST from another host (none: both on
    /// --md-addr).
    #[arg(long)]
    rest_addr: Option<SocketAddr>,
    /// FIX 4.4 order-entry address (none: market data only).
    #[arg(long)]
    fix_addr: Option<SocketAddr>,
    /// The venue's CompID: clients' TargetCompID.
    #[arg(long, default_value = "VENUE")]
    fix_comp_id: String,
}

#[derive(Args, Debug)]
struct ReplayArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The stream capture (`<epoch>: <json>` lines).
    #[arg(long)]
    capture: PathBuf,
    /// The REST snapshots recorded with it (`<url> -> <epoch>: <json>` lines).
    #[arg(long)]
    snapshots: PathBuf,
    /// Pace: 1 is the recorded pace, 10 ten times faster, 0 as fast as possible.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Start at once rather than when the first client subscribes.
    #[arg(long)]
    no_wait: bool,
}

fn seconds(what: &str, s: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("{what}: {s} is not a duration"))
}

impl ServerArgs {
    fn config(&self) -> Result<MdConfig> {
        Ok(MdConfig {
            ping_interval: seconds("--ping-interval-s", self.ping_interval_s)?,
            pong_timeout: seconds("--pong-timeout-s", self.pong_timeout_s)?,
            ..MdConfig::default()
        })
    }

    /// Serves a replay's market data.
    fn serve(&self, hub: Arc<Hub>, snapshots: Arc<dyn SnapshotSource>) -> Result<MdServer> {
        let server = MdServer::bind(self.md_addr, hub, snapshots, self.config()?)
            .context("starting the market-data server")?;
        let addr = server.local_addr();
        say!(
            "venue-sim: market data listening on {addr}: ws://{addr}/stream?streams=..., ws://{addr}/ws/<stream>, http://{addr}/api/v3/depth"
        );
        Ok(server)
    }

    /// Waits for `--duration`, or forever (the process ends on SIGINT/SIGTERM), calling `tick`
    /// every [`MAIN_SLEEP`].
    fn wait(&self, mut tick: impl FnMut()) -> Result<()> {
        let until = match self.duration {
            Some(s) => Some(Instant::now() + seconds("--duration", s)?),
            None => None,
        };
        while until.is_none_or(|u| Instant::now() < u) {
            tick();
            std::thread::sleep(MAIN_SLEEP);
        }
        Ok(())
    }
}

/// The instruments of an exchangeInfo file, or the synthetic venue's own.
fn all_instruments(file: Option<&Path>) -> Result<Vec<Instrument>> {
    let Some(path) = file else {
        return Ok(synth::instruments()?);
    };
    let recording = Recording {
        exchange_info: std::fs::read(path)
            .with_context(|| format!("reading --exchange-info {}", path.display()))?,
        exchange_info_path: path.to_owned(),
        stream: Vec::new(),
        stream_path: PathBuf::new(),
        snapshots: Vec::new(),
        snapshots_path: PathBuf::new(),
    };
    Ok(recording.instruments()?)
}

/// Each instrument's starting fair price in ticks: the synthetic recording's starting mid for
/// its symbols, else [`FAIR_TICKS_DEFAULT`] (raised above the minimum price).
fn fair_ticks(table: &InstrumentTable) -> Vec<i64> {
    table
        .iter()
        .map(|i| {
            let floor = (i.min_price / i.tick_size)
                .ceil()
                .to_string()
                .parse::<i64>()
                .unwrap_or(1);
            synth::mid_ticks(i.symbol.as_str())
                .unwrap_or(FAIR_TICKS_DEFAULT)
                .max(floor + FAIR_TICKS_DEFAULT / 10)
        })
        .collect()
}

fn synth(args: &SynthArgs) -> Result<()> {
    let recording = synth::generate(args.seed, args.messages)?;
    synth::write(&recording, &args.out)?;
    say!(
        "venue-sim: wrote {} messages (seed {}) to {}",
        args.messages,
        args.seed,
        args.out.display()
    );
    Ok(())
}

fn run(args: &RunArgs) -> Result<()> {
    let all = all_instruments(args.exchange_info.as_deref())?;
    let symbols: Vec<&str> = args.symbols.iter().map(String::as_str).collect();
    let table = InstrumentTable::select(&all, &symbols).context("choosing --symbols")?;
    let fair_ticks = fair_ticks(&table);
    let venue = SimVenue::start(SimVenueConfig {
        instruments: table,
        fair_ticks,
        seed: args.seed,
        md_addr: args.server.md_addr,
        rest_addr: args.rest_addr,
        md: args.server.config()?,
        fix_addr: args.fix_addr,
        fix_comp_id: args.fix_comp_id.clone(),
        feed: FeedConfig {
            rate: args.rate,
            depth_interval: Duration::from_millis(args.depth_interval_ms.max(1)),
        },
    })
    .context("starting the venue")?;
    let addr = venue.md_addr();
    match &venue.rest {
        None => say!(
            "venue-sim: market data listening on {addr}: ws://{addr}/stream?streams=..., ws://{addr}/ws/<stream>, http://{addr}/api/v3/depth"
        ),
        Some(rest) => {
            let rest = rest.local_addr();
            say!(
                "venue-sim: market data listening on {addr}: ws://{addr}/stream?streams=..., ws://{addr}/ws/<stream>"
            );
            say!("venue-sim: REST listening on {rest}: http://{rest}/api/v3/depth");
        }
    }
    if let Some(fix) = venue.fix_addr() {
        say!(
            "venue-sim: FIX order entry listening on {fix} (CompID {})",
            args.fix_comp_id
        );
    }
    say!(
        "venue-sim: trading {} at {} actions/s, depth every {} ms",
        args.symbols.join(","),
        args.rate,
        args.depth_interval_ms
    );
    args.server.wait(|| {})?;
    venue.stop();
    Ok(())
}

fn replay(args: &ReplayArgs) -> Result<()> {
    let messages = load_capture(&args.capture).context("--capture")?;
    let snapshots = Arc::new(ReplaySnapshots::load(&args.snapshots).context("--snapshots")?);
    let hub = Arc::new(Hub::new(MdConfig::default().client_queue_len));
    let count = messages.len();
    let server = args.server.serve(
        Arc::clone(&hub),
        Arc::clone(&snapshots) as Arc<dyn SnapshotSource>,
    )?;
    let thread = ReplayThread::spawn(
        hub,
        messages,
        snapshots,
        ReplayConfig {
            speed: args.speed,
            wait_for_subscriber: !args.no_wait,
        },
    )
    .context("starting the replay")?;
    say!(
        "venue-sim: replaying {count} messages of {} at speed {}{}",
        args.capture.display(),
        args.speed,
        if args.no_wait {
            ""
        } else {
            " from the first subscriber on"
        }
    );
    let mut reported = false;
    args.server.wait(|| {
        if thread.is_done() && !reported {
            reported = true;
            say!("venue-sim: replay done: {} messages", thread.published());
        }
    })?;
    thread.stop();
    server.shutdown();
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Run(args) => run(args),
        Command::Replay(args) => replay(args),
        Command::Synth(args) => synth(args),
    }
}
