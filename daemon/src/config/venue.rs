//! `[venue]`: the exchangeInfo file, the market-data WebSocket, FIX order entry, TLS and the
//! Binance credentials file.

use std::io::Read as _;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use levibot_engine::pipeline::ws_feed::RECONNECT_AFTER_BINANCE;
use levibot_gateway::capture::exchange_info_body;
use levibot_gateway::fix::{
    API_KEY_LEN_MAX, BinanceLogon, COMP_ID_LEN_MAX, HEART_BT_INT_S_MAX, MessageHandling,
    SessionConfig,
};
use levibot_gateway::instrument::{
    Instrument, RequestWeightLimit, parse_exchange_info, parse_request_weight_limit,
};
use levibot_gateway::tls::TlsConfig;
use levibot_gateway::ws::client::WsUrl;
use levibot_gateway::ws::path::STREAMS_PER_CONNECTION_MAX;
use levibot_gateway::ws::{RestEndpoint, Stream};

use super::reader::{self, Base, Problems, Section};
use super::{MarketDataSettings, OrderEntrySettings, ParseOptions};

/// Longest URL accepted.
pub const URL_LEN_MAX: usize = 2048;
/// Largest exchangeInfo file read (Binance's full answer is about 2 MiB).
pub const EXCHANGE_INFO_LEN_MAX: u64 = 64 << 20;
/// Largest CA file read.
pub const CA_FILE_LEN_MAX: u64 = 1 << 20;
/// Largest credentials or private key file read.
pub const CREDENTIALS_LEN_MAX: u64 = 64 << 10;
/// Keepalive intervals and timeouts: 100 ms to 10 minutes.
const KEEPALIVE_MS: std::ops::RangeInclusive<i64> = 100..=600_000;
/// `reconnect_after_s`: 1 s (tests) to 24 h (Binance's limit), 23 h 30 min by default.
const RECONNECT_AFTER_S: std::ops::RangeInclusive<i64> = 1..=86_400;
const RECONNECT_AFTER_S_DEFAULT: i64 = RECONNECT_AFTER_BINANCE.as_secs() as i64;

/// Every stream the feed knows, for parsing their names (`Stream::suffix`).
const STREAMS: [Stream; 6] = [
    Stream::Depth100ms,
    Stream::Depth1000ms,
    Stream::BookTicker,
    Stream::Trade,
    Stream::AggTrade,
    Stream::Kline1m,
];
/// The streams when the config names none: diffs for the books, the top and trades.
pub const STREAMS_DEFAULT: [Stream; 3] = [Stream::Depth100ms, Stream::BookTicker, Stream::AggTrade];

/// The PKCS#8 (RFC 8410) DER of an Ed25519 private key, up to its 32-byte seed: what
/// `openssl genpkey -algorithm ed25519` writes. The second form also carries the public key
/// after the seed (OneAsymmetricKey v2).
const PKCS8_ED25519_V1: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const PKCS8_ED25519_V2_AFTER_LEN: [u8; 14] = [
    0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Reads at most `len_max` bytes of `path`; the error says why in a sentence.
pub(super) fn read_limited(path: &Path, len_max: u64) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(len_max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > len_max {
        return Err(format!("{}: larger than {len_max} bytes", path.display()));
    }
    Ok(bytes)
}

/// A secret must not be open to every user of the machine (as ssh insists for its keys).
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o007 != 0 {
        return Err(format!(
            "{}: other users may access it (mode {:o}); chmod o-rwx",
            path.display(),
            mode & 0o777
        ));
    }
    Ok(())
}

