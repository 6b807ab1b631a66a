"""The outcome tracker on synthetic feature-row batches, its storage, and its Prometheus families."""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.core import Metric

from common.config import ConfigError, OutcomeConfig, config_from_mapping, set_value
from common.signal import Signal, make_signal_id
from core.rowspec import FEATURE_ROW_DTYPE
from store.history import Store
from supervisor.metrics import outcome_families
from supervisor.outcome import CLOSE_GRACE_MS, UNWATCHED_REASON, OutcomeTracker

T0 = 1_790_000_000_000
CFG = OutcomeConfig(horizon_s=1200, hit_gain=0.10, take_profit=0.10, stop_loss=0.05)


def _rows(points: list[tuple[int, float, float]]) -> np.ndarray:
    """(pair_id, seconds after T0, price) -> a batch of feature rows like a ring's read_new()."""
    rows = np.zeros(len(points), dtype=FEATURE_ROW_DTYPE)
    for i, (pair_id, t_s, price) in enumerate(points):
        rows[i]["pair_id"], rows[i]["row_time_ms"], rows[i]["last_price"] = pair_id, T0 + int(t_s * 1000), price
    return rows


def _clock(t_s: float, pair_id: int = 99) -> np.ndarray:
    """One row of an unwatched pair: only moves the shared exchange clock."""
    return _rows([(pair_id, t_s, 1.0)])


def _tracker(config: OutcomeConfig = CFG) -> OutcomeTracker:
    tracker = OutcomeTracker(config)
    assert tracker.open("AUSDT-1-0", "AUSDT", "alpha1", 1, T0, 2.0)
    return tracker


def test_gain_path_is_a_hit_with_tp_and_the_time_of_the_top() -> None:
    tracker = _tracker()
    assert tracker.update(_rows([(1, 0, 9.0), (1, 60, 2.1), (1, 120, 2.3), (1, 180, 2.25)])) == []  # t=0 is the signal row itself
    assert tracker.update(_rows([(1, 300, 2.4), (1, 360, 2.2)])) == []
    (out,) = tracker.update(_clock(1200 + CLOSE_GRACE_MS / 1000))
    assert (out.outcome, out.trade, out.signal_id) == ("hit", "TP", "AUSDT-1-0")
    assert out.max_gain == pytest.approx(0.2) and out.time_to_max_s == 300.0
    assert out.max_drawdown == 0.0 and out.tp_time_s == 120.0 and out.sl_time_s is None and out.rows == 5
    assert len(tracker) == 0


def test_drawdown_path_is_a_miss_with_sl_and_a_small_gain_first() -> None:
    tracker = _tracker()
    tracker.update(_rows([(1, 10, 2.08), (1, 20, 1.95), (1, 30, 1.88), (1, 40, 1.80), (1, 50, 1.92)]))
    (out,) = tracker.update(_clock(1300))
    assert (out.outcome, out.trade) == ("miss", "SL")
    assert out.max_gain == pytest.approx(0.04) and out.time_to_max_s == 10.0
    assert out.max_drawdown == pytest.approx(-0.10) and out.sl_time_s == 30.0


@pytest.mark.parametrize(("path", "trade"), [
    ([(100, 2.2), (200, 1.8)], "TP"),   # up 10 % first, then down 10 %
    ([(100, 1.8), (200, 2.4)], "SL"),   # down first: a stop-loss, even though it later rose 20 %
])  # fmt: skip
def test_whichever_level_is_crossed_first_labels_the_trade(path: list[tuple[int, float]], trade: str) -> None:
    tracker = _tracker()
    # Delivered newest first (two rings, out of order): the crossing *times* decide, not row order.
    tracker.update(_rows([(1, t, p) for t, p in reversed(path)]))
    (out,) = tracker.update(_clock(1300))
    assert out.trade == trade and out.outcome == ("hit" if max(p for _, p in path) >= 2.2 else "miss")


def test_prices_after_the_horizon_do_not_count_and_quiet_pairs_time_out() -> None:
    tracker = _tracker()
    tracker.update(_rows([(1, 500, 2.05)]))
    assert tracker.update(_clock(1201)) == []  # past the end, but within the grace for late shards
    assert tracker.update(_rows([(1, 1200, 2.06), (1, 1200.5, 3.0)])) == []  # the last in-horizon row counts; later ones not
    (out,) = tracker.update(_clock(1202))
    assert (out.outcome, out.trade, out.rows) == ("miss", "TIMEOUT", 2)
    assert out.max_gain == pytest.approx(0.03) and out.time_to_max_s == 1200.0
    silent = _tracker()  # no row of its own pair at all: closed by the other pairs' clock
    (out,) = silent.update(_clock(1300))
    assert (out.outcome, out.trade, out.max_gain, out.max_drawdown, out.rows) == ("miss", "TIMEOUT", 0.0, 0.0, 0)


