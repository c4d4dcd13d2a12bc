//! TLS (rustls) under the WebSocket client and the FIX connection, against rustls servers on
//! 127.0.0.1 with certificates made by rcgen: a `wss://` server that sends frames and a ping and
//! closes; a FIX venue that answers a Logon and fills an order; a client trusting another CA or
//! expecting another name; servers that close mid-handshake or speak plain HTTP. The counting
//! allocator measures the TLS read path.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use levibot_gateway::capture::Recording;
use levibot_gateway::fix::{
    ConnectionError, ConnectionStatus, FixConnection, FixSession, SessionConfig, SessionEvent,
    SessionSeqNums, SessionState, checksum, parse_message,
};
use levibot_gateway::instrument::InstrumentTable;
use levibot_gateway::tls::{TlsConfig, TlsError, server_name_of_host};
use levibot_gateway::ws::client::{UrlError, WsUrl};
use levibot_gateway::ws::frame;
use levibot_gateway::ws::{ClientError, MessageKind, WsClient, WsConfig, accept_key};
use levibot_shm::records::{OrderRequest, exec_type, ord_type, order_kind, side, time_in_force};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// Generous: a slow CI machine must never fail a test by time, and nothing may hang forever.
const TIMEOUT: Duration = Duration::from_secs(20);

// ---- certificates and the server side ----

/// A test CA and a server certificate it signed for "localhost" and 127.0.0.1.
struct Pki {
    ca_pem: String,
    ca_der: Vec<u8>,
    server: Arc<ServerConfig>,
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn new_pki() -> Pki {
    let ca = new_ca("LeviBot test CA");
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone(), ca.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().to_vec(),
        server: Arc::new(server),
    }
}

/// One PKI for the whole binary (key generation is the slow part).
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(new_pki)
}

fn client_tls() -> TlsConfig {
    TlsConfig::with_ca_pem(pki().ca_pem.as_bytes()).unwrap()
}

fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

type TlsServerStream = StreamOwned<ServerConnection, TcpStream>;

/// Accepts one connection and wraps it in a blocking rustls server stream (the handshake runs
/// on its first read or write).
fn accept_tls(listener: &TcpListener) -> TlsServerStream {
    let (tcp, _) = listener.accept().unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    tcp.set_write_timeout(Some(TIMEOUT)).unwrap();
    let conn = ServerConnection::new(pki().server.clone()).unwrap();
    StreamOwned::new(conn, tcp)
}

// ---- WebSocket over TLS ----

fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 65536);
    let mut out = vec![0x80 | opcode];
    if payload.len() <= 125 {
        out.push(payload.len() as u8);
    } else {
        out.push(126);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(payload);
    out
}

/// Reads one masked client frame: (opcode, payload).
fn read_client_frame(stream: &mut impl Read) -> (u8, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8];
    loop {
        if let Some(header) = frame::parse_header(&buf).unwrap() {
            let end = header.header_len + header.payload_len as usize;
            if buf.len() == end {
                let mut payload = buf[header.header_len..].to_vec();
                frame::apply_mask(&mut payload, header.mask.expect("masked"), 0);
                return (header.opcode_bits, payload);
            }
        }
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "the client went away");
        buf.push(byte[0]);
    }
}

/// Accepts the upgrade; returns the request head.
fn accept_ws(stream: &mut TlsServerStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "request head cut short");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let key = head
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap()
        .trim()
        .to_owned();
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(&key)
    );
    stream.write_all(response.as_bytes()).unwrap();
    head
}

