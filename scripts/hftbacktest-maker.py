#!/usr/bin/env python3
"""The engine's `maker` strategy (engine/src/strategy/maker.rs) on hftbacktest 2.4.4.

Runs over an event file written by `levibot-backtest export --format hftbacktest` and prints one
JSON object: fills, volume, turnover, fees, position and PnL (marked at the last mid), as
`levibot-backtest run --json` reports them, so that backtest/tests/hftbacktest.rs can compare the
two engines on the same data (docs/backtest.md, "Against hftbacktest").

The rule is maker.rs's, transcribed line for line (in the engine's integer price and quantity
units, with the same floating-point operations, so the targets are the same numbers):

    micro = (bid_px * ask_qty + ask_px * bid_qty) / (bid_qty + ask_qty)   (top of book)
    fair  = micro - inventory * skew_units_per_qty
    bid   = floor_to_tick(trunc(fair - half_spread)), at most best_ask - tick
    ask   = ceil_to_tick(trunc(fair + half_spread)), at least best_bid + tick
    a side quotes only while |inventory| stays within inventory_max after a fill of quote_qty

One request at a time per side: a quote whose last request is unanswered is left alone. A quote
whose target moved by more than the requote threshold is replaced (hftbacktest's `modify`, which
like the venue's replace loses the queue place for a new price); a side without a target is
cancelled. A one-sided or empty book leaves the quotes as they are. The strategy acts after each
market-data event, as the engine does (hftbacktest hands it every event at one timestamp at once).

A refused request is not sent again at the same price until something changes (maker.rs's
`refused_px`): the target moves, or another report (an ack, a fill, a cancel, of either side:
anything but a refusal) arrives after the refusal. A refused new order leaves the side without an
order; a refused replace leaves the original working. The refusals this setup meets: our risk
stage's self-trade check (carried over here), and a `modify` of an order that filled while the
modify was on its way (hftbacktest rejects it, as our venue refuses the replace: `unknown_order`).
hftbacktest 2.4.4's local side never gives an order the status REJECTED (a rejected modify or
cancel only sets `req` back to NONE; a rejected new order becomes EXPIRED), and that rejection
comes after the fill, for an order already gone. So the script keeps the side pending, as the
engine does, until the modify's round trip (entry plus response latency, both constant) is over;
then the side has no order and the modify's price is refused. A report arrives at its order's
`exch_timestamp` plus the response latency (a rejection leaves `exch_timestamp` alone), so that a
report that came before a refusal does not lift it.

The strategy runs compiled: `maker_loop`, the whole loop from the first event to the end of
the drain, is a numba `@njit` function that takes hftbacktest's `hbt` and plain numbers and
returns numbers (the order counts, what stopped it); the JSON is built outside it. That is
hftbacktest's documented way (its strategies are numba-jitted functions taking `hbt`, its
bindings are numba jitclasses made for them), the way its users run it and its speed figures
are measured, so a benchmark against hftbacktest is only fair this way: interpreted, the same
loop spends most of its time in Python (about 19 times the compiled loop's time on
levibot-bench's 1M-message session). `--engine python` runs the interpreted transcription
instead (`python_loop`, the rule as first written here, kept as the reference): both give the
same JSON, byte for byte (checked on the committed capture, a 50,000-message synthetic one and
levibot-bench's session, at 100 µs and 2.5 ms, risk_averse and power:2, both exchanges, the
test's fee pairs, and parameters that make the maker cancel). numba compiles the loop on the
first run of a process (seconds; the same code whatever the data).

With --timing (for benchmarks), the event file is loaded with numpy (timed: `load_seconds`), the
same backtest first runs on its first 10,000 events so that numba compiles the strategy loop
(numba compiles a function whole, every branch, for the argument types of the timed runs; then
compiling is disabled, so that a run that would compile fails instead) and hftbacktest's
bindings (not timed), then each run's backtest loop (from the first event to the end of the
final drain; not building the backtest, not the summary) is timed with `time.perf_counter`:
each JSON line gains `events` (rows of the event array), `seconds`, `events_per_sec`,
`load_seconds`, `strategy` (`numba` or `python`: --engine) and `hftbacktest_version`. Without
--timing the output is unchanged (backtest/tests/hftbacktest.rs compares it).

Installed with numpy by scripts/install-test-deps (hftbacktest==2.4.4).
"""

