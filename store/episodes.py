"""The futures detector's episodes: one SQLite row each (same file as the history) and one log line each.

Why the history's file: one SCANNER_DATA_DIR/scanner.sqlite3 (WAL, busy timeout) is what the
Parquet mirror, backups and the bot already know; a second database would be a second thing to
back up and to forget.

Why a primary key on (strategy, symbol, start_ms): a detector restarted over the same data (a
replay, a reconnect that re-sends a window) closes the same episode again. INSERT OR IGNORE makes
the second time a no-op, and the log line is written only for a new row, so
`logs/strategy{N}_episodes.log` holds each episode once, in the order they were stored.

Why the line is written inside the row's transaction: a failed write (disk full) rolls the row
back, so a retry stores both; a crash between the write and the COMMIT can at worst repeat one line,
never lose the row's line silently.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from store.schema import EPISODE_STRATEGIES, EPISODES_SCHEMA
from store.transaction import write_transaction

LOG_DIR = "logs"
LOG_NAME = "strategy{strategy}_episodes.log"


@dataclass(frozen=True)
class Episode:
    """One stored episode (extra: the detector's own fields, JSON in the row)."""

    strategy: int
    symbol: str
    start_ms: int
    end_ms: int
    peak_ratio: float
    peak_last: float
    peak_fair: float
    peak_ms: int
    ended_by: str
    extra: dict[str, Any]


class EpisodeStore:
    """Episodes in data_dir/scanner.sqlite3 and data_dir/logs/strategy{1..4}_episodes.log; safe from several processes."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)
        self.log_dir = self.data_dir / LOG_DIR
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / "scanner.sqlite3"
        self.db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=10000")
        self.db.executescript(EPISODES_SCHEMA)
        self._logs: dict[int, IO[str]] = {}

    def log_path(self, strategy: int) -> Path:
        return self.log_dir / LOG_NAME.format(strategy=strategy)

    def _log(self, strategy: int) -> IO[str]:
        handle = self._logs.get(strategy)
        if handle is None or handle.closed:
            # Append mode: each write lands at the end even with another process appending too.
            handle = self._logs[strategy] = open(self.log_path(strategy), "a", encoding="utf-8")  # noqa: SIM115
        return handle

    def add_episode(self, strategy: int, symbol: str, start_ms: int, end_ms: int, peak_ratio: float, peak_last: float,
                    peak_fair: float, peak_ms: int, ended_by: str, extra: dict[str, Any], log_line: str) -> bool:  # fmt: skip
        """Store one closed episode and append its log line; False (and no line) when it is already stored.

        ValueError, before anything is written, for an unknown strategy, non-finite numbers, an end
        before the start, or an extra that is not JSON. Line breaks inside log_line become spaces:
        the log is one episode per line.
        """
        if strategy not in EPISODE_STRATEGIES:
            raise ValueError(f"episode: strategy {strategy!r} is not one of {EPISODE_STRATEGIES}")
        if not isinstance(symbol, str) or not symbol:
            raise ValueError(f"episode: symbol {symbol!r} is not a name")
        for name, value in (("peak_ratio", peak_ratio), ("peak_last", peak_last), ("peak_fair", peak_fair)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"episode {symbol}: {name} is {value!r}, expected a finite number")
        for name, value in (("start_ms", start_ms), ("end_ms", end_ms), ("peak_ms", peak_ms)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
                raise ValueError(f"episode {symbol}: {name} is {value!r}, expected a time in ms")
        if end_ms < start_ms:
            raise ValueError(f"episode {symbol}: ends ({end_ms}) before it starts ({start_ms})")
        try:
            extra_json = json.dumps(extra, allow_nan=False, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"episode {symbol}: extra is not JSON ({exc})") from None
        line = log_line.replace("\r\n", " ").replace("\n", " ").replace("\r", " ") + "\n"
        with write_transaction(self.db):
            cur = self.db.execute(
                "INSERT OR IGNORE INTO episodes (strategy, symbol, start_ms, end_ms, peak_ratio, peak_last, peak_fair,"
                " peak_ms, ended_by, extra, stored_ns) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (strategy, symbol, start_ms, end_ms, float(peak_ratio), float(peak_last), float(peak_fair), peak_ms,
                 str(ended_by), extra_json, time.time_ns()),
            )  # fmt: skip
            new = cur.rowcount == 1
            if new:
                handle = self._log(strategy)
                handle.write(line)
                handle.flush()
        return new

    def episodes(self, since_ms: int = 0, strategy: int | None = None) -> list[Episode]:
        """Episodes that ended at or after since_ms (optionally of one strategy), oldest start first."""
        query = ("SELECT strategy, symbol, start_ms, end_ms, peak_ratio, peak_last, peak_fair, peak_ms, ended_by, extra"
                 " FROM episodes WHERE end_ms >= ?")  # fmt: skip
        params: list[Any] = [since_ms]
        if strategy is not None:
            query += " AND strategy = ?"
            params.append(strategy)
        rows = self.db.execute(query + " ORDER BY start_ms, strategy, symbol", params).fetchall()
        return [Episode(*row[:9], extra=_extra(row[9])) for row in rows]

    def counts(self) -> dict[int, int]:
        """Stored episodes per strategy (every strategy present, 0 when none)."""
        out = dict.fromkeys(EPISODE_STRATEGIES, 0)
        for strategy, n in self.db.execute("SELECT strategy, COUNT(*) FROM episodes GROUP BY strategy"):
            out[int(strategy)] = int(n)
        return out

    def close(self) -> None:
        for handle in self._logs.values():
            handle.close()
        self._logs.clear()
        self.db.close()


def _extra(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {"value": value}