#[test]
fn wss_client_reads_frames_answers_the_ping_and_closes() {
    let (listener, addr) = bind();
    let server = thread::spawn(move || {
        let mut stream = accept_tls(&listener);
        let head = accept_ws(&mut stream);
        let sni = stream.conn.server_name().map(str::to_owned);
        for text in ["one", "two", "three"] {
            stream
                .write_all(&server_frame(0x1, text.as_bytes()))
                .unwrap();
        }
        stream.write_all(&server_frame(0x9, b"heartbeat")).unwrap();
        let pong = read_client_frame(&mut stream);
        // A message over several records.
        stream
            .write_all(&server_frame(0x1, &[b'z'; 40_000]))
            .unwrap();
        let mut close = 1000u16.to_be_bytes().to_vec();
        close.extend_from_slice(b"bye");
        stream.write_all(&server_frame(0x8, &close)).unwrap();
        let close_reply = read_client_frame(&mut stream);
        (head, sni, pong, close_reply)
    });

    let host = format!("localhost:{}", addr.port());
    let tls = client_tls();
    let mut client =
        WsClient::connect_tls(addr, &host, "/ws", WsConfig::default(), &tls, TIMEOUT, || 1)
            .unwrap();
    assert!(client.transport().is_tls());
    assert!(!client.transport().is_handshaking());
    assert_eq!(
        client.transport().protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    for expected in ["one", "two", "three"] {
        let message = client.read_message(Some(TIMEOUT), || 2).unwrap().unwrap();
        assert_eq!(
            (message.kind, message.payload),
            (MessageKind::Text, expected.as_bytes())
        );
        assert!(message.recv_tsc >= 1);
    }
    let big = client.read_message(Some(TIMEOUT), || 3).unwrap().unwrap();
    assert_eq!(big.payload, &[b'z'; 40_000][..]);
    match client.read_message(Some(TIMEOUT), || 4) {
        Err(ClientError::Closed { code, reason, .. }) => {
            assert_eq!((code, reason.as_str()), (Some(1000), "bye"));
        }
        other => panic!("{other:?}"),
    }
    let (head, sni, pong, close_reply) = server.join().unwrap();
    assert!(head.starts_with("GET /ws HTTP/1.1\r\n"), "{head}");
    assert!(head.contains(&format!("Host: {host}\r\n")), "{head}");
    assert_eq!(sni.as_deref(), Some("localhost"), "SNI without the port");
    assert_eq!(pong, (0xA, b"heartbeat".to_vec()));
    assert_eq!(close_reply, (0x8, 1000u16.to_be_bytes().to_vec()));
    assert_eq!(client.stats().pings_in, 1);
}

#[test]
fn wss_url_client_sends_text_and_closes_first() {
    let (listener, addr) = bind();
    let server = thread::spawn(move || {
        let mut stream = accept_tls(&listener);
        let head = accept_ws(&mut stream);
        let text = read_client_frame(&mut stream);
        stream.write_all(&server_frame(0x1, b"ack")).unwrap();
        let close = read_client_frame(&mut stream);
        stream
            .write_all(&server_frame(0x8, &1000u16.to_be_bytes()))
            .unwrap();
        // The client's close_notify ends the TLS stream cleanly.
        let mut rest = Vec::new();
        let end = stream.read_to_end(&mut rest).map(|_| rest.len());
        (head, text, close, end.ok())
    });
    let tls = TlsConfig::with_ca_der(&pki().ca_der).unwrap();
    let url = format!("wss://127.0.0.1:{}?streams=a@trade", addr.port());
    let mut client =
        WsClient::connect_url(&url, WsConfig::default(), Some(&tls), TIMEOUT, || 0).unwrap();
    assert!(client.transport().is_tls());
    client.send_text("{\"method\":\"SUBSCRIBE\"}").unwrap();
    let ack = client.read_message(Some(TIMEOUT), || 0).unwrap().unwrap();
    assert_eq!(ack.payload, b"ack");
    client.close(1000, "done", TIMEOUT).unwrap();
    let (head, text, close, end) = server.join().unwrap();
    assert!(
        head.starts_with("GET /?streams=a@trade HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.contains(&format!("Host: 127.0.0.1:{}\r\n", addr.port())),
        "{head}"
    );
    assert_eq!(text, (0x1, b"{\"method\":\"SUBSCRIBE\"}".to_vec()));
    assert_eq!(close.0, 0x8);
    assert_eq!(&close.1[..2], &1000u16.to_be_bytes());
    assert_eq!(end, Some(0), "a clean TLS close after the WebSocket close");
}

#[test]
fn ws_urls_are_split() {
    let url = WsUrl::parse("wss://stream.binance.com:9443/stream?streams=nknusdt@depth").unwrap();
    assert_eq!(
        url,
        WsUrl {
            tls: true,
            host: "stream.binance.com".into(),
            port: 9443,
            path: "/stream?streams=nknusdt@depth".into(),
        }
    );
    assert_eq!(url.host_header(), "stream.binance.com:9443");
    let url = WsUrl::parse("WSS://example.com").unwrap();
    assert_eq!((url.port, url.path.as_str()), (443, "/"));
    assert_eq!(url.host_header(), "example.com");
    let url = WsUrl::parse("ws://[::1]:8080/x").unwrap();
    assert_eq!(
        (url.tls, url.host.as_str(), url.port, url.path.as_str()),
        (false, "::1", 8080, "/x")
    );
    assert_eq!(url.host_header(), "[::1]:8080");
    assert_eq!(WsUrl::parse("ws://h").unwrap().port, 80);
    for (bad, expected) in [
        ("https://h/", "Scheme"),
        ("stream.binance.com", "Scheme"),
        ("wss:///path", "NoHost"),
        ("wss://h:0/", "Port"),
        ("wss://h:65536/", "Port"),
        ("wss://h:x/", "Port"),
        ("wss://[::1]x/", "Port"),
        ("wss://user@h/", "Unsupported"),
        ("wss://h/#frag", "Unsupported"),
    ] {
        let err = WsUrl::parse(bad).unwrap_err();
        assert!(format!("{err:?}").starts_with(expected), "{bad}: {err:?}");
        assert!(err.to_string().contains(bad), "{err}");
    }
    assert!(matches!(
        WsClient::connect_url("http://h/", WsConfig::default(), None, TIMEOUT, || 0),
        Err(ClientError::Url(UrlError::Scheme { .. }))
    ));
}

/// Every TLS byte in its own TCP write: records arrive in pieces, the client waits on epoll
/// between them, and answers a ping in the middle.
#[test]
fn wss_records_arriving_byte_by_byte() {
    let (listener, addr) = bind();
    let server = thread::spawn(move || {
        let mut stream = accept_tls(&listener);
        accept_ws(&mut stream);
        let mut frames = server_frame(0x1, b"first");
        frames.extend(server_frame(0x9, b"mid"));
        frames.extend(server_frame(0x1, &[b'b'; 700]));
        stream.conn.writer().write_all(&frames).unwrap();
        let mut wire = Vec::new();
        while stream.conn.wants_write() {
            stream.conn.write_tls(&mut wire).unwrap();
        }
        stream.sock.set_nodelay(true).unwrap();
        for byte in &wire {
            stream.sock.write_all(&[*byte]).unwrap();
            thread::sleep(Duration::from_micros(50));
        }
        let pong = read_client_frame(&mut stream);
        stream
            .write_all(&server_frame(0x8, &1000u16.to_be_bytes()))
            .unwrap();
        (wire.len(), pong)
    });
    let mut client = WsClient::connect_tls(
        addr,
        "localhost",
        "/",
        WsConfig::default(),
        &client_tls(),
        TIMEOUT,
        || 0,
    )
    .unwrap();
    let first = client.read_message(Some(TIMEOUT), || 0).unwrap().unwrap();
    assert_eq!(first.payload, b"first");
    let second = client.read_message(Some(TIMEOUT), || 0).unwrap().unwrap();
    assert_eq!(second.payload, &[b'b'; 700][..]);
    assert!(matches!(
        client.read_message(Some(TIMEOUT), || 0),
        Err(ClientError::Closed {
            code: Some(1000),
            ..
        })
    ));
    let (wire_len, pong) = server.join().unwrap();
    assert!(wire_len > 700, "{wire_len}");
    assert_eq!(pong, (0xA, b"mid".to_vec()));
}

// ---- FIX over TLS ----

const SEC: u64 = 1_000_000_000;
/// 2024-02-29T12:00:00Z: the session's clock (no timer fires; the test's deadline is wall time).
const T0: u64 = 1_709_208_000 * SEC;

fn table() -> &'static InstrumentTable {
    static TABLE: OnceLock<InstrumentTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let instruments = Recording::testdata().unwrap().instruments().unwrap();
        InstrumentTable::new(instruments).unwrap()
    })
}

