//! `levibotd` against a hostile venue, as a new user would try it (issue 12): the real binary
//! trades against venue-sim through a proxy on the market-data port that turns hostile on
//! command. Market data: a flood of pings after the WebSocket handshake, random bytes on the
//! stream; REST depth snapshots answered with a chunk size near u64::MAX, endless chunk
//! extensions, a header line that never ends, a Content-Length near u64::MAX, random bytes.
//! Order entry: garbage on the FIX wire. Through all of it the daemon never dies (of a signal or
//! otherwise); once the venue behaves again its books resync, and SIGTERM still cancels every
//! order at the venue and exits 0.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::harness::*;

use levibot_sim::fix_acceptor::FixFaults;

/// What the proxy does to new connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    /// Pass everything through.
    Normal,
    /// WebSocket: pings without end after the handshake (the hot thread must not be held).
    PingFlood,
    /// WebSocket: random bytes after the handshake.
    StreamGarbage,
    /// REST: `Transfer-Encoding: chunked` with a chunk size near u64::MAX.
    HugeChunk,
    /// REST: a chunk-size line whose extensions never end.
    EndlessChunkExtension,
    /// REST: a header line that never ends.
    EndlessHeader,
    /// REST: `Content-Length` near u64::MAX.
    HugeContentLength,
    /// REST: random bytes instead of a response.
    RestGarbage,
}

const MODES: [Mode; 8] = [
    Mode::Normal,
    Mode::PingFlood,
    Mode::StreamGarbage,
    Mode::HugeChunk,
    Mode::EndlessChunkExtension,
    Mode::EndlessHeader,
    Mode::HugeContentLength,
    Mode::RestGarbage,
];

/// What runs once the upstream's handshake response has been forwarded (`false`: close).
type AfterHandshake = Box<dyn FnMut(&mut TcpStream) -> bool + Send>;

/// How long one endless answer goes on before the proxy gives up (the client should have given
/// up long before).
const ENDLESS_FOR: Duration = Duration::from_secs(5);

struct Proxy {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
    /// Every connection's client side, to cut them when the mode changes.
    open: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
}

impl Proxy {
    fn start(upstream: SocketAddr, seed: u64) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            mode: Arc::new(AtomicU8::new(Mode::Normal as u8)),
            open: Arc::new(Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
            served: Arc::new(AtomicU64::new(0)),
        };
        let (mode, open, stop, served) = (
            Arc::clone(&proxy.mode),
            Arc::clone(&proxy.open),
            Arc::clone(&proxy.stop),
            Arc::clone(&proxy.served),
        );
        std::thread::spawn(move || {
            let mut rng = fastrand::Rng::with_seed(seed);
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        if let Ok(clone) = client.try_clone() {
                            open.lock().unwrap().push(clone);
                        }
                        let mode = MODES[usize::from(mode.load(Ordering::Relaxed))];
                        let seed = rng.u64(..);
                        served.fetch_add(1, Ordering::Relaxed);
                        std::thread::spawn(move || serve(client, upstream, mode, seed));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        proxy
    }

    /// New connections get `mode`; the open ones are cut, so the daemon reconnects into it.
    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::Relaxed);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.set(Mode::Normal);
    }
}

/// Reads the request head (bounded); `None` if the client sent none.
fn read_head(client: &mut TcpStream) -> Option<Vec<u8>> {
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 || client.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    client.set_read_timeout(None).ok()?;
    Some(head)
}

