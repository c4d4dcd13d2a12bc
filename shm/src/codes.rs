//! The codes and names that every reader of a journal or a counters file needs, in one place:
//! who wrote a frame ([`writer_id`]), what a counter is ([`counter_type`], [`label`]), where
//! the daemon is in its life ([`Phase`]), what may trade ([`TradingState`]), which risk check
//! refused an order ([`RiskCheck`]), why an order was rejected ([`reject_reason`]) and why the
//! daemon halted itself ([`halt_reason`]).
//!
//! The engine writes these values and `levictl`, the exporter and recovery read them back, so
//! they live here, in the ABI crate, and a reader needs nothing but `shm` to name them. Every
//! code is journaled or published: codes never change meaning, new ones are appended.
//! `tests/codes.rs` checks that codes and names are unique and that every label fits a counter
//! slot.

/// Writer ids of the frames a daemon journals (the frame header's `writer_id`). One appender
/// per id (see [`Journal::appender`](crate::Journal::appender)).
pub mod writer_id {
    pub const FEED: u16 = 1;
    pub const STRATEGY: u16 = 2;
    pub const RISK: u16 = 3;
    pub const GATEWAY: u16 = 4;
    /// The venue session's own records (its sequence numbers).
    pub const VENUE_SESSION: u16 = 5;
    /// The daemon's cold path: its events, config texts and instrument definitions.
    pub const DAEMON: u16 = 6;

    /// Every writer id with its name (`levictl tail`'s `writer` field).
    pub const ALL: [(u16, &str); 6] = [
        (FEED, "feed"),
        (STRATEGY, "strategy"),
        (RISK, "risk"),
        (GATEWAY, "gateway"),
        (VENUE_SESSION, "venue_session"),
        (DAEMON, "daemon"),
    ];

    /// The name of a writer id (`None`: not one of ours).
    pub fn name(id: u16) -> Option<&'static str> {
        ALL.iter().find(|(w, _)| *w == id).map(|(_, n)| *n)
    }
}

/// Counter type ids (the counters file's `type_id`): how a reader shows a counter's value.
pub mod counter_type {
    /// A ring's full events (`ring.<name>.full`).
    pub const RING_FULL: u32 = 1;
    /// An agent's duty cycles (`agent.<role>.duty_cycles`).
    pub const DUTY_CYCLES: u32 = 100;
    /// An agent's duty cycles that found work (`agent.<role>.work`).
    pub const WORK: u32 = 101;
    /// An agent's longest duty cycle in ns (`agent.<role>.cycle_ns_max`).
    pub const CYCLE_NS_MAX: u32 = 102;
    /// Events counted by a stage (messages, orders, rejects...).
    pub const EVENTS: u32 = 200;
    /// A state shown as a number (the trading state, the phase, a connection up or down).
    pub const STATE: u32 = 201;
    /// A level that goes up and down (a position, open orders, a price, PnL); the label says
    /// its unit.
    pub const GAUGE: u32 = 202;
}

/// The counters' labels. Fixed labels are constants; a label per instrument, check, agent or
/// ring is made by a function here (on the cold path, when counters are allocated) and taken
/// apart by a reader with its `*_PREFIX`. `docs/metrics.md` says what each one becomes.
pub mod label {
    use super::RiskCheck;

    pub const FEED_MESSAGES: &str = "feed.messages";
    pub const FEED_DECODE_ERRORS: &str = "feed.decode_errors";
    pub const FEED_JOURNAL_ERRORS: &str = "feed.journal_errors";
    pub const FEED_STREAM_GAPS: &str = "feed.stream_gaps";

    pub const STRATEGY_EVENTS: &str = "strategy.events";
    pub const STRATEGY_ORDERS: &str = "strategy.orders";
    pub const STRATEGY_BOOK_RESYNCS: &str = "strategy.book_resyncs";
    pub const STRATEGY_SINK_OVERFLOWS: &str = "strategy.sink_overflows";
    pub const STRATEGY_PARAMS_UPDATES: &str = "strategy.params_updates";
    pub const STRATEGY_JOURNAL_ERRORS: &str = "strategy.journal_errors";
    /// Feature snapshots journaled (`[features] journal`).
    pub const STRATEGY_FEATURE_SNAPSHOTS: &str = "strategy.feature_snapshots";
    /// `strategy.model_id.<SYMBOL>`: the model the instrument's strategy votes with, its
    /// `model_id` (the file's SHA-256's first 8 bytes, big-endian) as the counter's 64 bits;
    /// 0 for none ([`strategy_model_id`]). Set when the strategy takes its parameters.
    pub const STRATEGY_MODEL_ID_PREFIX: &str = "strategy.model_id.";