fn fix_session() -> FixSession {
    let config = SessionConfig {
        sender_comp_id: "LEVI".into(),
        target_comp_id: "EXEC".into(),
        heart_bt_int_s: 30,
        reset_seq_num: false,
        binance_logon: None,
    };
    FixSession::new(config, table().clone(), SessionSeqNums::default()).unwrap()
}

/// A message from the venue (EXEC -> LEVI); `body` is `tag=value|..` after the header.
fn venue_message(msg_type: &str, seq: u64, body: &str) -> Vec<u8> {
    let body = format!("35={msg_type}|34={seq}|49=EXEC|52=20240229-12:00:00.000|56=LEVI|{body}")
        .replace('|', "\x01");
    let mut msg = format!("8=FIX.4.4\x019={}\x01{body}", body.len()).into_bytes();
    let sum = checksum(&msg);
    msg.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    msg
}

/// Reads one whole FIX message: its (tag, value) pairs.
fn read_fix(stream: &mut impl Read, buf: &mut Vec<u8>) -> Vec<(u32, String)> {
    let mut chunk = [0u8; 1024];
    loop {
        if let Ok(msg) = parse_message(buf) {
            let fields = msg
                .fields()
                .map(|(t, v)| (t, String::from_utf8(v.to_vec()).unwrap()))
                .collect();
            let len = msg.as_bytes().len();
            buf.drain(..len);
            return fields;
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the client went away");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn value(fields: &[(u32, String)], tag: u32) -> Option<&str> {
    fields
        .iter()
        .find(|(t, _)| *t == tag)
        .map(|(_, v)| v.as_str())
}

/// Waits for the connection's socket readiness (edge-triggered, as a venue agent would).
struct Waiter {
    poll: mio::Poll,
    events: mio::Events,
}

impl Waiter {
    fn new(conn: &mut FixConnection) -> Waiter {
        let poll = mio::Poll::new().unwrap();
        poll.registry()
            .register(
                conn.stream_mut(),
                mio::Token(0),
                mio::Interest::READABLE | mio::Interest::WRITABLE,
            )
            .unwrap();
        Waiter {
            poll,
            events: mio::Events::with_capacity(4),
        }
    }
}

/// Polls until `wanted` picks an event, failing on an error, a close or the deadline. Between
/// two polls it sleeps in `epoll_wait` until the socket is ready: a wakeup lost under TLS (bytes
/// rustls holds that epoll cannot see) would hang here until the deadline and fail.
fn poll_until<T>(
    conn: &mut FixConnection,
    waiter: &mut Waiter,
    session: &mut FixSession,
    what: &str,
    mut wanted: impl FnMut(&SessionEvent) -> Option<T>,
) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut found = None;
        let status = conn
            .poll(session, T0, |event| {
                if found.is_none() {
                    found = wanted(&event);
                }
            })
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        if let Some(found) = found {
            return found;
        }
        assert_ne!(status, ConnectionStatus::Closed, "{what}: closed");
        let left = deadline.saturating_duration_since(Instant::now());
        waiter.poll.poll(&mut waiter.events, Some(left)).unwrap();
        assert!(
            !waiter.events.is_empty(),
            "{what}: no readiness event in {TIMEOUT:?}"
        );
    }
}