import argparse
import json
import math
import sys
import time

import numpy as np
from numba import njit


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help=".npz or .npy from levibot-backtest export")
    p.add_argument("--tick-size", type=float, required=True)
    p.add_argument("--lot-size", type=float, required=True)
    p.add_argument("--tick-units", type=int, required=True, help="price units per tick")
    p.add_argument("--lot-units", type=int, required=True, help="quantity units per lot")
    p.add_argument("--price-unit", type=float, required=True, help="one price unit, decimal")
    p.add_argument("--qty-unit", type=float, required=True, help="one quantity unit, decimal")
    p.add_argument("--config", help="a levibotd config: the maker's parameters of --symbol "
                   "([instruments.maker]; each must be given there or by its flag)")
    p.add_argument("--symbol", help="the instrument of --config")
    p.add_argument("--half-spread-ticks", type=int)
    p.add_argument("--quote-lots", type=int)
    p.add_argument("--skew-ticks-per-quote", type=float)
    p.add_argument("--requote-threshold-ticks", type=int)
    p.add_argument("--inventory-max-lots", type=int)
    p.add_argument("--entry-latency-ns", type=int, required=True)
    p.add_argument("--response-latency-ns", type=int, required=True)
    p.add_argument("--queue", default="risk_averse",
                   help="risk_averse, power:N, power2:N, power3:N, log, log2")
    p.add_argument("--exchange", default="no_partial_fill",
                   choices=["no_partial_fill", "partial_fill"])
    p.add_argument("--fees", action="append", metavar="MAKER_BPS:TAKER_BPS",
                   help="fees in basis points of the notional (negative: a rebate); repeated: one "
                   "run (one JSON line) each, in one process [default: 0:0]")
    p.add_argument("--engine", default="numba", choices=["numba", "python"],
                   help="the strategy loop compiled with numba, as hftbacktest's strategies run "
                   "(the default), or interpreted (the reference it is checked against)")
    p.add_argument("--timing", action="store_true",
                   help="for benchmarks: compile on a prefix of the data first, then time the "
                   "backtest loop and the data loading and add them (and the event count and "
                   "hftbacktest's version) to each JSON line")
    args = p.parse_args()
    maker = {}
    if args.config:
        import tomllib

        with open(args.config, "rb") as f:
            config = tomllib.load(f)
        for instrument in config.get("instruments", []):
            if instrument.get("symbol", "").upper() == (args.symbol or "").upper():
                maker = instrument.get("maker", {})
                break
        else:
            p.error(f"--symbol {args.symbol}: not an instrument of {args.config}")
    for key in ("half_spread_ticks", "quote_lots", "skew_ticks_per_quote",
                "requote_threshold_ticks", "inventory_max_lots"):
        if getattr(args, key) is None:
            if key not in maker:
                p.error(f"the maker's {key}: give --{key.replace('_', '-')} or --config")
            setattr(args, key, maker[key])
    return args


def build(args, data, maker_fee_bps, taker_fee_bps):
    """`data`: the event file's path, or its event array (which must outlive the backtest:
    hftbacktest reads it in place)."""
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    asset = (
        BacktestAsset()
        .data([data])
        .linear_asset(1.0)
        .constant_order_latency(args.entry_latency_ns, args.response_latency_ns)
        .trading_value_fee_model(maker_fee_bps / 1e4, taker_fee_bps / 1e4)
        .tick_size(args.tick_size)
        .lot_size(args.lot_size)
        .last_trades_capacity(0)
    )
    name, _, n = args.queue.partition(":")
    if name == "risk_averse":
        asset = asset.risk_adverse_queue_model()
    elif name == "power":
        asset = asset.power_prob_queue_model(float(n))
    elif name == "power2":
        asset = asset.power_prob_queue_model2(float(n))
    elif name == "power3":
        asset = asset.power_prob_queue_model3(float(n))
    elif name == "log":
        asset = asset.log_prob_queue_model()
    elif name == "log2":
        asset = asset.log_prob_queue_model2()
    else:
        sys.exit(f"hftbacktest-maker: unknown queue model {args.queue}")
    if args.exchange == "partial_fill":
        asset = asset.partial_fill_exchange()
    else:
        asset = asset.no_partial_fill_exchange()
    return HashMapMarketDepthBacktest([asset])