    pub const RISK_PASSED: &str = "risk.passed";
    pub const RISK_REJECTED: &str = "risk.rejected";
    /// The [`TradingState`](super::TradingState) code.
    pub const RISK_TRADING_STATE: &str = "risk.trading_state";
    pub const RISK_OPEN_ORDERS: &str = "risk.open_orders";
    pub const RISK_PNL_MICROQUOTE: &str = "risk.pnl_microquote";
    pub const RISK_LIMITS_UPDATES: &str = "risk.limits_updates";
    pub const RISK_LIMITS_UPDATE_ERRORS: &str = "risk.limits_update_errors";
    pub const RISK_JOURNAL_ERRORS: &str = "risk.journal_errors";
    pub const RISK_STATUS_ROUNDS: &str = "risk.status_rounds";
    pub const RISK_STATUS_FILLS_APPLIED: &str = "risk.status_fills_applied";
    pub const RISK_STATUS_DROPPED: &str = "risk.status_dropped";
    pub const RISK_STATUS_ADOPTED: &str = "risk.status_adopted";
    pub const RISK_STATUS_UNACCOUNTED: &str = "risk.status_unaccounted";
    /// `risk.reject.<check>`: orders refused by one check ([`risk_reject`]).
    pub const RISK_REJECT_PREFIX: &str = "risk.reject.";
    /// `risk.position_units.<SYMBOL>` ([`risk_position_units`]).
    pub const RISK_POSITION_UNITS_PREFIX: &str = "risk.position_units.";
    /// `risk.open_orders.<SYMBOL>` ([`risk_open_orders`]).
    pub const RISK_OPEN_ORDERS_PREFIX: &str = "risk.open_orders.";
    /// `risk.pnl_microquote.<SYMBOL>` ([`risk_pnl_microquote`]).
    pub const RISK_PNL_MICROQUOTE_PREFIX: &str = "risk.pnl_microquote.";
    /// `risk.realised_pnl_microquote.<SYMBOL>` ([`risk_realised_pnl_microquote`]).
    pub const RISK_REALISED_PNL_MICROQUOTE_PREFIX: &str = "risk.realised_pnl_microquote.";

    pub const GATEWAY_ORDERS_SENT: &str = "gateway.orders_sent";
    pub const GATEWAY_ENCODE_ERRORS: &str = "gateway.encode_errors";
    pub const GATEWAY_REPORTS: &str = "gateway.reports";
    pub const GATEWAY_JOURNAL_ERRORS: &str = "gateway.journal_errors";

    /// `book.<SYMBOL>.<field>`: [`BOOK_SYNCED`] (1: the book is the venue's), [`BOOK_BID_PX`],
    /// [`BOOK_ASK_PX`] (price units) ([`book`]).
    pub const BOOK_PREFIX: &str = "book.";
    pub const BOOK_SYNCED: &str = "synced";
    pub const BOOK_BID_PX: &str = "bid_px";
    pub const BOOK_ASK_PX: &str = "ask_px";

    /// 1 while the market-data connection is up.
    pub const MARKET_DATA_UP: &str = "venue.market_data.up";
    pub const MARKET_DATA_CONNECTS: &str = "venue.market_data.connects";
    pub const MARKET_DATA_DISCONNECTS: &str = "venue.market_data.disconnects";
    pub const MARKET_DATA_FAILED_ATTEMPTS: &str = "venue.market_data.failed_attempts";
    pub const MARKET_DATA_PONG_TIMEOUTS: &str = "venue.market_data.pong_timeouts";
    pub const MARKET_DATA_ROLLOVERS: &str = "venue.market_data.rollovers";
    pub const MARKET_DATA_ROLLOVER_FALLBACKS: &str = "venue.market_data.rollover_fallbacks";