#[test]
fn fix_over_tls_logs_on_and_decodes_a_fill() {
    let (listener, addr) = bind();
    let server = thread::spawn(move || {
        let mut stream = accept_tls(&listener);
        let mut buf = Vec::new();
        let logon = read_fix(&mut stream, &mut buf);
        stream
            .write_all(&venue_message("A", 1, "98=0|108=30|"))
            .unwrap();
        let order = read_fix(&mut stream, &mut buf);
        let cl_ord_id = value(&order, 11).unwrap().to_owned();
        let fill = format!(
            "6=0.3513|11={cl_ord_id}|14=1.5|17=1|31=0.3513|32=1.5|37=12|38=1.5|39=2|54=1|55=NKNUSDT|150=F|151=0|"
        );
        stream.write_all(&venue_message("8", 2, &fill)).unwrap();
        (logon, order)
    });

    let mut session = fix_session();
    let tls = client_tls();
    let mut conn = FixConnection::connect_tls(addr, "127.0.0.1", &tls).unwrap();
    let mut waiter = Waiter::new(&mut conn);
    assert!(conn.transport().is_tls());
    let heart_bt_int_s =
        poll_until(
            &mut conn,
            &mut waiter,
            &mut session,
            "logon",
            |event| match event {
                SessionEvent::LoggedOn { heart_bt_int_s } => Some(*heart_bt_int_s),
                _ => None,
            },
        );
    assert_eq!(heart_bt_int_s, 30);
    assert_eq!(session.state(), SessionState::Active);
    assert!(!conn.transport().is_handshaking());

    let instrument = table().find(b"NKNUSDT").unwrap();
    let units =
        |text: &str, scale| levibot_gateway::decimal::parse_units(text.as_bytes(), scale).unwrap();
    let order = OrderRequest {
        client_order_id: 7,
        px: units("0.3513", instrument.price_scale),
        qty: units("1.5", instrument.qty_scale),
        instrument_id: instrument.id,
        kind: order_kind::NEW,
        side: side::BUY,
        ord_type: ord_type::LIMIT,
        time_in_force: time_in_force::GTC,
        ..OrderRequest::default()
    };
    session.send_order(&order, T0).unwrap();
    let report = poll_until(
        &mut conn,
        &mut waiter,
        &mut session,
        "fill",
        |event| match event {
            SessionEvent::Report(report) => Some(*report),
            _ => None,
        },
    );
    assert_eq!(report.client_order_id, 7);
    assert_eq!(report.venue_order_id, 12);
    assert_eq!(report.exec_type, exec_type::TRADE);
    assert_eq!(report.last_px, units("0.3513", instrument.price_scale));
    assert_eq!(report.last_qty, units("1.5", instrument.qty_scale));
    assert_eq!(report.leaves_qty, 0);
    assert_eq!(report.instrument_id, instrument.id);

    let (logon, order) = server.join().unwrap();
    assert_eq!(value(&logon, 35), Some("A"));
    assert_eq!(value(&logon, 49), Some("LEVI"));
    assert_eq!(value(&order, 35), Some("D"));
    assert_eq!(value(&order, 55), Some("NKNUSDT"));
    assert_eq!(value(&order, 44), Some("0.3513"));
    // The venue went away after the fill: the connection closes.
    let deadline = Instant::now() + TIMEOUT;
    while conn.poll(&mut session, T0, |_| {}).unwrap() != ConnectionStatus::Closed {
        assert!(Instant::now() < deadline, "no close");
        thread::sleep(Duration::from_millis(1));
    }
}

