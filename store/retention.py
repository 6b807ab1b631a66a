"""History retention: rows older than storage.retention_days leave SQLite, so the file stops growing.

Why: a scanner left running for months adds a few hundred signals a day (each with its features,
reasons and card context as JSON), their outcomes and decisions, and the futures detector's
episodes; unpruned, scanner.sqlite3 grows without end on a small VPS disk. Deleted pages go to
SQLite's free list and are reused by new rows, so after the first pass the file holds steady at
about retention_days of history. Shrinking the file itself takes a VACUUM (README "Reliability").

Kept: orders (the trading record, small: one row per Buy) and any signal whose outcome watch is
still open. Tick dumps are bounded apart (recorder.max_mb / recorder.max_hours, shards/recorder.py).
Deleted in batches, each its own short transaction, so the bot is never locked out for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable

from store.transaction import write_transaction

log = logging.getLogger("scanner.store.retention")

DAY_NS = 86_400 * 10**9
BATCH = 2000
OPEN_GRACE_DAYS = 30
EVERY_S = 6 * 3600.0  # how often the supervisor prunes (and once at start)


def prune(db: sqlite3.Connection, older_than_ns: int, batch: int = BATCH) -> dict[str, int]:
    """Delete signals stored before older_than_ns (with their outcomes and actions) and episodes stored before it.

    A signal without an outcome yet is kept OPEN_GRACE_DAYS longer: its watch may still be open
    (a watch lasts outcome.horizon_s, hours). Returns rows deleted per table.
    """
    counts = {"signals": 0, "outcomes": 0, "actions": 0, "episodes": 0}
    while True:
        ids = [r[0] for r in db.execute(
            "SELECT s.signal_id FROM signals s LEFT JOIN outcomes o ON o.signal_id = s.signal_id"
            " WHERE s.stored_ns < ? AND (o.signal_id IS NOT NULL OR s.stored_ns < ?) LIMIT ?",
            (older_than_ns, older_than_ns - OPEN_GRACE_DAYS * DAY_NS, batch))]  # fmt: skip
        if not ids:
            break
        marks = ",".join("?" * len(ids))
        with write_transaction(db):
            for table in ("outcomes", "actions", "signals"):
                counts[table] += db.execute(f"DELETE FROM {table} WHERE signal_id IN ({marks})", ids).rowcount
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'episodes'").fetchone():
        counts["episodes"] = db.execute("DELETE FROM episodes WHERE stored_ns < ?", (older_than_ns,)).rowcount
    return counts


async def retention_loop(db: sqlite3.Connection, days: Callable[[], int], stop: asyncio.Event) -> None:
    """Prune at start and every EVERY_S while days() > 0 (read each time: /cfg and /reload apply)."""
    while not stop.is_set():
        keep = days()
        if keep > 0:
            try:
                counts = prune(db, time.time_ns() - keep * DAY_NS)
            except sqlite3.Error as exc:  # a full or locked disk: try again next time, never stop the service
                log.warning("history retention failed", extra={"error": str(exc)[:200]})
            else:
                if any(counts.values()):
                    log.info("history pruned", extra={"retention_days": keep, **counts})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), EVERY_S)
