"""The post-pump short watcher's state machine (detectors/short_watch.py, issue #19).

Paths are 1 s closes on exchange time; every figure asserted is one a user sees (events, the
`watches` record, the context snapshot).
"""

from __future__ import annotations

import dataclasses
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from common.shorts_config import ShortsConfig
from detectors.short_bars import SL, TIMEOUT, TP, Bar, BarBuilder, Trade, atr, volume_zscore
from detectors.short_watch import STAGES, ShortWatcher

MIN = 60_000


def feed(w: ShortWatcher, symbol: str, path: list[float], t0: int = 0, step_ms: int = 1000, buy_share: float = 0.3,
         advance: bool = True) -> list:  # fmt: skip
    out = []
    for i, p in enumerate(path):
        t = t0 + i * step_ms
        out += w.on_point(symbol, t, p, 1000.0, buy_share)
        if advance:
            out += w.advance(t)
    return out


def ramp(a: float, b: float, seconds: int) -> list[float]:
    return [a + (b - a) * i / seconds for i in range(seconds)]


def kinds(events: list) -> list[str]:
    return [e.kind for e in events]


def test_filters_refuse_with_the_reason() -> None:
    w = ShortWatcher(ShortsConfig(max_concurrent=2, cooldown_minutes=45, min_pump_pct=8, pump_window_minutes=10))
    assert w.start("A", "scanner", 7.9, 0, 0)[1] == "pump 7.90 % is under min_pump_pct 8 %"
    assert "over pump_window_minutes 10" in w.start("A", "http", 20, 0, 11 * MIN)[1]
    assert w.start("A", "scanner", 9, 0, 0)[0] is not None
    assert "already watched" in w.start("A", "scanner", 9, 0, 0)[1]
    assert w.start("B", "scanner", 9, 0, 0)[0] is not None
    assert w.start("C", "scanner", 9, 0, 0)[1] == "max_concurrent (2) watches are active"
    w.active.pop("A")  # the watch ended: the symbol is free but its cooldown runs from the start
    assert "cooldown" in w.start("A", "scanner", 9, 44 * MIN, 44 * MIN)[1]
    assert w.start("A", "scanner", 9, 45 * MIN, 45 * MIN)[0] is not None
    assert ShortWatcher(ShortsConfig(pump_window_minutes=0)).start("A", "http", 9, 0, 10**9)[0] is not None