// ---- refusals and failures ----

/// The TLS error inside a WebSocket client error (a test failure if there is none).
fn tls_error(err: &ClientError) -> &TlsError {
    match err {
        ClientError::Tls { source, .. } => source,
        other => panic!("not a TLS error: {other:?}"),
    }
}

/// A server that runs the handshake and reports how it ended (it must not hang either).
fn handshake_only_server(listener: TcpListener) -> thread::JoinHandle<Option<rustls::Error>> {
    thread::spawn(move || {
        let mut stream = accept_tls(&listener);
        let mut byte = [0u8];
        match stream.read_exact(&mut byte) {
            Err(e) => e
                .into_inner()
                .and_then(|e| e.downcast::<rustls::Error>().ok())
                .map(|e| *e),
            Ok(()) => None,
        }
    })
}

#[test]
fn a_client_trusting_another_ca_refuses_the_server() {
    let other = new_ca("another CA");
    let tls = TlsConfig::with_ca_pem(other.pem().as_bytes()).unwrap();

    let (listener, addr) = bind();
    let server = handshake_only_server(listener);
    let err = WsClient::connect_tls(
        addr,
        "localhost",
        "/",
        WsConfig::default(),
        &tls,
        TIMEOUT,
        || 0,
    )
    .unwrap_err();
    match tls_error(&err) {
        TlsError::Certificate {
            server_name,
            source: rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        } => assert_eq!(server_name, "localhost"),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("certificate was refused"), "{err}");
    // The server heard why (our alert).
    assert!(
        matches!(
            server.join().unwrap(),
            Some(rustls::Error::AlertReceived(_))
        ),
        "the server got no alert"
    );

    // FIX the same way.
    let (listener, addr) = bind();
    let server = handshake_only_server(listener);
    let mut conn = FixConnection::connect_tls(addr, "localhost", &tls).unwrap();
    let mut session = fix_session();
    let err = poll_error(&mut conn, &mut session);
    assert!(
        matches!(err, ConnectionError::Tls(TlsError::Certificate { .. })),
        "{err:?}"
    );
    server.join().unwrap();
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let (listener, addr) = bind();
    let server = handshake_only_server(listener);
    let err = WsClient::connect_tls(
        addr,
        "venue.example.com:443",
        "/",
        WsConfig::default(),
        &client_tls(),
        TIMEOUT,
        || 0,
    )
    .unwrap_err();
    assert!(
        matches!(
            tls_error(&err),
            TlsError::Certificate {
                source: rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName
                        | rustls::CertificateError::NotValidForNameContext { .. }
                ),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("venue.example.com"), "{err}");
    server.join().unwrap();
}

/// Polls until the connection fails; it must, within the deadline.
fn poll_error(conn: &mut FixConnection, session: &mut FixSession) -> ConnectionError {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match conn.poll(session, T0, |_| {}) {
            Err(e) => return e,
            Ok(ConnectionStatus::Closed) => panic!("closed without an error"),
            Ok(_) => {}
        }
        assert!(Instant::now() < deadline, "no error");
        thread::sleep(Duration::from_micros(200));
    }
}