fn serve(mut client: TcpStream, upstream: SocketAddr, mode: Mode, seed: u64) {
    let Some(head) = read_head(&mut client) else {
        return;
    };
    let is_websocket = String::from_utf8_lossy(&head)
        .to_ascii_lowercase()
        .contains("upgrade: websocket");
    let mut rng = fastrand::Rng::with_seed(seed);
    if !is_websocket {
        let until = Instant::now() + ENDLESS_FOR;
        let endless = |client: &mut TcpStream, start: &[u8], filler: &[u8]| {
            if client.write_all(start).is_err() {
                return;
            }
            while Instant::now() < until && client.write_all(filler).is_ok() {}
        };
        match mode {
            Mode::HugeChunk => {
                // A first chunk, then one whose size added to the body's overflows.
                let _ = client.write_all(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                      2\r\n{\"\r\nffffffffffffffff\r\nxx\r\n0\r\n\r\n",
                );
            }
            Mode::EndlessChunkExtension => endless(
                &mut client,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=",
                &[b'a'; 4096],
            ),
            Mode::EndlessHeader => endless(
                &mut client,
                b"HTTP/1.1 200 OK\r\nX-Endless: ",
                &[b'b'; 4096],
            ),
            Mode::HugeContentLength => {
                let _ = client.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n{\"lastUpdateId\":1,",
                );
            }
            Mode::RestGarbage => {
                let garbage: Vec<u8> = (0..64 * 1024).map(|_| rng.u8(..)).collect();
                let _ = client.write_all(&garbage);
            }
            _ => proxy_through(client, upstream, &head, None),
        }
        return;
    }
    let after_handshake: Option<AfterHandshake> = match mode {
        Mode::PingFlood => Some(Box::new(|client: &mut TcpStream| {
            // Unmasked ping frames of 4 bytes, server to client, as fast as the socket takes
            // them, for a while; then the stream goes on.
            let ping = [0x89u8, 4, b'p', b'i', b'n', b'g'];
            let flood: Vec<u8> = ping
                .iter()
                .copied()
                .cycle()
                .take(ping.len() * 4096)
                .collect();
            let until = Instant::now() + Duration::from_secs(2);
            while Instant::now() < until {
                if client.write_all(&flood).is_err() {
                    return false;
                }
            }
            true
        })),
        Mode::StreamGarbage => Some(Box::new(move |client: &mut TcpStream| {
            let garbage: Vec<u8> = (0..64 * 1024).map(|_| rng.u8(..)).collect();
            let _ = client.write_all(&garbage);
            false
        })),
        _ => None,
    };
    proxy_through(client, upstream, &head, after_handshake);
}

/// Passes bytes both ways; `after_handshake` runs once the upstream's handshake response has
/// been forwarded (`false`: close).
fn proxy_through(
    client: TcpStream,
    upstream: SocketAddr,
    head: &[u8],
    mut after_handshake: Option<AfterHandshake>,
) {
    let Ok(mut server) = TcpStream::connect(upstream) else {
        return;
    };
    if server.write_all(head).is_err() {
        return;
    }
    let (Ok(mut client_reader), Ok(mut server_writer)) = (client.try_clone(), server.try_clone())
    else {
        return;
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = client_reader.read(&mut buf) {
            if n == 0 || server_writer.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = server_writer.shutdown(Shutdown::Both);
    });
    let mut client = client;
    let mut buf = [0u8; 16 * 1024];
    let mut seen = Vec::new();
    while let Ok(n) = server.read(&mut buf) {
        if n == 0 || client.write_all(&buf[..n]).is_err() {
            break;
        }
        if let Some(hook) = after_handshake.as_mut() {
            seen.extend_from_slice(&buf[..n]);
            if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                if !hook(&mut client) {
                    break;
                }
                after_handshake = None;
            }
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
}

#[test]
fn a_hostile_venue_never_kills_the_daemon() {
    let seed = levibot_testkit::seed();
    let dir = tempfile::tempdir().unwrap();
    // The streams and the REST API on one port here, so that one proxy stands for both.
    let mut venue_config = levibot_sim::demo::venue_config(seed, 400).unwrap();
    venue_config.rest_addr = None;
    let venue = levibot_sim::demo::start_venue(venue_config).unwrap();
    let config = levibot_sim::demo::write_config(dir.path(), dir.path(), &venue).unwrap();
    let proxy = Proxy::start(venue.md.local_addr(), seed);
    // The daemon's market data, streams and snapshots, goes through the proxy.
    let mut text = std::fs::read_to_string(&config).unwrap();
    for scheme in ["ws", "http"] {
        let url = format!("{scheme}://{}", venue.md.local_addr());
        assert!(text.contains(&url), "{text}");
        text = text.replace(&url, &format!("{scheme}://{}", proxy.addr));
    }
    std::fs::write(&config, text).unwrap();

    let mut daemon = Daemon::start(&config, dir.path());
    daemon.wait_running();
    daemon.wait_for("orders", |c| get(c, "gateway.orders_sent") > 0);
    let fix = venue.fix.as_ref().unwrap();

    for mode in MODES.into_iter().skip(1) {
        let connects_before = proxy.served.load(Ordering::Relaxed);
        proxy.set(mode);
        if mode == Mode::StreamGarbage {
            fix.set_faults(FixFaults {
                garbage: true,
                ..FixFaults::default()
            });
        }
        // The daemon reconnects into the hostile venue (and asks for snapshots there).
        let until = Instant::now() + TIMEOUT;
        while proxy.served.load(Ordering::Relaxed) < connects_before + 2 {
            assert!(
                Instant::now() < until,
                "{mode:?}: the daemon never came back to the venue"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_secs(3));
        daemon.assert_alive(&format!("{mode:?}"));
    }

    // The venue behaves again: every book resyncs and trading goes on.
    proxy.set(Mode::Normal);
    daemon.wait_for("every book to resync", |c| {
        ["NKNUSDT", "BTCUSDT", "ETHUSDT"]
            .iter()
            .all(|s| get(c, &format!("book.{s}.synced")) == 1)
    });
    let c = counters(dir.path());
    assert!(
        get(&c, "venue.market_data.disconnects") >= 2,
        "the faults were not seen: {c:?}"
    );
    daemon.signal(rustix::process::Signal::TERM);
    let status = daemon.wait();
    assert_eq!(status.code(), Some(0), "{status}\n{}", daemon.log());
    assert_eq!(
        venue_working(&venue),
        Vec::<u64>::new(),
        "orders left at the venue"
    );
}
