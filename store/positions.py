"""Positions, their fills and their exits: three tables in the history's SQLite file.

Why fills are stored and figures are not: a position's quantity, average cost and PnL are a fold
over its fills (trading/avgcost.py). Storing the fills, keyed by (mode, trade id) so a fill read
twice from myTrades is stored once, makes a restart and a rebuild from the exchange the same
computation, with nothing to drift.

Why an exits journal: an exit is written PENDING with its client order id before it is sent, so a
process killed right after sending still knows it placed an exit and asks MEXC about that id
instead of selling again (the Buy's orders table plays the same role for buys).

Why approx_fee_fills is a table of its own: it names the fills whose third-asset (MX) fee was
converted at a later price because MEXC had no kline for the fill's minute (trading/fills.py); a
table of its own adds to the file instead of altering the fills table.

Why summaries_sent: the daily summary (bot/positions.py) is claimed for its UTC day here before it
is sent, so a bot restarted within the summary's hour does not send it again.

The tables are created with CREATE TABLE IF NOT EXISTS on open; they only add to the file, so the
schema version (store/schema.py) is unchanged.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from store.transaction import write_transaction

POSITIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS positions (
    position_id TEXT PRIMARY KEY,
    symbol TEXT NOT NULL,
    base TEXT NOT NULL,
    quote TEXT NOT NULL,
    mode TEXT NOT NULL,
    status TEXT NOT NULL,
    opened_ns INTEGER NOT NULL,
    closed_ns INTEGER,
    last_buy_ns INTEGER NOT NULL,
    peak_price REAL,
    note TEXT
);
CREATE INDEX IF NOT EXISTS positions_open ON positions(status, symbol);
CREATE TABLE IF NOT EXISTS fills (
    mode TEXT NOT NULL,
    trade_id TEXT NOT NULL,
    position_id TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    side TEXT NOT NULL,
    price REAL NOT NULL,
    qty REAL NOT NULL,
    fee REAL NOT NULL,
    fee_asset TEXT NOT NULL,
    fee_quote_rate REAL,
    time_ms INTEGER NOT NULL,
    PRIMARY KEY (mode, trade_id)
);
CREATE INDEX IF NOT EXISTS fills_position ON fills(position_id, time_ms);
CREATE TABLE IF NOT EXISTS exits (
    client_order_id TEXT PRIMARY KEY,
    position_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    mode TEXT NOT NULL,
    fraction REAL NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    exchange_order_id TEXT,
    error_msg TEXT,
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS exits_position ON exits(position_id);
CREATE TABLE IF NOT EXISTS summaries_sent (
    name TEXT PRIMARY KEY,
    day TEXT NOT NULL,
    sent_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS approx_fee_fills (
    mode TEXT NOT NULL,
    trade_id TEXT NOT NULL,
    PRIMARY KEY (mode, trade_id)
);
"""
POSITION_STATUSES = ("open", "closed")
# Exit statuses: PENDING (written before sending), UNKNOWN (sent, MEXC did not confirm), MEXC's
# word once known (NEW, FILLED, PARTIALLY_FILLED, CANCELED ...), REFUSED (our rules said no,
# nothing sent), REJECTED (MEXC said no).
EXIT_IN_DOUBT = ("PENDING", "UNKNOWN")


@dataclass
class PositionRow:
    position_id: str
    symbol: str
    base: str
    quote: str
    mode: str
    status: str
    opened_ns: int
    closed_ns: int | None
    last_buy_ns: int
    peak_price: float | None
    note: str | None


@dataclass
class FillRow:
    mode: str
    trade_id: str
    position_id: str
    client_order_id: str
    side: str
    price: float
    qty: float
    fee: float
    fee_asset: str
    fee_quote_rate: float | None
    time_ms: int
    fee_rate_approx: bool = False  # stored in approx_fee_fills


@dataclass
class ExitRow:
    client_order_id: str
    position_id: str
    symbol: str
    mode: str
    fraction: float
    reason: str
    status: str
    exchange_order_id: str | None = None
    error_msg: str | None = None
    created_ns: int = 0
    updated_ns: int = 0