def test_stages_follow_the_5m_structure_and_a_new_high_resets_them() -> None:
    w = ShortWatcher(ShortsConfig(arm_stage=4, drop_pct=3, bounce_pct=2, entry_kinds=["CONFIRM"]))
    w.start("X", "scanner", 12, 0, 0, 1.0)
    path = ramp(1.0, 1.10, 300) + ramp(1.10, 1.00, 300) + ramp(1.00, 1.05, 300) + ramp(1.05, 0.98, 300) + ramp(0.98, 1.02, 300)
    events = feed(w, "X", path) + w.advance(25 * MIN)
    stages = [(e.data["stage"], e.t_ms // MIN) for e in events if e.kind == "STAGE"]
    assert stages == [("STAGE_1_DROP1", 10), ("STAGE_2_BOUNCE1", 15), ("STAGE_3_DROP2", 20), ("STAGE_4_BOUNCE2", 25)]
    assert kinds(events)[-1] == "ARMED" and w.active["X"].mode == "ARMED"
    events = feed(w, "X", ramp(1.02, 1.2, 300), t0=1500_000) + w.advance(30 * MIN)  # the pump resumes above its high
    assert [e.data.get("stage") for e in events if e.kind == "STAGE"] == ["STAGE_0"]
    assert "DISARMED" in kinds(events) and w.active["X"].stage == 0 and w.active["X"].mode == "WATCHING_5M"


def test_confirm_entry_then_take_profit_with_excursions() -> None:
    w = ShortWatcher(ShortsConfig(take_profit_pct=5, stop_loss_pct=3))
    w.start("X", "scanner", 12, 0, 0, 1.0)
    events = feed(w, "X", ramp(1.0, 1.1, 300) + ramp(1.1, 1.0, 600) + ramp(1.0, 0.9, 600))
    entry = next(e for e in events if e.kind == "ENTRY_OK")
    assert entry.data["kind"] == "CONFIRM" and entry.t_ms == 11 * MIN  # the first 1m close after arming at 10 min
    out = next(e for e in events if e.kind == "OUTCOME").data
    assert out["outcome"] == "TP" and out["return_pct"] == 5.0 and out["entry_kind"] == "CONFIRM"
    assert out["mfe_pct"] >= 5.0 and out["mae_pct"] == 0.0 and "X" not in w.active
    assert out["stage_times"] == {"STAGE_0": 0, "STAGE_1_DROP1": 10 * MIN}


def test_early_entry_on_a_fast_drop_while_takers_sell_then_stop_loss() -> None:
    cfg = ShortsConfig(entry_kinds=["EARLY"], early_drop_pct=1.5, early_buy_share_max=0.45, stop_loss_pct=3)
    w = ShortWatcher(cfg)
    w.start("X", "scanner", 12, 0, 0, 1.0)
    events = feed(w, "X", ramp(1.0, 1.1, 300) + ramp(1.1, 1.0, 300) + [1.0] * 60, buy_share=0.6)
    assert "ARMED" in kinds(events) and "ENTRY_OK" not in kinds(events)  # buyers still dominate
    events = feed(w, "X", [0.98, 0.97, 0.975] + ramp(0.975, 1.05, 60), t0=660_000, buy_share=0.3)
    entry = next(e for e in events if e.kind == "ENTRY_OK")
    assert entry.data["kind"] == "EARLY" and entry.data["price"] == 0.98
    assert next(e for e in events if e.kind == "OUTCOME").data["outcome"] == "SL"


def test_timeout_and_expiry_on_the_shared_clock() -> None:
    w = ShortWatcher(ShortsConfig(outcome_timeout_minutes=30, watch_max_minutes=60))
    w.start("X", "scanner", 12, 0, 0, 1.0)
    feed(w, "X", ramp(1.0, 1.1, 300) + ramp(1.1, 1.0, 600))
    assert w.active["X"].trade is not None
    out = w.advance(11 * MIN + 30 * MIN)  # no row of X, the clock alone times the trade out
    assert [e.kind for e in out] == ["OUTCOME"] and out[0].data["outcome"] == "TIMEOUT"
    w.start("Y", "http", 12, 0, 0)
    assert [e.kind for e in w.advance(60 * MIN)] == ["EXPIRED"] and not w.active


def test_a_bar_through_both_levels_is_a_stop_loss() -> None:
    t = Trade(100.0, 0, 0.05, 0.03, 60 * MIN)
    assert t.fold(1000, 104.0, 94.0, 99.0) == SL and t.gross_return() == -0.03
    t = Trade(100.0, 0, 0.05, 0.03, 60 * MIN)
    assert t.fold(1000, 101.0, 95.0, 96.0) == TP and math.isclose(t.gross_return(), 0.05)
    t = Trade(100.0, 0, 0.05, 0.03, 60 * MIN)
    assert t.fold(1000, 101.0, 99.0, 99.0) is None and t.expire(60 * MIN) == TIMEOUT and math.isclose(t.gross_return(), 0.01)


def test_context_figures() -> None:
    bars = [Bar(i * 300_000, 300_000, 1.0, 1.1, 0.9, 1.0, quote_vol=v) for i, v in enumerate([10.0, 12.0, 8.0, 10.0, 30.0])]
    assert math.isclose(volume_zscore(bars), (30 - 10) / math.sqrt(8 / 3))
    assert math.isclose(atr(bars), 0.2)
    b = BarBuilder(60_000, 3)
    for t, share in ((0, 1.0), (5_000, 0.0), (10_000, 0.0), (61_000, 0.5)):
        closed = b.add(t, 1.0, 5.0, share)
    assert closed is not None and closed.imbalance == 0.0 and closed.imbalance_n == 2  # 10 s samples, not every row


def _reference_settle(entry: float, t0: int, points: list[tuple[int, float]], tp: float, sl: float, timeout_ms: int) -> str:
    for t, p in points:
        if t <= t0:
            continue
        if t > t0 + timeout_ms:
            break
        if p >= entry * (1 + sl) * (1 - 1e-12):
            return SL
        if p <= entry * (1 - tp) * (1 + 1e-12):
            return TP
    return TIMEOUT


steps = st.lists(st.floats(-0.02, 0.02, allow_nan=False), min_size=200, max_size=900)


@settings(max_examples=40, deadline=None)
@given(steps=steps, gap=st.integers(1, 20), share=st.floats(0.0, 1.0), arm=st.integers(1, 4))
def test_state_machine_invariants(steps: list[float], gap: int, share: float, arm: int) -> None:
    """Any path: stages advance one at a time (or reset at a new high), one entry at most, the
    outcome agrees with a plain settlement of the path after the entry, and calling advance()
    between rows changes nothing."""
    cfg = ShortsConfig(arm_stage=arm, drop_pct=2, bounce_pct=1, outcome_timeout_minutes=20, watch_max_minutes=120,
                       entry_kinds=["EARLY", "CONFIRM"], take_profit_pct=5, stop_loss_pct=3)  # fmt: skip
    prices, p = [], 1.0
    for s in steps:
        p = max(1e-6, p * (1 + s))
        prices.append(p)
    runs = []
    for advance in (True, False):
        w = ShortWatcher(dataclasses.replace(cfg))
        w.start("X", "scanner", 10, 0, 0, 1.0)
        runs.append(feed(w, "X", prices, step_ms=gap * 1000, buy_share=share, advance=advance) + w.advance(10**9))
    assert [(e.kind, e.t_ms) for e in runs[0]] == [(e.kind, e.t_ms) for e in runs[1]]
    events = runs[0]
    stage = 0
    for e in (e for e in events if e.kind == "STAGE"):
        new = STAGES.index(e.data["stage"])
        assert new == stage + 1 or new == 0
        stage = new
    assert kinds(events).count("ENTRY_OK") <= 1
    end = [e for e in events if e.kind in ("OUTCOME", "EXPIRED")]
    assert len(end) == 1
    if "ENTRY_OK" in kinds(events):
        entry = next(e for e in events if e.kind == "ENTRY_OK")
        rec = end[0].data
        assert end[0].kind == "OUTCOME" and rec["mfe_pct"] >= 0 and rec["mae_pct"] >= 0
        points = [(i * gap * 1000, x) for i, x in enumerate(prices)]
        assert rec["outcome"] == _reference_settle(entry.data["price"], entry.t_ms, points, 0.05, 0.03, 20 * MIN)
        if rec["outcome"] == TP:
            assert math.isclose(rec["return_pct"], 5.0)
        elif rec["outcome"] == SL:
            assert math.isclose(rec["return_pct"], -3.0)
    else:
        assert end[0].kind == "EXPIRED" and end[0].data["outcome"] == "EXPIRED"
