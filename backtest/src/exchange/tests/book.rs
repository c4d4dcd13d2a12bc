//! The market side: venue times, the mid and message events, snapshots and bad input.

use super::*;

const E_MS: u64 = 1_700_000_000_204;

#[test]
fn a_depth_update_is_made_at_its_event_time_and_a_book_ticker_trails_by_the_last_gap() {
    let mut ex = Exchange::new(&instruments(), ExchangeConfig::default()).unwrap();
    let depth = depth_json(NKN, E_MS, 101, 101, &[], &[]);
    let recv = E_MS * MS + 3 * MS;
    assert_eq!(ex.recorded_venue_time_ns(depth.as_bytes(), recv), E_MS * MS);
    // The ticker says no time of its own: its receive time less NKNUSDT's last gap (3 ms).
    let ticker = ticker_json(NKN, px(3498), px(3500));
    let recv2 = recv + 50 * MS;
    assert_eq!(
        ex.recorded_venue_time_ns(ticker.as_bytes(), recv2),
        recv2 - 3 * MS
    );
    // RUNEEUR has seen no gap: its ticker is at its receive time.
    let rune_ticker = ticker_json(RUNE, 889_800_000, 890_100_000);
    assert_eq!(
        ex.recorded_venue_time_ns(rune_ticker.as_bytes(), recv2),
        recv2
    );
}

#[test]
fn a_trade_is_made_at_its_trade_time_not_its_event_time() {
    let mut ex = Exchange::new(&instruments(), ExchangeConfig::default()).unwrap();
    let (e, t) = (E_MS + 2, E_MS);
    let trade = format!(
        r#"{{"stream":"nknusdt@trade","data":{{"e":"trade","E":{e},"s":"NKNUSDT","t":7,"p":"3.49800000","q":"5.00000000","T":{t},"m":true,"M":true}}}}"#
    );
    let recv = e * MS + 7 * MS;
    assert_eq!(ex.recorded_venue_time_ns(trade.as_bytes(), recv), t * MS);
    let agg = format!(
        r#"{{"stream":"nknusdt@aggTrade","data":{{"e":"aggTrade","E":{e},"s":"NKNUSDT","a":3,"p":"3.49800000","q":"5.00000000","f":3,"l":3,"T":{t},"m":true,"M":true}}}}"#
    );
    let recv = recv + MS;
    assert_eq!(ex.recorded_venue_time_ns(agg.as_bytes(), recv), t * MS);
    // Its gap (recv - T = 10 ms) is the one a ticker then trails by.
    let ticker = ticker_json(NKN, px(3498), px(3500));
    assert_eq!(
        ex.recorded_venue_time_ns(ticker.as_bytes(), recv + MS),
        recv + MS - 10 * MS
    );
}

#[test]
fn an_event_time_after_the_receive_time_is_taken_as_the_receive_time() {
    let mut ex = Exchange::new(&instruments(), ExchangeConfig::default()).unwrap();
    let early = depth_json(NKN, E_MS, 101, 101, &[], &[]);
    ex.recorded_venue_time_ns(early.as_bytes(), E_MS * MS + 5 * MS);
    // A clock ahead of ours: the venue cannot have made it after we got it; the gap is 0.
    let ahead = depth_json(NKN, E_MS + 100, 102, 102, &[], &[]);
    let recv = E_MS * MS + 60 * MS;
    assert_eq!(ex.recorded_venue_time_ns(ahead.as_bytes(), recv), recv);
    let ticker = ticker_json(NKN, px(3498), px(3500));
    assert_eq!(
        ex.recorded_venue_time_ns(ticker.as_bytes(), recv + MS),
        recv + MS
    );
}

#[test]
fn a_message_without_a_venue_time_is_at_its_receive_time_and_leaves_the_gap() {
    let mut ex = Exchange::new(&instruments(), ExchangeConfig::default()).unwrap();
    let depth = depth_json(NKN, E_MS, 101, 101, &[], &[]);
    ex.recorded_venue_time_ns(depth.as_bytes(), E_MS * MS + 4 * MS);
    let recv = E_MS * MS + 9 * MS;
    let zero = depth_json(NKN, 0, 102, 102, &[], &[]);
    assert_eq!(ex.recorded_venue_time_ns(zero.as_bytes(), recv), recv);
    let snapshot = snapshot_json(5, &[], &[]);
    assert_eq!(ex.recorded_venue_time_ns(snapshot.as_bytes(), recv), recv);
    assert_eq!(ex.recorded_venue_time_ns(b"{not json", recv), recv);
    let ticker = ticker_json(NKN, px(3498), px(3500));
    assert_eq!(
        ex.recorded_venue_time_ns(ticker.as_bytes(), recv),
        recv - 4 * MS
    );
}

#[test]
fn every_stream_message_counts_and_a_snapshot_does_not() {
    let mut v = Venue::plain();
    v.snapshot(&[(3498, 5)], &[(3500, 5)]);
    let t_snapshot = v.t_ns;
    v.stream("{garbage");
    let t_garbage = v.t_ns;
    v.sold(3490, 1);
    let t_trade = v.t_ns;
    assert_eq!(
        v.results(),
        [
            ResultEvent::Mid {
                t_ns: t_snapshot,
                instrument_id: NKN,
                bid_plus_ask: px(3498) + px(3500)
            },
            ResultEvent::Message { t_ns: t_garbage },
            ResultEvent::Message { t_ns: t_trade },
        ]
    );
}