# hftbacktest.order's status and request codes.
NONE, NEW, EXPIRED, FILLED, CANCELED, PARTIALLY_FILLED = 0, 1, 2, 3, 4, 5
GTC, LIMIT = 0, 0


class Quote:
    """One side's working quote (maker.rs's `Quote`): hftbacktest keeps one order id through a
    modify, so the pending request is the order's own `req`."""

    def __init__(self):
        self.order_id = None
        self.px = 0  # price units
        self.pending = False
        # While a modify is pending: the local time it was sent.
        self.modify_ts = None
        # A modify whose order filled on its way: when hftbacktest's rejection of it arrives
        # (the side is pending until then, with no order).
        self.reject_at = None
        # The price the last request on this side was refused at (maker.rs's `refused_px`),
        # and when the refusal came: a report that arrives later lifts it.
        self.refused_px = None
        self.refused_at = 0


def floor_px(px, tick):
    return (px // tick) * tick


def ceil_px(px, tick):
    return -((-px) // tick) * tick


def trunc(x):
    # Rust's `as i64` on a finite f64.
    return int(x)


# The run's drain: responses still in flight arrive (the engine's run drains for 10 s likewise).
DRAIN_NS = 10_000_000_000

# The order counts the compiled loop fills in, in this order (the JSON's "orders").
COUNTS = ("new", "replace", "cancel", "feed_steps", "risk_self_trade")
C_NEW, C_REPLACE, C_CANCEL, C_FEED_STEPS, C_SELF_TRADE = range(len(COUNTS))

# What stopped the compiled loop (its first result; 0: nothing), with its second result as rc.
ERRORS = (None, "wait_next_feed returned {rc}", "order request returned {rc}",
          "more than {capacity} open orders on a side")

# Open orders per side the compiled loop keeps track of (a side has one working order, plus
# the cancelled ones whose cancel is still on its way: a few).
OPEN_MAX = 1024

# One side's quote in the compiled loop (`Quote`'s fields, a row of an int64 array; flags 0/1,
# an absent value is its flag at 0). Row 0: the bid (side 1); row 1: the ask (side -1).
Q_OID, Q_PX, Q_PENDING, Q_HAS_MODIFY, Q_MODIFY_TS, Q_HAS_REJECT, Q_REJECT_AT, \
    Q_HAS_REFUSED, Q_REFUSED_PX, Q_REFUSED_AT = range(10)
Q_FIELDS = 10


@njit
def _reset(q, s):
    # `Quote.__init__`: no order (order ids start at 1), nothing pending, nothing refused.
    for f in range(Q_FIELDS):
        q[s, f] = 0


@njit
def _refuse(q, s, px, at):
    q[s, Q_HAS_REFUSED] = 1
    q[s, Q_REFUSED_PX] = px
    q[s, Q_REFUSED_AT] = at


@njit
def _settle(hbt, q, s, tick, round_trip):
    """`settle` of the interpreted loop, for side row `s`."""
    if q[s, Q_HAS_REJECT] == 0:
        if q[s, Q_OID] == 0:
            return
        order = hbt.orders(0).get(q[s, Q_OID])
        if order is None:
            _reset(q, s)
            return
        if order.req != NONE:
            q[s, Q_PENDING] = 1
            return
        status = order.status
        gone = status == FILLED or status == CANCELED or status == EXPIRED
        if not (gone and q[s, Q_HAS_MODIFY] != 0 and order.price_tick * tick != q[s, Q_PX]):
            q[s, Q_PENDING] = 0
            q[s, Q_HAS_MODIFY] = 0
            q[s, Q_MODIFY_TS] = 0
            if gone:
                _reset(q, s)
            else:
                q[s, Q_PX] = order.price_tick * tick
            return
        # Gone at its old price: the modify is still on its way, to be rejected.
        q[s, Q_OID] = 0
        q[s, Q_HAS_REJECT] = 1
        q[s, Q_REJECT_AT] = q[s, Q_MODIFY_TS] + round_trip
    if hbt.current_timestamp >= q[s, Q_REJECT_AT]:
        px = q[s, Q_PX]
        at = q[s, Q_REJECT_AT]
        _reset(q, s)
        _refuse(q, s, px, at)


@njit
def _refresh_open(hbt, open_oid, open_px, open_answered, open_n, tick, response_latency):
    """`refresh_open` of the interpreted loop. A side's open orders are the first open_n[s]
    entries of its row (unordered). Of an order's prices only the one the self-trade check
    looks at is kept: a buy's highest, a sell's lowest."""
    reported = -1
    orders = hbt.orders(0)
    for s in range(2):
        i = 0
        while i < open_n[s]:
            order = orders.get(open_oid[s, i])
            drop = False
            if order is None:
                drop = True
            else:
                if order.exch_timestamp != open_answered[s, i]:
                    open_answered[s, i] = order.exch_timestamp
                    reported = max(reported, order.exch_timestamp + response_latency)
                status = order.status
                if status == FILLED or status == CANCELED or status == EXPIRED:
                    drop = True
                elif order.req == NONE:
                    open_px[s, i] = order.price_tick * tick
            if drop:
                last = open_n[s] - 1
                open_oid[s, i] = open_oid[s, last]
                open_px[s, i] = open_px[s, last]
                open_answered[s, i] = open_answered[s, last]
                open_n[s] = last
            else:
                i += 1
    return reported


@njit
def _self_trade(open_px, open_n, s, px):
    # Against the other side's open orders: a buy at or above our lowest sell, a sell at or
    # below our highest buy.
    o = 1 - s
    n = open_n[o]
    if n == 0:
        return False
    if s == 0:
        return px >= open_px[o, :n].min()
    return px <= open_px[o, :n].max()


@njit
def _open_add(open_oid, open_px, open_answered, open_n, s, oid, px):
    """A request at `px` for order `oid`: its prices gain px (a new entry if risk has it no
    longer). False: the side has no room left."""
    for i in range(open_n[s]):
        if open_oid[s, i] == oid:
            if s == 0:
                open_px[s, i] = max(open_px[s, i], px)
            else:
                open_px[s, i] = min(open_px[s, i], px)
            return True
    n = open_n[s]
    if n == open_oid.shape[1]:
        return False
    open_oid[s, n] = oid
    open_px[s, n] = px
    open_answered[s, n] = 0
    open_n[s] = n + 1
    return True


@njit
def maker_loop(hbt, tick, lot, lot_size, tick_size, half_spread, quote_qty, skew, requote,
               inventory_max, quote_lots_decimal, entry_latency, response_latency, counts):
    """The maker over the whole backtest, compiled (numba): `python_loop`'s rule, statement
    for statement, on arrays instead of objects. Runs to the end of the drain; fills in
    `counts` (COUNTS) and returns (error kind, rc) (ERRORS; 0: none)."""
    q = np.zeros((2, Q_FIELDS), dtype=np.int64)
    open_oid = np.zeros((2, OPEN_MAX), dtype=np.int64)
    open_px = np.zeros((2, OPEN_MAX), dtype=np.int64)
    open_answered = np.zeros((2, OPEN_MAX), dtype=np.int64)
    open_n = np.zeros(2, dtype=np.int64)
    round_trip = entry_latency + response_latency
    next_id = 1
    error_kind = 0
    error_rc = 0
    while True:
        rc = hbt.wait_next_feed(False, 1 << 60)
        if rc == 1:
            break
        if rc != 0 and rc != 2 and rc != 3:
            error_kind = 1
            error_rc = rc
            break
        counts[C_FEED_STEPS] += 1
        _settle(hbt, q, 0, tick, round_trip)
        _settle(hbt, q, 1, tick, round_trip)
        reported = _refresh_open(hbt, open_oid, open_px, open_answered, open_n, tick,
                                 response_latency)
        for s in range(2):
            # A report that came after the refusal: what is working changed.
            if q[s, Q_HAS_REFUSED] != 0 and reported > q[s, Q_REFUSED_AT]:
                q[s, Q_HAS_REFUSED] = 0
                q[s, Q_REFUSED_PX] = 0
        depth = hbt.depth(0)
        bb = depth.best_bid_tick
        ba = depth.best_ask_tick
        bq = depth.best_bid_qty
        aq = depth.best_ask_qty
        if not (math.isfinite(depth.best_bid) and math.isfinite(depth.best_ask)):
            continue
        bid_px = bb * tick
        ask_px = ba * tick
        bid_qty = round(bq / lot_size) * lot
        ask_qty = round(aq / lot_size) * lot
        qty = float(bid_qty) + float(ask_qty)
        if qty <= 0.0:
            continue
        micro = (float(bid_px) * float(ask_qty) + float(ask_px) * float(bid_qty)) / qty
        inv = round(hbt.position(0) / lot_size) * lot
        fair = micro - float(inv) * skew
        b = min(((int(fair - float(half_spread))) // tick) * tick, ask_px - tick)
        a = max(-((-int(fair + float(half_spread))) // tick) * tick, bid_px + tick)
        for s in range(2):
            if s == 0:
                has_target = inv + quote_qty <= inventory_max and b > 0
                target = b
            else:
                has_target = inv - quote_qty >= -inventory_max
                target = a
            # `steer` of the interpreted loop.
            rc = 0
            if q[s, Q_PENDING] != 0:
                continue
            if q[s, Q_HAS_REFUSED] != 0 and has_target and q[s, Q_REFUSED_PX] == target:
                continue
            q[s, Q_HAS_REFUSED] = 0
            q[s, Q_REFUSED_PX] = 0
            if q[s, Q_OID] == 0 and has_target:
                if _self_trade(open_px, open_n, s, target):
                    # Refused: the side has no order.
                    counts[C_SELF_TRADE] += 1
                    _refuse(q, s, target, hbt.current_timestamp)
                    continue
                oid = next_id
                next_id += 1
                px = target / tick * tick_size
                if s == 0:
                    rc = hbt.submit_buy_order(0, oid, px, quote_lots_decimal, GTC, LIMIT, False)
                else:
                    rc = hbt.submit_sell_order(0, oid, px, quote_lots_decimal, GTC, LIMIT, False)
                counts[C_NEW] += 1
                q[s, Q_OID] = oid
                q[s, Q_PX] = target
                q[s, Q_PENDING] = 1
                if not _open_add(open_oid, open_px, open_answered, open_n, s, oid, target):
                    error_kind = 3
            elif q[s, Q_OID] != 0 and has_target and abs(target - q[s, Q_PX]) > requote:
                if _self_trade(open_px, open_n, s, target):
                    # Refused: the quote stays as it was.
                    counts[C_SELF_TRADE] += 1
                    _refuse(q, s, target, hbt.current_timestamp)
                    continue
                if not _open_add(open_oid, open_px, open_answered, open_n, s, q[s, Q_OID],
                                 target):
                    error_kind = 3
                rc = hbt.modify(0, q[s, Q_OID], target / tick * tick_size, quote_lots_decimal,
                                False)
                counts[C_REPLACE] += 1
                q[s, Q_PX] = target
                q[s, Q_PENDING] = 1
                q[s, Q_HAS_MODIFY] = 1
                q[s, Q_MODIFY_TS] = hbt.current_timestamp
            elif q[s, Q_OID] != 0 and not has_target:
                rc = hbt.cancel(0, q[s, Q_OID], False)
                counts[C_CANCEL] += 1
                _reset(q, s)
            if rc != 0:
                error_kind = 2
                error_rc = rc
        if error_kind != 0:
            break
        hbt.clear_inactive_orders(0)
    if error_kind == 0:
        hbt.elapse(DRAIN_NS)
    return error_kind, error_rc


# --timing: the events of the untimed run that has numba compile hftbacktest's bindings.
WARMUP_EVENTS = 10_000


def load_events(path):
    """The event array of an .npz (its `data`, as hftbacktest reads it) or an .npy."""
    loaded = np.load(path)
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            return np.ascontiguousarray(loaded["data"])
    return np.ascontiguousarray(loaded)


def main():
    args = parse_args()
    data = args.data
    if args.timing:
        from importlib.metadata import version

        start = time.perf_counter()
        data = load_events(args.data)
        load_seconds = time.perf_counter() - start
        # Not timed: numba compiles the bindings the loop calls on their first call.
        warmup = np.ascontiguousarray(data[:WARMUP_EVENTS])
        run(args, warmup, 0.0, 0.0, warmup=True)
        del warmup
    failed = False
    for fees in args.fees or ["0:0"]:
        maker_fee_bps, taker_fee_bps = (float(x) for x in fees.split(":"))
        out, seconds = run(args, data, maker_fee_bps, taker_fee_bps)
        if args.timing:
            out["events"] = len(data)
            out["seconds"] = seconds
            out["events_per_sec"] = len(data) / seconds if seconds > 0 else None
            out["load_seconds"] = load_seconds
            out["strategy"] = args.engine
            out["hftbacktest_version"] = version("hftbacktest")
        print(json.dumps(out), flush=True)
        failed |= out["error"] is not None
    return 1 if failed else 0


def run(args, data, maker_fee_bps, taker_fee_bps, warmup=False):
    """One backtest over `data` (a path or an event array): the summary, and the seconds its
    loop took (from the first event to the end of the drain). `warmup` (--timing's untimed run
    on a prefix): compiles what the timed runs call, and nothing may compile after it."""
    hbt = build(args, data, maker_fee_bps, taker_fee_bps)
    p = Params(args)
    if args.engine == "numba":
        counts = np.zeros(len(COUNTS), dtype=np.int64)
        start = time.perf_counter()
        error_kind, error_rc = maker_loop(
            hbt, p.tick, p.lot, p.lot_size, p.tick_size, p.half_spread, p.quote_qty, p.skew,
            p.requote, p.inventory_max, p.quote_lots_decimal, p.entry_latency, p.response_latency,
            counts)
        seconds = time.perf_counter() - start
        if warmup:
            # The timed runs call the same function with the same types: compiled now, and a
            # run that would compile fails instead of timing the compiler.
            maker_loop.disable_compile()
        counts = {name: int(n) for name, n in zip(COUNTS, counts)}
        error = ERRORS[error_kind].format(rc=error_rc, capacity=OPEN_MAX) if error_kind else None
    else:
        start = time.perf_counter()
        counts, error = python_loop(hbt, p)
        seconds = time.perf_counter() - start
        if warmup:
            # Requests the prefix may not have made, for an order id never used: refused,
            # compiled (numba compiles each binding on its first call).
            hbt.modify(0, 0, 0.0, 0.0, False)
            hbt.cancel(0, 0, False)
    return summary(args, hbt, maker_fee_bps, taker_fee_bps, counts, error), seconds


class Params:
    """The maker's parameters in the engine's units (maker.rs's), typed as the compiled loop
    takes them (one signature for every run: compiled once)."""

    def __init__(self, args):
        self.tick = int(args.tick_units)
        self.lot = int(args.lot_units)
        self.lot_size = float(args.lot_size)
        self.tick_size = float(args.tick_size)
        self.half_spread = int(args.half_spread_ticks) * self.tick
        self.quote_qty = int(args.quote_lots) * self.lot
        self.skew = float(args.skew_ticks_per_quote * self.tick / (args.quote_lots * self.lot))
        self.requote = int(args.requote_threshold_ticks) * self.tick
        self.inventory_max = int(args.inventory_max_lots) * self.lot
        self.quote_lots_decimal = float(args.quote_lots * args.lot_size)
        self.entry_latency = int(args.entry_latency_ns)
        self.response_latency = int(args.response_latency_ns)


def python_loop(hbt, p):
    """The maker, interpreted (--engine python): the rule in plain Python, as first transcribed,
    kept as the reference maker_loop is checked against. Runs to the end of the drain; returns
    the order counts and what stopped it (None: nothing)."""
    tick = p.tick
    lot = p.lot
    half_spread = p.half_spread
    quote_qty = p.quote_qty
    skew = p.skew
    requote = p.requote
    inventory_max = p.inventory_max
    quote_lots_decimal = p.quote_lots_decimal

    bid, ask = Quote(), Quote()
    next_id = 1
    counts = dict.fromkeys(COUNTS, 0)
    error = None
    # The engine's risk check refuses an order that could trade with one of ours: a buy at or
    # above the lowest price any of our open sells may have (a pending replace's new price and
    # the price it replaces both count), a sell at or below our highest buy. "Open" is risk's
    # view: sent, and no final report received. {order_id: set of prices}, per side.
    open_px = {1: {}, -1: {}}

    # Each open order's `exch_timestamp` when last looked at: it changes with every response
    # hftbacktest applies to the order (an ack, a fill, a cancel), never with a rejection.
    answered = {}

    def refresh_open():
        """Risk's open orders, from the responses received; returns when the last report
        among them arrived (-1: none since the last call)."""
        reported = -1
        for side_orders in open_px.values():
            for oid in list(side_orders):
                order = hbt.orders(0).get(oid)
                if order is not None and order.exch_timestamp != answered.get(oid, 0):
                    answered[oid] = order.exch_timestamp
                    reported = max(reported, order.exch_timestamp + p.response_latency)
                if order is None or order.status in (FILLED, CANCELED, EXPIRED):
                    del side_orders[oid]
                    answered.pop(oid, None)
                elif order.req == NONE:
                    side_orders[oid] = {order.price_tick * tick}
        return reported

    def refuse(q, px, at):
        q.refused_px, q.refused_at = px, at

    def self_trade(side, px):
        other = [p for prices in open_px[-side].values() for p in prices]
        if not other:
            return False
        return px >= min(other) if side > 0 else px <= max(other)

    def inventory():
        # hftbacktest's position (base asset) in quantity units.
        return round(hbt.position(0) / p.lot_size) * lot

    def settle(q):
        """The quote after the responses received: pending until its request is answered;
        gone once filled, cancelled or expired. A modify that found its order filled is
        answered by a rejection one round trip after it was sent: then the side has no order
        and the modify's price is refused."""
        if q.reject_at is None:
            if q.order_id is None:
                return
            order = hbt.orders(0).get(q.order_id)
            if order is None:
                q.__init__()
                return
            if order.req != NONE:
                q.pending = True
                return
            gone = order.status in (FILLED, CANCELED, EXPIRED)
            if not (gone and q.modify_ts is not None and order.price_tick * tick != q.px):
                q.pending = False
                q.modify_ts = None
                if gone:
                    q.__init__()
                else:
                    q.px = order.price_tick * tick
                return
            # Gone at its old price: the modify is still on its way, to be rejected.
            q.order_id = None
            q.reject_at = q.modify_ts + p.entry_latency + p.response_latency
        if hbt.current_timestamp >= q.reject_at:
            px, at = q.px, q.reject_at
            q.__init__()
            refuse(q, px, at)

    def steer(q, side, target):
        nonlocal next_id
        if q.pending:
            return 0
        if q.refused_px is not None and q.refused_px == target:
            return 0
        q.refused_px = None
        if q.order_id is None and target is not None:
            if self_trade(side, target):
                # Refused: the side has no order.
                counts["risk_self_trade"] += 1
                refuse(q, target, hbt.current_timestamp)
                return 0
            oid = next_id
            next_id += 1
            px = target / tick * p.tick_size
            if side > 0:
                rc = hbt.submit_buy_order(0, oid, px, quote_lots_decimal, GTC, LIMIT, False)
            else:
                rc = hbt.submit_sell_order(0, oid, px, quote_lots_decimal, GTC, LIMIT, False)
            counts["new"] += 1
            q.order_id, q.px, q.pending = oid, target, True
            open_px[side][oid] = {target}
            return rc
        if q.order_id is not None and target is not None and abs(target - q.px) > requote:
            if self_trade(side, target):
                # Refused: the quote stays as it was.
                counts["risk_self_trade"] += 1
                refuse(q, target, hbt.current_timestamp)
                return 0
            open_px[side].setdefault(q.order_id, set()).add(target)
            rc = hbt.modify(0, q.order_id, target / tick * p.tick_size, quote_lots_decimal,
                            False)
            counts["replace"] += 1
            q.px, q.pending, q.modify_ts = target, True, hbt.current_timestamp
            return rc
        if q.order_id is not None and target is None:
            rc = hbt.cancel(0, q.order_id, False)
            counts["cancel"] += 1
            q.__init__()
            return rc
        return 0

    while True:
        rc = hbt.wait_next_feed(False, 1 << 60)
        if rc == 1:
            break
        if rc not in (0, 2, 3):
            error = f"wait_next_feed returned {rc}"
            break
        counts["feed_steps"] += 1
        settle(bid)
        settle(ask)
        reported = refresh_open()
        for q in (bid, ask):
            # A report that came after the refusal: what is working changed.
            if q.refused_px is not None and reported > q.refused_at:
                q.refused_px = None
        depth = hbt.depth(0)
        bb, ba = depth.best_bid_tick, depth.best_ask_tick
        bq, aq = depth.best_bid_qty, depth.best_ask_qty
        if not (math.isfinite(depth.best_bid) and math.isfinite(depth.best_ask)):
            continue
        bid_px, ask_px = bb * tick, ba * tick
        bid_qty = round(bq / p.lot_size) * lot
        ask_qty = round(aq / p.lot_size) * lot
        qty = float(bid_qty) + float(ask_qty)
        if qty <= 0.0:
            continue
        micro = (float(bid_px) * float(ask_qty) + float(ask_px) * float(bid_qty)) / qty
        inv = inventory()
        fair = micro - float(inv) * skew
        b = min(floor_px(trunc(fair - float(half_spread)), tick), ask_px - tick)
        a = max(ceil_px(trunc(fair + float(half_spread)), tick), bid_px + tick)
        bid_target = b if inv + quote_qty <= inventory_max and b > 0 else None
        ask_target = a if inv - quote_qty >= -inventory_max else None
        for q, side, target in ((bid, 1, bid_target), (ask, -1, ask_target)):
            rc = steer(q, side, target)
            if rc != 0:
                error = f"order request returned {rc}"
        if error:
            break
        hbt.clear_inactive_orders(0)

    # Responses still in flight arrive (the engine's run drains for 10 s likewise).
    if error is None:
        hbt.elapse(DRAIN_NS)
    return counts, error


def summary(args, hbt, maker_fee_bps, taker_fee_bps, counts, error):
    """The run's JSON object (closes the backtest)."""
    sv = hbt.state_values(0)
    depth = hbt.depth(0)
    mid = (depth.best_bid + depth.best_ask) / 2.0
    position = sv.position
    gross = sv.balance + position * mid
    out = {
        "engine": "hftbacktest 2.4.4",
        "exchange": args.exchange,
        "queue": args.queue,
        "maker_fee_bps": maker_fee_bps,
        "taker_fee_bps": taker_fee_bps,
        "fills": int(sv.num_trades),
        "volume_base": sv.trading_volume,
        "turnover_quote": sv.trading_value,
        "fees_quote": sv.fee,
        "position_base": position,
        "balance_quote": sv.balance,
        "last_mid": mid,
        "gross_pnl_quote": gross,
        "net_pnl_quote": gross - sv.fee,
        "orders": counts,
        "error": error,
    }
    hbt.close()
    return out


if __name__ == "__main__":
    sys.exit(main())