    /// 1 while the order-entry session is logged on.
    pub const ORDER_ENTRY_UP: &str = "venue.order_entry.up";
    pub const ORDER_ENTRY_LOGONS: &str = "venue.order_entry.logons";
    pub const ORDER_ENTRY_REPORTS: &str = "venue.order_entry.reports";
    pub const ORDER_ENTRY_FILLS: &str = "venue.order_entry.fills";
    /// Reports that could not be queued for risk: the daemon halts and asks for a mass status.
    pub const ORDER_ENTRY_REPORTS_DROPPED: &str = "venue.order_entry.reports_dropped";
    /// Inbound gaps the venue did not fill: the daemon halts and asks for a mass status.
    pub const ORDER_ENTRY_GAPS_UNFILLED: &str = "venue.order_entry.gaps_unfilled";
    pub const ORDER_ENTRY_REJECTS: &str = "venue.order_entry.rejects";
    pub const ORDER_ENTRY_DISCONNECTS: &str = "venue.order_entry.disconnects";
    pub const ORDER_ENTRY_RECONNECTS: &str = "venue.order_entry.reconnects";
    pub const ORDER_ENTRY_LOST_IN_FLIGHT: &str = "venue.order_entry.lost_in_flight";

    /// 1 while every agent's duty cycles move.
    pub const DAEMON_AGENTS_FRESH: &str = "daemon.agents_fresh";
    pub const DAEMON_UPTIME_S: &str = "daemon.uptime_s";
    /// The [`Phase`](super::Phase) code.
    pub const DAEMON_PHASE: &str = "daemon.phase";
    pub const DAEMON_CHECKPOINTS: &str = "daemon.checkpoints";
    pub const DAEMON_CHECKPOINT_FAILURES: &str = "daemon.checkpoint_failures";
    pub const DAEMON_LAST_CHECKPOINT_UNIX_S: &str = "daemon.last_checkpoint_unix_s";
    /// The [`halt_reason`](super::halt_reason) code of the daemon's own halt.
    pub const DAEMON_HALT_REASON: &str = "daemon.halt_reason";
    pub const DAEMON_SELF_HALTS: &str = "daemon.self_halts";
    pub const JOURNAL_RETENTION_FLOOR_HELD: &str = "journal.retention_floor_held";
    /// Segments retention keeps, past its age or size limit, because the archive does not
    /// have them yet (`[journal.retention] archive_watermark`; gauge).
    pub const JOURNAL_RETENTION_ARCHIVE_HELD: &str = "journal.retention_archive_held";
    /// Bytes of those segments (gauge).
    pub const JOURNAL_RETENTION_ARCHIVE_HELD_BYTES: &str = "journal.retention_archive_held_bytes";
    /// Segments pruned before the archive had them: the hard limit forced it (events; each
    /// also a `daemon_event::UNARCHIVED_PRUNED`).
    pub const JOURNAL_RETENTION_UNARCHIVED_PRUNED: &str = "journal.retention_unarchived_pruned";
    /// Times the archive watermark became unreadable (missing, malformed): while it is,
    /// retention takes nothing as archived (events).
    pub const JOURNAL_RETENTION_WATERMARK_UNREADABLE: &str =
        "journal.retention_watermark_unreadable";

    /// `agent.<role>.<field>`: [`AGENT_DUTY_CYCLES`], [`AGENT_WORK`], [`AGENT_CYCLE_NS_MAX`]
    /// ([`agent`]).
    pub const AGENT_PREFIX: &str = "agent.";
    pub const AGENT_DUTY_CYCLES: &str = "duty_cycles";
    pub const AGENT_WORK: &str = "work";
    pub const AGENT_CYCLE_NS_MAX: &str = "cycle_ns_max";

    /// `ring.<name>.full` ([`ring_full`]).
    pub const RING_PREFIX: &str = "ring.";

    /// Micro-units in one unit of the quote asset: the unit of the `risk.*pnl_microquote*`
    /// gauges.
    pub const MICROQUOTE_PER_QUOTE: i64 = 1_000_000;

    /// A `*_microquote` gauge's value as an exact decimal of the quote asset (cold path).
    pub fn microquote_text(micro: i64) -> String {
        let sign = if micro < 0 { "-" } else { "" };
        let abs = micro.unsigned_abs();
        let one = MICROQUOTE_PER_QUOTE as u64;
        format!("{sign}{}.{:06}", abs / one, abs % one)
    }

