"""Triangle opportunities: one row per episode in `arb_opportunities` (the history's SQLite file).

Why the history's file and a table of its own (CREATE TABLE IF NOT EXISTS, no schema version bump):
backups, the Parquet mirror and the bot already know SCANNER_DATA_DIR/scanner.sqlite3, and a new
table alters nothing another process reads. The primary key (cycle, start_ms) makes storing the
same episode twice (a restart over the same data) a no-op.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ARB_SCHEMA = """
CREATE TABLE IF NOT EXISTS arb_opportunities (
    cycle TEXT NOT NULL,            -- 'USDT→BTC→XYZ→USDT (buy BTCUSDT, buy XYZBTC, sell XYZUSDT)'
    start_asset TEXT NOT NULL,
    legs TEXT NOT NULL,             -- JSON [[symbol, "buy"|"sell"], x3]
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    peak_ms INTEGER NOT NULL,
    peak_bps REAL NOT NULL,         -- profit of min_size_usdt after fees, rounding and the L10 walk, at its best
    size_usdt REAL NOT NULL,        -- the largest start amount above min_profit_bps at the peak
    size_bps REAL NOT NULL,         -- the profit of that amount
    leg_ages_ms TEXT NOT NULL,      -- JSON [age0, age1, age2] at the peak
    updates INTEGER NOT NULL,
    ended_by TEXT NOT NULL,         -- below, stale, one_sided, crossed, gap, universe, shutdown
    stored_ns INTEGER NOT NULL,
    PRIMARY KEY (cycle, start_ms)
);
CREATE INDEX IF NOT EXISTS arb_opportunities_start ON arb_opportunities (start_ms);
"""


@dataclass(frozen=True)
class Opportunity:
    """One stored episode."""

    cycle: str
    start_asset: str
    legs: list[tuple[str, str]]
    start_ms: int
    end_ms: int
    peak_ms: int
    peak_bps: float
    size_usdt: float
    size_bps: float
    leg_ages_ms: list[int]
    updates: int
    ended_by: str

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


class ArbStore:
    """arb_opportunities in data_dir/scanner.sqlite3 (WAL, busy timeout: safe beside the other processes)."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(Path(data_dir) / "scanner.sqlite3", timeout=10.0, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=10000")
        self.db.executescript(ARB_SCHEMA)

    def add(self, opp: Opportunity) -> bool:
        """Store one closed episode; False when it was stored before. ValueError for impossible values."""
        numbers = (opp.peak_bps, opp.size_usdt, opp.size_bps)
        if not all(math.isfinite(x) for x in numbers) or opp.end_ms < opp.start_ms or not opp.start_ms <= opp.peak_ms <= opp.end_ms:
            raise ValueError(f"arb opportunity {opp.cycle!r}: non-finite figure or times out of order")
        cur = self.db.execute(
            "INSERT OR IGNORE INTO arb_opportunities VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (opp.cycle, opp.start_asset, json.dumps(opp.legs), opp.start_ms, opp.end_ms, opp.duration_ms, opp.peak_ms, opp.peak_bps,
             opp.size_usdt, opp.size_bps, json.dumps(opp.leg_ages_ms), opp.updates, opp.ended_by, time.time_ns()),
        )  # fmt: skip
        return cur.rowcount == 1

    def since(self, start_ms: int, limit: int = 1000) -> list[Opportunity]:
        """Episodes that started at or after start_ms, best peak first."""
        rows = self.db.execute(
            "SELECT cycle, start_asset, legs, start_ms, end_ms, peak_ms, peak_bps, size_usdt, size_bps, leg_ages_ms, updates, ended_by "
            "FROM arb_opportunities WHERE start_ms >= ? ORDER BY peak_bps DESC, start_ms LIMIT ?",
            (start_ms, limit),
        ).fetchall()
        return [Opportunity(r[0], r[1], [tuple(x) for x in json.loads(r[2])], r[3], r[4], r[5], r[6], r[7], r[8], json.loads(r[9]), r[10], r[11])
                for r in rows]  # fmt: skip

    def summary(self, start_ms: int, top: int = 5) -> dict[str, Any]:
        """Count, median duration and the best episodes since start_ms (for /arb)."""
        durations = [r[0] for r in self.db.execute(
            "SELECT duration_ms FROM arb_opportunities WHERE start_ms >= ? ORDER BY duration_ms", (start_ms,)).fetchall()]  # fmt: skip
        return {"count": len(durations), "median_duration_ms": durations[len(durations) // 2] if durations else None,
                "best": [{"cycle": o.cycle, "peak_bps": o.peak_bps, "size_usdt": o.size_usdt, "duration_ms": o.duration_ms,
                          "start_ms": o.start_ms} for o in self.since(start_ms, top)]}  # fmt: skip

    def close(self) -> None:
        self.db.close()
