"""Storage: the outbox of signals and the record of decisions and orders, shared by processes."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal as signals
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from common.signal import Signal, make_signal_id
from store.history import Store
from store.schema import OrderRecord

_FORK = multiprocessing.get_context("fork")


def _signal(n: int, symbol: str = "PEPEUSDT", exchange_ms: int = 1_790_000_000_000) -> Signal:
    now = time.time_ns()
    return Signal(make_signal_id(symbol, exchange_ms + n, 0), symbol, "alpha1", exchange_ms + n, now, now, 1.5e-5 + n, 0.8,
                  {"vsr": 7.4, "pm": 0.031, "obi": float("nan")}, ["vsr>5", "pm>0.02"], 0)  # fmt: skip


def test_signals_round_trip_and_are_stored_once(tmp_path: Path) -> None:
    store = Store(tmp_path)
    sig = _signal(1)
    assert store.add_signal(sig) is True
    assert store.add_signal(sig) is False
    again = Store(tmp_path).get_signal(sig.signal_id)
    assert again is not None and again.to_dict() == sig.to_dict()
    assert math.isnan(again.features["obi"])
    assert store.get_signal("NOPEUSDT-1790000000000-0") is None
    assert sqlite3.connect(tmp_path / "scanner.sqlite3").execute("SELECT symbol FROM signals").fetchall() == [("PEPEUSDT",)]


def test_a_signal_without_a_finite_price_is_refused_clearly(tmp_path: Path) -> None:
    sig = _signal(1)
    sig.price = float("nan")
    with pytest.raises(ValueError, match="price is nan, expected a finite number"):
        Store(tmp_path).add_signal(sig)


def test_unsent_signals_oldest_first_until_sent_or_suppressed(tmp_path: Path) -> None:
    store = Store(tmp_path)
    sigs = [_signal(n) for n in range(4)]
    for sig in sigs:
        store.add_signal(sig)
    assert [s.signal_id for s in store.unsent_signals()] == [s.signal_id for s in sigs]
    store.mark_card_sent(sigs[1].signal_id, 42, 7, 123)
    store.mark_suppressed(sigs[2].signal_id, "alerts paused")
    assert [s.signal_id for s in store.unsent_signals()] == [sigs[0].signal_id, sigs[3].signal_id]
    store.mark_card_sent(sigs[1].signal_id, 42, 8, 999)  # a late duplicate does not move the first send
    assert store.card_sent_ns(sigs[1].signal_id) == 123


def _add_then_die(data_dir: str, n: int) -> None:
    Store(data_dir).add_signal(_signal(n))
    os.kill(os.getpid(), signals.SIGKILL)  # killed before the card could be marked sent


def test_a_process_killed_between_add_and_mark_leaves_the_signal_unsent(tmp_path: Path) -> None:
    proc = _FORK.Process(target=_add_then_die, args=(str(tmp_path), 5))
    proc.start()
    proc.join(20)
    assert proc.exitcode == -signals.SIGKILL
    store = Store(tmp_path)
    assert [s.signal_id for s in store.unsent_signals()] == [_signal(5).signal_id]
    store.mark_card_sent(_signal(5).signal_id, 1, 2, 3)
    assert Store(tmp_path).unsent_signals() == []


def _writer(data_dir: str, offset: int, count: int, user_id: int, wins: Any) -> None:
    store = Store(data_dir)
    won = 0
    for n in range(offset, offset + count):
        sig = _signal(n)
        store.add_signal(sig)
        won += store.record_action(sig.signal_id, user_id, "buy" if n % 2 else "skip", time.time_ns())
        store.upsert_order(OrderRecord(f"cid{n}", sig.signal_id, sig.symbol, "paper", 100.0, "FILLED", price=1.0, qty=100.0))
        store.mark_card_sent(sig.signal_id, 1, n, time.time_ns())
    store.close()
    wins.put((user_id, won))


def test_several_processes_write_at_once_without_losing_or_locking(tmp_path: Path) -> None:
    Store(tmp_path).close()
    wins = _FORK.Queue()
    # Three writers on their own signals, and a fourth racing the first on the same signals.
    args = [(0, 1), (1000, 2), (2000, 3), (0, 4)]
    procs = [_FORK.Process(target=_writer, args=(str(tmp_path), offset, 150, user, wins)) for offset, user in args]
    for proc in procs:
        proc.start()
    reader = Store(tmp_path)
    while any(p.is_alive() for p in procs):
        reader.unsent_signals()
        reader.stats(0)
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    won = dict(wins.get(timeout=5) for _ in procs)
    stats = reader.stats(0)
    assert stats["signals"] == 450 and stats["buys"] + stats["skips"] == 450 and stats["paper_orders"] == 450
    assert reader.unsent_signals() == []
    assert won[2] == won[3] == 150 and won[1] + won[4] == 150  # each contested signal decided exactly once
    deciders = {reader.get_action(_signal(n).signal_id)[1] for n in range(150)}  # type: ignore[index]
    assert deciders <= {1, 4} and sum(won[u] for u in deciders) == 150


def test_the_first_decision_wins(tmp_path: Path) -> None:
    store = Store(tmp_path)
    sig = _signal(1)
    store.add_signal(sig)
    assert store.get_action(sig.signal_id) is None
    assert store.record_action(sig.signal_id, 7, "skip", 1) is True
    assert store.record_action(sig.signal_id, 8, "buy", 2) is False
    assert store.get_action(sig.signal_id) == ("skip", 7)
    with pytest.raises(ValueError, match="expected one of buy, skip"):
        store.record_action(_signal(2).signal_id, 7, "sell", 3)


def test_orders_update_in_place_and_only_real_orders_count(tmp_path: Path) -> None:
    store = Store(tmp_path)
    order = OrderRecord("scn_a", "S-1790000000000-0", "AUSDT", "live", 100.0, "PENDING", created_ns=5)
    store.upsert_order(order)
    order.status, order.exchange_order_id, order.price, order.qty = "FILLED", "C02__1", 2.0, 50.0
    store.upsert_order(order)
    got = store.get_order("scn_a")
    assert got is not None and (got.status, got.exchange_order_id, got.qty, got.created_ns) == ("FILLED", "C02__1", 50.0, 5)
    store.upsert_order(OrderRecord("scn_b", "S-1790000000001-0", "AUSDT", "live", 100.0, "REFUSED", error_msg="stale", created_ns=6))
    store.upsert_order(OrderRecord("scn_c", "S-1790000000002-0", "AUSDT", "paper", 100.0, "FILLED", created_ns=7))
    stats = store.stats(0)
    assert (stats["live_orders"], stats["paper_orders"]) == (1, 1)
    assert store.get_order("scn_missing") is None
    with pytest.raises(ValueError, match="expected paper or live"):
        store.upsert_order(OrderRecord("scn_d", "S-1", "AUSDT", "demo", 1.0, "FILLED"))


def test_stats_count_signals_per_hour_since_a_time(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for n in range(6):
        store.add_signal(_signal(n))
    store.record_action(_signal(0).signal_id, 1, "buy", time.time_ns())
    since = time.time_ns() - 2 * 3600 * 10**9
    stats = store.stats(since)
    assert stats["signals"] == 6 and stats["buys"] == 1 and stats["skips"] == 0
    assert stats["signals_per_hour"] == pytest.approx(3.0, rel=0.01)
    assert store.stats(time.time_ns() + 10**9)["signals"] == 0


def test_parquet_mirror_round_trips_a_month_with_decisions(tmp_path: Path) -> None:
    store = Store(tmp_path)
    jan = 1_767_225_600_000  # 2026-01-01 00:00 UTC
    inside = [_signal(n, exchange_ms=jan) for n in range(3)]
    for sig in [*inside, _signal(0, exchange_ms=jan - 1), _signal(0, "XUSDT", exchange_ms=jan + 31 * 86_400_000)]:
        store.add_signal(sig)
    store.record_action(inside[1].signal_id, 9, "buy", 77)
    store.add_outcome({"signal_id": inside[2].signal_id, "symbol": inside[2].symbol, "profile": inside[2].profile, "signal_time_ms": jan,
                       "price": inside[2].price, "horizon_s": 1200.0, "hit_gain": 0.1, "take_profit": 0.1, "stop_loss": 0.05, "outcome": "hit",
                       "trade": "TP", "max_gain": 0.14, "max_drawdown": -0.01, "time_to_max_s": 95.0, "tp_time_s": 60.0, "sl_time_s": None,
                       "rows": 1000, "observed_from_ms": jan, "resumed": False, "reason": None})  # fmt: skip
    (path,) = store.mirror_parquet("202601")
    assert path == tmp_path / "parquet" / "signals_202601.parquet"
    rows = pq.read_table(path).to_pylist()
    assert [r["signal_id"] for r in rows] == [s.signal_id for s in inside]
    assert rows[1]["action"] == "buy" and rows[1]["action_user_id"] == 9 and rows[0]["action"] is None
    assert (rows[2]["outcome"], rows[2]["trade"], rows[2]["max_gain"], rows[2]["time_to_max_s"]) == ("hit", "TP", 0.14, 95.0)
    assert rows[0]["outcome"] is None  # still being watched
    back = Signal.from_dict({**rows[2], "features": json.loads(rows[2]["features"]), "reasons": json.loads(rows[2]["reasons"])})
    assert back.to_dict() == inside[2].to_dict()
    (dec,) = store.mirror_parquet("202512")  # the last millisecond of December lands in December's file
    assert pq.read_table(dec).column("exchange_time_ms").to_pylist() == [jan - 1]
    (empty,) = store.mirror_parquet("202603")  # asked for explicitly: written even when empty, with the same columns
    assert pq.read_table(empty).num_rows == 0 and pq.read_table(empty).schema == pq.read_table(path).schema
    with pytest.raises(ValueError, match="expected YYYYMM"):
        store.mirror_parquet("2026-1")


def test_default_mirror_writes_only_months_with_signals(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store.mirror_parquet() == []
    now_ms = int(time.time() * 1000)
    store.add_signal(_signal(0, exchange_ms=now_ms))
    (path,) = store.mirror_parquet()
    assert path.name == time.strftime("signals_%Y%m.parquet", time.gmtime(now_ms / 1000))


def test_a_failed_mirror_leaves_the_previous_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path)
    jan = 1_767_225_600_000
    store.add_signal(_signal(0, exchange_ms=jan))
    (path,) = store.mirror_parquet("202601")
    before = path.read_bytes()
    store.add_signal(_signal(1, exchange_ms=jan))

    def half_write(table: object, where: str, **_: object) -> None:
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", half_write)
    with pytest.raises(OSError, match="disk full"):
        store.mirror_parquet("202601")
    assert path.read_bytes() == before and pq.read_table(path).num_rows == 1
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    monkeypatch.undo()
    store.mirror_parquet("202601")
    assert pq.read_table(path).num_rows == 2


def test_importing_storage_does_not_load_pyarrow() -> None:
    code = "import sys, store.history; print('pyarrow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, cwd=Path(__file__).parent.parent)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr


def test_mirror_command_runs_in_its_own_process(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.add_signal(_signal(0, exchange_ms=1_767_225_600_000))
    root = Path(__file__).parent.parent
    out = subprocess.run([sys.executable, "-m", "store.parquet", str(tmp_path), "202601"], capture_output=True, text=True,
                         timeout=60, cwd=root)  # fmt: skip
    assert out.returncode == 0, out.stderr
    (written,) = json.loads(out.stdout)["written"]
    assert pq.read_table(written).column("signal_id").to_pylist() == [_signal(0, exchange_ms=1_767_225_600_000).signal_id]
    bad = subprocess.run([sys.executable, "-m", "store.parquet", str(tmp_path), "1999"], capture_output=True, text=True,
                         timeout=60, cwd=root)  # fmt: skip
    assert bad.returncode == 2 and "expected YYYYMM" in bad.stderr


def test_card_context_round_trips_and_old_files_gain_the_column_keeping_their_rows(tmp_path: Path) -> None:
    """signals.context is added to an existing file by ALTER; old rows read back with the Signal's defaults."""
    old_dir = tmp_path / "old"
    old_dir.mkdir()
    db = sqlite3.connect(old_dir / "scanner.sqlite3")
    db.executescript(
        "CREATE TABLE signals (signal_id TEXT PRIMARY KEY, symbol TEXT NOT NULL, profile TEXT NOT NULL, exchange_time_ms INTEGER NOT NULL,"
        " recv_ns INTEGER NOT NULL, created_ns INTEGER NOT NULL, price REAL NOT NULL, prob REAL NOT NULL, features TEXT NOT NULL,"
        " reasons TEXT NOT NULL, escalation INTEGER NOT NULL, stored_ns INTEGER NOT NULL, card_sent_ns INTEGER, chat_id INTEGER,"
        " message_id INTEGER, suppressed TEXT);"
        " INSERT INTO signals VALUES ('OLDUSDT-1790000000000-0', 'OLDUSDT', 'alpha1', 1790000000000, 1, 2, 0.5, 0.7, '{}', '[]',"
        " 0, 3, NULL, NULL, NULL, NULL);"
        " PRAGMA user_version = 1;"
    )  # fmt: skip
    db.close()
    store, other = Store(old_dir), Store(old_dir)  # the supervisor and the bot open the file at once
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == 2
    old = store.get_signal("OLDUSDT-1790000000000-0")
    assert old is not None and old.model_trained is False and old.change_1m is None and old.quote_volume_24h is None
    assert [s.signal_id for s in other.unsent_signals()] == [old.signal_id]

    sig = _signal(1)
    sig.model_trained, sig.change_1m, sig.change_5m, sig.change_15m, sig.quote_volume_24h = True, 0.012, -0.003, None, 1.25e6
    assert store.add_signal(sig)
    back = other.get_signal(sig.signal_id)
    assert back is not None and back.to_dict() == sig.to_dict()
    assert back.model_trained is True and back.change_1m == 0.012 and back.change_15m is None and back.quote_volume_24h == 1.25e6
    store.db.execute("UPDATE signals SET context = 'not json' WHERE signal_id = ?", (sig.signal_id,))
    garbled = store.get_signal(sig.signal_id)
    assert garbled is not None and garbled.model_trained is False and garbled.change_1m is None  # odd context: unknown, not an error


def test_signal_json_without_the_card_context_still_reads() -> None:
    """JSON written before the context fields existed, and NaN/garbage in them, read as "unknown"."""
    sig = _signal(1)
    old = {k: v for k, v in sig.to_dict().items() if k not in ("model_trained", "change_1m", "change_5m", "change_15m", "quote_volume_24h")}
    back = Signal.from_dict(old)
    assert back.model_trained is False and back.change_5m is None and back.quote_volume_24h is None
    odd = Signal.from_dict({**old, "model_trained": "yes", "change_1m": "x", "change_5m": float("nan"), "quote_volume_24h": 10**400})
    assert odd.model_trained is False and odd.change_1m is None and odd.change_5m is None and odd.quote_volume_24h is None
    sig.change_1m = float("nan")
    assert json.loads(sig.to_json())["change_1m"] is None
