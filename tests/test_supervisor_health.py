"""/status figures are current rates, and /healthz judges shards, the bot and planning (issue #24)."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from common.config import Config
from supervisor.health import Health, HealthLimits, RateWindow
from supervisor.planning import Planning, ShardHandle

STATS = np.dtype([("frames_total", np.uint64), ("links_up", np.uint32), ("streams_subscribed", np.uint32), ("reconnects", np.uint64),
                  ("pairs_subscribed", np.uint32), ("heartbeat_ns", np.int64)])  # fmt: skip


class FakeChild:
    def __init__(self, name: str, alive: bool = True, dying: bool = False) -> None:
        self.name, self._alive, self._dying = name, alive, dying
        self.pid = os.getpid() if alive else None
        self.started_at, self.restarts, self.last_exit = time.monotonic() - 60, 4 if dying else 0, 78 if dying else None

    def alive(self) -> bool:
        return self._alive

    def keeps_dying(self) -> bool:
        return self._dying

    def status(self) -> dict[str, Any]:
        return {"name": self.name}


def _health(children: list[FakeChild], bot: FakeChild | None = None, subscribed: int = 10, links: int = 1,
            grace_s: float = 0.0) -> tuple[Health, list[ShardHandle]]:  # fmt: skip
    shards = []
    for i, child in enumerate(children):
        view = np.zeros((), dtype=STATS)
        view["pairs_subscribed"], view["links_up"], view["heartbeat_ns"] = subscribed, links, time.monotonic_ns()
        shards.append(ShardHandle(i, None, SimpleNamespace(view=view), child))  # type: ignore[arg-type]
    planning = Planning(Config(), shards)
    planning.assignment = {f"P{i}USDT": 0 for i in range(subscribed)}
    return Health(shards, lambda: [bot] if bot else [], planning, HealthLimits(grace_s, 60.0), lambda: {}), shards  # type: ignore[arg-type, return-value]


def test_status_cpu_is_the_current_rate_not_zero_and_frames_per_s_is_recent() -> None:
    health, shards = _health([FakeChild("shard0")])
    health.sample(now=100.0)
    start = time.process_time()
    while time.process_time() - start < 0.3:  # burn ~0.3 s of CPU in this (the "supervisor") process
        sum(range(1000))
    shards[0].stats.view["frames_total"] = 5000
    health.sample(now=100.0 + (time.process_time() - start) * 2)  # half a core over that span
    status = health.status()
    me = next(p for p in status["processes"] if p["name"] == "supervisor")
    assert 35.0 < me["cpu_percent"] < 65.0, me
    assert status["frames_per_s"] > 0


@given(st.lists(st.floats(0, 1e6), min_size=2, max_size=40), st.floats(1.0, 100.0))
def test_rate_window_is_the_slope_over_its_window(increments: list[float], step: float) -> None:
    window, total, t = RateWindow(window_s=30.0), 0.0, 0.0
    points = []
    for inc in increments:
        total += inc
        t += step
        window.add(t, total)
        points.append((t, total))
    kept = [p for p in points if t - p[0] < 30.0 + step]
    first = kept[0]
    expected = (total - first[1]) / (t - first[0])
    assert abs(window.rate() - expected) <= 1e-6 * max(1.0, abs(expected))  # type: ignore[operator]


def test_health_names_every_reason_and_is_ok_only_when_all_hold() -> None:
    ok, detail = _health([FakeChild("shard0"), FakeChild("shard1")], bot=FakeChild("bot"))[0].check()
    assert ok and detail["reasons"] == []
    ok, detail = _health([FakeChild("shard0"), FakeChild("shard1", alive=False)], bot=FakeChild("bot", dying=True))[0].check()
    assert not ok and detail["reasons"] == ["shard1 is down", "bot keeps dying (4 restarts, last exit code 78)"]
    ok, detail = _health([FakeChild("shard0")], bot=FakeChild("bot", alive=False))[0].check()
    assert not ok and detail["reasons"] == ["bot is down"]
    health, _ = _health([FakeChild("shard0")], subscribed=0, grace_s=0.0)
    health.planning.scout_error = "127.0.0.1:9: connection refused"
    ok, detail = health.check()
    assert not ok and detail["reasons"] == ["no pair subscribed 0 s after start (scout: 127.0.0.1:9: connection refused)"]
    assert _health([FakeChild("shard0")], subscribed=0, grace_s=600.0)[0].check()[0]  # still starting up


def test_links_down_past_the_bound_is_unhealthy() -> None:
    health, _ = _health([FakeChild("shard0")], links=0)
    health.sample(now=time.monotonic() - 120)
    ok, detail = health.check()
    assert not ok and detail["reasons"][0].startswith("no WebSocket link up for")