/// The instruments of an exchangeInfo file (bare JSON or a capture line: `<url> -> <time>:
/// <json>`, as the recordings hold it), and its `REQUEST_WEIGHT` rate limit if it lists one.
pub(super) fn exchange_info(
    path: &Path,
) -> Result<(Vec<Instrument>, Option<RequestWeightLimit>), String> {
    let bytes = read_limited(path, EXCHANGE_INFO_LEN_MAX)?;
    let body = exchange_info_body(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let instruments = parse_exchange_info(body).map_err(|e| format!("{}: {e}", path.display()))?;
    let weight =
        parse_request_weight_limit(body).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((instruments, weight))
}

/// `host:port` as a `Host` header or a `SocketAddr` string wants it (IPv6 in brackets).
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Longest host name (RFC 1035).
const HOST_NAME_LEN_MAX: usize = 253;

/// The address of `host:port`: looked up (DNS) when `options.resolve_hosts`, else an IP literal
/// as it is and a host name, checked for its form only, as the unspecified address.
fn resolve(host: &str, port: u16, options: &ParseOptions) -> Result<SocketAddr, String> {
    if !options.resolve_hosts {
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        let name = host.strip_suffix('.').unwrap_or(host);
        if name.len() > HOST_NAME_LEN_MAX || !name.split('.').all(label_ok) {
            return Err(format!(
                "{host:?} is not a host name (labels of letters, digits and '-', dot-separated) \
                 nor an IP address"
            ));
        }
        return Ok(SocketAddr::new(
            std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            port,
        ));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} resolves to no address"))
}

/// The TLS configuration of a TLS URL: the CA file's certificates, else the web roots.
fn tls_config(
    p: &mut Problems,
    key: String,
    tls: bool,
    ca_file: Option<&Path>,
) -> Option<Option<TlsConfig>> {
    let made = match (tls, ca_file) {
        (false, None) => return Some(None),
        (false, Some(_)) => Err("set, but the url does not use TLS".to_owned()),
        (true, Some(path)) => read_limited(path, CA_FILE_LEN_MAX).and_then(|pem| {
            TlsConfig::with_ca_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
        }),
        (true, None) => TlsConfig::webpki_roots().map_err(|e| format!("web roots: {e}")),
    };
    match made {
        Ok(config) => Some(Some(config)),
        Err(problem) => {
            p.push(key, problem);
            None
        }
    }
}

fn stream(value: &toml::Value) -> Result<Stream, String> {
    let names = || {
        STREAMS
            .iter()
            .map(|s| format!("{:?}", s.suffix()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(name) = value.as_str() else {
        return Err(reader::wrong_type(&format!("one of {}", names()), value));
    };
    STREAMS
        .iter()
        .copied()
        .find(|s| s.suffix() == name)
        .ok_or_else(|| format!("{name:?} is not a stream; expected one of {}", names()))
}

fn streams(value: &toml::Value) -> Result<Vec<Stream>, String> {
    let Some(items) = value.as_array() else {
        return Err(reader::wrong_type("an array of stream names", value));
    };
    if items.is_empty() || items.len() > STREAMS.len() {
        return Err(format!(
            "{} streams; 1..={} expected",
            items.len(),
            STREAMS.len()
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let s = stream(item).map_err(|e| format!("[{index}]: {e}"))?;
        if out.contains(&s) {
            return Err(format!("{:?} is named twice", s.suffix()));
        }
        out.push(s);
    }
    let depth = out
        .iter()
        .filter(|s| matches!(s, Stream::Depth100ms | Stream::Depth1000ms))
        .count();
    if depth != 1 {
        return Err(format!(
            "{depth} depth streams: the books need exactly one (\"depth@100ms\" or \"depth\")"
        ));
    }
    Ok(out)
}

/// Checks that `streams x instruments` fit on one connection.
pub(super) fn check_stream_count(p: &mut Problems, streams: usize, instruments: usize) {
    let count = streams * instruments;
    if count > STREAMS_PER_CONNECTION_MAX {
        p.push(
            "venue.market_data.streams",
            format!(
                "{streams} streams x {instruments} instruments = {count}, more than the \
                 {STREAMS_PER_CONNECTION_MAX} one connection carries"
            ),
        );
    }
}

/// `[venue.market_data]`.
pub(super) fn market_data(
    p: &mut Problems,
    mut s: Section<'_>,
    base: Base<'_>,
) -> Option<MarketDataSettings> {
    let url_key = s.key("url");
    let url = s.required(p, "url", reader::string(URL_LEN_MAX));
    let parsed = url.as_deref().and_then(|url| {
        let parsed = WsUrl::parse(url)
            .map_err(|e| e.to_string())
            .and_then(|parsed| {
                if parsed.path != "/" {
                    return Err(format!(
                        "{url:?} has a path ({}): give ws[s]://host:port only, the feed builds \
                         the stream and snapshot paths itself",
                        parsed.path
                    ));
                }
                let addr = resolve(&parsed.host, parsed.port, base.options)?;
                Ok((parsed, addr))
            });
        parsed.map_err(|e| p.push(url_key.clone(), e)).ok()
    });
    let rest_url_key = s.key("rest_url");
    let rest_url = s.optional(p, "rest_url", reader::string(URL_LEN_MAX));
    let streams = s.or(p, "streams", STREAMS_DEFAULT.to_vec(), streams);
    let ping_interval = s.or(p, "ping_interval_ms", 20_000, reader::int(KEEPALIVE_MS));
    let pong_timeout = s.or(p, "pong_timeout_ms", 10_000, reader::int(KEEPALIVE_MS));
    let reconnect_after = s.or(
        p,
        "reconnect_after_s",
        RECONNECT_AFTER_S_DEFAULT,
        reader::int(RECONNECT_AFTER_S),
    );
    let ca_file = s.optional(p, "ca_file", reader::file(base));
    let ca_key = s.key("ca_file");
    s.finish(p);
    // The REST endpoint: `rest_url` (http[s]://host[:port], its own host and port), else the
    // stream URL's host and port over HTTP(S), as a venue-sim serves both.
    let rest = match rest_url? {
        Some(url) => {
            let parsed = WsUrl::parse_http(&url)
                .map_err(|e| e.to_string())
                .and_then(|rest| {
                    if rest.path != "/" {
                        return Err(format!(
                            "{url:?} has a path ({}): give http[s]://host[:port] only, the feed \
                             builds the snapshot path itself",
                            rest.path
                        ));
                    }
                    let addr = resolve(&rest.host, rest.port, base.options)?;
                    Ok((Some(url), rest, addr))
                });
            Some(parsed.map_err(|e| p.push(rest_url_key, e)).ok()?)
        }
        None => parsed.as_ref().map(|(ws, addr)| (None, ws.clone(), *addr)),
    };
    let ca_file = ca_file?;
    let (parsed, addr) = parsed?;
    let (rest_url, rest, rest_addr) = rest?;
    // One trust store for both: `ca_file` is for whichever of the two uses TLS.
    let tls = tls_config(p, ca_key, parsed.tls || rest.tls, ca_file.as_deref())?;
    Some(MarketDataSettings {
        url: url?,
        addr,
        host: host_port(&parsed.host, parsed.port),
        tls: tls.clone().filter(|_| parsed.tls),
        rest_url,
        rest: RestEndpoint {
            addr: rest_addr,
            // Without a default port (443 for https): "api.binance.com", as curl sends it.
            host: rest.host_header(),
            tls: tls.filter(|_| rest.tls),
        },
        ca_file,
        streams: streams?,
        ping_interval: Duration::from_millis(ping_interval? as u64),
        pong_timeout: Duration::from_millis(pong_timeout? as u64),
        reconnect_after: Duration::from_secs(reconnect_after? as u64),
    })
}

/// `tcp://host:port` or `tls://host:port`: (TLS, host, port).
fn fix_url(url: &str) -> Result<(bool, String, u16), String> {
    let bad = |why: &str| format!("{url:?}: {why}; expected tcp://host:port or tls://host:port");
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "tcp" => false,
        "tls" => true,
        _ => return Err(bad(&format!("the scheme {scheme:?} is not tcp or tls"))),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@']) {
        return Err(bad("a path, query or user info"));
    }
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or_else(|| bad("no host"))?;
        (host, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = port
        .ok_or_else(|| bad("no port"))?
        .parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| bad("the port is not a number in 1..=65535"))?;
    Ok((tls, host.to_owned(), port))
}

fn comp_id(value: &toml::Value) -> Result<String, String> {
    let id = reader::string(COMP_ID_LEN_MAX)(value)?;
    match id.bytes().position(|b| !b.is_ascii_graphic() || b == b'=') {
        Some(offset) => Err(format!(
            "{id:?} has a bad byte at offset {offset}: comp ids are printable ASCII without '=' \
             or spaces"
        )),
        None => Ok(id),
    }
}

/// `[venue.order_entry]`; `credentials` is the parsed credentials file, if any.
pub(super) fn order_entry(
    p: &mut Problems,
    mut s: Section<'_>,
    base: Base<'_>,
    credentials: Option<&Result<BinanceLogon, ()>>,
    credentials_path: Option<&Path>,
) -> Option<OrderEntrySettings> {
    let url_key = s.key("url");
    let url = s.required(p, "url", reader::string(URL_LEN_MAX));
    let parsed = url.as_deref().and_then(|url| {
        let parsed = fix_url(url).and_then(|(tls, host, port)| {
            let addr = resolve(&host, port, base.options)?;
            Ok((tls, host, addr))
        });
        parsed.map_err(|e| p.push(url_key.clone(), e)).ok()
    });
    let sender_comp_id = s.required(p, "sender_comp_id", comp_id);
    let target_comp_id = s.required(p, "target_comp_id", comp_id);
    let heart_bt_int_s = s.or(
        p,
        "heart_bt_int_s",
        30,
        reader::int(1..=i64::from(HEART_BT_INT_S_MAX)),
    );
    let binance_key = s.key("binance_logon");
    let binance = s.or(p, "binance_logon", false, reader::boolean);
    let ca_file = s.optional(p, "ca_file", reader::file(base));
    let ca_key = s.key("ca_file");
    s.finish(p);
    let binance_logon = match (binance?, credentials) {
        (false, _) => None,
        (true, Some(Ok(logon))) => Some(logon.clone()),
        (true, Some(Err(()))) => return None, // reported with the credentials
        (true, None) => {
            p.push(
                "venue.credentials",
                format!(
                    "missing: required when {binance_key} = true (the API key and its Ed25519 key)"
                ),
            );
            return None;
        }
    };
    let ca_file = ca_file?;
    let (tls, host, addr) = parsed?;
    let tls = tls_config(p, ca_key, tls, ca_file.as_deref())?;
    Some(OrderEntrySettings {
        url: url?,
        addr,
        host,
        tls,
        ca_file,
        credentials: credentials_path.map(Path::to_owned),
        session: SessionConfig {
            sender_comp_id: sender_comp_id?,
            target_comp_id: target_comp_id?,
            heart_bt_int_s: heart_bt_int_s? as u32,
            // Binance's FIX API requires ResetSeqNumFlag (141) = Y on every Logon.
            reset_seq_num: binance_logon.is_some(),
            binance_logon,
        },
    })
}

/// The credentials file (see the module doc of `config`): the Binance logon, or every problem
/// under `key`.
pub(super) fn credentials(
    p: &mut Problems,
    key: &str,
    path: &Path,
    options: &ParseOptions,
) -> Result<BinanceLogon, ()> {
    let before = p.len();
    let fail = |p: &mut Problems, problem: String| p.push(key, problem);
    if let Err(problem) = check_private(path) {
        fail(p, problem);
    }
    let text = match read_limited(path, CREDENTIALS_LEN_MAX).and_then(|bytes| {
        String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8", path.display()))
    }) {
        Ok(text) => text,
        Err(problem) => {
            fail(p, problem);
            return Err(());
        }
    };
    let table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(e) => {
            fail(
                p,
                format!("{}: {}", path.display(), super::syntax_problem(&text, &e)),
            );
            return Err(());
        }
    };
    // Problems inside the file go under `key`, naming the file and its own key.
    let mut inner = Problems::default();
    let mut s = Section::new("", Some(&table));
    let api_key = s.required(&mut inner, "api_key", reader::string(API_KEY_LEN_MAX));
    let base = Base {
        dir: path.parent().unwrap_or(Path::new(".")),
        options,
    };
    let key_file = s.optional(&mut inner, "private_key_file", reader::file(base));
    let key_pem = s.optional(
        &mut inner,
        "private_key",
        reader::string(CREDENTIALS_LEN_MAX as usize),
    );
    let handling = s.or(
        &mut inner,
        "message_handling",
        MessageHandling::Sequential,
        reader::choice(&[
            ("sequential", MessageHandling::Sequential),
            ("unordered", MessageHandling::Unordered),
        ]),
    );
    s.finish(&mut inner);
    let secret = match (key_file, key_pem) {
        (Some(Some(file)), Some(None)) => check_private(&file)
            .and_then(|()| read_limited(&file, CREDENTIALS_LEN_MAX))
            .and_then(|pem| ed25519_seed(&pem).map_err(|e| format!("{}: {e}", file.display())))
            .map_err(|e| inner.push("private_key_file", e))
            .ok(),
        (Some(None), Some(Some(pem))) => ed25519_seed(pem.as_bytes())
            .map_err(|e| inner.push("private_key", e))
            .ok(),
        (Some(None), Some(None)) => {
            inner.push(
                "private_key_file",
                "missing: give private_key_file or private_key",
            );
            None
        }
        (Some(Some(_)), Some(Some(_))) => {
            inner.push(
                "private_key",
                "give private_key_file or private_key, not both",
            );
            None
        }
        _ => None, // reported
    };
    if let (Some(api_key), Some(secret), Some(handling)) = (api_key, secret, handling) {
        match BinanceLogon::new(&api_key, &secret, handling) {
            Ok(logon) if inner.is_empty() && p.len() == before => return Ok(logon),
            Ok(_) => {}
            Err(e) => inner.push("api_key", e.to_string()),
        }
    }
    for problem in inner.0 {
        fail(
            p,
            format!("{}: {}: {}", path.display(), problem.key, problem.problem),
        );
    }
    Err(())
}

/// The 32-byte seed of an Ed25519 private key in PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
/// The error never shows key material.
fn ed25519_seed(pem: &[u8]) -> Result<[u8; 32], String> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    let text = std::str::from_utf8(pem).map_err(|_| "not a PEM file (not UTF-8)".to_owned())?;
    let body = text
        .split_once(BEGIN)
        .and_then(|(_, rest)| rest.split_once(END))
        .map(|(body, _)| body)
        .ok_or_else(|| format!("no {BEGIN} ... {END} section (PKCS#8 PEM expected)"))?;
    let base64: String = body.split_ascii_whitespace().collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(base64.as_bytes())
        .map_err(|_| "the PEM body is not base64".to_owned())?;
    // Both forms put the seed at the same offset.
    let v1 = der.len() == 48 && der[..16] == PKCS8_ED25519_V1;
    let v2 = der.len() > 2 + 14 + 32
        && der[0] == 0x30
        && usize::from(der[1]) == der.len() - 2
        && der[2..16] == PKCS8_ED25519_V2_AFTER_LEN;
    if !(v1 || v2) {
        return Err(
            "not an Ed25519 private key in PKCS#8 (openssl genpkey -algorithm ed25519)".into(),
        );
    }
    Ok(der[16..48].try_into().expect("32 bytes"))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// `seed` as the PEM `openssl genpkey -algorithm ed25519` writes.
    pub(in crate::config) fn pem_of_seed(seed: &[u8; 32]) -> String {
        let mut der = PKCS8_ED25519_V1.to_vec();
        der.extend_from_slice(seed);
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(der)
        )
    }

    #[test]
    fn fix_urls_need_a_scheme_a_host_and_a_port() {
        assert_eq!(
            fix_url("tcp://127.0.0.1:9878").unwrap(),
            (false, "127.0.0.1".to_owned(), 9878)
        );
        assert_eq!(
            fix_url("TLS://[::1]:443/").unwrap(),
            (true, "::1".to_owned(), 443)
        );
        for (bad, why) in [
            ("http://x:1", "scheme"),
            ("tcp://x", "no port"),
            ("tcp://:1", "no host"),
            ("tcp://x:0", "port"),
            ("tcp://x:1/path", "path"),
            ("x:1", "no scheme"),
        ] {
            let err = fix_url(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn ed25519_keys_come_from_pkcs8_pem() {
        let seed = [7u8; 32];
        assert_eq!(ed25519_seed(pem_of_seed(&seed).as_bytes()).unwrap(), seed);
        // The v2 form (with the public key) as some tools write it.
        let mut der = vec![0x30, 0x51];
        der.extend_from_slice(&PKCS8_ED25519_V2_AFTER_LEN);
        der.extend_from_slice(&seed);
        der.extend_from_slice(&[0x81, 0x21, 0x00]);
        der.extend_from_slice(&[9u8; 32]);
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----",
            base64::engine::general_purpose::STANDARD.encode(&der)
        );
        assert_eq!(ed25519_seed(pem.as_bytes()).unwrap(), seed);
        assert!(ed25519_seed(b"hello").unwrap_err().contains("PKCS#8"));
        let rsa = "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----";
        assert!(
            ed25519_seed(rsa.as_bytes())
                .unwrap_err()
                .contains("Ed25519")
        );
    }

    #[test]
    fn stream_lists_need_one_depth_stream_and_no_repeats() {
        let parse = |text: &str| {
            let table: toml::Table = format!("s = {text}").parse().unwrap();
            streams(&table["s"])
        };
        assert_eq!(
            parse(r#"["depth@100ms", "bookTicker"]"#).unwrap(),
            vec![Stream::Depth100ms, Stream::BookTicker]
        );
        assert!(parse(r#"["bookTicker"]"#).unwrap_err().contains("depth"));
        assert!(
            parse(r#"["depth", "depth@100ms"]"#)
                .unwrap_err()
                .contains("exactly one")
        );
        assert!(
            parse(r#"["depth", "depth"]"#)
                .unwrap_err()
                .contains("twice")
        );
        assert!(
            parse(r#"["depth", "ticker"]"#)
                .unwrap_err()
                .contains("\"ticker\"")
        );
        assert!(parse("[]").unwrap_err().contains("0 streams"));
    }
}
