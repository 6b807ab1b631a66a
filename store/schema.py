"""The history's SQLite schema and row types: one table per concept, shared by writer and readers.

Why a module of its own: the supervisor writes signals and outcomes, the bot writes actions, the
trading client writes orders, and the Parquet mirror reads them all; the schema and its version are
the one contract between them, so it lives apart from any one of them.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA = """
CREATE TABLE IF NOT EXISTS signals (
    signal_id TEXT PRIMARY KEY,
    symbol TEXT NOT NULL,
    profile TEXT NOT NULL,
    exchange_time_ms INTEGER NOT NULL,
    recv_ns INTEGER NOT NULL,
    created_ns INTEGER NOT NULL,
    price REAL NOT NULL,
    prob REAL NOT NULL,
    features TEXT NOT NULL,
    reasons TEXT NOT NULL,
    escalation INTEGER NOT NULL,
    stored_ns INTEGER NOT NULL,
    card_sent_ns INTEGER,
    chat_id INTEGER,
    message_id INTEGER,
    suppressed TEXT,
    context TEXT
);
CREATE INDEX IF NOT EXISTS signals_symbol ON signals(symbol);
CREATE INDEX IF NOT EXISTS signals_unsent ON signals(card_sent_ns) WHERE card_sent_ns IS NULL;
CREATE TABLE IF NOT EXISTS actions (
    signal_id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL,
    action TEXT NOT NULL,
    at_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    client_order_id TEXT PRIMARY KEY,
    signal_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    mode TEXT NOT NULL,
    quote_qty REAL NOT NULL,
    status TEXT NOT NULL,
    exchange_order_id TEXT,
    price REAL,
    qty REAL,
    error_code INTEGER,
    error_msg TEXT,
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outcomes (
    signal_id TEXT PRIMARY KEY,
    symbol TEXT NOT NULL,
    profile TEXT NOT NULL,
    signal_time_ms INTEGER NOT NULL,
    price REAL NOT NULL,
    horizon_s REAL NOT NULL,
    hit_gain REAL NOT NULL,
    take_profit REAL NOT NULL,
    stop_loss REAL NOT NULL,
    outcome TEXT NOT NULL,
    trade TEXT,
    max_gain REAL,
    max_drawdown REAL,
    time_to_max_s REAL,
    tp_time_s REAL,
    sl_time_s REAL,
    rows INTEGER NOT NULL,
    observed_from_ms INTEGER NOT NULL,
    resumed INTEGER NOT NULL,
    reason TEXT,
    closed_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outcomes_closed ON outcomes(closed_ns);
"""
# Schema versions (PRAGMA user_version): 0 = signals/actions/orders only, 1 = + outcomes,
# 2 = + signals.context (the card's context: model_trained, price changes, 24 h volume; JSON).
# Every change only adds: tables by CREATE ... IF NOT EXISTS, columns by ADDED_COLUMNS' ALTERs,
# so opening an older file keeps every row (an old row's context is NULL: the Signal defaults).
SCHEMA_VERSION = 2
ADDED_COLUMNS = (("signals", "context", "TEXT"),)
# Signal fields kept in signals.context (common/signal.py; each has a default for old rows).
CONTEXT_FIELDS = ("model_trained", "change_1m", "change_5m", "change_15m", "quote_volume_24h")
OUTCOMES = ("hit", "miss", "unknown")
TRADES = ("TP", "SL", "TIMEOUT")
OUTCOME_COLUMNS = ("signal_id", "symbol", "profile", "signal_time_ms", "price", "horizon_s", "hit_gain", "take_profit", "stop_loss",
                   "outcome", "trade", "max_gain", "max_drawdown", "time_to_max_s", "tp_time_s", "sl_time_s", "rows",
                   "observed_from_ms", "resumed", "reason")  # fmt: skip
# The futures detector's episodes (issue #17): one row per (strategy, symbol, start_ms), so a
# replayed episode is never stored twice. Created by store/episodes.py on open, apart from SCHEMA:
# it only adds a table (IF NOT EXISTS), so files of any SCHEMA_VERSION keep their rows and the
# version stays where the signals' tables put it.
EPISODES_SCHEMA = """
CREATE TABLE IF NOT EXISTS episodes (
    strategy INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    peak_ratio REAL NOT NULL,
    peak_last REAL NOT NULL,
    peak_fair REAL NOT NULL,
    peak_ms INTEGER NOT NULL,
    ended_by TEXT NOT NULL,
    extra TEXT NOT NULL,
    stored_ns INTEGER NOT NULL,
    PRIMARY KEY (strategy, symbol, start_ms)
);
CREATE INDEX IF NOT EXISTS episodes_end ON episodes(end_ms);
"""
EPISODE_STRATEGIES = (1, 2, 3, 4)
ACTIONS = ("buy", "skip")
# signals.suppressed starts with this when the card budget (supervisor/budget.py) held the card back.
BUDGET_REASON = "card budget"
ORDER_MODES = ("paper", "live")


@dataclass
class OrderRecord:
    """One order attempt per signal (client_order_id is derived from the signal id).

    status: PENDING (written before sending), NEW/FILLED/PARTIALLY_FILLED/... (MEXC's word),
    UNKNOWN (MEXC did not confirm), REFUSED (our safety gate said no, nothing sent),
    REJECTED (MEXC said no).
    """

    client_order_id: str
    signal_id: str
    symbol: str
    mode: str  # paper | live
    quote_qty: float
    status: str
    exchange_order_id: str | None = None
    price: float | None = None
    qty: float | None = None
    error_code: int | None = None
    error_msg: str | None = None
    created_ns: int = 0
    updated_ns: int = 0
