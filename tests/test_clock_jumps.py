"""Clock jumps (issue #23): an NTP step of the wall clock changes no bar, no signal, no cooldown, no health verdict.

Where each clock is used (the audit behind these tests, see README "Reliability"):
- bars, feature windows and the shard's "now" (core/engine.pyx): exchange time, the newest
  frame's sendTime/deal time, which only moves forward; the wall clock enters only as the
  frame's receive stamp (recv_ns), used for latency figures;
- cooldowns and re-alerts (detectors/cooldown.py via detectors/scorer.py), outcome horizons
  (supervisor/outcome.py): exchange time (row_time_ms); the scorer ignores its now_ns;
- restart backoff, link ping/idle timers, planned reconnects, quality-drop timers: monotonic;
- shard heartbeats: CLOCK_MONOTONIC (was the wall clock: a step forward made every live shard
  "stale" to /healthz until its next beat).
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np
import pytest

from common.config import Config
from core.engine import ShardEngine
from core.ring import FeatureRing
from core.statsspec import StatsBlock
from sim.faults import Faults
from sim.market import build_market
from sim.scenario import load_scenario
from sim.server import scenario_path
from sim.ws_server import Limits, WsEmulator
from supervisor.detection import Detection, load_models

REPO = Path(__file__).resolve().parent.parent
START = 1_790_000_040_000
HOUR_NS = 3600 * 10**9


@functools.cache
def _market_frames() -> tuple[list[bytes], list[tuple[str, int, list[tuple[int, float, float]], object]]]:
    """The emulator's frames for 13 pairs (three pumps) over 220 exchange seconds, and each pair's set-up."""
    market = build_market(13, 21, START, load_scenario(scenario_path("pumps.yaml")), rate=13 * 4)
    ws = WsEmulator(market, Faults(), Limits())
    pairs = [(s.symbol, s.listing_ms, [(int(r[0]), float(r[5]), float(r[7])) for r in market.klines(s.symbol, "5m", None, START - 1, 72)],
              market.depth_snapshot(s.symbol, 1000)) for s in market.symbols]  # fmt: skip
    frames = []
    for update in market.advance(START + 220 * 1000):
        if update.trades:
            frames.append(ws.frames.deals(f"spot@public.aggre.deals.v3.api.pb@100ms@{update.symbol}", update))
        if update.depth is not None:
            frames.append(ws.frames.depth(f"spot@public.aggre.depth.v3.api.pb@100ms@{update.symbol}", update))
    return frames, pairs


def _rows_and_decisions(steps: bool) -> tuple[np.ndarray, list[tuple[int, int, int, str]]]:
    """Every row and decision of the market above through the engine and the scorer.

    The wall clock reads 1 ms more per frame; with steps, it jumps +1 h a third of the way in
    (NTP catching up a suspended VM) and -2 h at two thirds (a bad NTP server).
    """
    frames, pairs = _market_frames()
    config = Config()
    detection = Detection(config, load_models(config, REPO))
    ring, stats = FeatureRing.create(200_000), StatsBlock.create()
    rows_out, decisions = [], []
    try:
        engine = ShardEngine(ring, stats)
        for pair_id, (symbol, listing_ms, klines, snapshot) in enumerate(pairs, start=1):
            engine.add_pair(pair_id, symbol)
            engine.set_listing(symbol, listing_ms)
            engine.seed_klines(symbol, klines)
            assert engine.apply_snapshot(symbol, *snapshot)
        total = len(frames)
        for n, frame in enumerate(frames):
            stamp = 1_700_000_000 * 10**9 + n * 10**6
            if steps:
                stamp += (HOUR_NS if n > total // 3 else 0) - (2 * HOUR_NS if n > 2 * total // 3 else 0)
            engine.on_frame(frame, stamp)
            if n % 200 == 199:  # the supervisor wakes and scores a batch, with the wall clock as it then reads
                engine.tick()
                rows = ring.read_new()
                rows_out.append(rows)
                decisions += [(d.pair_id, int(d.row["row_time_ms"]), d.escalation, d.profile) for d in detection.score(rows, stamp)]
        engine.tick()
        rows = ring.read_new()
        rows_out.append(rows)
        decisions += [(d.pair_id, int(d.row["row_time_ms"]), d.escalation, d.profile) for d in detection.score(rows, 0)]
    finally:
        ring.close()
        ring.unlink()
        stats.close()
        stats.unlink()
    return np.concatenate(rows_out), decisions


def test_bars_rows_and_signals_do_not_move_when_the_wall_clock_steps_forward_then_back() -> None:
    steady_rows, steady = _rows_and_decisions(False)
    jumped_rows, jumped = _rows_and_decisions(True)
    assert steady, "the run must signal something for the comparison to mean anything"
    assert jumped == steady
    fields = [f for f in steady_rows.dtype.names if f != "recv_ns"]
    assert len(jumped_rows) == len(steady_rows)
    for f in fields:
        assert np.array_equal(jumped_rows[f], steady_rows[f], equal_nan=True), f


@pytest.mark.parametrize("step_s", [3600.0, -3600.0])
def test_a_wall_clock_step_does_not_make_a_live_shard_look_stale(monkeypatch: pytest.MonkeyPatch, step_s: float) -> None:
    from tests.test_supervisor_health import FakeChild, _health

    health, _ = _health([FakeChild("shard0"), FakeChild("shard1")], bot=FakeChild("bot"))
    real = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real() + int(step_s * 1e9))
    monkeypatch.setattr(time, "time", lambda: real() / 1e9 + step_s)
    ok, detail = health.check()
    assert ok, detail["reasons"]
