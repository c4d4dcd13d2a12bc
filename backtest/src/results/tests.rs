//! Whole-results tests on hand-built runs: every expected figure is worked out by hand in the
//! comments and written as a literal (the nearest `f64` of the exact decimal, which the
//! results must give to the bit), or computed by a separate naive implementation
//! ([`random`]). [`bounds`] checks that memory stays bounded and curves thin as they should.

mod bounds;
mod random;

use levibot_gateway::decimal::Scale;
use levibot_gateway::instrument::{Instrument, InstrumentTable, Symbol};
use levibot_shm::records::side;
use rust_decimal::Decimal;

use super::*;

pub(super) const S: u64 = 1_000_000_000;
pub(super) const MS: u64 = 1_000_000;
/// 2023-11-14 22:13:20 UTC.
pub(super) const T0: u64 = 1_700_000_000 * S;

/// An instrument whose price unit is `10^-price_exp` of `quote` and quantity unit
/// `10^-qty_exp` of `base`.
pub(super) fn instrument(
    id: u32,
    base: &str,
    quote: &str,
    price_exp: u8,
    qty_exp: u8,
) -> Instrument {
    let symbol = format!("{base}{quote}");
    Instrument {
        id,
        symbol: Symbol::from_ascii(symbol.as_bytes()).unwrap(),
        status: "TRADING".into(),
        base_asset: base.into(),
        quote_asset: quote.into(),
        tick_size: Decimal::new(1, u32::from(price_exp)),
        min_price: Decimal::new(1, u32::from(price_exp)),
        max_price: Decimal::new(1_000_000, 0),
        step_size: Decimal::new(1, u32::from(qty_exp)),
        min_qty: Decimal::new(1, u32::from(qty_exp)),
        max_qty: Decimal::new(1_000_000, 0),
        min_notional: Decimal::ZERO,
        price_scale: Scale {
            mantissa: 1,
            exp: price_exp,
        },
        qty_scale: Scale {
            mantissa: 1,
            exp: qty_exp,
        },
        tick_units: 1,
        lot_units: 1,
    }
}

pub(super) fn mid(t_ns: u64, instrument_id: u32, bid: i64, ask: i64) -> ResultEvent {
    ResultEvent::Mid {
        t_ns,
        instrument_id,
        bid_plus_ask: bid + ask,
    }
}

pub(super) fn new_order(t_ns: u64, instrument_id: u32) -> ResultEvent {
    ResultEvent::Order {
        t_ns,
        instrument_id,
        kind: RequestKind::New,
    }
}

/// A fill; `rate_ppm` the fee in millionths of the notional (negative: a rebate).
#[allow(clippy::too_many_arguments)]
pub(super) fn fill(
    t_ns: u64,
    instrument_id: u32,
    buy: bool,
    px: i64,
    qty: i64,
    rate_ppm: i64,
    maker: bool,
    queue_ahead: i64,
) -> ResultEvent {
    ResultEvent::Fill(FillEvent {
        t_ns,
        instrument_id,
        client_order_id: t_ns,
        side: if buy { side::BUY } else { side::SELL },
        px,
        qty,
        fee_scaled: fee_scaled(px, qty, rate_ppm),
        maker,
        queue_ahead,
        order_first_fill: true,
    })
}

pub(super) fn run(
    instruments: &[Instrument],
    config: ResultsConfig,
    events: &[ResultEvent],
    end_ns: u64,
) -> (Summary, crate::report::ReportData) {
    let mut results = Results::new(instruments, config);
    for e in events {
        results.on_event(e);
    }
    results.finish(end_ns)
}

pub(super) fn close(got: f64, want: f64, what: &str) {
    let tolerance = 1e-9 * want.abs().max(1e-3);
    assert!(
        (got - want).abs() <= tolerance,
        "{what}: got {got}, want {want}"
    );
}

