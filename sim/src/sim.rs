//! The whole simulated venue in one value: the venue core moved by synthetic traders, its
//! market-data server and (optionally) its FIX order entry. `venue-sim run`, `levibot-demo` and
//! the daemon's end-to-end tests start it the same way.

use std::net::SocketAddr;
use std::sync::Arc;

use levibot_gateway::instrument::InstrumentTable;

use super::fix_server::FixServer;
use super::md_server::{
    FeedConfig, FeedThread, Hub, MdConfig, MdServer, Serves, SnapshotSource, VenueCore, VenueError,
};

/// What to start.
#[derive(Clone, Debug)]
pub struct SimVenueConfig {
    pub instruments: InstrumentTable,
    /// Each instrument's starting fair price, in its ticks.
    pub fair_ticks: Vec<i64>,
    /// Seed of the synthetic traders.
    pub seed: u64,
    pub md_addr: SocketAddr,
    /// The REST API on a port of its own (`md_addr` then serves the streams only), as Binance
    /// serves it from another host; `None`: both on `md_addr`.
    pub rest_addr: Option<SocketAddr>,
    pub md: MdConfig,
    /// FIX 4.4 order entry (none: market data only), and the venue's CompID.
    pub fix_addr: Option<SocketAddr>,
    pub fix_comp_id: String,
    pub feed: FeedConfig,
}

/// Why the venue did not start.
#[derive(Debug, thiserror::Error)]
pub enum SimVenueError {
    #[error("venue: {0}")]
    Venue(#[from] VenueError),
    #[error(transparent)]
    MarketData(#[from] super::md_server::MdError),
    #[error("FIX order entry on {addr}: {source}")]
    OrderEntry {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running simulated venue.
pub struct SimVenue {
    pub core: Arc<VenueCore>,
    pub md: MdServer,
    /// The REST listener, when it has its own port.
    pub rest: Option<MdServer>,
    pub fix: Option<FixServer>,
    feed: FeedThread,
}

impl SimVenue {
    pub fn start(config: SimVenueConfig) -> Result<SimVenue, SimVenueError> {
        let hub = Arc::new(Hub::new(config.md.client_queue_len));
        let core = Arc::new(VenueCore::new(
            config.instruments,
            config.fair_ticks,
            config.seed,
            Arc::clone(&hub),
        )?);
        let split = |serves| MdConfig {
            serves: match config.rest_addr {
                Some(_) => serves,
                None => Serves::StreamsAndRest,
            },
            ..config.md
        };
        let md = MdServer::bind(
            config.md_addr,
            Arc::clone(&hub),
            Arc::clone(&core) as Arc<dyn SnapshotSource>,
            split(Serves::StreamsOnly),
        )?;
        let rest = match config.rest_addr {
            Some(addr) => Some(MdServer::bind(
                addr,
                hub,
                Arc::clone(&core) as Arc<dyn SnapshotSource>,
                split(Serves::RestOnly),
            )?),
            None => None,
        };
        let fix = match config.fix_addr {
            Some(addr) => Some(
                FixServer::bind(addr, Arc::clone(&core), &config.fix_comp_id)
                    .map_err(|source| SimVenueError::OrderEntry { addr, source })?,
            ),
            None => None,
        };
        let feed = FeedThread::spawn(Arc::clone(&core), config.feed)?;
        Ok(SimVenue {
            core,
            md,
            rest,
            fix,
            feed,
        })
    }

    pub fn md_addr(&self) -> SocketAddr {
        self.md.local_addr()
    }

    /// Where the REST API answers: its own port, or the market-data port.
    pub fn rest_addr(&self) -> SocketAddr {
        self.rest.as_ref().unwrap_or(&self.md).local_addr()
    }

    pub fn fix_addr(&self) -> Option<SocketAddr> {
        self.fix.as_ref().map(FixServer::local_addr)
    }

    /// Synthetic order actions a second from now on.
    pub fn set_rate(&self, rate: u32) {
        self.feed.set_rate(rate);
    }

    /// Stops the traders, then the servers.
    pub fn stop(self) {
        self.feed.stop();
        if let Some(fix) = self.fix {
            fix.shutdown();
        }
        if let Some(rest) = self.rest {
            rest.shutdown();
        }
        self.md.shutdown();
    }
}