/// A server that reads the ClientHello and closes the connection: with a FIN, or with a reset
/// (`reset`) as a crashed server or a middlebox does.
fn closing_server(listener: TcpListener, reset: bool) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut hello = [0u8; 5];
        tcp.read_exact(&mut hello).unwrap();
        assert_eq!(hello[0], 22, "a TLS handshake record");
        let len = u16::from_be_bytes([hello[3], hello[4]]) as usize;
        let mut body = vec![0u8; len];
        tcp.read_exact(&mut body).unwrap();
        if reset {
            levibot_testkit::reset(tcp);
        }
        5 + len
    })
}

fn is_handshake_close(err: &TlsError) -> bool {
    matches!(
        err,
        TlsError::HandshakeEof { bytes_in: 0, .. } | TlsError::HandshakeIo { .. }
    )
}

#[test]
fn a_server_closing_mid_handshake_is_a_typed_error() {
    let (listener, addr) = bind();
    let server = closing_server(listener, false);
    let err = WsClient::connect_tls(
        addr,
        "localhost",
        "/",
        WsConfig::default(),
        &client_tls(),
        TIMEOUT,
        || 0,
    )
    .unwrap_err();
    match &err {
        ClientError::Tls { source, .. } => {
            assert!(is_handshake_close(source), "{source:?}");
            assert!(source.is_handshake());
        }
        other => panic!("{other:?}"),
    }
    assert!(
        server.join().unwrap() > 100,
        "the server read a ClientHello"
    );

    let (listener, addr) = bind();
    let server = closing_server(listener, false);
    let mut conn = FixConnection::connect_tls(addr, "localhost", &client_tls()).unwrap();
    let mut session = fix_session();
    match poll_error(&mut conn, &mut session) {
        ConnectionError::Tls(source) => assert!(is_handshake_close(&source), "{source:?}"),
        other => panic!("{other:?}"),
    }
    server.join().unwrap();
}

