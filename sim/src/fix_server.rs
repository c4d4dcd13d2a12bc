//! The simulated venue's FIX order-entry server: a TCP listener whose connections each run a
//! [`FixAcceptor`] against the shared [`VenueCore`]. A test tool: one thread per connection
//! (bounded), sockets with short read timeouts so that nothing busy-spins.
//!
//! Routing: what a request causes comes back from the engine as notices, each for its order's
//! owner (a fill of a resting order belongs to the resting order's session, not to the
//! requester). The core keeps every notice but the synthetic traders' ([`VenueCore::take_notices`],
//! whoever made the request: a session, the flow, a test), and each connection thread hands
//! them to their owners' sessions.
//! Sequence numbers are kept per client CompID across connections.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::fix_acceptor::{AcceptorState, FixAcceptor, FixFaults, SeqStore};
use super::matching::{Notice, Outcome};
use super::md_server::VenueCore;

/// Connections served at once; more are refused (closed at once).
pub const FIX_CONNECTIONS_MAX: usize = 32;
/// Notices kept for a client that is not connected, delivered when it logs on again.
pub const UNDELIVERED_MAX: usize = 4096;
/// How long a connection thread waits for bytes before it runs timers and routes notices.
const POLL_INTERVAL: Duration = Duration::from_millis(2);
/// Owner ids of FIX sessions start here (the synthetic traders are `u32::MAX`): the first
/// CompID to log on owns its orders as `FIRST_OWNER`, across reconnects.
pub const FIRST_OWNER: u32 = 1;

/// The sessions by owner, the owner of each client CompID, and what could not be delivered.
#[derive(Debug, Default)]
struct Registry {
    sessions: HashMap<u32, Arc<Mutex<FixAcceptor>>>,
    owners: HashMap<String, u32>,
    undelivered: HashMap<u32, Vec<Notice>>,
}

type Sessions = Arc<Mutex<Registry>>;

