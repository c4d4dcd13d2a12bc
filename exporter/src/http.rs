//! The exporter's HTTP server on tokio-uring (io_uring): `GET /metrics`, `/healthz`, `/readyz`.
//!
//! One request per connection (`Connection: close`): a scrape is one request, and it keeps the
//! server free of keep-alive state. Requests are parsed by `httparse`; anything it refuses, or a
//! request larger than [`REQUEST_BYTES_MAX`], gets 400.
//!
//! Every connection's work and memory are bounded, whatever the client does:
//!
//! - At most [`CONNECTIONS_MAX`] connections are served at once, each in one slot of a fixed
//!   table. A connection accepted when every slot is taken is served, and the oldest connection
//!   is shed to make room: the oldest one still sending its request head if there is one, else
//!   the oldest one being answered. So a local client that opens connections and sends nothing
//!   (or never reads) cannot keep a scrape out: a scrape sends its request at once and is
//!   answered in milliseconds, long before [`CONNECTIONS_MAX`] newer connections shed it.
//! - A client has [`REQUEST_TIMEOUT`] to send its whole request head (else 400), and
//!   [`WRITE_TIMEOUT`] to take the whole response; one that does not read is cut off.
//! - A connection that ends, is shed or times out is shut down both ways: I/O still in flight on
//!   it (io_uring keeps a dropped read or write going) ends at once, so its task, its buffers and
//!   its file descriptor are all released.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio_uring::net::{TcpListener, TcpStream};

use super::follow::{SharedSnapshot, Snapshot};

/// Largest request accepted (headers included).
pub const REQUEST_BYTES_MAX: usize = 8 * 1024;
/// Headers parsed at most.
pub const HEADERS_MAX: usize = 32;
/// Connections served at once; a new one past this sheds the oldest (see the module doc).
pub const CONNECTIONS_MAX: usize = 64;
/// How long a client has to send its whole request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client has to take the whole response (Prometheus' default scrape timeout: a
/// scrape slower than this is abandoned by Prometheus anyway).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Content types of /metrics: OpenMetrics text (as prometheus-client writes it) for clients that
/// accept it (Prometheus does), else the Prometheus text format (curl, `promtool check metrics`).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One accepted connection, in its slot.
struct Conn {
    stream: TcpStream,
    /// Its request was read: it is being answered.
    answering: Cell<bool>,
    /// Shed to make room for a newer connection: its task ends without answering.
    shed: Cell<bool>,
}

impl Conn {
    /// Ends all I/O on the socket, both ways: a read or write in flight returns at once (EOF or
    /// EPIPE), so the io_uring operation completes and the descriptor is closed when the
    /// connection is dropped.
    fn shut_down(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// The connection slots, in accept order (fixed capacity: [`CONNECTIONS_MAX`]).
struct Slots {
    conns: RefCell<Vec<Rc<Conn>>>,
}

impl Slots {
    fn new() -> Slots {
        Slots {
            conns: RefCell::new(Vec::with_capacity(CONNECTIONS_MAX)),
        }
    }

    /// Takes a slot for `conn`, shedding the oldest connection when all are taken: the oldest
    /// still sending its request, else the oldest being answered.
    fn take(&self, conn: &Rc<Conn>) {
        let mut conns = self.conns.borrow_mut();
        if conns.len() >= CONNECTIONS_MAX {
            let at = conns.iter().position(|c| !c.answering.get()).unwrap_or(0);
            let victim = conns.remove(at);
            tracing::debug!(
                answering = victim.answering.get(),
                "all connection slots taken: shedding the oldest connection"
            );
            victim.shed.set(true);
            victim.shut_down();
        }
        conns.push(Rc::clone(conn));
    }

    /// Gives `conn`'s slot back (it may have been shed already).
    fn release(&self, conn: &Rc<Conn>) {
        self.conns.borrow_mut().retain(|c| !Rc::ptr_eq(c, conn));
    }
}

/// Serves until the process ends. Binds first, so that `on_bound` learns the address (port 0
/// picks a free one).
pub fn serve(
    listen: SocketAddr,
    shared: SharedSnapshot,
    on_bound: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    tokio_uring::start(async move {
        let listener = TcpListener::bind(listen)?;
        on_bound(listener.local_addr()?);
        let slots = Rc::new(Slots::new());
        loop {
            let (stream, _peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let conn = Rc::new(Conn {
                stream,
                answering: Cell::new(false),
                shed: Cell::new(false),
            });
            slots.take(&conn);
            let shared = Arc::clone(&shared);
            let slots = Rc::clone(&slots);
            tokio_uring::spawn(async move {
                if let Err(e) = handle(&conn, &shared).await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                slots.release(&conn);
                conn.shut_down();
            });
        }
    })
}

/// What a request asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// A GET of a path; `openmetrics` when the client accepts OpenMetrics text.
    Get { path: String, openmetrics: bool },
    /// Another method (405).
    Method(String),
}

/// Parses one request head. `Ok(None)`: incomplete; `Err`: not HTTP/1.x (400).
pub fn parse_request(buf: &[u8]) -> Result<Option<Request>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf)? {
        httparse::Status::Partial => Ok(None),
        httparse::Status::Complete(_) => {
            let method = req.method.unwrap_or_default();
            let path = req.path.unwrap_or_default();
            // Drop a query string: `/metrics?x` is `/metrics`.
            let path = path.split('?').next().unwrap_or_default().to_owned();
            let openmetrics = req.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("accept")
                    && String::from_utf8_lossy(h.value).contains("application/openmetrics-text")
            });
            Ok(Some(if method == "GET" {
                Request::Get { path, openmetrics }
            } else {
                Request::Method(method.to_owned())
            }))
        }
    }
}