/// Sharpe and Sortino of the changes of `equity`, the textbook way (two passes).
pub(super) fn naive_ratios(equity: &[f64]) -> (Option<f64>, Option<f64>) {
    let r: Vec<f64> = equity.windows(2).map(|w| w[1] - w[0]).collect();
    if r.len() < 2 {
        return (None, None);
    }
    let n = r.len() as f64;
    let mean = r.iter().sum::<f64>() / n;
    let var = r.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    let down = (r.iter().map(|x| x.min(0.0) * x.min(0.0)).sum::<f64>() / n).sqrt();
    (
        (var > 0.0).then(|| mean / var.sqrt()),
        (down > 0.0).then(|| mean / down),
    )
}

/// NKNUSDT with prices in 0.0001 USDT and quantities in 0.1 NKN (a notional unit is
/// 0.00001 USDT, a fee unit 1e-11 USDT).
pub(super) fn nkn() -> Instrument {
    instrument(0, "NKN", "USDT", 4, 1)
}

/// A round trip through a flip of the position, with a rebate and a fee:
///
/// | t (s) | event                                   | position | cash     | mark   | fees     | net      |
/// |-------|-----------------------------------------|----------|----------|--------|----------|----------|
/// | 1     | mid 0.3500/0.3502                       | 0        | 0        | 0.3501 | 0        | 0        |
/// | 2     | buy 1000 @ 0.3500 maker, -1 bps rebate  | 1000     | -350     | 0.3501 | -0.035   | 0.135    |
/// | 3     | mid 0.3490/0.3492                       | 1000     | -350     | 0.3491 | -0.035   | -0.865   |
/// | 4     | sell 1500 @ 0.3495 taker, 10 bps fee    | -500     | 174.25   | 0.3491 | 0.48925  | -0.78925 |
/// | 6     | mid 0.3480/0.3482                       | -500     | 174.25   | 0.3481 | 0.48925  | -0.28925 |
///
/// net = cash + position x mark - fees; the rebate is 0.35 x 1000 x 0.0001 = 0.035, the fee
/// 0.3495 x 1500 x 0.001 = 0.52425.
fn round_trip() -> Vec<ResultEvent> {
    vec![
        ResultEvent::Message { t_ns: T0 + S },
        mid(T0 + S, 0, 3500, 3502),
        new_order(T0 + 1500 * MS, 0),
        ResultEvent::Latency(LatencyEvent {
            kind: RequestKind::New,
            sent_ns: 10_000,
            answered_ns: 60_000,
        }),
        fill(T0 + 2 * S, 0, true, 3500, 10_000, -100, true, 5_000),
        ResultEvent::Message { t_ns: T0 + 3 * S },
        mid(T0 + 3 * S, 0, 3490, 3492),
        new_order(T0 + 4 * S, 0),
        fill(T0 + 4 * S, 0, false, 3495, 15_000, 1_000, false, 0),
        ResultEvent::Reject {
            t_ns: T0 + 5 * S,
            reason: "post_only_would_cross",
        },
        ResultEvent::Order {
            t_ns: T0 + 5 * S,
            instrument_id: 0,
            kind: RequestKind::Cancel,
        },
        mid(T0 + 6 * S, 0, 3480, 3482),
    ]
}