#[test]
fn a_server_resetting_mid_handshake_fails_the_handshake_and_is_not_a_close() {
    // After the handshake a reset is the venue going away, as a close is; during it, it is a
    // handshake that failed, and the error says so.
    let (listener, addr) = bind();
    let server = closing_server(listener, true);
    let mut conn = FixConnection::connect_tls(addr, "localhost", &client_tls()).unwrap();
    let mut session = fix_session();
    match poll_error(&mut conn, &mut session) {
        ConnectionError::Tls(TlsError::HandshakeIo { op, source, .. }) => {
            assert_eq!(op, "read");
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionReset);
        }
        other => panic!("{other:?}"),
    }
    server.join().unwrap();
}

#[test]
fn a_plain_http_server_fails_the_handshake() {
    let (listener, addr) = bind();
    let server = thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut some = [0u8; 64];
        let _ = tcp.read(&mut some);
        let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        // Hold the connection until the client gives up.
        let _ = tcp.read(&mut some);
    });
    let err = WsClient::connect_tls(
        addr,
        "localhost",
        "/",
        WsConfig::default(),
        &client_tls(),
        TIMEOUT,
        || 0,
    )
    .unwrap_err();
    assert!(
        matches!(tls_error(&err), TlsError::Handshake { .. }),
        "{err:?}"
    );
    server.join().unwrap();
}

