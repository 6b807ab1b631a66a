"""Storage: every signal, decision and order in SQLite (WAL), mirrored monthly to Parquet.

Why SQLite is the outbox: the supervisor stores a signal before anyone is told about it, and the
bot marks a card sent only after Telegram accepted it. A process killed anywhere in between loses
nothing: on restart the bot sends exactly the cards still marked unsent. WAL and a busy timeout
let the supervisor and the bot use the file at the same time.

pyarrow is imported only inside mirror_parquet: it costs ~56 MB per process that imports it.
"""

from __future__ import annotations

import calendar
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.signal import Signal

_SCHEMA = """
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
    suppressed TEXT
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
"""


@dataclass
class OrderRecord:
    client_order_id: str
    signal_id: str
    symbol: str
    mode: str  # paper | live
    quote_qty: float
    status: str  # PENDING, FILLED, UNKNOWN, REJECTED, ...
    exchange_order_id: str | None = None
    price: float | None = None
    qty: float | None = None
    error_code: int | None = None
    error_msg: str | None = None
    created_ns: int = 0
    updated_ns: int = 0


class Store:
    """SQLite store under data_dir (scanner.sqlite3); safe to open from several processes."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / "scanner.sqlite3"
        self.db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=10000")
        self.db.executescript(_SCHEMA)

    # --- signals ---------------------------------------------------------------------------------

    def add_signal(self, signal: Signal) -> bool:
        """Store a signal; False when its id is already stored (never stored twice)."""
        data = signal.to_dict()
        cur = self.db.execute(
            "INSERT OR IGNORE INTO signals (signal_id, symbol, profile, exchange_time_ms, recv_ns, created_ns, price, prob,"
            " features, reasons, escalation, stored_ns) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (signal.signal_id, signal.symbol, signal.profile, signal.exchange_time_ms, signal.recv_ns, signal.created_ns,
             signal.price, signal.prob, json.dumps(data["features"]), json.dumps(signal.reasons), signal.escalation, time.time_ns()),
        )  # fmt: skip
        return cur.rowcount == 1

    @staticmethod
    def _signal(row: tuple[Any, ...]) -> Signal:
        features = {k: (float("nan") if v is None else float(v)) for k, v in json.loads(row[8]).items()}
        return Signal(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], features, json.loads(row[9]), row[10])

    _COLUMNS = "signal_id, symbol, profile, exchange_time_ms, recv_ns, created_ns, price, prob, features, reasons, escalation"

    def get_signal(self, signal_id: str) -> Signal | None:
        row = self.db.execute(f"SELECT {self._COLUMNS} FROM signals WHERE signal_id = ?", (signal_id,)).fetchone()
        return self._signal(row) if row else None

    def unsent_signals(self) -> list[Signal]:
        rows = self.db.execute(
            f"SELECT {self._COLUMNS} FROM signals WHERE card_sent_ns IS NULL AND suppressed IS NULL ORDER BY stored_ns, signal_id"
        ).fetchall()
        return [self._signal(r) for r in rows]

    def mark_card_sent(self, signal_id: str, chat_id: int, message_id: int, sent_ns: int) -> None:
        self.db.execute(
            "UPDATE signals SET card_sent_ns = ?, chat_id = ?, message_id = ? WHERE signal_id = ? AND card_sent_ns IS NULL",
            (sent_ns, chat_id, message_id, signal_id),
        )

    def card_sent_ns(self, signal_id: str) -> int | None:
        row = self.db.execute("SELECT card_sent_ns FROM signals WHERE signal_id = ?", (signal_id,)).fetchone()
        return row[0] if row else None

    def mark_suppressed(self, signal_id: str, reason: str) -> None:
        self.db.execute("UPDATE signals SET suppressed = ? WHERE signal_id = ?", (reason, signal_id))

    # --- decisions and orders --------------------------------------------------------------------

    def record_action(self, signal_id: str, user_id: int, action: str, at_ns: int) -> bool:
        """The first decision on a signal wins; False when it was already decided."""
        cur = self.db.execute(
            "INSERT OR IGNORE INTO actions (signal_id, user_id, action, at_ns) VALUES (?,?,?,?)", (signal_id, user_id, action, at_ns)
        )
        return cur.rowcount == 1

    def get_action(self, signal_id: str) -> tuple[str, int] | None:
        row = self.db.execute("SELECT action, user_id FROM actions WHERE signal_id = ?", (signal_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def upsert_order(self, order: OrderRecord) -> None:
        now = time.time_ns()
        self.db.execute(
            "INSERT INTO orders (client_order_id, signal_id, symbol, mode, quote_qty, status, exchange_order_id, price, qty,"
            " error_code, error_msg, created_ns, updated_ns) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(client_order_id) DO UPDATE SET status=excluded.status, exchange_order_id=excluded.exchange_order_id,"
            " price=excluded.price, qty=excluded.qty, error_code=excluded.error_code, error_msg=excluded.error_msg,"
            " updated_ns=excluded.updated_ns",
            (order.client_order_id, order.signal_id, order.symbol, order.mode, order.quote_qty, order.status, order.exchange_order_id,
             order.price, order.qty, order.error_code, order.error_msg, order.created_ns or now, now),
        )  # fmt: skip

    def get_order(self, client_order_id: str) -> OrderRecord | None:
        row = self.db.execute(
            "SELECT client_order_id, signal_id, symbol, mode, quote_qty, status, exchange_order_id, price, qty, error_code,"
            " error_msg, created_ns, updated_ns FROM orders WHERE client_order_id = ?",
            (client_order_id,),
        ).fetchone()
        return OrderRecord(*row) if row else None

    def stats(self, since_ns: int) -> dict[str, Any]:
        signals = self.db.execute("SELECT COUNT(*) FROM signals WHERE stored_ns >= ?", (since_ns,)).fetchone()[0]
        actions = dict(self.db.execute("SELECT action, COUNT(*) FROM actions WHERE at_ns >= ? GROUP BY action", (since_ns,)).fetchall())
        orders = dict(self.db.execute("SELECT mode, COUNT(*) FROM orders WHERE created_ns >= ? GROUP BY mode", (since_ns,)).fetchall())
        hours = max((time.time_ns() - since_ns) / 3.6e12, 1e-9)
        return {
            "signals": signals,
            "signals_per_hour": signals / hours,
            "buys": actions.get("buy", 0),
            "skips": actions.get("skip", 0),
            "paper_orders": orders.get("paper", 0),
            "live_orders": orders.get("live", 0),
        }

    # --- Parquet mirror --------------------------------------------------------------------------

    def mirror_parquet(self, month: str | None = None) -> Path:
        """Write signals of a month (YYYYMM, default this month) to parquet/signals_YYYYMM.parquet atomically."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        month = month or time.strftime("%Y%m", time.gmtime())
        year, mon = int(month[:4]), int(month[4:])
        start = calendar.timegm((year, mon, 1, 0, 0, 0)) * 1000
        end = calendar.timegm((year + (mon == 12), mon % 12 + 1, 1, 0, 0, 0)) * 1000
        cur = self.db.execute(
            "SELECT signal_id, symbol, profile, exchange_time_ms, recv_ns, created_ns, price, prob, features, reasons, escalation,"
            " card_sent_ns FROM signals WHERE exchange_time_ms >= ? AND exchange_time_ms < ? ORDER BY exchange_time_ms",
            (start, end),
        )
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
        table = pa.table({name: [r[i] for r in rows] for i, name in enumerate(names)})
        out_dir = self.data_dir / "parquet"
        out_dir.mkdir(exist_ok=True)
        target = out_dir / f"signals_{month}.parquet"
        tmp = target.with_suffix(".parquet.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, target)  # readers see the old file or the new one, never half of one
        return target

    def close(self) -> None:
        self.db.close()