#[test]
fn the_mid_is_reported_when_the_top_changes_while_both_sides_have_one() {
    let mut v = Venue::plain();
    v.snapshot(&[(3498, 5)], &[(3500, 5)]);
    v.clear();
    let mids = |v: &mut Venue| -> Vec<i64> {
        v.results()
            .into_iter()
            .filter_map(|e| match e {
                ResultEvent::Mid { bid_plus_ask, .. } => Some(bid_plus_ask),
                _ => None,
            })
            .collect()
    };
    v.depth(&[(3497, 9)], &[(3501, 9)]); // behind the top
    assert!(mids(&mut v).is_empty());
    v.depth(&[(3499, 1)], &[]);
    assert_eq!(mids(&mut v), [px(3499) + px(3500)]);
    v.ticker(3499, 3501);
    assert_eq!(mids(&mut v), [px(3499) + px(3501)]);
    v.depth(&[], &[(3500, 0), (3501, 0)]); // no asks left
    assert!(mids(&mut v).is_empty());
    v.depth(&[], &[(3502, 4)]);
    assert_eq!(mids(&mut v), [px(3499) + px(3502)]);
    v.depth(&[(3499, 0), (3498, 0), (3497, 0)], &[]); // no bids left
    assert!(mids(&mut v).is_empty());
}

#[test]
fn a_snapshot_of_an_unknown_symbol_or_bad_bytes_is_skipped() {
    let mut v = Venue::plain();
    let json = snapshot_json(100, &nkn_levels(&[(3498, 5)]), &nkn_levels(&[(3500, 5)]));
    v.ex.on_market(InputKind::Snapshot, Some("BTCUSDT"), json.as_bytes(), T0);
    v.ex.on_market(InputKind::Snapshot, None, json.as_bytes(), T0);
    v.ex.on_market(
        InputKind::Snapshot,
        Some("NKNUSDT"),
        b"{\"lastUpdateId\":",
        T0,
    );
    assert!(v.results().is_empty());
    // No book: a market order finds nothing.
    v.send(&market(1, side::BUY, 5));
    assert!(v.fills().is_empty());
    // The symbol is found in any case.
    v.ex.on_market(InputKind::Snapshot, Some("nknusdt"), json.as_bytes(), T0);
    v.send(&market(2, side::BUY, 5));
    assert_eq!(v.position(), qty(5));
}

#[test]
fn a_book_ticker_does_not_change_the_book_a_taker_walks() {
    let mut v = Venue::plain();
    v.snapshot(&[(3498, 5)], &[(3500, 5)]);
    v.ticker(3497, 3499);
    v.send(&market(1, side::BUY, 3));
    assert_eq!(v.fill_briefs(), [(1, px(3500), qty(3), false)]);
}

#[test]
fn the_position_of_an_unknown_instrument_is_zero() {
    let v = Venue::plain();
    assert_eq!(v.ex.position(7), 0);
    assert_eq!(v.ex.position(RUNE), 0);
}

#[test]
fn queue_model_and_self_trade_names_round_trip() {
    for name in ["expire_taker", "expire_maker", "expire_both"] {
        let stp: SelfTradePrevention = name.parse().unwrap();
        assert_eq!(stp.to_string(), name);
    }
    let err = "expire_none".parse::<SelfTradePrevention>().unwrap_err();
    assert!(
        err.contains("expire_none") && err.contains("expire_both"),
        "{err}"
    );
    assert_eq!(
        ExchangeConfig::default(),
        ExchangeConfig {
            queue: QueueModel::RiskAverse,
            maker_fee_ppm: 0,
            taker_fee_ppm: 0,
            self_trade: SelfTradePrevention::ExpireTaker,
        }
    );
}

#[test]
fn a_depth_update_from_its_decoded_records_is_the_update_from_its_bytes() {
    use levibot_engine::recorder::depth_chunks;
    use levibot_gateway::binance::DepthUpdate;
    use levibot_shm::records::{Record, record_type};

    let mut ex = Exchange::new(&instruments(), ExchangeConfig::default()).unwrap();
    // One chunk (4 levels), and two (40 levels: a record holds 32).
    for n in [2i64, 20] {
        let bids: Vec<_> = (0..n).map(|k| (px(3490 - k), 100 + k)).collect();
        let asks: Vec<_> = (0..n).map(|k| (px(3500 + k), 200 + k)).collect();
        let json = depth_json(NKN, E_MS, 101, 105, &bids, &asks);
        let mut from_bytes = VenueMessage::default();
        ex.decode(InputKind::Stream, None, json.as_bytes(), &mut from_bytes);
        assert!(
            matches!(
                from_bytes.event,
                VenueEvent::Depth {
                    first_update_id: 101,
                    final_update_id: 105,
                    ..
                }
            ),
            "{:?}",
            from_bytes.event
        );
        assert_eq!(from_bytes.bids.len() as i64, n);
        let VenueEvent::Depth {
            instrument_id,
            event_time_ms,
            ..
        } = from_bytes.event
        else {
            unreachable!()
        };
        let update = DepthUpdate {
            instrument_id,
            recv_tsc: 0,
            event_time_ms,
            first_update_id: 101,
            final_update_id: 105,
            bids: &from_bytes.bids,
            asks: &from_bytes.asks,
        };
        let records: Vec<u8> = depth_chunks(&update)
            .flat_map(|chunk| chunk.to_bytes().to_vec())
            .collect();
        let mut from_records = VenueMessage::default();
        ex.decode(
            InputKind::Decoded(record_type::DEPTH_DIFF),
            None,
            &records,
            &mut from_records,
        );
        assert_eq!(from_records, from_bytes, "{n} levels a side");
    }
}
