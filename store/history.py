"""The history store: every signal, decision, order and outcome in SQLite (WAL), mirrored monthly to Parquet.

Why SQLite is the outbox: the supervisor stores a signal before anyone is told about it, and the
bot marks a card sent only after Telegram accepted it. A process killed anywhere in between loses
nothing: on restart the bot sends exactly the cards still marked unsent. WAL and a busy timeout
let the supervisor and the bot use the file at the same time.

pyarrow is imported only inside store/parquet.py's mirror: it costs ~56 MB per process that imports it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from common.signal import Signal, context_fields
from store.schema import (
    ACTIONS,
    ADDED_COLUMNS,
    BUDGET_REASON,
    CONTEXT_FIELDS,
    ORDER_MODES,
    OUTCOME_COLUMNS,
    OUTCOMES,
    SCHEMA,
    SCHEMA_VERSION,
    TRADES,
    OrderRecord,
)
from store.spill import TABLES as _KEYS
from store.spill import Spill, storage_failure
from store.transaction import write_transaction

log = logging.getLogger("scanner.store")


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
        self.db.executescript(SCHEMA)
        self._add_columns()
        if self.db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        # Disk full: writes go to the RAM spill (store/spill.py) until the supervisor moves them back.
        self.spill = Spill(self.data_dir)
        self.storage_error: str | None = None
        self.storage_since: str | None = None

    # --- writes that survive a full disk (store/spill.py) ------------------------------------------

    def note_storage_failure(self, exc: BaseException) -> None:
        """Remember (and log once per episode) that the data dir cannot take writes."""
        if self.storage_error is None:
            self.storage_since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            log.error("history storage failed: writes go to RAM until the data dir takes them again; signals are still sent",
                      extra={"error": str(exc)[:200], "data_dir": str(self.data_dir), "spill": str(self.spill.path)})  # fmt: skip
        self.storage_error = str(exc)[:200]

    def _insert_once(self, table: str, key: str, sql: str, params: tuple[Any, ...]) -> bool:
        """INSERT OR IGNORE into the main file or, when it cannot be written, the spill; False when the key is stored already."""
        if self.spill.has(table, key):
            return False
        try:
            return self.db.execute(sql, params).rowcount == 1
        except sqlite3.OperationalError as exc:
            if not storage_failure(exc):
                raise
            self.note_storage_failure(exc)
            if self._reader(table, key).execute(f"SELECT 1 FROM {table} WHERE {_KEYS[table]} = ?", (key,)).fetchone():
                return False
            return self.spill.execute(sql, params).rowcount == 1

    def _update(self, table: str, key: str, sql: str, params: tuple[Any, ...]) -> None:
        """UPDATE (or upsert) one keyed row where its newest copy lives; a failing main file moves the row to the spill first."""
        if self.spill.has(table, key):
            self.spill.execute(sql, params)
            return
        try:
            self.db.execute(sql, params)
        except sqlite3.OperationalError as exc:
            if not storage_failure(exc):
                raise
            self.note_storage_failure(exc)
            self.spill.copy_row(self.db, table, key)
            self.spill.execute(sql, params)

    def _reader(self, table: str, key: str) -> sqlite3.Connection:
        """The connection holding the newest copy of a keyed row: the spill if it has it, else the main file."""
        return self.spill.db if self.spill.has(table, key) and self.spill.db is not None else self.db

    def _add_columns(self) -> None:
        """ALTER an older file to today's columns; under a write lock, since the supervisor and the bot open it at once."""
        with write_transaction(self.db):
            for table, column, kind in ADDED_COLUMNS:
                if column not in {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    # --- signals ---------------------------------------------------------------------------------

    def add_signal(self, signal: Signal, suppressed: str | None = None) -> bool:
        """Store a signal; False when its id is already stored (never stored twice).

        suppressed: why no card goes out (e.g. the card budget), stored in the same INSERT so a
        bot reading the outbox never sees it as unsent.
        """
        for name in ("price", "prob"):
            value = getattr(signal, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"signal {signal.signal_id}: {name} is {value!r}, expected a finite number")
        data = signal.to_dict()
        return self._insert_once(
            "signals", signal.signal_id,
            "INSERT OR IGNORE INTO signals (signal_id, symbol, profile, exchange_time_ms, recv_ns, created_ns, price, prob,"
            " features, reasons, escalation, stored_ns, context, suppressed) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (signal.signal_id, signal.symbol, signal.profile, signal.exchange_time_ms, signal.recv_ns, signal.created_ns,
             signal.price, signal.prob, json.dumps(data["features"]), json.dumps(signal.reasons), signal.escalation, time.time_ns(),
             json.dumps({k: data[k] for k in CONTEXT_FIELDS}), suppressed),
        )  # fmt: skip

    @staticmethod
    def _signal(row: tuple[Any, ...]) -> Signal:
        features = {k: (float("nan") if v is None else float(v)) for k, v in json.loads(row[8]).items()}
        try:
            context = json.loads(row[11]) if row[11] else {}  # NULL: a row stored before the column existed
        except ValueError:
            context = {}
        return Signal(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], features, json.loads(row[9]), row[10],
                      **context_fields(context))  # fmt: skip

    _COLUMNS = "signal_id, symbol, profile, exchange_time_ms, recv_ns, created_ns, price, prob, features, reasons, escalation, context"

    def get_signal(self, signal_id: str) -> Signal | None:
        row = self._reader("signals", signal_id).execute(f"SELECT {self._COLUMNS} FROM signals WHERE signal_id = ?", (signal_id,)).fetchone()
        return self._signal(row) if row else None

    def unsent_signals(self) -> list[Signal]:
        sql = f"SELECT {self._COLUMNS}, stored_ns FROM signals WHERE card_sent_ns IS NULL AND suppressed IS NULL"
        rows = self.db.execute(sql).fetchall()
        spill = self.spill.open()
        if spill is not None:  # the spill's copy of a row is the newer one
            in_spill = {r[0] for r in spill.execute("SELECT signal_id FROM signals")}
            rows = [r for r in rows if r[0] not in in_spill] + spill.execute(sql).fetchall()
        return [self._signal(r[:-1]) for r in sorted(rows, key=lambda r: (r[-1], r[0]))]

    def mark_card_sent(self, signal_id: str, chat_id: int, message_id: int, sent_ns: int) -> None:
        self._update("signals", signal_id,
                     "UPDATE signals SET card_sent_ns = ?, chat_id = ?, message_id = ? WHERE signal_id = ? AND card_sent_ns IS NULL",
                     (sent_ns, chat_id, message_id, signal_id))  # fmt: skip

    def card_sent_ns(self, signal_id: str) -> int | None:
        row = self._reader("signals", signal_id).execute("SELECT card_sent_ns FROM signals WHERE signal_id = ?", (signal_id,)).fetchone()
        return row[0] if row else None

    def mark_suppressed(self, signal_id: str, reason: str) -> None:
        self._update("signals", signal_id, "UPDATE signals SET suppressed = ? WHERE signal_id = ?", (reason, signal_id))

    def budget_cards(self, since_ms: int, prefix: str = BUDGET_REASON) -> list[tuple[int, str, float]]:
        """(exchange ms, profile, prob) of signals since since_ms the card budget let through (supervisor/budget.py)."""
        return self.db.execute(
            "SELECT exchange_time_ms, profile, prob FROM signals WHERE exchange_time_ms > ? AND (suppressed IS NULL"
            " OR substr(suppressed, 1, ?) != ?) ORDER BY exchange_time_ms", (since_ms, len(prefix), prefix)).fetchall()  # fmt: skip

    def suppressed_stats(self, since_ns: int, prefix: str = BUDGET_REASON) -> dict[str, Any]:
        """Signals stored since since_ns without a card: all of them, those the card budget held back, and
        the strongest (highest prob) of those."""
        total, budget, top = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(substr(suppressed, 1, ?) = ?), 0), MAX(CASE WHEN substr(suppressed, 1, ?) = ?"
            " THEN prob END) FROM signals WHERE stored_ns >= ? AND suppressed IS NOT NULL",
            (len(prefix), prefix, len(prefix), prefix, since_ns)).fetchone()  # fmt: skip
        return {"suppressed": total, "suppressed_budget": budget, "suppressed_budget_top_prob": top}

    # --- outcomes (supervisor/outcome.py) -------------------------------------------------------

    def add_outcome(self, outcome: dict[str, Any]) -> bool:
        """Store a closed watch (Outcome.to_dict()); False when the signal already has one."""
        if outcome.get("outcome") not in OUTCOMES:
            raise ValueError(f"outcome {outcome.get('signal_id')!r}: got {outcome.get('outcome')!r}, expected one of {', '.join(OUTCOMES)}")
        if outcome.get("trade") not in (*TRADES, None):
            raise ValueError(f"outcome {outcome.get('signal_id')!r}: trade {outcome.get('trade')!r}, expected one of {', '.join(TRADES)}")
        values = [outcome.get(c) for c in OUTCOME_COLUMNS]
        values[OUTCOME_COLUMNS.index("resumed")] = int(bool(outcome.get("resumed")))
        return self._insert_once(
            "outcomes", str(outcome.get("signal_id")),
            f"INSERT OR IGNORE INTO outcomes ({', '.join(OUTCOME_COLUMNS)}, closed_ns) VALUES ({', '.join('?' * len(OUTCOME_COLUMNS))}, ?)",
            (*values, time.time_ns()),
        )  # fmt: skip

    def get_outcome(self, signal_id: str) -> dict[str, Any] | None:
        row = self._reader("outcomes", signal_id).execute(f"SELECT {', '.join(OUTCOME_COLUMNS)} FROM outcomes WHERE signal_id = ?",
                                                         (signal_id,)).fetchone()  # fmt: skip
        if row is None:
            return None
        data = dict(zip(OUTCOME_COLUMNS, row, strict=True))
        data["resumed"] = bool(data["resumed"])
        return data

    def signals_without_outcome(self) -> list[Signal]:
        """Signals whose watch never closed (the service stopped first), oldest first."""
        rows = self.db.execute(
            f"SELECT {', '.join('s.' + c.strip() for c in self._COLUMNS.split(','))} FROM signals s"
            " LEFT JOIN outcomes o ON o.signal_id = s.signal_id WHERE o.signal_id IS NULL ORDER BY s.exchange_time_ms, s.signal_id"
        ).fetchall()
        return [self._signal(r) for r in rows]

    def labelled_signals(self, since_ms: int) -> dict[str, list[tuple[int, str]]]:
        """symbol -> [(exchange ms, "hit" | "miss")] of signals since since_ms whose watch decided (self-training labels)."""
        out: dict[str, list[tuple[int, str]]] = {}
        for symbol, t_ms, outcome in self.db.execute(
            "SELECT s.symbol, s.exchange_time_ms, o.outcome FROM signals s JOIN outcomes o ON o.signal_id = s.signal_id"
            " WHERE s.exchange_time_ms >= ? AND o.outcome IN ('hit', 'miss') ORDER BY s.exchange_time_ms", (since_ms,)):  # fmt: skip
            out.setdefault(symbol, []).append((int(t_ms), outcome))
        return out

    def outcome_counts(self, since_ns: int = 0) -> dict[tuple[str, str], int]:
        """(label, profile) -> count of outcomes closed since since_ns; labels are hit/miss/unknown and TP/SL/TIMEOUT."""
        counts: dict[tuple[str, str], int] = {}
        for label, profile, n in self.db.execute(
            "SELECT outcome, profile, COUNT(*) FROM outcomes WHERE closed_ns >= ? GROUP BY outcome, profile"
            " UNION ALL SELECT trade, profile, COUNT(*) FROM outcomes WHERE closed_ns >= ? AND trade IS NOT NULL GROUP BY trade, profile",
            (since_ns, since_ns),
        ):
            counts[(label, profile)] = counts.get((label, profile), 0) + n
        return counts

    def outcome_stats(self, since_ns: int = 0) -> dict[str, Any]:
        """/stats figures over outcomes closed since since_ns; hit_rate over hit+miss (None without any)."""
        totals: dict[str, int] = {}
        for (label, _), n in self.outcome_counts(since_ns).items():
            totals[label] = totals.get(label, 0) + n
        decided = totals.get("hit", 0) + totals.get("miss", 0)
        return {**{k: totals.get(k, 0) for k in (*OUTCOMES, *TRADES)}, "hit_rate": totals.get("hit", 0) / decided if decided else None}

    # --- decisions and orders --------------------------------------------------------------------

    def record_action(self, signal_id: str, user_id: int, action: str, at_ns: int) -> bool:
        """The first decision on a signal wins; False when it was already decided."""
        if action not in ACTIONS:
            raise ValueError(f"action: got {action!r}, expected one of {', '.join(ACTIONS)}")
        return self._insert_once("actions", signal_id, "INSERT OR IGNORE INTO actions (signal_id, user_id, action, at_ns) VALUES (?,?,?,?)",
                                 (signal_id, user_id, action, at_ns))  # fmt: skip

    def get_action(self, signal_id: str) -> tuple[str, int] | None:
        row = self._reader("actions", signal_id).execute("SELECT action, user_id FROM actions WHERE signal_id = ?", (signal_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def upsert_order(self, order: OrderRecord) -> None:
        """Insert or update by client_order_id; created_ns, signal, symbol and mode keep their first value."""
        if order.mode not in ORDER_MODES:
            raise ValueError(f"order mode: got {order.mode!r}, expected paper or live")
        now = time.time_ns()
        self._update(
            "orders", order.client_order_id,
            "INSERT INTO orders (client_order_id, signal_id, symbol, mode, quote_qty, status, exchange_order_id, price, qty,"
            " error_code, error_msg, created_ns, updated_ns) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(client_order_id) DO UPDATE SET status=excluded.status, exchange_order_id=excluded.exchange_order_id,"
            " price=excluded.price, qty=excluded.qty, error_code=excluded.error_code, error_msg=excluded.error_msg,"
            " updated_ns=excluded.updated_ns",
            (order.client_order_id, order.signal_id, order.symbol, order.mode, order.quote_qty, order.status, order.exchange_order_id,
             order.price, order.qty, order.error_code, order.error_msg, order.created_ns or now, now),
        )  # fmt: skip

    def get_order(self, client_order_id: str) -> OrderRecord | None:
        row = self._reader("orders", client_order_id).execute(
            "SELECT client_order_id, signal_id, symbol, mode, quote_qty, status, exchange_order_id, price, qty, error_code,"
            " error_msg, created_ns, updated_ns FROM orders WHERE client_order_id = ?",
            (client_order_id,),
        ).fetchone()
        return OrderRecord(*row) if row else None

    def stats(self, since_ns: int) -> dict[str, Any]:
        """Counts since since_ns: signals (and per hour), buys, skips, paper and live orders."""
        signals = self.db.execute("SELECT COUNT(*) FROM signals WHERE stored_ns >= ?", (since_ns,)).fetchone()[0]
        actions = dict(self.db.execute("SELECT action, COUNT(*) FROM actions WHERE at_ns >= ? GROUP BY action", (since_ns,)).fetchall())
        # Refusals and rejections are kept for the record, but nothing was bought: they are not orders.
        orders = dict(self.db.execute(
            "SELECT mode, COUNT(*) FROM orders WHERE created_ns >= ? AND status NOT IN ('REFUSED', 'REJECTED') GROUP BY mode",
            (since_ns,)).fetchall())  # fmt: skip
        hours = max((time.time_ns() - since_ns) / 3.6e12, 1e-9)
        return {
            **self.suppressed_stats(since_ns, BUDGET_REASON),
            "signals": signals,
            "signals_per_hour": signals / hours,
            "buys": actions.get("buy", 0),
            "skips": actions.get("skip", 0),
            "paper_orders": orders.get("paper", 0),
            "live_orders": orders.get("live", 0),
        }

    def recent_alerts(self, since_ns: int) -> dict[tuple[str, str], tuple[int, float, int]]:
        """Per (profile, symbol), the newest cooldown the stored signals opened: (alert exchange ms, newest PM, re-alerts).

        Read by the supervisor at start-up so a restart does not alert twice on one pump; the
        profile says which detector's cooldown the signal opened.
        """
        alerts: dict[tuple[str, str], tuple[int, float, int]] = {}
        rows = self.db.execute(
            "SELECT profile, symbol, exchange_time_ms, escalation, features FROM signals WHERE stored_ns >= ?"
            " ORDER BY exchange_time_ms, escalation",
            (since_ns,),
        )  # fmt: skip
        for profile, symbol, t_ms, escalation, features in rows:
            try:
                pm = float(json.loads(features).get("pm", 0.0))
            except (ValueError, TypeError, AttributeError):
                pm = 0.0
            key = (profile, symbol)
            if escalation == 0:
                alerts[key] = (int(t_ms), pm, 0)
            elif key in alerts:
                alerts[key] = (alerts[key][0], pm, int(escalation))
        return alerts

    # --- Parquet mirror --------------------------------------------------------------------------

    def mirror_parquet(self, month: str | None = None) -> list[Path]:
        """Mirror signals to parquet/signals_YYYYMM.parquet (store/parquet.py); returns the files written."""
        from store.parquet import mirror_parquet

        return mirror_parquet(self.db, self.data_dir, month)

    def close(self) -> None:
        self.db.close()