#[test]
fn results_of_a_round_trip_by_hand() {
    let (s, _) = run(
        &[nkn()],
        ResultsConfig::default(),
        &round_trip(),
        T0 + 7 * S,
    );
    assert_eq!((s.start_t_ns, s.end_t_ns), (Some(T0 + S), T0 + 7 * S));
    assert_eq!(s.messages, 2);
    assert_eq!(
        s.orders,
        OrderCounts {
            new: 2,
            cancel: 1,
            replace: 0
        }
    );
    assert_eq!((s.orders_filled, s.fill_ratio), (2, Some(1.0)));
    assert_eq!((s.fills, s.fills_maker), (2, 1));
    assert_eq!(
        s.rejects,
        BTreeMap::from([("post_only_would_cross".to_string(), 1)])
    );
    let i = &s.instruments[0];
    assert_eq!(
        (
            i.symbol.as_str(),
            i.base_asset.as_str(),
            i.quote_asset.as_str()
        ),
        ("NKNUSDT", "NKN", "USDT")
    );
    assert_eq!(i.position_base, -500.0);
    assert_eq!(
        (i.bought_base, i.sold_base, i.traded_base),
        (1000.0, 1500.0, 2500.0)
    );
    assert_eq!(i.turnover_quote, 874.25); // 350 + 524.25
    assert_eq!(i.fees_quote, 0.48925); // -0.035 + 0.52425
    assert_eq!(i.gross_pnl_quote, 0.2); // 174.25 - 500 x 0.3481
    assert_eq!(i.net_pnl_quote, -0.28925);
    assert_eq!(i.maker_share, Some(0.4)); // 1000 of 2500
    assert_eq!(i.last_mid_px, Some(0.3481));
    assert_eq!(i.queue_ahead.maker_fills, 1);
    assert_eq!(i.queue_ahead.mean_base, Some(500.0));
    // One maker fill: its queue at every percentile.
    assert_eq!(i.queue_ahead.p50_base, Some(500.0));
    assert_eq!(i.queue_ahead.p90_base, Some(500.0));

    let t = s.totals.as_ref().unwrap();
    assert_eq!(s.totals_absent_reason, None);
    assert_eq!(t.quote_asset, "USDT");
    assert_eq!(
        (
            t.turnover_quote,
            t.fees_quote,
            t.gross_pnl_quote,
            t.net_pnl_quote
        ),
        (874.25, 0.48925, 0.2, -0.28925)
    );

    // Equity changes at 2, 3, 4 and 6 s: 0.135, -0.865, -0.78925, -0.28925. The largest fall
    // is from 0.135 (2 s) to -0.865 (3 s).
    let e = &s.equity;
    assert_eq!(e.max_drawdown_quote, Some(1.0));
    assert_eq!(e.max_drawdown_peak_t_ns, Some(T0 + 2 * S));
    assert_eq!(e.max_drawdown_trough_t_ns, Some(T0 + 3 * S));
    // Samples at 1..=7 s, each after the events at its time.
    let samples = [0.0, 0.135, -0.865, -0.78925, -0.78925, -0.28925, -0.28925];
    let (sharpe, sortino) = naive_ratios(&samples);
    assert_eq!(e.intervals, 6);
    assert_eq!(e.sharpe_interval_s, 1.0);
    close(e.sharpe.unwrap(), sharpe.unwrap(), "sharpe");
    close(e.sortino.unwrap(), sortino.unwrap(), "sortino");
    let annual = (365.0f64 * 86_400.0).sqrt();
    close(
        e.sharpe_annualised.unwrap(),
        sharpe.unwrap() * annual,
        "annualised",
    );
    close(
        e.sortino_annualised.unwrap(),
        sortino.unwrap() * annual,
        "annualised",
    );

    assert_eq!(s.latency.new.count, 1);
    assert_eq!(s.latency.new.max_us, Some(50.0));
    assert_eq!(s.latency.cancel.count, 0);
}

#[test]
fn markouts_of_a_round_trip_by_hand() {
    let (s, _) = run(
        &[nkn()],
        ResultsConfig::default(),
        &round_trip(),
        T0 + 7 * S,
    );
    let m = &s.instruments[0].markouts;
    assert_eq!(
        m.iter().map(|m| m.horizon_ns).collect::<Vec<_>>(),
        [100 * MS, S, 10 * S]
    );
    // Buy 1000 @ 0.3500 at 2 s; sell 1500 @ 0.3495 at 4 s.
    // +100 ms: buy sees 0.3501 (+0.0001 x 1000 = 0.1), sell sees 0.3491 (+0.0004 x 1500 =
    // 0.6).
    let buy_100ms = 0.0001 / 0.35 * 1e4;
    let sell = 0.0004 / 0.3495 * 1e4;
    assert_eq!((m[0].fills_marked, m[0].qty_marked_base), (2, 2500.0));
    assert_eq!(m[0].total_quote, 0.7);
    close(
        m[0].mean_bps.unwrap(),
        (1000.0 * buy_100ms + 1500.0 * sell) / 2500.0,
        "mean bps at 100 ms",
    );
    // +1 s: the buy's horizon is 3 s, when the mid became 0.3491 (the mid at or before):
    // -0.0009 x 1000 = -0.9. The sell's (5 s) sees 0.3491 still: 0.6.
    let buy_1s = -0.0009 / 0.35 * 1e4;
    assert_eq!(m[1].fills_marked, 2);
    assert_eq!(m[1].total_quote, -0.3);
    close(
        m[1].mean_bps.unwrap(),
        (1000.0 * buy_1s + 1500.0 * sell) / 2500.0,
        "mean bps at 1 s",
    );
    // +10 s: both past the end (7 s).
    assert_eq!((m[2].fills_marked, m[2].fills_past_end), (0, 2));
    assert_eq!((m[2].mean_bps, m[2].total_quote), (None, 0.0));
    assert_eq!(m.iter().map(|m| m.fills_without_mid).sum::<u64>(), 0);
    let totals = &s.totals.as_ref().unwrap().markouts;
    assert_eq!(
        totals
            .iter()
            .map(|t| (t.fills_marked, t.total_quote))
            .collect::<Vec<_>>(),
        [(2, 0.7), (2, -0.3), (0, 0.0)]
    );
}