/// A running FIX server.
#[derive(Debug)]
pub struct FixServer {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    faults: Arc<Mutex<Option<FixFaults>>>,
    /// Every session ignores cancels and status requests while set (a test fault).
    ignore_cancels: Arc<AtomicBool>,
    /// Bumped to drop every connection (a test fault).
    drops: Arc<AtomicU64>,
    acceptor_thread: Option<JoinHandle<()>>,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Hands every notice to its owner's session, or keeps it until that owner logs on again.
fn route(sessions: &Sessions, notices: &[Notice], now: u64) {
    if notices.is_empty() {
        return;
    }
    let mut registry = lock(sessions);
    for notice in notices {
        let delivered = registry
            .sessions
            .get(&notice.owner)
            .is_some_and(|session| lock(session).deliver(notice, now));
        if !delivered {
            // Not connected, or its session is closing: kept for its next session.
            let kept = registry.undelivered.entry(notice.owner).or_default();
            if kept.len() < UNDELIVERED_MAX {
                kept.push(*notice);
            }
        }
    }
}

/// Once a session has logged on: its orders belong to its CompID's owner (the same as on its
/// last connection), and what happened to them meanwhile is delivered.
fn adopt(
    sessions: &Sessions,
    session: &Arc<Mutex<FixAcceptor>>,
    provisional: u32,
    now: u64,
) -> Option<u32> {
    let comp_id = lock(session).client_comp_id()?.to_owned();
    let mut registry = lock(sessions);
    let owner = *registry.owners.entry(comp_id).or_insert(provisional);
    registry.sessions.remove(&provisional);
    registry.sessions.insert(owner, Arc::clone(session));
    let missed = registry.undelivered.remove(&owner).unwrap_or_default();
    let mut s = lock(session);
    s.set_owner(owner);
    for notice in &missed {
        s.deliver(notice, now);
    }
    Some(owner)
}

impl FixServer {
    /// Listens on `addr` as the venue `comp_id`.
    pub fn bind(
        addr: SocketAddr,
        core: Arc<VenueCore>,
        comp_id: &str,
    ) -> std::io::Result<FixServer> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let faults = Arc::new(Mutex::new(None));
        let ignore_cancels = Arc::new(AtomicBool::new(false));
        let thread_ignore_cancels = Arc::clone(&ignore_cancels);
        let drops = Arc::new(AtomicU64::new(0));
        let thread_drops = Arc::clone(&drops);
        let sessions: Sessions = Arc::new(Mutex::new(Registry::default()));
        let seq_store: SeqStore = Arc::new(Mutex::new(HashMap::new()));
        let next_owner = Arc::new(AtomicU32::new(FIRST_OWNER));
        let comp_id = comp_id.to_owned();
        let thread_stop = Arc::clone(&stop);
        let thread_faults = Arc::clone(&faults);
        let acceptor_thread =
            std::thread::Builder::new()
                .name("venue-fix".into())
                .spawn(move || {
                    let mut connections: Vec<JoinHandle<()>> = Vec::new();
                    while !thread_stop.load(Ordering::Relaxed) {
                        connections.retain(|c| !c.is_finished());
                        match listener.accept() {
                            Ok((stream, _)) if connections.len() < FIX_CONNECTIONS_MAX => {
                                let owner = next_owner.fetch_add(1, Ordering::Relaxed);
                                let acceptor =
                                    FixAcceptor::new(&comp_id, owner, core.instruments().clone())
                                        .with_seq_store(Arc::clone(&seq_store));
                                let session = Arc::new(Mutex::new(acceptor));
                                lock(&sessions).sessions.insert(owner, Arc::clone(&session));
                                let link = Link {
                                    core: Arc::clone(&core),
                                    sessions: Arc::clone(&sessions),
                                    stop: Arc::clone(&thread_stop),
                                    faults: Arc::clone(&thread_faults),
                                    ignore_cancels: Arc::clone(&thread_ignore_cancels),
                                    drops: Arc::clone(&thread_drops),
                                };
                                if let Ok(handle) = std::thread::Builder::new()
                                    .name("venue-fix-conn".into())
                                    .spawn(move || serve(stream, owner, session, &link))
                                {
                                    connections.push(handle);
                                }
                            }
                            Ok((stream, _)) => drop(stream), // too many connections
                            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                                std::thread::sleep(POLL_INTERVAL);
                            }
                            Err(_) => std::thread::sleep(POLL_INTERVAL),
                        }
                    }
                    for c in connections {
                        let _ = c.join();
                    }
                })?;
        Ok(FixServer {
            local_addr,
            stop,
            faults,
            ignore_cancels,
            drops,
            acceptor_thread: Some(acceptor_thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Fault switches applied to the next session that polls (each one-shot switch once).
    pub fn set_faults(&self, faults: FixFaults) {
        *lock(&self.faults) = Some(faults);
    }

    /// While on, every session, present and future, takes cancels, mass cancels and mass
    /// status requests without acting on them or answering (a stuck venue).
    pub fn set_ignore_cancels(&self, on: bool) {
        self.ignore_cancels.store(on, Ordering::Relaxed);
    }

    /// Closes every connection now, without a Logout (a test fault: a network drop). Clients
    /// may connect again; their orders and sequence numbers are kept.
    pub fn drop_all_connections(&self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }

    /// Stops accepting, closes every connection and joins the threads.
    pub fn shutdown(mut self) {
        self.stop_threads();
    }

    fn stop_threads(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.acceptor_thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FixServer {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

/// What a connection thread shares with the server.
struct Link {
    core: Arc<VenueCore>,
    sessions: Sessions,
    stop: Arc<AtomicBool>,
    faults: Arc<Mutex<Option<FixFaults>>>,
    ignore_cancels: Arc<AtomicBool>,
    drops: Arc<AtomicU64>,
}

/// One connection: read, hand to the session and the engine, route, write, until closed.
fn serve(mut stream: TcpStream, owner: u32, session: Arc<Mutex<FixAcceptor>>, link: &Link) {
    let (core, sessions, stop, faults, drops) = (
        &*link.core,
        &link.sessions,
        &*link.stop,
        &*link.faults,
        &*link.drops,
    );
    let _ = stream.set_read_timeout(Some(POLL_INTERVAL));
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 16 * 1024];
    let mut closing = false;
    let mut owner = owner;
    let mut adopted = false;
    let drops_seen = drops.load(Ordering::Relaxed);
    while !stop.load(Ordering::Relaxed) && drops.load(Ordering::Relaxed) == drops_seen {
        let read = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => 0,
            Err(_) => break,
        };
        let now = now_ns();
        {
            let pending = lock(faults).take();
            let mut s = lock(&session);
            if let Some(pending) = pending {
                s.faults = pending;
            }
            s.faults.ignore_cancels = link.ignore_cancels.load(Ordering::Relaxed);
        }
        if read > 0 {
            // Own session first, then the engine (the venue lock): never the other way round.
            // The notices wait in the core with everyone else's, routed just below.
            let mut s = lock(&session);
            core.execute(|engine| {
                let mut all = Outcome::default();
                for mut o in s.on_bytes(&buf[..read], engine, now) {
                    all.notices.append(&mut o.notices);
                    all.market.append(&mut o.market);
                }
                all
            });
        }
        if !adopted && lock(&session).state() == AcceptorState::Active {
            if let Some(o) = adopt(sessions, &session, owner, now) {
                owner = o;
            }
            adopted = true;
        }
        route(sessions, &core.take_notices(), now);
        let (out, state) = {
            let mut s = lock(&session);
            s.poll_timers(now);
            let out = s.outbound().to_vec();
            s.consume_outbound(out.len());
            (out, s.state())
        };
        if !out.is_empty() && stream.write_all(&out).is_err() {
            break;
        }
        if state == AcceptorState::Closed {
            if closing {
                break;
            }
            closing = true; // one more round to flush, then close
        }
    }
    lock(&session).save_session();
    lock(sessions).sessions.remove(&owner);
}
