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
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::fix_acceptor::{AcceptorState, FixAcceptor, FixFaults, SeqStore};
use super::matching::{Notice, Outcome};
use super::md_server::VenueCore;

/// Connections served at once; more are refused (closed at once).
pub const FIX_CONNECTIONS_MAX: usize = 32;
/// How long a connection thread waits for bytes before it runs timers and routes notices.
const POLL_INTERVAL: Duration = Duration::from_millis(2);
/// Owner ids of FIX sessions start here (the synthetic traders are `u32::MAX`).
const FIRST_OWNER: u32 = 1;

type Sessions = Arc<Mutex<HashMap<u32, Arc<Mutex<FixAcceptor>>>>>;

/// A running FIX server.
#[derive(Debug)]
pub struct FixServer {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    faults: Arc<Mutex<FixFaults>>,
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

/// Hands every notice to its owner's session.
fn route(sessions: &Sessions, notices: &[Notice], now: u64) {
    if notices.is_empty() {
        return;
    }
    let map = lock(sessions);
    for notice in notices {
        if let Some(session) = map.get(&notice.owner) {
            lock(session).deliver(notice, now);
        }
    }
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
        let faults = Arc::new(Mutex::new(FixFaults::default()));
        let sessions: Sessions = Arc::new(Mutex::new(HashMap::new()));
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
                                lock(&sessions).insert(owner, Arc::clone(&session));
                                let (core, sessions, stop, faults) = (
                                    Arc::clone(&core),
                                    Arc::clone(&sessions),
                                    Arc::clone(&thread_stop),
                                    Arc::clone(&thread_faults),
                                );
                                if let Ok(handle) = std::thread::Builder::new()
                                    .name("venue-fix-conn".into())
                                    .spawn(move || {
                                        serve(
                                            stream, owner, session, &core, &sessions, &stop,
                                            &faults,
                                        )
                                    })
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
            acceptor_thread: Some(acceptor_thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Fault switches applied to every session at its next poll (each switch once).
    pub fn set_faults(&self, faults: FixFaults) {
        *lock(&self.faults) = faults;
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

/// One connection: read, hand to the session and the engine, route, write, until closed.
fn serve(
    mut stream: TcpStream,
    owner: u32,
    session: Arc<Mutex<FixAcceptor>>,
    core: &VenueCore,
    sessions: &Sessions,
    stop: &AtomicBool,
    faults: &Mutex<FixFaults>,
) {
    let _ = stream.set_read_timeout(Some(POLL_INTERVAL));
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 16 * 1024];
    let mut closing = false;
    while !stop.load(Ordering::Relaxed) {
        let read = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => 0,
            Err(_) => break,
        };
        let now = now_ns();
        {
            let pending = std::mem::take(&mut *lock(faults));
            let mut s = lock(&session);
            if pending != FixFaults::default() {
                s.faults = pending;
            }
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
    lock(sessions).remove(&owner);
}
