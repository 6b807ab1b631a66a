"""Disk full on the data dir (issue #23): signals still reach the chat, /status says so, storage resumes.

The full disk is simulated on the write path: the main file's connection answers every write as
SQLite does on a full filesystem (OperationalError "database or disk is full", SQLITE_FULL) and
serves reads as before; "space back" restores it. (RLIMIT_FSIZE was tried first: it caps each
file, so the main file's WAL kept taking writes at offsets it had already used, and the RAM spill
itself would be capped too.) Two Store objects play the supervisor (stores signals) and the bot
(reads them, sends the card, marks it sent, records the Buy and its order) on one data dir.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from common.signal import Signal, make_signal_id
from store import spill
from store.history import Store
from store.schema import OrderRecord


class FullDisk:
    """A connection whose writes fail as on a full disk; reads pass through."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.real = db

    @property
    def in_transaction(self) -> bool:
        return self.real.in_transaction

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        if sql.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE", "BEGIN", "REPLACE"):
            raise sqlite3.OperationalError("database or disk is full")
        return self.real.execute(sql, params)


def _sig(n: int) -> Signal:
    return Signal(make_signal_id("PEPEUSDT", 1_790_000_000_000 + n, 0), "PEPEUSDT", "alpha1", 1_790_000_000_000 + n, 1, 1, 1.0, 0.8,
                  {"vsr": 7.0}, ["vsr>5"], 0)  # fmt: skip


async def test_a_full_data_dir_keeps_signals_flowing_and_storage_resumes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    data = tmp_path / "data"
    supervisor, bot = Store(data), Store(data)
    try:
        for n in range(5):
            supervisor.add_signal(_sig(n))
        real_sup, real_bot = supervisor.db, bot.db
        supervisor.db, bot.db = FullDisk(real_sup), FullDisk(real_bot)  # type: ignore[assignment]  # the disk is full now
        new = [_sig(1000 + n) for n in range(5)]
        # Signalling goes on: each new signal is accepted once, and the bot reads and marks them.
        assert [supervisor.add_signal(s) for s in new] == [True] * 5 and supervisor.add_signal(new[0]) is False
        unsent = [s.signal_id for s in bot.unsent_signals()]
        assert all(s.signal_id in unsent for s in new) and bot.get_signal(new[0].signal_id) == new[0]
        bot.mark_card_sent(new[0].signal_id, 7, 70, 123)
        bot.mark_card_sent(_sig(3).signal_id, 7, 71, 124)  # an older signal whose card goes out during the outage
        assert bot.record_action(new[0].signal_id, 7, "buy", 125) is True and bot.record_action(new[0].signal_id, 7, "buy", 126) is False
        bot.upsert_order(OrderRecord("c1", new[0].signal_id, "PEPEUSDT", "paper", 100.0, "FILLED", price=1.0, qty=100.0))
        assert not {s.signal_id for s in bot.unsent_signals()} & {new[0].signal_id, _sig(3).signal_id}  # never sent twice
        # /status and the log say so, once per process.
        status = spill.status(supervisor)
        assert status["ok"] is False and "full" in status["error"] and status["rows_in_ram"] == 8
        assert [r.getMessage() for r in caplog.records].count(
            "history storage failed: writes go to RAM until the data dir takes them again; signals are still sent") == 2
        # Still full: nothing moves, nothing is lost.
        with pytest.raises(sqlite3.OperationalError):
            supervisor.spill.flush(supervisor.db)
        assert supervisor.spill.rows() == 5 + 1 + 1 + 1  # 5 signals, the older one copied for its mark, the action, the order
        supervisor.db, bot.db = real_sup, real_bot  # space is back
        told: list[str] = []
        stop = asyncio.Event()
        supervisor.storage_error = bot.storage_error = "database or disk is full"
        asyncio.get_running_loop().call_later(0.3, stop.set)
        await spill.spill_loop(supervisor, stop, told.append)
        assert len(told) == 2 and "failing" in told[0] and "back: 8 rows" in told[1]
        assert spill.status(supervisor)["ok"] is True and spill.status(supervisor)["rows_in_ram"] == 0
        # Every row is in the data dir itself now.
        db = sqlite3.connect(supervisor.path)
        assert db.execute("SELECT COUNT(*) FROM signals").fetchone()[0] == 10
        assert dict(db.execute("SELECT signal_id, card_sent_ns FROM signals WHERE card_sent_ns IS NOT NULL").fetchall()) == {
            new[0].signal_id: 123, _sig(3).signal_id: 124}
        assert db.execute("SELECT action, user_id FROM actions").fetchall() == [("buy", 7)]
        assert db.execute("SELECT status FROM orders WHERE client_order_id = 'c1'").fetchone() == ("FILLED",)
        db.close()
    finally:
        for path in (supervisor.spill.path, Path(f"{supervisor.spill.path}-wal"), Path(f"{supervisor.spill.path}-shm")):
            path.unlink(missing_ok=True)