def test_several_pairs_and_two_watches_on_one_pair_are_kept_apart() -> None:
    tracker = OutcomeTracker(CFG)
    tracker.open("AUSDT-1-0", "AUSDT", "alpha1", 1, T0, 1.0)
    tracker.open("BUSDT-1-0", "BUSDT", "alpha1", 2, T0 + 5000, 10.0)
    tracker.open("AUSDT-2-1", "AUSDT", "alpha1", 1, T0 + 600_000, 1.2)  # an escalation 10 min later
    assert not tracker.open("AUSDT-2-1", "AUSDT", "alpha1", 1, T0, 1.0) and not tracker.open("X-1-0", "XUSDT", "a", 3, T0, float("nan"))
    batch = _rows([(1, 100, 1.15), (2, 100, 9.0), (3, 100, 50.0), (1, 700, 1.32), (2, 700, 10.5)])
    assert tracker.update(batch) == []
    closed = {o.signal_id: o for o in tracker.update(_clock(1210))}
    assert set(closed) == {"AUSDT-1-0", "BUSDT-1-0"}
    assert closed["AUSDT-1-0"].max_gain == pytest.approx(0.32) and closed["AUSDT-1-0"].trade == "TP"
    assert closed["BUSDT-1-0"].max_drawdown == pytest.approx(-0.10) and closed["BUSDT-1-0"].trade == "SL"
    assert tracker.update(_rows([(1, 1300, 1.0)])) == []
    (late,) = tracker.update(_clock(1810))
    assert late.signal_id == "AUSDT-2-1" and late.max_gain == pytest.approx(0.1) and late.max_drawdown == pytest.approx(1.0 / 1.2 - 1)
    assert (late.outcome, late.trade, late.tp_time_s, late.sl_time_s) == ("hit", "TP", 100.0, 700.0)


def _outcome_of_whole_path(points: list[tuple[int, float, float]], pair_id: int, t0_s: float, price: float) -> dict[str, object]:
    """What a watch must report, read off the whole path at once (the definition, not the fold)."""
    t0, end = T0 + int(t0_s * 1000), T0 + int(t0_s * 1000) + int(CFG.horizon_s * 1000)
    seen = [(T0 + int(t * 1000), p / price - 1.0) for pid, t, p in points if pid == pair_id and np.isfinite(p) and p > 0]
    seen = [(t, g) for t, g in seen if t0 < t <= end]
    top = max([0.0] + [g for _, g in seen])
    t_top = min([t for t, g in seen if g == top], default=t0) if top > 0 else t0
    tp = min([t for t, g in seen if g >= CFG.take_profit - 1e-12], default=None)
    sl = min([t for t, g in seen if g <= -CFG.stop_loss + 1e-12], default=None)
    trade = "TP" if tp is not None and (sl is None or tp < sl) else "SL" if sl is not None else "TIMEOUT"
    return {"rows": len(seen), "max_gain": top, "max_drawdown": min([0.0] + [g for _, g in seen]),
            "time_to_max_s": (t_top - t0) / 1000.0, "trade": trade}  # fmt: skip


_PRICES = st.one_of(st.sampled_from([1.0, 1.05, 1.1, 0.95, 0.9, 1.2, 0.0, -1.0, float("nan"), float("inf")]), st.floats(0.5, 1.5))