async fn handle(conn: &Conn, shared: &SharedSnapshot) -> std::io::Result<()> {
    let stream = &conn.stream;
    let request = match tokio::time::timeout(REQUEST_TIMEOUT, read_request(stream)).await {
        Ok(result) => result?,
        Err(_) => Err("request timed out".to_owned()),
    };
    if conn.shed.get() {
        return Ok(());
    }
    conn.answering.set(true);
    let snapshot: Arc<Snapshot> = Arc::clone(&shared.lock().unwrap_or_else(|e| e.into_inner()));
    let (status, content_type, body) = match request {
        Err(why) => (
            400,
            "text/plain",
            format!("bad request: {why}\n").into_bytes(),
        ),
        Ok(Request::Method(method)) => (
            405,
            "text/plain",
            format!("method {method} not allowed\n").into_bytes(),
        ),
        Ok(Request::Get { path, openmetrics }) => match path.as_str() {
            "/metrics" if openmetrics => (
                200,
                OPENMETRICS_CONTENT_TYPE,
                snapshot.openmetrics.clone().into_bytes(),
            ),
            "/metrics" => (
                200,
                PROMETHEUS_TEXT_CONTENT_TYPE,
                snapshot.prometheus_text.clone().into_bytes(),
            ),
            "/healthz" => (200, "text/plain", b"ok\n".to_vec()),
            // Readiness is the daemon's (running, heartbeat, sessions); a halt does not change
            // it, but the body says why trading is halted, ready or not.
            "/readyz" => {
                let halted = snapshot
                    .halted
                    .as_ref()
                    .map_or_else(String::new, |why| format!("; {why}"));
                match &snapshot.ready {
                    Ok(()) => (200, "text/plain", format!("ready{halted}\n").into_bytes()),
                    Err(why) => (
                        503,
                        "text/plain",
                        format!("not ready: {why}{halted}\n").into_bytes(),
                    ),
                }
            }
            _ => (404, "text/plain", b"not found\n".to_vec()),
        },
    };
    match tokio::time::timeout(WRITE_TIMEOUT, respond(stream, status, content_type, body)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the client did not take the response in time",
        )),
    }
}

/// Reads until the request head is complete. `Ok(Err(why))`: a bad request.
async fn read_request(stream: &TcpStream) -> std::io::Result<Result<Request, String>> {
    let mut request = Vec::with_capacity(1024);
    loop {
        let buf = Vec::with_capacity(REQUEST_BYTES_MAX);
        let (n, buf) = stream.read(buf).await;
        let n = n?;
        if n == 0 {
            return Ok(Err(
                "connection closed before the request was complete".into()
            ));
        }
        request.extend_from_slice(&buf[..n]);
        if request.len() > REQUEST_BYTES_MAX {
            return Ok(Err(format!("request over {REQUEST_BYTES_MAX} bytes")));
        }
        match parse_request(&request) {
            Ok(Some(parsed)) => return Ok(Ok(parsed)),
            Ok(None) => continue,
            Err(e) => return Ok(Err(e.to_string())),
        }
    }
}

async fn respond(
    stream: &TcpStream,
    status: u16,
    content_type: &str,
    body: Vec<u8>,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    let (result, _) = stream.write_all(out).await;
    result?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    Ok(())
}
