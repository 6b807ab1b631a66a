"""The RAM spill: where the history goes while the data dir cannot be written (disk full, I/O error).

Why: SQLite is the outbox between the supervisor and the bot (store/history.py). With the data
dir full, a signal that cannot be stored cannot reach the chat either, so a full disk would
silence the scanner exactly when nobody is looking. Instead, a write that fails for lack of space
goes to a second SQLite file with the same schema in /dev/shm (RAM, shared by every process of
the service, so the bot reads what the supervisor spilled), and the supervisor moves the spilled
rows back into the data dir as soon as a write there succeeds again (spill_loop).

Rules (each a few lines in Store): a key already in the spill is read and written there (the
spill holds the newest copy of any row it has); a key not in it is written to the main file
first, and only a storage failure sends it (with its row, copied) to the spill. The spill is a
few KB a day of signals, small next to RAM; it is never deleted while the service runs, only
emptied, because another process may hold it open.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from store.schema import SCHEMA
from store.transaction import write_transaction

log = logging.getLogger("scanner.store.spill")

TABLES = {"signals": "signal_id", "actions": "signal_id", "orders": "client_order_id", "outcomes": "signal_id"}
SQLITE_IOERR, SQLITE_FULL = 10, 13
RETRY_S = 30.0


def storage_failure(exc: BaseException) -> bool:
    """True for the errors a full or failing disk gives (SQLITE_FULL, SQLITE_IOERR and its extended codes)."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    return code in (SQLITE_IOERR, SQLITE_FULL) or "disk is full" in str(exc) or "disk I/O error" in str(exc)


def spill_path(data_dir: Path) -> Path:
    """One spill per data dir, in RAM (/dev/shm) where there is one, else the system's temp dir."""
    digest = hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:16]
    base = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else Path(tempfile.gettempdir())
    return base / f"scanner-spill-{digest}.sqlite3"


class Spill:
    """The spill file of one data dir, opened lazily (only once some process created it)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = spill_path(data_dir)
        self.db: sqlite3.Connection | None = None

    def open(self, create: bool = False) -> sqlite3.Connection | None:
        """The connection; None while no process has spilled (and create is False)."""
        if self.db is None and (create or self.path.exists()):
            db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=10000")
            db.executescript(SCHEMA)
            self.db = db
        return self.db

    def has(self, table: str, key: str) -> bool:
        db = self.open()
        return db is not None and db.execute(f"SELECT 1 FROM {table} WHERE {TABLES[table]} = ?", (key,)).fetchone() is not None

    def execute(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        db = self.open(create=True)
        assert db is not None
        return db.execute(sql, params)

    def copy_row(self, main: sqlite3.Connection, table: str, key: str) -> None:
        """Copy one row of main into the spill (before an update the main file could not take)."""
        cur = main.execute(f"SELECT * FROM {table} WHERE {TABLES[table]} = ?", (key,))
        row = cur.fetchone()
        if row is not None:
            names = [d[0] for d in cur.description]
            self.execute(f"INSERT OR IGNORE INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", tuple(row))

    def rows(self) -> int:
        """Rows waiting in the spill (0 when none was ever spilled)."""
        db = self.open()
        return 0 if db is None else sum(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES)

    def flush(self, main: sqlite3.Connection) -> int:
        """Move every spilled row into the main file; the rows moved (raises when the main file still fails).

        One transaction over both files (ATTACH, BEGIN IMMEDIATE locks both): no process can write
        the spill between the copy and the delete, and a failure leaves the spill as it was.
        """
        if self.open() is None or self.rows() == 0:
            return 0
        main.execute("ATTACH DATABASE ? AS spill", (str(self.path),))
        try:
            moved = 0
            with write_transaction(main):
                for table in TABLES:
                    names = ", ".join(r[1] for r in main.execute(f"PRAGMA spill.table_info({table})"))
                    moved += main.execute(f"INSERT OR REPLACE INTO main.{table} ({names}) SELECT {names} FROM spill.{table}").rowcount
                    main.execute(f"DELETE FROM spill.{table}")
        finally:
            main.execute("DETACH DATABASE spill")
        return moved


async def spill_loop(store: Any, stop: asyncio.Event, notify: Callable[[str], None] = lambda text: None) -> None:
    """Supervisor: while rows wait in the spill, try every RETRY_S to move them home; say when storage fails and recovers."""
    told = False
    while not stop.is_set():
        failing = store.storage_error is not None
        if failing and not told:
            notify(f"⚠️ History storage failing ({store.storage_error}); signals are kept in RAM and still sent")
            told = True
        if store.spill.rows():
            try:
                moved = store.spill.flush(store.db)
            except sqlite3.Error as exc:
                store.note_storage_failure(exc)
            else:
                store.storage_error = store.storage_since = None
                log.warning("history storage is back: spilled rows moved to the data dir", extra={"rows": moved})
                if told:
                    notify(f"✅ History storage is back: {moved} rows moved from RAM to disk")
                told = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RETRY_S)


def status(store: Any) -> dict[str, Any]:
    """/status: whether the history is written to disk now, since when not, and how many rows wait in RAM."""
    return {"ok": store.storage_error is None, "error": store.storage_error, "failing_since": store.storage_since,
            "rows_in_ram": store.spill.rows(), "spill": str(store.spill.path) if store.spill.db is not None else None}  # fmt: skip
