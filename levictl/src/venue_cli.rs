//! `levictl venue exchange-info`: fetches a venue's exchangeInfo for the symbols an operator
//! trades, with the project's own HTTP client (no curl on the box), checks it as the daemon will
//! (every symbol there, every filter loadable), and writes it atomically: a reader of `--out`
//! sees the old file or the new one, never half of one.
//!
//! ```text
//! levictl venue exchange-info --rest-url https://api.binance.com --symbols BTCUSDT,ETHUSDT \
//!     --out /etc/levibot/exchangeInfo.json
//! ```

use std::io::Write as _;
use std::net::ToSocketAddrs as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use levibot_gateway::instrument::{InstrumentTable, Symbol, parse_exchange_info};
use levibot_gateway::tls::TlsConfig;
use levibot_gateway::ws::client::WsUrl;
use levibot_gateway::ws::{http_get, https_get};

/// Symbols one request asks for (Binance takes a list in one URL).
pub const SYMBOLS_MAX: usize = 100;

#[derive(Args, Debug)]
pub struct ExchangeInfoArgs {
    /// The venue's REST API: http:// or https://host[:port], no path (Binance Spot:
    /// https://api.binance.com).
    #[arg(long)]
    pub rest_url: String,
    /// The symbols to fetch, comma-separated (1 to 100).
    #[arg(long, value_delimiter = ',', required = true)]
    pub symbols: Vec<String>,
    /// Where to write the answer (bare JSON, as the daemon's venue.exchange_info reads it).
    #[arg(long)]
    pub out: PathBuf,
    /// https:// only: trust only the CA certificates in this PEM file (default: the web's roots).
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Seconds the whole request may take.
    #[arg(long, default_value_t = 10.0)]
    pub timeout_s: f64,
}

/// `/api/v3/exchangeInfo?symbols=["A","B"]`, percent-encoded as Binance takes it.
fn request_path(symbols: &[Symbol]) -> String {
    let list: Vec<String> = symbols
        .iter()
        .map(|s| format!("%22{}%22", s.as_str()))
        .collect();
    format!("/api/v3/exchangeInfo?symbols=%5B{}%5D", list.join(","))
}

pub fn exchange_info(args: &ExchangeInfoArgs) -> Result<()> {
    let url = WsUrl::parse_http(&args.rest_url).context("--rest-url")?;
    if url.path != "/" {
        bail!(
            "--rest-url {:?} has a path ({}): give http[s]://host[:port] only",
            args.rest_url,
            url.path
        );
    }
    if args.symbols.is_empty() || args.symbols.len() > SYMBOLS_MAX {
        bail!("--symbols: 1 to {SYMBOLS_MAX} symbols");
    }
    let symbols = args
        .symbols
        .iter()
        .map(|s| {
            Symbol::from_ascii(s.trim().as_bytes())
                .with_context(|| format!("--symbols: {s:?} is not a symbol (letters and digits)"))
        })
        .collect::<Result<Vec<Symbol>>>()?;
    let timeout = Duration::try_from_secs_f64(args.timeout_s)
        .ok()
        .filter(|t| !t.is_zero())
        .with_context(|| format!("--timeout-s {} is not a duration", args.timeout_s))?;
    let tls = match (url.tls, &args.ca_file) {
        (false, None) => None,
        (false, Some(_)) => bail!("--ca-file is for an https:// --rest-url"),
        (true, None) => Some(TlsConfig::webpki_roots().context("the web's roots")?),
        (true, Some(path)) => {
            let pem =
                std::fs::read(path).with_context(|| format!("--ca-file {}", path.display()))?;
            Some(TlsConfig::with_ca_pem(&pem).with_context(|| format!("{}", path.display()))?)
        }
    };
    let addr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .with_context(|| format!("looking up {}", url.host))?
        .next()
        .with_context(|| format!("{} has no address", url.host))?;
    let host = url.host_header();
    let path = request_path(&symbols);
    let body = match &tls {
        None => http_get(addr, &host, &path, timeout),
        Some(tls) => https_get(addr, &host, &path, timeout, tls),
    }
    .with_context(|| format!("fetching {}", args.rest_url))?;

    // Checked as the daemon loads it: parsed, every symbol asked for there, a table made.
    let instruments = parse_exchange_info(&body)
        .with_context(|| format!("the answer of {}{path}", args.rest_url))?;
    let names: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
    let table = InstrumentTable::select(&instruments, &names)
        .with_context(|| format!("the answer of {}{path}", args.rest_url))?;
    if let Some(halted) = table.iter().find(|i| i.status != "TRADING") {
        eprintln!(
            "levictl: warning: {} has status {} at the venue",
            halted.symbol, halted.status
        );
    }

    let partial = crate::export::partial_path(&args.out);
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::File::create(&partial)?;
        file.write_all(&body)?;
        file.sync_all()?;
        std::fs::rename(&partial, &args.out)?;
        // The rename itself reaches the disk with the directory.
        if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e).with_context(|| format!("writing {}", args.out.display()));
    }
    println!(
        "wrote the exchangeInfo of {} ({} bytes) to {}",
        names.join(", "),
        body.len(),
        args.out.display()
    );
    Ok(())
}