    /// `risk.reject.<check>`.
    pub fn risk_reject(check: RiskCheck) -> String {
        format!("{RISK_REJECT_PREFIX}{}", check.name())
    }

    /// `risk.position_units.<SYMBOL>`: the position in quantity units.
    pub fn risk_position_units(symbol: &str) -> String {
        format!("{RISK_POSITION_UNITS_PREFIX}{symbol}")
    }

    /// `risk.open_orders.<SYMBOL>`.
    pub fn risk_open_orders(symbol: &str) -> String {
        format!("{RISK_OPEN_ORDERS_PREFIX}{symbol}")
    }

    /// `risk.pnl_microquote.<SYMBOL>`: realised plus marked PnL, millionths of the quote asset.
    pub fn risk_pnl_microquote(symbol: &str) -> String {
        format!("{RISK_PNL_MICROQUOTE_PREFIX}{symbol}")
    }

    /// `risk.realised_pnl_microquote.<SYMBOL>`.
    pub fn risk_realised_pnl_microquote(symbol: &str) -> String {
        format!("{RISK_REALISED_PNL_MICROQUOTE_PREFIX}{symbol}")
    }

    /// `strategy.model_id.<SYMBOL>`.
    pub fn strategy_model_id(symbol: &str) -> String {
        format!("{STRATEGY_MODEL_ID_PREFIX}{symbol}")
    }

    /// `book.<SYMBOL>.<field>` (`field`: [`BOOK_SYNCED`], [`BOOK_BID_PX`], [`BOOK_ASK_PX`]).
    pub fn book(symbol: &str, field: &str) -> String {
        format!("{BOOK_PREFIX}{symbol}.{field}")
    }

    /// `agent.<role>.<field>` (`field`: [`AGENT_DUTY_CYCLES`], [`AGENT_WORK`],
    /// [`AGENT_CYCLE_NS_MAX`]).
    pub fn agent(role: &str, field: &str) -> String {
        format!("{AGENT_PREFIX}{role}.{field}")
    }

    /// `ring.<name>.full`.
    pub fn ring_full(name: &str) -> String {
        format!("{RING_PREFIX}{name}.full")
    }

    /// The archiver's counters (its own counters file, `archiver.lvc` in its state dir), one
    /// set per target: `archive.<target>.<field>`.
    pub const ARCHIVE_PREFIX: &str = "archive.";
    /// Segments archived and verified (events).
    pub const ARCHIVE_SEGMENTS: &str = "segments";
    /// Bytes of the segments archived and verified (events).
    pub const ARCHIVE_BYTES: &str = "bytes";
    /// Seconds since the oldest sealed segment not yet archived was created; 0 when none
    /// waits (gauge).
    pub const ARCHIVE_LAG_SECONDS: &str = "lag_seconds";
    /// Failed attempts: an upload, a read-back, a checksum mismatch, a manifest (events).
    pub const ARCHIVE_FAILURES: &str = "failures";
    /// Sealed segments not yet archived (gauge).
    pub const ARCHIVE_PENDING: &str = "pending";

    /// `archive.<target>.<field>` (`field`: [`ARCHIVE_SEGMENTS`], [`ARCHIVE_BYTES`],
    /// [`ARCHIVE_LAG_SECONDS`], [`ARCHIVE_FAILURES`], [`ARCHIVE_PENDING`]).
    pub fn archive(target: &str, field: &str) -> String {
        format!("{ARCHIVE_PREFIX}{target}.{field}")
    }
}

/// Where the daemon is in its life (the `daemon.phase` counter; `levictl status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    Starting = 0,
    Recovering = 1,
    Reconciling = 2,
    Running = 3,
    Stopping = 4,
}

impl Phase {
    /// Every phase, in code order.
    pub const ALL: [Phase; 5] = [
        Phase::Starting,
        Phase::Recovering,
        Phase::Reconciling,
        Phase::Running,
        Phase::Stopping,
    ];

    /// The counter value.
    pub const fn code(self) -> i64 {
        self as i64
    }

    pub const fn name(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Recovering => "recovering",
            Phase::Reconciling => "reconciling",
            Phase::Running => "running",
            Phase::Stopping => "stopping",
        }
    }

    /// The phase a `daemon.phase` counter value means (`None`: not one of them).
    pub fn from_code(value: i64) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.code() == value)
    }
}