#[test]
fn report_of_a_round_trip_by_hand() {
    let (s, r) = run(
        &[nkn()],
        ResultsConfig::default(),
        &round_trip(),
        T0 + 7 * S,
    );
    assert_eq!(r.title, "NKNUSDT");
    let at = |k: u64| T0 + k * S;
    assert_eq!(
        (r.equity.name.as_str(), r.equity.unit.as_str()),
        ("equity", "USDT")
    );
    assert_eq!(
        r.equity.points,
        [0.0, 0.135, -0.865, -0.78925, -0.78925, -0.28925, -0.28925]
            .iter()
            .enumerate()
            .map(|(k, &v)| (at(k as u64 + 1), v))
            .collect::<Vec<_>>()
    );
    // Equity minus its running peak (0.135 from 2 s on).
    let falls = [0.0, 0.0, -1.0, -0.92425, -0.92425, -0.42425, -0.42425];
    for (k, (&(t, v), want)) in r.drawdown.points.iter().zip(falls).enumerate() {
        assert_eq!(t, at(k as u64 + 1));
        close(v, want, "drawdown curve");
    }
    let nkn = &r.instruments[0];
    assert_eq!(nkn.symbol, "NKNUSDT");
    assert_eq!(
        (nkn.mid.unit.as_str(), nkn.position.unit.as_str()),
        ("USDT", "NKN")
    );
    let mids: Vec<f64> = nkn.mid.points.iter().map(|p| p.1).collect();
    assert_eq!(
        mids,
        [0.3501, 0.3501, 0.3491, 0.3491, 0.3491, 0.3481, 0.3481]
    );
    let positions: Vec<f64> = nkn.position.points.iter().map(|p| p.1).collect();
    assert_eq!(
        positions,
        [0.0, 1000.0, 1000.0, -500.0, -500.0, -500.0, -500.0]
    );
    assert_eq!(
        nkn.fills,
        [
            crate::report::ReportFill {
                t_ns: at(2),
                px: 0.35,
                qty: 1000.0,
                buy: true,
                maker: true
            },
            crate::report::ReportFill {
                t_ns: at(4),
                px: 0.3495,
                qty: 1500.0,
                buy: false,
                maker: false
            }
        ]
    );
    assert_eq!(r.latency_us, [(50.0, 1)]);
    let row = |label: &str| {
        r.summary
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no row {label:?} in {:#?}", r.summary))
    };
    assert_eq!(row("Start"), "2023-11-14 22:13:21.000 UTC");
    assert_eq!(row("Duration"), "6.000 s");
    assert_eq!(row("Net PnL (USDT)"), "-0.28925");
    assert_eq!(row("NKNUSDT position (NKN)"), "-500");
    assert_eq!(row("NKNUSDT maker share"), "40.0%");
    assert_eq!(row("Rejects"), "1 (post_only_would_cross 1)");
    assert!(row("Max drawdown (USDT)").starts_with("1, 2023-11-14 22:13:22.000 UTC to "));
    assert_eq!(s.instruments.len(), r.instruments.len());
}

#[test]
fn same_events_same_bytes() {
    let once = run(
        &[nkn()],
        ResultsConfig::default(),
        &round_trip(),
        T0 + 7 * S,
    );
    let again = run(
        &[nkn()],
        ResultsConfig::default(),
        &round_trip(),
        T0 + 7 * S,
    );
    let bytes = |r: &(Summary, crate::report::ReportData)| {
        (
            serde_json::to_string(&r.0).unwrap(),
            serde_json::to_string(&r.1).unwrap(),
        )
    };
    assert_eq!(bytes(&once), bytes(&again));
    let json = bytes(&once).0;
    // Stable order, numbers as numbers, null where undefined.
    assert!(
        json.starts_with(r#"{"start_t_ns":1700000001000000000,"end_t_ns":"#),
        "{json}"
    );
    assert!(json.contains(r#""net_pnl_quote":-0.28925"#), "{json}");
    assert!(
        json.contains(r#""replace":{"count":0,"mean_us":null"#),
        "{json}"
    );
}

/// Two instruments in USDT with different units: BTCUSDT in 0.01 USDT and 0.00001 BTC.
#[test]
fn two_instruments_with_one_quote_asset_add_up_exactly() {
    let btc = instrument(1, "BTC", "USDT", 2, 5);
    let mut events = round_trip();
    // Buy 0.002 BTC @ 50,000.00, 2 bps fee (0.02 USDT); the mid rises to 50,010.00: gross
    // +0.02, net 0. Sell 0.001 @ 50,020.00, no fee: gross 0.03 (cash -49.98, position
    // 0.001 at 50,010.00).
    events.extend([
        mid(T0 + 6 * S, 1, 4_999_900, 5_000_100),
        fill(T0 + 6 * S, 1, true, 5_000_000, 200, 200, true, 0),
        mid(T0 + 6500 * MS, 1, 5_000_900, 5_001_100),
        fill(T0 + 6600 * MS, 1, false, 5_002_000, 100, 0, false, 0),
    ]);
    events.sort_by_key(|e| e.t_ns().unwrap_or(0));
    let (s, r) = run(&[nkn(), btc], ResultsConfig::default(), &events, T0 + 7 * S);
    let b = &s.instruments[1];
    assert_eq!((b.symbol.as_str(), b.position_base), ("BTCUSDT", 0.001));
    assert_eq!(
        (b.gross_pnl_quote, b.fees_quote, b.net_pnl_quote),
        (0.03, 0.02, 0.01)
    );
    assert_eq!(b.turnover_quote, 150.02); // 100 + 50.02
    let t = s.totals.as_ref().unwrap();
    assert_eq!(t.turnover_quote, 1024.27); // 874.25 + 150.02
    assert_eq!(t.fees_quote, 0.50925); // 0.48925 + 0.02
    assert_eq!(t.gross_pnl_quote, 0.23); // 0.2 + 0.03
    assert_eq!(t.net_pnl_quote, -0.27925); // -0.28925 + 0.01
    assert_eq!(r.title, "NKNUSDT, BTCUSDT");
    assert_eq!(r.equity.points.last(), Some(&(T0 + 7 * S, -0.27925)));
    // The 6 s sample holds every 6 s event: NKN at -0.28925, BTC bought at the mid with its
    // fee, -0.02.
    let six = r.equity.points.iter().find(|p| p.0 == T0 + 6 * S).unwrap();
    assert_eq!(six.1, -0.30925);
}

#[test]
fn instruments_in_different_quote_assets_have_no_totals() {
    let nknbtc = instrument(1, "NKN", "BTC", 8, 0);
    let events = [
        mid(T0, 1, 100, 102),
        fill(T0 + S, 1, true, 100, 5, 0, true, 0),
        mid(T0 + 2 * S, 1, 104, 106),
    ];
    let (s, r) = run(
        &[nkn(), nknbtc],
        ResultsConfig::default(),
        &events,
        T0 + 3 * S,
    );
    assert_eq!(s.totals, None);
    let reason = s.totals_absent_reason.as_deref().unwrap();
    assert!(reason.contains("BTC, USDT"), "{reason}");
    assert_eq!(s.equity.sharpe, None);
    assert_eq!(s.equity.max_drawdown_quote, None);
    assert!(r.equity.points.is_empty() && r.drawdown.points.is_empty());
    // Each instrument still has its own figures: 5 NKN bought at 100e-8 BTC, marked at 105e-8.
    let i = &s.instruments[1];
    assert_eq!((i.position_base, i.gross_pnl_quote), (5.0, 0.000_000_25));
    assert!(
        r.summary
            .iter()
            .any(|(l, v)| l == "Totals" && v.contains("BTC, USDT"))
    );
}

#[test]
fn a_run_without_fills() {
    let table = InstrumentTable::new(vec![nkn()]).unwrap();
    let mut results = Results::new(table.iter(), ResultsConfig::default());
    for k in 0..5 {
        results.on_event(&ResultEvent::Message { t_ns: T0 + k * S });
        results.on_event(&mid(T0 + k * S, 0, 3500 + k as i64, 3502 + k as i64));
        if k == 2 {
            results.on_event(&new_order(T0 + 2 * S, 0));
        }
    }
    let (s, r) = results.finish(T0 + 5 * S);
    assert_eq!((s.fills, s.orders.new, s.fill_ratio), (0, 1, Some(0.0)));
    let i = &s.instruments[0];
    assert_eq!(
        (i.position_base, i.net_pnl_quote, i.maker_share),
        (0.0, 0.0, None)
    );
    assert_eq!(i.queue_ahead.mean_base, None);
    assert!(
        i.markouts
            .iter()
            .all(|m| m.fills_marked == 0 && m.mean_bps.is_none())
    );
    assert_eq!(
        (s.equity.intervals, s.equity.sharpe, s.equity.sortino),
        (5, None, None)
    );
    assert_eq!(s.equity.max_drawdown_quote, Some(0.0));
    assert_eq!(s.equity.max_drawdown_peak_t_ns, None);
    assert!(r.equity.points.iter().all(|p| p.1 == 0.0));
    assert!(r.instruments[0].fills.is_empty());

    let (empty, report) = Results::new(&[], ResultsConfig::default()).finish(T0);
    assert_eq!(
        (empty.start_t_ns, empty.fills, empty.totals),
        (None, 0, None)
    );
    assert_eq!(
        empty.totals_absent_reason.as_deref(),
        Some("no instruments")
    );
    assert_eq!(report.title, "levibot-backtest");
}

#[test]
fn a_fill_before_any_mid_is_marked_at_its_price() {
    let events = [
        fill(T0, 0, true, 3500, 10, 0, false, 0),
        mid(T0 + 2 * S, 0, 3510, 3510),
    ];
    let (s, r) = run(&[nkn()], ResultsConfig::default(), &events, T0 + 3 * S);
    let i = &s.instruments[0];
    // 1 NKN bought at 0.35, worth 0.35 until the first mid (not 0: equity would fall by the
    // price), then marked at 0.351.
    let equity: Vec<f64> = r.equity.points.iter().map(|p| p.1).collect();
    assert_eq!(equity, [0.0, 0.0, 0.001, 0.001]);
    assert_eq!(s.equity.max_drawdown_quote, Some(0.0));
    assert_eq!(i.net_pnl_quote, 0.001);
    // 100 ms and 1 s after the fill there was no mid yet; 10 s is past the end.
    let m = &i.markouts;
    assert_eq!((m[0].fills_without_mid, m[1].fills_without_mid), (1, 1));
    assert_eq!(m[2].fills_past_end, 1);
}

#[test]
fn late_and_unknown_events_are_counted() {
    let events = [
        mid(T0 + 2 * S, 0, 3500, 3502),
        ResultEvent::Message { t_ns: T0 + S },
        mid(T0 + 2 * S, 7, 1, 1),
        ResultEvent::Fill(FillEvent {
            side: 9,
            ..match fill(T0 + 2 * S, 0, true, 1, 1, 0, false, 0) {
                ResultEvent::Fill(f) => f,
                _ => unreachable!(),
            }
        }),
    ];
    let (s, _) = run(&[nkn()], ResultsConfig::default(), &events, T0);
    assert_eq!((s.events_out_of_order, s.events_ignored), (1, 2));
    assert_eq!((s.messages, s.fills, s.end_t_ns), (1, 0, T0 + 2 * S));
}
