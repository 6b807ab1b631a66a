"""Bounded disk (issue #23): history retention keeps SQLite at a steady size, log files rotate."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

from common.logs import setup_logging
from common.signal import Signal, make_signal_id
from store.history import Store
from store.retention import DAY_NS, OPEN_GRACE_DAYS, prune
from store.schema import OrderRecord

T0 = 1_790_000_000 * 10**9


def _add(store: Store, n: int, stored_ns: int, outcome: bool = True, features: int = 30) -> str:
    sid = make_signal_id(f"P{n % 50}USDT", 1_790_000_000_000 + n, 0)
    feats = {f"f{i}": float(i) for i in range(features)}
    assert store.add_signal(Signal(sid, f"P{n % 50}USDT", "alpha1", 1_790_000_000_000 + n, stored_ns, stored_ns, 1.0, 0.8, feats,
                                   ["vsr>5"] * 5, 0))  # fmt: skip
    store.db.execute("UPDATE signals SET stored_ns = ? WHERE signal_id = ?", (stored_ns, sid))
    if outcome:
        store.db.execute("INSERT INTO outcomes (signal_id, symbol, profile, signal_time_ms, price, horizon_s, hit_gain, take_profit,"
                         " stop_loss, outcome, rows, observed_from_ms, resumed, closed_ns) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                         (sid, "X", "alpha1", 0, 1.0, 3600, 0.1, 0.1, 0.05, "miss", 1, 0, 0, stored_ns))  # fmt: skip
    store.record_action(sid, 1, "buy", stored_ns)
    return sid


def test_prune_drops_old_closed_history_and_keeps_orders_open_watches_and_recent_rows(tmp_path: Path) -> None:
    store = Store(tmp_path)
    old = _add(store, 1, T0)
    old_open = _add(store, 2, T0, outcome=False)  # its watch may still run: kept for the grace period
    ancient_open = _add(store, 3, T0 - (OPEN_GRACE_DAYS + 1) * DAY_NS, outcome=False)
    new = _add(store, 4, T0 + 10 * DAY_NS)
    store.upsert_order(OrderRecord(f"c-{old}", old, "P1USDT", "paper", 100.0, "FILLED", created_ns=T0, updated_ns=T0))
    counts = prune(store.db, T0 + 5 * DAY_NS)
    assert counts == {"signals": 2, "outcomes": 1, "actions": 2, "episodes": 0}
    kept = {r[0] for r in store.db.execute("SELECT signal_id FROM signals")}
    assert kept == {old_open, new} and store.get_signal(ancient_open) is None and store.get_action(old) is None
    assert store.get_order(f"c-{old}") is not None  # the trading record stays
    assert prune(store.db, T0 + 5 * DAY_NS) == {"signals": 0, "outcomes": 0, "actions": 0, "episodes": 0}


def test_with_retention_the_file_stops_growing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    sizes = []
    for day in range(24):  # 150 signals a day (with outcome and decision), 4 days kept
        for n in range(150):
            _add(store, day * 1000 + n, T0 + day * DAY_NS + n)
        prune(store.db, T0 + (day - 4) * DAY_NS)
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        sizes.append(store.path.stat().st_size)
    assert store.db.execute("SELECT COUNT(*) FROM signals").fetchone()[0] == 5 * 150
    assert sizes[-1] <= sizes[8] * 1.1, sizes  # pages freed by the prune are reused: flat after the first days
    assert sizes[8] > sizes[0]


def test_the_log_file_rotates_one_file_per_process(tmp_path: Path) -> None:
    spec = SimpleNamespace(file="logs/scanner.log", file_max_mb=1.0, file_backups=2)
    try:
        for process in ("supervisor", "shard0"):
            setup_logging("INFO", process, secrets=["777:SECRET-TOKEN-X"], data_dir=str(tmp_path), log_file=spec)
            log = logging.getLogger("scanner.test")
            for i in range(4000):  # ~2.6 MB of lines: two rotations and a half
                log.info("line %d token 777:SECRET-TOKEN-X %s", i, "x" * 500)
        names = sorted(p.name for p in (tmp_path / "logs").iterdir())
        assert names == ["scanner.log", "scanner.log.1", "scanner.log.2", "scanner.shard0.log", "scanner.shard0.log.1",
                         "scanner.shard0.log.2"]  # fmt: skip
        for name in names:
            path = tmp_path / "logs" / name
            assert path.stat().st_size <= 2**20 + 1000
            lines = path.read_text().splitlines()
            assert all("SECRET-TOKEN" not in line for line in lines)
            assert json.loads(lines[-1])["proc"] == ("supervisor" if name.startswith("scanner.log") else "shard0")
        last = json.loads((tmp_path / "logs" / "scanner.shard0.log").read_text().splitlines()[-1])
        assert last["msg"].startswith("line 3999 ")  # the newest line is in the live file
    finally:
        setup_logging("INFO", "test")
