"""The portfolio balancer's order journal: one row per rebalancing order, written before it is sent.

Why a journal (the exits' discipline, store/positions.py): a process killed after sending a
balancer order and before storing its fills would otherwise forget an order it placed (its coins
never counted) or, with the cooldown only in memory, place it again after the restart. The row
is written PENDING with its client order id before anything is sent; on the next pass the
balancer first asks MEXC about every row still in doubt (trading/portfolio.py) and only then
plans. The cooldown is read from this table too, so a restart does not shorten it.

Statuses: PENDING (journaled, maybe sent), UNKNOWN (sent, no clear answer), NEW /
PARTIALLY_FILLED (placed, its rest not yet cancelled or its fills not yet stored), then final:
MEXC's FILLED / CANCELED / PARTIALLY_CANCELED once the fills are stored, REFUSED (our rules said
no, nothing sent), REJECTED (MEXC said no), UNSENT (MEXC never received it: the process died
before sending; the same id may be sent once, and it does not start a cooldown).

The table is created with CREATE TABLE IF NOT EXISTS on open; it only adds to the file, so the
schema version (store/schema.py) is unchanged.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from store.transaction import write_transaction

BALANCER_SCHEMA = """
CREATE TABLE IF NOT EXISTS balancer_orders (
    client_order_id TEXT PRIMARY KEY,
    mode TEXT NOT NULL,
    symbol TEXT NOT NULL,
    asset TEXT NOT NULL,
    side TEXT NOT NULL,
    quote_amount REAL NOT NULL,
    qty REAL NOT NULL,
    price REAL NOT NULL,
    status TEXT NOT NULL,
    exchange_order_id TEXT,
    error_msg TEXT,
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS balancer_orders_asset ON balancer_orders(mode, asset, created_ns);
"""
BALANCER_IN_DOUBT = ("PENDING", "UNKNOWN", "NEW", "PARTIALLY_FILLED")
UNSENT = "UNSENT"


@dataclass
class BalancerOrder:
    client_order_id: str
    mode: str
    symbol: str
    asset: str
    side: str
    quote_amount: float
    qty: float
    price: float
    status: str
    exchange_order_id: str | None = None
    error_msg: str | None = None
    created_ns: int = 0
    updated_ns: int = 0


_B = ("client_order_id, mode, symbol, asset, side, quote_amount, qty, price, status, exchange_order_id, error_msg, created_ns, "
      "updated_ns")  # fmt: skip


class BalancerJournal:
    """Reads and writes of balancer_orders on the history's connection (store.history.Store.db)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.executescript(BALANCER_SCHEMA)

    def claim(self, row: BalancerOrder) -> bool:
        """Journal row PENDING before it is sent; False when its id is journaled already (and not UNSENT: that one is reused)."""
        r = row
        values = (r.mode, r.symbol, r.asset, r.side, r.quote_amount, r.qty, r.price, "PENDING", None, None, r.created_ns, r.created_ns)
        with write_transaction(self.db):
            cur = self.db.execute(f"INSERT OR IGNORE INTO balancer_orders ({_B}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", (r.client_order_id, *values))
            if cur.rowcount != 1:
                cur = self.db.execute("UPDATE balancer_orders SET mode = ?, symbol = ?, asset = ?, side = ?, quote_amount = ?, qty = ?,"
                                      " price = ?, status = ?, exchange_order_id = ?, error_msg = ?, created_ns = ?, updated_ns = ?"
                                      " WHERE client_order_id = ? AND status = ?", (*values, r.client_order_id, UNSENT))  # fmt: skip
        if cur.rowcount == 1:
            row.status = "PENDING"
        return cur.rowcount == 1

    def update(self, row: BalancerOrder, now_ns: int) -> None:
        self.db.execute("UPDATE balancer_orders SET status = ?, exchange_order_id = ?, error_msg = ?, updated_ns = ? WHERE client_order_id = ?",
                        (row.status, row.exchange_order_id, row.error_msg, now_ns, row.client_order_id))  # fmt: skip

    def get(self, client_order_id: str) -> BalancerOrder | None:
        row = self.db.execute(f"SELECT {_B} FROM balancer_orders WHERE client_order_id = ?", (client_order_id,)).fetchone()
        return BalancerOrder(*row) if row else None

    def in_doubt(self, mode: str) -> list[BalancerOrder]:
        marks = ",".join("?" * len(BALANCER_IN_DOUBT))
        rows = self.db.execute(f"SELECT {_B} FROM balancer_orders WHERE mode = ? AND status IN ({marks}) ORDER BY created_ns, rowid",
                               (mode, *BALANCER_IN_DOUBT))  # fmt: skip
        return [BalancerOrder(*r) for r in rows]

    def last_order_ns(self, mode: str, asset: str) -> int | None:
        """When the newest order of asset that may have reached MEXC was journaled (the cooldown's start)."""
        row = self.db.execute("SELECT MAX(created_ns) FROM balancer_orders WHERE mode = ? AND asset = ? AND status != ?",
                              (mode, asset, UNSENT)).fetchone()  # fmt: skip
        return row[0] if row and row[0] is not None else None

    def orders(self, mode: str | None = None) -> list[BalancerOrder]:
        sql = f"SELECT {_B} FROM balancer_orders" + (" WHERE mode = ?" if mode else "") + " ORDER BY created_ns, rowid"
        return [BalancerOrder(*r) for r in self.db.execute(sql, (mode,) if mode else ())]


__all__ = ["BALANCER_IN_DOUBT", "BALANCER_SCHEMA", "UNSENT", "BalancerJournal", "BalancerOrder"]
