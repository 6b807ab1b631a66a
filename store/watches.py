"""The short watcher's runs (table `watches`) and its context snapshots (CSV, one row per evaluation).

Why the history's file: one SCANNER_DATA_DIR/scanner.sqlite3 is what backups, the Parquet mirror
and the bot already know. The table is created here with CREATE TABLE IF NOT EXISTS (a new
table, so the history's schema version is unchanged).

Why one row per run, written at the start, the entry and the end (an upsert on run_id): the row
says at any time how far the watch got, and a crash leaves a row without an outcome, which the
next start marks UNKNOWN (`close_unfinished`) rather than pretending the watch went on.

Why CSV for the snapshots: the original collects them as a data set for tuning and ML later; an
append-only text file per UTC day is readable by anything, costs no pyarrow in the supervisor, and
a crash loses at most the line being written.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

WATCHES_SCHEMA = """
CREATE TABLE IF NOT EXISTS watches (
    run_id TEXT PRIMARY KEY,
    symbol TEXT NOT NULL,
    source TEXT NOT NULL,
    signal_id TEXT,
    pump_pct REAL,
    pump_ts_ms INTEGER,
    start_ms INTEGER NOT NULL,
    start_price REAL,
    stage TEXT,
    stage_times TEXT NOT NULL DEFAULT '{}',
    mode TEXT,
    entry_kind TEXT,
    entry_price REAL,
    entry_ms INTEGER,
    outcome TEXT,
    exit_price REAL,
    exit_ms INTEGER,
    return_pct REAL,
    mfe_pct REAL,
    mae_pct REAL,
    take_profit_pct REAL,
    stop_loss_pct REAL,
    timeout_minutes REAL,
    peak REAL,
    peak_ms INTEGER,
    extra TEXT NOT NULL DEFAULT '{}',
    reason TEXT,
    updated_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS watches_symbol_start ON watches (symbol, start_ms);
"""
COLUMNS = ("run_id", "symbol", "source", "signal_id", "pump_pct", "pump_ts_ms", "start_ms", "start_price", "stage", "stage_times",
           "mode", "entry_kind", "entry_price", "entry_ms", "outcome", "exit_price", "exit_ms", "return_pct", "mfe_pct", "mae_pct",
           "take_profit_pct", "stop_loss_pct", "timeout_minutes", "peak", "peak_ms", "extra", "reason")  # fmt: skip
UNFINISHED_REASON = "the service stopped while the watch ran (rows after the stop were not seen)"
SNAPSHOT_DIR = "shorts"


class WatchStore:
    """The `watches` table in data_dir/scanner.sqlite3."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.path = Path(data_dir) / "scanner.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA busy_timeout=10000")
        self.db.executescript(WATCHES_SCHEMA)

    def save(self, record: dict[str, Any], signal_id: str | None = None) -> None:
        """Insert or update one run (a Watch.to_record() dict); unknown keys are ignored, JSON fields encoded.

        ValueError for a record without run_id/symbol/start_ms or with fields that are not JSON.
        """
        for key in ("run_id", "symbol", "start_ms"):
            if record.get(key) in (None, ""):
                raise ValueError(f"watch record: {key} is missing")
        row = {k: record.get(k) for k in COLUMNS}
        row["signal_id"] = signal_id if signal_id is not None else record.get("signal_id")
        try:
            row["stage_times"] = json.dumps(record.get("stage_times") or {}, sort_keys=True, allow_nan=False)
            row["extra"] = json.dumps(record.get("extra") or {}, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"watch {record['run_id']}: not JSON ({exc})") from None
        names = ", ".join(COLUMNS)
        updates = ", ".join(f"{c} = COALESCE(excluded.{c}, {c})" for c in COLUMNS if c != "run_id")
        self.db.execute(
            f"INSERT INTO watches ({names}, updated_ns) VALUES ({', '.join('?' * len(COLUMNS))}, ?)"
            f" ON CONFLICT(run_id) DO UPDATE SET {updates}, updated_ns = excluded.updated_ns",
            [row[c] for c in COLUMNS] + [time.time_ns()],
        )

    def close_unfinished(self) -> int:
        """Mark runs a previous process left without an outcome as UNKNOWN; returns how many."""
        cur = self.db.execute("UPDATE watches SET outcome = 'UNKNOWN', reason = ?, updated_ns = ? WHERE outcome IS NULL",
                              (UNFINISHED_REASON, time.time_ns()))  # fmt: skip
        return cur.rowcount

    def watches(self, since_ms: int = 0) -> list[dict[str, Any]]:
        """Runs started at or after since_ms, oldest first, as plain dicts (JSON fields decoded)."""
        cur = self.db.execute(f"SELECT {', '.join(COLUMNS)} FROM watches WHERE start_ms >= ? ORDER BY start_ms, run_id", (since_ms,))
        out = []
        for values in cur.fetchall():
            row = dict(zip(COLUMNS, values, strict=True))
            row["stage_times"], row["extra"] = json.loads(row["stage_times"]), json.loads(row["extra"])
            out.append(row)
        return out

    def close(self) -> None:
        self.db.close()


class SnapshotLog:
    """Context snapshots appended to data_dir/shorts/snapshots-YYYYMMDD.csv (UTC day of the row's exchange time)."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(data_dir) / SNAPSHOT_DIR
        self._day: str | None = None
        self._handle: IO[str] | None = None
        self._writer: csv.DictWriter[str] | None = None
        self._columns: list[str] | None = None
        self.rows_written = 0

    def path_for(self, t_ms: int) -> Path:
        return self.dir / f"snapshots-{datetime.fromtimestamp(t_ms / 1000, UTC):%Y%m%d}.csv"

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Append rows (dicts with the same keys; t_ms decides the file); a header opens each new file."""
        for row in rows:
            day = self.path_for(int(row["t_ms"])).name
            if day != self._day or self._writer is None:
                self._open(day, list(row))
            assert self._writer is not None and self._handle is not None
            self._writer.writerow(row)
            self.rows_written += 1
        if rows and self._handle is not None:
            self._handle.flush()

    def _open(self, name: str, columns: list[str]) -> None:
        if self._handle is not None:
            self._handle.close()
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / name
        new = not path.exists() or path.stat().st_size == 0
        self._handle = open(path, "a", encoding="utf-8", newline="")  # noqa: SIM115 - kept open between batches
        self._writer = csv.DictWriter(self._handle, fieldnames=columns, extrasaction="ignore")
        if new:
            self._writer.writeheader()
        self._day, self._columns = name, columns

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            self._writer = None




def card_message(db: sqlite3.Connection, signal_id: str) -> tuple[int, int] | None:
    """(chat_id, message_id) of a signal's stored card, for replies threaded under it; None when it has none."""
    row = db.execute("SELECT chat_id, message_id FROM signals WHERE signal_id = ? AND message_id IS NOT NULL", (signal_id,)).fetchone()
    return (int(row[0]), int(row[1])) if row and row[0] is not None else None


__all__ = ["SnapshotLog", "WatchStore", "WATCHES_SCHEMA", "card_message"]
