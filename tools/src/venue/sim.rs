//! The whole simulated venue in one value: the venue core moved by synthetic traders, its
//! market-data server and (optionally) its FIX order entry. `venue-sim run`, `levibotd demo` and
//! the daemon's end-to-end tests start it the same way.

use std::net::SocketAddr;
use std::sync::Arc;

use levibot_gateway::instrument::InstrumentTable;

use super::fix_server::FixServer;
use super::md_server::{
    FeedConfig, FeedThread, Hub, MdConfig, MdServer, SnapshotSource, VenueCore, VenueError,
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
        let md = MdServer::bind(
            config.md_addr,
            hub,
            Arc::clone(&core) as Arc<dyn SnapshotSource>,
            config.md,
        )?;
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
            fix,
            feed,
        })
    }

    pub fn md_addr(&self) -> SocketAddr {
        self.md.local_addr()
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
        self.md.shutdown();
    }
}