#[test]
fn configuration_errors_are_named() {
    assert!(matches!(
        TlsConfig::with_ca_pem(b"not a certificate"),
        Err(TlsError::NoCaCertificate)
    ));
    assert!(matches!(
        TlsConfig::with_ca_pem(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
        Err(TlsError::CaPem { .. })
    ));
    assert!(matches!(
        TlsConfig::with_ca_der(b"\x30\x03\x02\x01\x00"),
        Err(TlsError::CaCertificate { index: 0, .. })
    ));
    let roots = TlsConfig::webpki_roots().unwrap();
    assert!(Arc::strong_count(roots.client_config()) >= 1);
    let (_listener, addr) = bind();
    match FixConnection::connect_tls(addr, "not a host name!", &roots) {
        Err(ConnectionError::Tls(TlsError::ServerName { name })) => {
            assert_eq!(name, "not a host name!")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        server_name_of_host("stream.binance.com:9443"),
        "stream.binance.com"
    );
    assert_eq!(server_name_of_host("localhost"), "localhost");
    assert_eq!(server_name_of_host("127.0.0.1:80"), "127.0.0.1");
    assert_eq!(server_name_of_host("[::1]:443"), "::1");
    assert_eq!(server_name_of_host("::1"), "::1");
    let _ = CertificateDer::from(pki().ca_der.clone());
}

// ---- the cost ----

/// Allocations of TLS records in steady state, both ways. The client sends text frames (one
/// record each), then the server writes each WebSocket frame as its own TLS record and the
/// client reads them, each measured after a warm-up. rustls 0.23 copies each received record's
/// plaintext into a new `Vec`, and each record it encrypts into another (see
/// `levibot_gateway::tls`): about one allocation per record. Plain TCP allocates nothing
/// (`ws_client.rs`, `reading_messages_does_not_allocate`).
#[test]
fn tls_allocations_per_record() {
    const WARMUP: usize = 100;
    const RECORDS: usize = 2000;
    /// A little for rustls' queues growing and the odd post-handshake message.
    const SLACK: u64 = RECORDS as u64 / 10;
    let (listener, addr) = bind();
    let server = thread::spawn(move || {
        let mut stream = accept_tls(&listener);
        accept_ws(&mut stream);
        for i in 0..WARMUP + RECORDS {
            let (opcode, payload) = read_client_frame(&mut stream);
            assert_eq!((opcode, payload.len()), (0x1, 20), "client frame {i}");
        }
        let frame = server_frame(0x1, &[b'x'; 200]);
        for _ in 0..WARMUP + RECORDS {
            stream.write_all(&frame).unwrap(); // one record per write
        }
        stream
            .write_all(&server_frame(0x8, &1000u16.to_be_bytes()))
            .unwrap();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    });
    let mut client = WsClient::connect_tls(
        addr,
        "localhost",
        "/",
        WsConfig::default(),
        &client_tls(),
        TIMEOUT,
        || 0,
    )
    .unwrap();
    let text = "x".repeat(20);
    for _ in 0..WARMUP {
        client.send_text(&text).unwrap();
    }
    let before = levibot_testkit::allocations();
    for _ in 0..RECORDS {
        client.send_text(&text).unwrap();
    }
    let sent = levibot_testkit::allocations() - before;
    for _ in 0..WARMUP {
        client.read_message(Some(TIMEOUT), || 0).unwrap().unwrap();
    }
    let before = levibot_testkit::allocations();
    for i in 0..RECORDS {
        let message = client.read_message(Some(TIMEOUT), || 0).unwrap();
        assert!(message.is_some(), "timed out at {i}");
    }
    let received = levibot_testkit::allocations() - before;
    println!(
        "TLS allocations for {RECORDS} records: {sent} sending ({:.2} per record), {received} receiving ({:.2} per record)",
        sent as f64 / RECORDS as f64,
        received as f64 / RECORDS as f64
    );
    assert!(sent <= RECORDS as u64 + SLACK, "{sent} allocations sending");
    assert!(
        received <= RECORDS as u64 + SLACK,
        "{received} allocations receiving"
    );
    let _ = client.close(1000, "", TIMEOUT);
    server.join().unwrap();
}

// ---- the REST snapshot over HTTPS ----

#[test]
fn the_depth_snapshot_comes_over_https() {
    let (listener, addr) = bind();
    let server = thread::spawn(move || {
        let mut stream = accept_tls(&listener);
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "the client closed before its request was whole");
            request.extend_from_slice(&buf[..n]);
        }
        let body = r#"{"lastUpdateId":7,"bids":[["0.35000000","10.00000000"]],"asks":[]}"#;
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        stream.flush().unwrap();
        stream.conn.send_close_notify();
        let _ = stream.flush();
        String::from_utf8(request).unwrap()
    });
    let host = format!("localhost:{}", addr.port());
    let body = levibot_gateway::ws::fetch_depth_snapshot_over(
        addr,
        &host,
        "NKNUSDT",
        100,
        TIMEOUT,
        Some(&client_tls()),
    )
    .unwrap();
    assert!(body.starts_with(br#"{"lastUpdateId":7"#));
    let request = server.join().unwrap();
    assert!(
        request.starts_with("GET /api/v3/depth?symbol=NKNUSDT&limit=100 HTTP/1.1\r\n"),
        "{request}"
    );

    // A client trusting another CA refuses the same server, with a TLS error.
    let (listener, addr) = bind();
    let server = thread::spawn(move || {
        let mut stream = accept_tls(&listener);
        let _ = stream.read(&mut [0u8; 64]);
    });
    let other = new_ca("another CA");
    let foreign = TlsConfig::with_ca_pem(other.pem().as_bytes()).unwrap();
    let err = levibot_gateway::ws::https_get(addr, "localhost", "/api/v3/depth", TIMEOUT, &foreign)
        .unwrap_err();
    assert!(
        matches!(err, levibot_gateway::ws::HttpError::Io { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("certificate")
            || err.to_string().contains("Certificate")
            || err.to_string().contains("issuer"),
        "{err}"
    );
    let _ = server.join();
}