/// What may trade. Ordered: a trip only ever moves towards `Halted`. Its code is the
/// `risk.trading_state` counter, a `TRADING_STATE` daemon event's value and a checkpoint's byte.
#[repr(u8)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TradingState {
    /// Every check applies; nothing else is refused.
    #[default]
    Active = 0,
    /// Only orders that cannot increase |position| (counting open orders at their worst)
    /// and never flip it; cancels.
    ReduceOnly = 1,
    /// The kill switch: no new orders or replaces; cancels only.
    Halted = 2,
}

impl TradingState {
    /// Every state, in code order.
    pub const ALL: [TradingState; 3] = [
        TradingState::Active,
        TradingState::ReduceOnly,
        TradingState::Halted,
    ];

    /// The journaled and published code: 0 active, 1 reduce-only, 2 halted.
    pub const fn code(self) -> i64 {
        self as i64
    }

    /// The state a code means (`None`: not one of them).
    pub fn from_code(code: i64) -> Option<TradingState> {
        TradingState::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The name operators read and write (`levictl status`, the config's `loss_state`).
    pub const fn name(self) -> &'static str {
        match self {
            TradingState::Active => "active",
            TradingState::ReduceOnly => "reduce_only",
            TradingState::Halted => "halted",
        }
    }

    /// The state with this name (`None`: not one of them).
    pub fn from_name(name: &str) -> Option<TradingState> {
        TradingState::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A pre-trade risk check, with its stable journaled code (`RiskReject::check`, and
/// `risk.reject.<name>`). The checks themselves, their order and units, are the engine's
/// (`levibot_engine::risk`); new checks are appended, codes never change.
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RiskCheck {
    /// Malformed request. limit 0, value: the field (`risk::invalid_field`).
    InvalidOrder = 1,
    /// `instrument_id` has no limits. limit: `RISK_INSTRUMENTS_MAX`, value: the id.
    UnknownInstrument = 2,
    /// Halted (kill switch, or a trip): no new orders or replaces. limit 0, value: the state.
    Halted = 3,
    /// Reduce-only: the order could increase |position|. limit 0, value: the worst-case
    /// position (long side for a buy, short side for a sell) with the order.
    ReduceOnly = 4,
    /// Message throttle (every request). limit: `count_max`, value: requests in the window
    /// with this one.
    MessageRate = 5,
    /// Order throttle (new orders and replaces). limit: `count_max`, value: with this one.
    OrderRate = 6,
    /// Client order id seen before. limit: the lowest id not yet seen for the strategy (or the
    /// id itself if an open order has it), value: the id (both as `i64` bits).
    DuplicateClientOrderId = 7,
    /// Identical to an order sent within `duplicate_window_ns`. limit: the window, value: ns
    /// since the identical one.
    DuplicateOrder = 8,
    /// Price off the tick grid. limit: `tick_units`, value: px.
    PriceTick = 9,
    /// Quantity off the lot grid. limit: `lot_units`, value: qty.
    QtyLot = 10,
    /// limit: `qty_min_units`, value: qty.
    QtyMin = 11,
    /// limit: `qty_max_units`, value: qty.
    QtyMax = 12,
    /// limit: `price_min_units`, value: px.
    PriceMin = 13,
    /// limit: `price_max_units`, value: px.
    PriceMax = 14,
    /// No reference price yet (no top of book seen). limit 0, value 0.
    NoReferencePrice = 15,
    /// Price too far from the reference. limit: `collar_bps`, value: the distance in bps
    /// (rounded up).
    PriceCollar = 16,
    /// `px x qty` (market: at the reference) below `notional_min`. Notional units of rejects.
    NotionalMin = 17,
    /// limit: `order_qty_max_units`, value: qty.
    OrderQtyMax = 18,
    /// limit: `order_notional_max`, value: the order's notional. Notional units of rejects.
    OrderNotionalMax = 19,
    /// Would trade against our own resting order. limit: the best opposite price of ours,
    /// value: px.
    SelfTrade = 20,
    /// Open orders in all instruments. limit: `open_orders_max`, value: with this one.
    OpenOrders = 21,
    /// Open orders in the instrument. limit: its `open_orders_max`, value: with this one.
    InstrumentOpenOrders = 22,
    /// Worst-case position. limit: `position_max_units`, value: `max(worst_long, -worst_short)`.
    PositionMax = 23,
    /// Gross exposure. Notional units of rejects.
    GrossExposure = 24,
    /// Net exposure. Notional units of rejects.
    NetExposure = 25,
    /// Too many fills in the window halted trading; journaled on the first order refused
    /// after the trip. limit: `fill_rate.count_max`, value: fills in the window.
    RepeatedExecution = 26,
    /// The loss went beyond `loss_max` (reduce-only or halted, as configured); journaled on the
    /// first order refused after the trip. limit: `-loss_max`, value: the PnL at the trip
    /// (notional units of rejects).
    MaxLoss = 27,
    /// Cancel or replace of an order risk does not know. limit 0, value: the target id bits.
    UnknownOrder = 28,
    /// The target already has `REPLACES_PENDING_MAX` replaces awaiting the venue. limit: that,
    /// value: with this one.
    ReplacesPending = 29,
}

impl RiskCheck {
    /// Every check, in code order.
    pub const ALL: [RiskCheck; 29] = [
        RiskCheck::InvalidOrder,
        RiskCheck::UnknownInstrument,
        RiskCheck::Halted,
        RiskCheck::ReduceOnly,
        RiskCheck::MessageRate,
        RiskCheck::OrderRate,
        RiskCheck::DuplicateClientOrderId,
        RiskCheck::DuplicateOrder,
        RiskCheck::PriceTick,
        RiskCheck::QtyLot,
        RiskCheck::QtyMin,
        RiskCheck::QtyMax,
        RiskCheck::PriceMin,
        RiskCheck::PriceMax,
        RiskCheck::NoReferencePrice,
        RiskCheck::PriceCollar,
        RiskCheck::NotionalMin,
        RiskCheck::OrderQtyMax,
        RiskCheck::OrderNotionalMax,
        RiskCheck::SelfTrade,
        RiskCheck::OpenOrders,
        RiskCheck::InstrumentOpenOrders,
        RiskCheck::PositionMax,
        RiskCheck::GrossExposure,
        RiskCheck::NetExposure,
        RiskCheck::RepeatedExecution,
        RiskCheck::MaxLoss,
        RiskCheck::UnknownOrder,
        RiskCheck::ReplacesPending,
    ];
    /// How many checks there are.
    pub const COUNT: usize = RiskCheck::ALL.len();

    /// The journaled code.
    #[inline]
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// Index in a table of one entry per check (`code - 1`).
    #[inline]
    pub const fn index(self) -> usize {
        self as usize - 1
    }

    /// The check with this code, if any.
    pub const fn from_code(code: u16) -> Option<RiskCheck> {
        if code >= 1 && code as usize <= RiskCheck::COUNT {
            Some(RiskCheck::ALL[code as usize - 1])
        } else {
            None
        }
    }

    /// A snake_case name, for metric labels and display.
    pub const fn name(self) -> &'static str {
        match self {
            RiskCheck::InvalidOrder => "invalid_order",
            RiskCheck::UnknownInstrument => "unknown_instrument",
            RiskCheck::Halted => "halted",
            RiskCheck::ReduceOnly => "reduce_only",
            RiskCheck::MessageRate => "message_rate",
            RiskCheck::OrderRate => "order_rate",
            RiskCheck::DuplicateClientOrderId => "duplicate_client_order_id",
            RiskCheck::DuplicateOrder => "duplicate_order",
            RiskCheck::PriceTick => "price_tick",
            RiskCheck::QtyLot => "qty_lot",
            RiskCheck::QtyMin => "qty_min",
            RiskCheck::QtyMax => "qty_max",
            RiskCheck::PriceMin => "price_min",
            RiskCheck::PriceMax => "price_max",
            RiskCheck::NoReferencePrice => "no_reference_price",
            RiskCheck::PriceCollar => "price_collar",
            RiskCheck::NotionalMin => "notional_min",
            RiskCheck::OrderQtyMax => "order_qty_max",
            RiskCheck::OrderNotionalMax => "order_notional_max",
            RiskCheck::SelfTrade => "self_trade",
            RiskCheck::OpenOrders => "open_orders",
            RiskCheck::InstrumentOpenOrders => "instrument_open_orders",
            RiskCheck::PositionMax => "position_max",
            RiskCheck::GrossExposure => "gross_exposure",
            RiskCheck::NetExposure => "net_exposure",
            RiskCheck::RepeatedExecution => "repeated_execution",
            RiskCheck::MaxLoss => "max_loss",
            RiskCheck::UnknownOrder => "unknown_order",
            RiskCheck::ReplacesPending => "replaces_pending",
        }
    }
}

impl std::fmt::Display for RiskCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `reject_reason` of a REJECTED `ExecutionReport`: the venue's OrdRejReason (103) as it sent
/// it, or one of ours.
///
/// Known overlap, journaled as it is: a session Reject of one of our orders is
/// [`SESSION_BASE`] + SessionRejectReason (373), so SessionRejectReason 0 and 1 read as
/// [`ENCODE`] and [`JOURNAL`]. [`name`] names them as the gateway's own.
pub mod reject_reason {
    /// The gateway could not encode the order.
    pub const ENCODE: u32 = 1000;
    /// The order was held back because its write-ahead journal append failed: no order leaves
    /// unjournaled.
    pub const JOURNAL: u32 = 1001;
    /// Added to SessionRejectReason (373) for a REJECTED report made from a session Reject of
    /// one of our orders, so that it is not taken for an OrdRejReason (103).
    pub const SESSION_BASE: u32 = 1000;
    /// An order the venue never received: its number fell in a range the venue asked us to
    /// resend, and we gap-filled it (orders are never re-sent).
    pub const LOST_IN_FLIGHT: u32 = 2000;

    /// The reason as a label: ours by name, the venue's by number.
    pub fn name(code: u32) -> String {
        match code {
            ENCODE => "encode".to_owned(),
            JOURNAL => "journal".to_owned(),
            LOST_IN_FLIGHT => "lost_in_flight".to_owned(),
            other => other.to_string(),
        }
    }
}

/// Why trading is halted, as journaled in
/// [`daemon_event::SELF_HALT`](crate::records::daemon_event::SELF_HALT) and published in the
/// `daemon.halt_reason` counter. Codes are stable: they are journaled; new ones are appended.
pub mod halt_reason {
    /// Not halted by the daemon itself (trading, or halted by an operator's `levictl kill`).
    pub const NONE: i64 = 0;
    /// The journal was empty at start (a reboot empties `/dev/shm`): nothing vouches for the
    /// state, so the daemon reconciled and waits for `levictl resume`
    /// (`daemon.empty_journal = "halt"`).
    pub const EMPTY_JOURNAL: i64 = 1;
    /// Reconciliation did not end with everything confirmed by the venue: a cancel unconfirmed
    /// at the deadline, or a mass status unanswered.
    pub const RECONCILE_UNCONFIRMED: i64 = 2;
    /// An execution report could not be queued for risk (`venue.order_entry.reports_dropped`):
    /// a fill may be missing, so a mass status was asked for.
    pub const REPORT_OVERFLOW: i64 = 3;
    /// An inbound FIX gap the venue did not fill (`venue.order_entry.gaps_unfilled`): a fill
    /// may be missing, so a mass status was asked for.
    pub const GAP_UNFILLED: i64 = 4;
    /// The journal could not take a record: the daemon stops (exit status
    /// [`JOURNAL_EXIT_STATUS`]).
    pub const JOURNAL_FULL: i64 = 5;
    /// The journal said trading was halted when the daemon stopped (a kill switch engaged
    /// before a restart stays engaged).
    pub const JOURNAL_SAYS_HALTED: i64 = 6;

    /// The exit status of a daemon that stopped because its journal failed. The unit lists it
    /// in `RestartPreventExitStatus=`: restarting into a full filesystem would only loop.
    pub const JOURNAL_EXIT_STATUS: i32 = 75;

    /// Every code with its name (`levictl status`, the exporter's `reason` label).
    pub const ALL: [(i64, &str); 7] = [
        (NONE, "none"),
        (EMPTY_JOURNAL, "empty_journal"),
        (RECONCILE_UNCONFIRMED, "reconcile_unconfirmed"),
        (REPORT_OVERFLOW, "report_overflow"),
        (GAP_UNFILLED, "gap_unfilled"),
        (JOURNAL_FULL, "journal_full"),
        (JOURNAL_SAYS_HALTED, "journal_says_halted"),
    ];

    /// The name of a code (`None`: not a known code).
    pub fn name(code: i64) -> Option<&'static str> {
        ALL.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
    }
}