@settings(max_examples=200, deadline=None)
@given(
    # Times up to A-0's end + 1 s: rows past a horizon are seen, yet no watch closes mid-path.
    points=st.lists(st.tuples(st.integers(1, 3), st.integers(-5, 1201), _PRICES), max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=6),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_batching_and_order_of_a_path_gives_the_outcome_of_the_whole_path(
    points: list[tuple[int, float, float]], cuts: list[int], seed: int
) -> None:
    """Rings deliver rows in batches of any size and, across a shard move, slightly out of order."""
    watches = {"A-0": (1, 0.0, 1.0), "A-9": (1, 90.0, 1.1), "B-5": (2, 5.0, 1.0)}
    tracker = OutcomeTracker(CFG)
    for signal_id, (pair_id, t0_s, price) in watches.items():
        assert tracker.open(signal_id, signal_id[0], "alpha1", pair_id, T0 + int(t0_s * 1000), price)
    shuffled = list(points)
    np.random.default_rng(seed).shuffle(shuffled)
    closed = {}
    bounds = sorted({0, len(shuffled), *(c for c in cuts if c <= len(shuffled))})
    for lo, hi in itertools.pairwise(bounds):
        for o in tracker.update(_rows(shuffled[lo:hi])):
            closed[o.signal_id] = o
    for o in tracker.update(_clock(2000)):
        closed[o.signal_id] = o
    assert set(closed) == set(watches)
    for signal_id, (pair_id, t0_s, price) in watches.items():
        o = closed[signal_id]
        got = {"rows": o.rows, "max_gain": o.max_gain, "max_drawdown": o.max_drawdown, "time_to_max_s": o.time_to_max_s, "trade": o.trade}
        assert got == _outcome_of_whole_path(points, pair_id, t0_s, price)


def test_changed_levels_apply_to_new_watches_only() -> None:
    tracker = _tracker()
    tracker.update_config(OutcomeConfig(horizon_s=60, hit_gain=0.5, take_profit=0.02, stop_loss=0.01))
    tracker.open("BUSDT-1-0", "BUSDT", "alpha1", 2, T0, 1.0)
    tracker.update(_rows([(1, 30, 2.1), (2, 30, 1.03)]))
    (short,) = tracker.update(_clock(63))
    assert short.signal_id == "BUSDT-1-0" and (short.outcome, short.trade, short.horizon_s, short.take_profit) == ("miss", "TP", 60, 0.02)
    (long,) = tracker.update(_clock(1300))
    assert (long.outcome, long.trade, long.horizon_s, long.take_profit) == ("miss", "TIMEOUT", 1200, 0.10)


def test_resumed_watches_continue_or_close_as_unknown_with_a_reason() -> None:
    tracker = OutcomeTracker(CFG)
    tracker.open("OLD-1-0", "OLDUSDT", "alpha1", 1, T0 - 3_000_000, 1.0, resumed=True)  # ended 30 min before restart
    tracker.open("NEW-1-0", "NEWUSDT", "alpha1", 2, T0 - 100_000, 1.0, resumed=True)  # 100 s old at restart
    first = tracker.update(_rows([(2, 0, 1.12), (1, 0, 5.0)]))
    assert [(o.signal_id, o.outcome, o.trade, o.max_gain) for o in first] == [("OLD-1-0", "unknown", None, None)]
    assert first[0].reason == UNWATCHED_REASON
    (new,) = tracker.update(_clock(1200))
    assert (new.outcome, new.trade, new.resumed, new.observed_from_ms) == ("hit", "TP", True, T0)
    assert new.max_gain == pytest.approx(0.12) and new.time_to_max_s == 100.0 and "resumed after a restart" in (new.reason or "")


def test_no_open_watch_costs_one_check_per_batch() -> None:
    tracker = OutcomeTracker(CFG)
    rows = _rows([(i % 2000, i / 1000, 1.0) for i in range(20_000)])
    start = time.perf_counter()
    for _ in range(100):
        tracker.update(rows)
    idle = (time.perf_counter() - start) / 100
    tracker.open("AUSDT-1-0", "AUSDT", "alpha1", 7, T0, 1.0)
    start = time.perf_counter()
    for _ in range(100):
        tracker.update(rows)
    watched = (time.perf_counter() - start) / 100
    print(f"update of 20k rows: idle {idle * 1e6:.0f} us, one watch {watched * 1e6:.0f} us")
    assert idle < 0.002 and watched < 0.02


def test_outcome_config_is_validated_and_settable() -> None:
    config = config_from_mapping({"outcome": {"take_profit": 0.2, "stop_loss": 0.03, "horizon_s": 600}}, environ={})
    assert (config.outcome.take_profit, config.outcome.stop_loss, config.outcome.horizon_s, config.outcome.hit_gain) == (0.2, 0.03, 600, 0.1)
    with pytest.raises(ConfigError, match=r"outcome.stop_loss: got 1.5, expected a value <= 0.99"):
        config_from_mapping({"outcome": {"stop_loss": 1.5}}, environ={})
    with pytest.raises(ConfigError, match="outcome.horizon: unknown key"):
        config_from_mapping({"outcome": {"horizon": 5}}, environ={})
    assert set_value(config, "outcome.take_profit", "0.15").outcome.take_profit == 0.15


# --- storage -------------------------------------------------------------------------------------


def _signal(symbol: str, n: int, price: float = 2.0) -> Signal:
    t = T0 + n * 1000
    return Signal(make_signal_id(symbol, t, 0), symbol, "alpha1", t, time.time_ns(), time.time_ns(), price, 0.8, {"vsr": 6.0}, ["VSR"], 0)


_OLD_SCHEMA = """
CREATE TABLE signals (signal_id TEXT PRIMARY KEY, symbol TEXT NOT NULL, profile TEXT NOT NULL, exchange_time_ms INTEGER NOT NULL,
    recv_ns INTEGER NOT NULL, created_ns INTEGER NOT NULL, price REAL NOT NULL, prob REAL NOT NULL, features TEXT NOT NULL,
    reasons TEXT NOT NULL, escalation INTEGER NOT NULL, stored_ns INTEGER NOT NULL, card_sent_ns INTEGER, chat_id INTEGER,
    message_id INTEGER, suppressed TEXT);
CREATE TABLE actions (signal_id TEXT PRIMARY KEY, user_id INTEGER NOT NULL, action TEXT NOT NULL, at_ns INTEGER NOT NULL);
INSERT INTO signals VALUES ('OLDUSDT-1790000000000-0', 'OLDUSDT', 'alpha1', 1790000000000, 1, 2, 0.5, 0.7, '{"vsr": 6.0}', '["VSR"]',
    0, 3, 4, 42, 7, NULL);
INSERT INTO actions VALUES ('OLDUSDT-1790000000000-0', 42, 'buy', 5);
"""


def test_an_old_database_keeps_its_rows_and_gains_the_outcomes_table(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "scanner.sqlite3")
    db.executescript(_OLD_SCHEMA)
    db.close()
    store = Store(tmp_path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == 2  # 2: signals.context added by ALTER
    old = store.get_signal("OLDUSDT-1790000000000-0")
    assert old is not None and old.price == 0.5 and store.get_action(old.signal_id) == ("buy", 42) and store.unsent_signals() == []
    assert [s.signal_id for s in store.signals_without_outcome()] == [old.signal_id]
    tracker = OutcomeTracker(CFG)
    tracker.open(old.signal_id, old.symbol, old.profile, 1, old.exchange_time_ms, old.price, resumed=True)
    tracker.update(_rows([(1, 1, 0.56)]))
    (out,) = tracker.update(_clock(1210))
    assert store.add_outcome(out.to_dict()) and not store.add_outcome(out.to_dict())
    assert store.signals_without_outcome() == []
    assert store.get_outcome(old.signal_id) == {**out.to_dict(), "resumed": True}
    store.close()
    reopened = Store(tmp_path)  # a second open changes nothing
    assert reopened.get_outcome(old.signal_id)["max_gain"] == pytest.approx(0.12)
    reopened.close()


def test_stats_and_counts_by_window_label_and_profile(tmp_path: Path) -> None:
    store = Store(tmp_path)
    tracker = OutcomeTracker(CFG)
    for n, price in enumerate((2.3, 2.1, 1.8, 2.25)):
        sig = _signal(f"P{n}USDT", n)
        store.add_signal(sig)
        tracker.open(sig.signal_id, sig.symbol, sig.profile, n + 1, sig.exchange_time_ms, 2.0)
        tracker.update(_rows([(n + 1, n + 30, price)]))
    outcomes = tracker.update(_clock(1300))
    for o in outcomes:
        assert store.add_outcome(o.to_dict())
    unknown = {**outcomes[0].to_dict(), "signal_id": "Z-1-0", "outcome": "unknown", "trade": None, "max_gain": None}
    store.add_outcome(unknown)
    store.db.execute("UPDATE outcomes SET closed_ns = 1 WHERE signal_id = ?", (outcomes[1].signal_id,))  # closed long ago
    with pytest.raises(ValueError, match="expected one of hit, miss, unknown"):
        store.add_outcome({**unknown, "outcome": "great"})
    assert store.outcome_stats(0) == {"hit": 2, "miss": 2, "unknown": 1, "TP": 2, "SL": 1, "TIMEOUT": 1, "hit_rate": 0.5}
    recent = store.outcome_stats(time.time_ns() - 3600 * 10**9)
    assert (recent["hit"], recent["miss"], recent["TIMEOUT"], recent["hit_rate"]) == (2, 1, 0, pytest.approx(2 / 3))
    assert store.outcome_counts() == {("hit", "alpha1"): 2, ("miss", "alpha1"): 2, ("unknown", "alpha1"): 1, ("TP", "alpha1"): 2,
                                      ("SL", "alpha1"): 1, ("TIMEOUT", "alpha1"): 1}  # fmt: skip
    assert Store(tmp_path / "empty").outcome_stats(0)["hit_rate"] is None


def test_prometheus_families_count_by_outcome_and_profile_never_symbol() -> None:
    families: list[Metric] = outcome_families({("hit", "alpha1"): 3, ("miss", "alpha1"): 1, ("TP", "alpha1"): 2, ("SL", "trades"): 1})
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}
    assert samples[("scanner_outcomes_total", (("outcome", "hit"), ("profile", "alpha1")))] == 3
    assert samples[("scanner_trade_outcomes_total", (("outcome", "SL"), ("profile", "trades")))] == 1
    assert samples[("scanner_outcome_hit_rate", (("profile", "alpha1"),))] == 0.75
    assert all(set(s.labels) <= {"outcome", "profile"} for f in families for s in f.samples)


# --- in the supervisor -----------------------------------------------------------------------------


class _FakeRing:
    def __init__(self) -> None:
        self.batches: list[np.ndarray] = []

    def drain_notify(self) -> None:
        pass

    def read_new(self) -> np.ndarray:
        return self.batches.pop(0)


def test_supervisor_resumes_stored_watches_stores_outcomes_without_a_bot_and_hot_reloads_levels(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    import shutil

    from detectors.base import Decision
    from supervisor.app import Supervisor
    from supervisor.planning import ShardHandle

    repo = Path(__file__).resolve().parent.parent
    shutil.copy(repo / "config.yaml", tmp_path / "config.yaml")
    shutil.copy(repo / "model.json", tmp_path / "model.json")
    shutil.copy(repo / "model.flash.json", tmp_path / "model.flash.json")
    monkeypatch.setenv("SCANNER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TG_TOKEN", raising=False)
    before_restart = Store(tmp_path / "data")
    old = _signal("OLDUSDT", -100, price=1.0)  # stored by the previous run, 100 s before the first row we will see
    before_restart.add_signal(old)
    before_restart.close()

    sup = Supervisor(tmp_path / "config.yaml")
    pipeline, planning = sup.pipeline, sup.planning
    pipeline.resume_watches()
    assert pipeline.tracker.open_ids() == [old.signal_id] and "OLDUSDT" in planning.pair_ids
    assert sup.control.set_value("outcome.stop_loss", "0.04")[0] and pipeline.tracker.config.stop_loss == 0.04
    assert not sup.control.set_value("outcome.stop_loss", "2")[0] and pipeline.tracker.config.stop_loss == 0.04

    new_id = planning.pair_id("NEWUSDT")
    row = _rows([(new_id, 0, 2.0)])[0]
    pipeline.emit(Decision(new_id, row, 0.9, ["test"], 0), time.time_ns())
    assert json.loads(capsys.readouterr().out)["symbol"] == "NEWUSDT"  # no bot: printed and stored, as before
    assert len(pipeline.tracker) == 2

    ring = _FakeRing()
    handle = ShardHandle(0, ring, None)
    old_id = planning.pair_ids["OLDUSDT"]
    ring.batches = [_rows([(old_id, 0, 1.05), (new_id, 0, 2.0), (new_id, 20, 1.9), (old_id, 30, 1.15)]), _rows([(old_id, 1300, 1.0)])]
    pipeline.on_ring_ready(handle)
    assert pipeline.outcome_counts == {}
    pipeline.on_ring_ready(handle)
    resumed, fresh = sup.store.get_outcome(old.signal_id), sup.store.get_outcome(f"NEWUSDT-{T0}-0")
    assert resumed is not None and fresh is not None
    assert (resumed["outcome"], resumed["trade"], resumed["resumed"], resumed["max_gain"]) == ("hit", "TP", True, pytest.approx(0.15))
    assert (fresh["outcome"], fresh["trade"], fresh["stop_loss"], fresh["max_drawdown"]) == ("miss", "SL", 0.04, pytest.approx(-0.05))
    text = sup.metrics.render().decode()
    assert 'scanner_outcomes_total{outcome="hit",profile="alpha1"} 1.0' in text and 'scanner_trade_outcomes_total{outcome="SL",profile="alpha1"} 1.0' in text
    assert "scanner_outcome_watches_open 0.0" in text and sup.store.signals_without_outcome() == []

    # Quality drop (wide spread) spares a pair while it is being watched, and only then.
    pipeline.tracker.open("NEWUSDT-9-0", "NEWUSDT", "alpha1", new_id, T0 + 2_000_000, 2.0)
    planning.watch_since = {"NEWUSDT": time.monotonic() - 600, "OLDUSDT": time.monotonic() - 600}
    wide = _rows([(new_id, 2000, 2.0), (old_id, 2000, 1.0)])
    wide["spread"] = 0.5
    planning.quality_check(wide, pipeline.tracker.watched_pair_ids())
    assert set(planning.dropped_until) == {"OLDUSDT"}
    sup.store.close()
