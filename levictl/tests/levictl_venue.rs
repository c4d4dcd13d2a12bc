//! `levictl venue exchange-info` against venue-sim's REST API (on its own port, as Binance's is
//! on its own host): the file it writes holds exactly the venue's instruments, and a failure
//! names what was wrong and leaves the old file alone.

use std::path::Path;
use std::process::{Command, Output};

use levibot_gateway::instrument::parse_exchange_info;
use levibot_sim::demo;

fn levictl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_levictl"))
        .args(["venue", "exchange-info"])
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn fetches_checks_and_writes_the_venues_instruments() {
    let config = demo::venue_config(levibot_testkit::seed(), 0).unwrap();
    // The oracle: what the venue was started with, not what it serves.
    let expected = config.instruments.clone();
    let venue = demo::start_venue(config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exchangeInfo.json");
    let rest_url = format!("http://{}", venue.rest_addr());

    let ok = levictl(&[
        "--rest-url",
        &rest_url,
        "--symbols",
        "nknusdt,BTCUSDT",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("NKNUSDT, BTCUSDT"));
    let written = parse_exchange_info(&std::fs::read(&out).unwrap()).unwrap();
    let symbols: Vec<&str> = written.iter().map(|i| i.symbol.as_str()).collect();
    assert_eq!(symbols, ["NKNUSDT", "BTCUSDT"]);
    for got in &written {
        let mut want = expected
            .find(got.symbol.as_str().as_bytes())
            .unwrap()
            .clone();
        want.id = got.id;
        assert_eq!(got, &want);
    }
    assert!(!Path::new(&format!("{}.partial", out.display())).exists());

    // An unknown symbol: an error naming it, and the file written before is untouched.
    let before = std::fs::read(&out).unwrap();
    let unknown = levictl(&[
        "--rest-url",
        &rest_url,
        "--symbols",
        "NKNUSDT,NOPEUSDT",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("NOPEUSDT"),
        "{}",
        stderr(&unknown)
    );
    assert_eq!(std::fs::read(&out).unwrap(), before);

    // The streams' port is not the REST API: the venue's 404 says where it is.
    let streams_port = levictl(&[
        "--rest-url",
        &format!("http://{}", venue.md_addr()),
        "--symbols",
        "NKNUSDT",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!streams_port.status.success());
    assert!(
        stderr(&streams_port).contains("404") && stderr(&streams_port).contains("own port"),
        "{}",
        stderr(&streams_port)
    );
    for (args, says) in [
        (
            ["--rest-url", "ftp://127.0.0.1:1", "--symbols", "A"],
            "--rest-url",
        ),
        (
            ["--rest-url", "http://127.0.0.1:1/api", "--symbols", "A"],
            "path",
        ),
        (
            ["--rest-url", &rest_url, "--symbols", "NKN-USDT"],
            "--symbols",
        ),
    ] {
        let mut all = args.to_vec();
        all.extend(["--out", out.to_str().unwrap()]);
        let bad = levictl(&all);
        assert!(!bad.status.success());
        assert!(stderr(&bad).contains(says), "{args:?}: {}", stderr(&bad));
    }
    assert_eq!(std::fs::read(&out).unwrap(), before);
    venue.stop();
}