_P = "position_id, symbol, base, quote, mode, status, opened_ns, closed_ns, last_buy_ns, peak_price, note"
_F = "mode, trade_id, position_id, client_order_id, side, price, qty, fee, fee_asset, fee_quote_rate, time_ms"
_FJ = ", ".join(f"f.{c.strip()}" for c in _F.split(",")) + ", a.trade_id IS NOT NULL"
_JOIN = "fills f LEFT JOIN approx_fee_fills a ON a.mode = f.mode AND a.trade_id = f.trade_id"
_E = "client_order_id, position_id, symbol, mode, fraction, reason, status, exchange_order_id, error_msg, created_ns, updated_ns"


class PositionStore:
    """Reads and writes of positions, fills and exits on the history's connection (store.history.Store.db)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.executescript(POSITIONS_SCHEMA)

    # --- positions ---------------------------------------------------------------------------------

    def open_position(self, mode: str, symbol: str) -> PositionRow | None:
        row = self.db.execute(f"SELECT {_P} FROM positions WHERE mode = ? AND symbol = ? AND status = 'open'", (mode, symbol)).fetchone()
        return PositionRow(*row) if row else None

    def get_position(self, position_id: str) -> PositionRow | None:
        row = self.db.execute(f"SELECT {_P} FROM positions WHERE position_id = ?", (position_id,)).fetchone()
        return PositionRow(*row) if row else None

    def positions(self, mode: str | None = None, status: str | None = None, closed_since_ns: int = 0) -> list[PositionRow]:
        """Positions, oldest first; closed ones only when closed since closed_since_ns."""
        sql = f"SELECT {_P} FROM positions WHERE 1=1"
        args: list[Any] = []
        if mode is not None:
            sql, args = sql + " AND mode = ?", [*args, mode]
        if status is not None:
            sql, args = sql + " AND status = ?", [*args, status]
        sql += " AND (closed_ns IS NULL OR closed_ns >= ?) ORDER BY opened_ns, position_id"
        return [PositionRow(*r) for r in self.db.execute(sql, (*args, closed_since_ns))]

    def add_position(self, row: PositionRow) -> PositionRow:
        """Insert a new open position; when one is already open for (mode, symbol) that one is returned."""
        with write_transaction(self.db):
            existing = self.open_position(row.mode, row.symbol)
            if existing is None:
                self.db.execute(f"INSERT INTO positions ({_P}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                                (row.position_id, row.symbol, row.base, row.quote, row.mode, row.status, row.opened_ns,
                                 row.closed_ns, row.last_buy_ns, row.peak_price, row.note))  # fmt: skip
        return existing or row

    def update_position(self, position_id: str, **fields: Any) -> None:
        allowed = {"status", "closed_ns", "last_buy_ns", "peak_price", "note"}
        if not fields or set(fields) - allowed:
            raise ValueError(f"update_position: fields {sorted(fields)}, expected some of {sorted(allowed)}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE positions SET {sets} WHERE position_id = ?", (*fields.values(), position_id))

    def last_buy_ns(self, mode: str, symbol: str) -> int | None:
        row = self.db.execute("SELECT MAX(last_buy_ns) FROM positions WHERE mode = ? AND symbol = ?", (mode, symbol)).fetchone()
        return row[0] if row and row[0] is not None else None

    # --- fills -------------------------------------------------------------------------------------

    def add_fills(self, fills: list[FillRow]) -> int:
        """Store fills (one transaction); a (mode, trade id) already stored is skipped. Returns how many were new."""
        new = 0
        with write_transaction(self.db):
            for f in fills:
                cur = self.db.execute(f"INSERT OR IGNORE INTO fills ({_F}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                                      (f.mode, f.trade_id, f.position_id, f.client_order_id, f.side, f.price, f.qty, f.fee,
                                       f.fee_asset, f.fee_quote_rate, f.time_ms))  # fmt: skip
                new += cur.rowcount
                if f.fee_rate_approx and cur.rowcount:
                    self.db.execute("INSERT OR IGNORE INTO approx_fee_fills (mode, trade_id) VALUES (?, ?)", (f.mode, f.trade_id))
        return new

    def fills(self, position_id: str) -> list[FillRow]:
        rows = self.db.execute(f"SELECT {_FJ} FROM {_JOIN} WHERE f.position_id = ? ORDER BY f.time_ms, f.rowid", (position_id,))
        return [FillRow(*r[:-1], bool(r[-1])) for r in rows]

    def fills_of_order(self, client_order_id: str) -> list[FillRow]:
        rows = self.db.execute(f"SELECT {_FJ} FROM {_JOIN} WHERE f.client_order_id = ? ORDER BY f.time_ms, f.rowid", (client_order_id,))
        return [FillRow(*r[:-1], bool(r[-1])) for r in rows]

    def buy_signals(self, position_id: str) -> list[str]:
        """The signals whose Buy filled into this position (their cards show it), oldest first."""
        rows = self.db.execute(
            "SELECT o.signal_id FROM fills f JOIN orders o ON o.client_order_id = f.client_order_id"
            " WHERE f.position_id = ? AND f.side = 'BUY' GROUP BY o.signal_id ORDER BY MIN(f.time_ms)", (position_id,))  # fmt: skip
        return [r[0] for r in rows]

    def position_of_signal(self, signal_id: str) -> str | None:
        row = self.db.execute(
            "SELECT f.position_id FROM fills f JOIN orders o ON o.client_order_id = f.client_order_id WHERE o.signal_id = ? LIMIT 1",
            (signal_id,)).fetchone()  # fmt: skip
        return row[0] if row else None

    # --- exits -------------------------------------------------------------------------------------

    def add_exit(self, row: ExitRow) -> bool:
        """Journal an exit before it is sent; False when that client order id is already journaled."""
        now = time.time_ns()
        cur = self.db.execute(f"INSERT OR IGNORE INTO exits ({_E}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                              (row.client_order_id, row.position_id, row.symbol, row.mode, row.fraction, row.reason, row.status,
                               row.exchange_order_id, row.error_msg, row.created_ns or now, now))  # fmt: skip
        return cur.rowcount == 1

    def update_exit(self, row: ExitRow) -> None:
        self.db.execute("UPDATE exits SET status = ?, exchange_order_id = ?, error_msg = ?, updated_ns = ? WHERE client_order_id = ?",
                        (row.status, row.exchange_order_id, row.error_msg, time.time_ns(), row.client_order_id))  # fmt: skip

    def exits(self, position_id: str) -> list[ExitRow]:
        rows = self.db.execute(f"SELECT {_E} FROM exits WHERE position_id = ? ORDER BY created_ns, rowid", (position_id,))
        return [ExitRow(*r) for r in rows]

    def exits_in_doubt(self) -> list[ExitRow]:
        rows = self.db.execute(f"SELECT {_E} FROM exits WHERE status IN ({','.join('?' * len(EXIT_IN_DOUBT))}) ORDER BY created_ns",
                               EXIT_IN_DOUBT)  # fmt: skip
        return [ExitRow(*r) for r in rows]

    # --- daily messages ----------------------------------------------------------------------------

    def claim_day(self, name: str, day: str, now_ns: int) -> bool:
        """Claim the message name for day (e.g. "2026-12-06"); False when it was claimed for that day already (one atomic upsert)."""
        cur = self.db.execute("INSERT INTO summaries_sent (name, day, sent_ns) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
                              " day = excluded.day, sent_ns = excluded.sent_ns WHERE summaries_sent.day != excluded.day",
                              (name, day, now_ns))  # fmt: skip
        return cur.rowcount == 1


__all__ = ["EXIT_IN_DOUBT", "POSITIONS_SCHEMA", "ExitRow", "FillRow", "PositionRow", "PositionStore"]
