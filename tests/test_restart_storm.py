"""Restart storms (issue #23): a shard killed at once on every start by one pair does not spin.

The shard here is a stand-in forked by the real ChildProcess and planned by the real Planning: it
takes its plan from the pipe, works on each pair under the pair breadcrumb as shards/worker.py does,
and dies of SIGKILL (as a native crash would, no Python exception, no last message) on the
poisoned pair. What a user sees is checked: the restarts back off, the pair is quarantined after
QUARANTINE_AFTER deaths with one clear log line and a /status entry, the shard then stays up and
watches every other pair, and the next scout pass does not plan the pair again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from common import breadcrumb
from common.config import Config
from common.messages import Plan, Stop, decode
from supervisor import children
from supervisor.children import ChildProcess
from supervisor.health import Health, HealthLimits
from supervisor.planning import Planning, ShardHandle
from supervisor.scout import Scout
from venues.mexc.market import SymbolInfo

POISON = "POISONUSDT"
GOOD = ["AAAUSDT", "BBBUSDT", "CCCUSDT"]
STATS = np.dtype([("frames_total", np.uint64), ("links_up", np.uint32), ("streams_subscribed", np.uint32), ("reconnects", np.uint64),
                  ("pairs_subscribed", np.uint32), ("heartbeat_ns", np.int64)])  # fmt: skip


def _stand_in_shard(conn: object, out_dir: str) -> None:
    """Apply each plan pair by pair under the breadcrumb; abort on the poisoned pair; report what it watches."""
    while True:
        message = decode(conn.recv())  # type: ignore[attr-defined]
        if isinstance(message, Stop):
            return
        if isinstance(message, Plan):
            watched = []
            for _, symbol in message.pairs:
                with breadcrumb.on(symbol):
                    if symbol == POISON:
                        os.kill(os.getpid(), signal.SIGKILL)
                    watched.append(symbol)
            Path(out_dir, f"{os.getpid()}.watched").write_text(",".join(watched))


async def test_a_poisoned_pair_is_quarantined_after_backed_off_restarts_and_the_others_stay_watched(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    caplog.set_level(logging.INFO)
    view = np.zeros((), dtype=STATS)
    handle = ShardHandle(0, None, SimpleNamespace(view=view))
    planning = Planning(Config(), [handle])
    handle.pairs = {symbol: planning.pair_id(symbol) for symbol in [GOOD[0], POISON, *GOOD[1:]]}
    planning.assignment = {symbol: 0 for symbol in handle.pairs}
    handle.child = child = ChildProcess("shard0", _stand_in_shard, lambda: (str(tmp_path),), on_start=lambda: planning.send_plan(handle),
                                       kind="shard", log_extra={"shard": 0},
                                       on_poisoned=lambda symbol, deaths: planning.quarantine(handle, symbol, deaths))  # fmt: skip
    started = time.monotonic()
    child.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not list(tmp_path.glob("*.watched")):
        await asyncio.sleep(0.05)
    try:
        watched = [p.read_text().split(",") for p in tmp_path.glob("*.watched")]
        assert watched == [GOOD], watched  # the restarted shard watches every pair but the poisoned one
        await asyncio.sleep(0.3)
        assert child.alive() and child.restarts == children.QUARANTINE_AFTER
    finally:
        await child.stop(Stop())
    # Backoff, not a spin: each quick death at least doubles the wait (jitter is +-20 %).
    deaths = [r for r in caplog.records if r.getMessage() == "shard died, restarting"]
    waits = [r.restart_in_s for r in deaths]  # type: ignore[attr-defined]
    assert len(waits) == children.QUARANTINE_AFTER
    assert all(b >= a * 2 * 0.8 / 1.2 for a, b in zip(waits, waits[1:], strict=False)), waits
    assert time.monotonic() - started >= sum(waits) * 0.9
    assert [r.pair for r in deaths] == [POISON] * 3 and [r.deaths_on_pair for r in deaths] == [1, 2, 3]  # type: ignore[attr-defined]
    # One clear line, and /status (and /healthz) says it.
    lines = [r for r in caplog.records if "quarantined" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.ERROR
    assert lines[0].getMessage().startswith(f"pair {POISON} quarantined: shard0 died 3 times while handling it")
    health = Health([handle], lambda: [], planning, HealthLimits(0.0, 60.0), lambda: {})
    assert health.status()["quarantined_pairs"][POISON]["deaths"] == 3
    assert health.check()[1]["quarantined_pairs"] == {POISON: planning.quarantined[POISON]}
    # The next scout pass plans the others and never the poisoned pair.
    scout = Scout(None)  # type: ignore[arg-type]
    scout.universe = {s: SymbolInfo(s, "USDT", True, True) for s in [*GOOD, POISON]}
    scout.volumes = dict.fromkeys(scout.universe, 1e6)
    planning.config.scout.min_quote_vol_usd = 0
    planning.replan(scout)
    assert sorted(planning.assignment) == GOOD and sorted(handle.pairs) == GOOD


def test_the_breadcrumb_is_kept_when_the_step_raises_and_cleared_when_it_ends() -> None:
    crumb = breadcrumb.Breadcrumb()
    breadcrumb.install(crumb)
    try:
        with breadcrumb.on("AAAUSDT"):
            assert crumb.read() == "AAAUSDT"
        assert crumb.read() == ""
        with pytest.raises(ZeroDivisionError), breadcrumb.on("BBBUSDT"):
            1 / 0  # noqa: B018
        assert crumb.read() == "BBBUSDT"
        breadcrumb.mark("X" * 200)
        assert crumb.read() == "X" * (breadcrumb.SIZE - 1)
    finally:
        breadcrumb.install(None)



async def test_the_shard_marks_the_pair_it_is_adding_so_a_death_there_names_it() -> None:
    from core.ring import FeatureRing
    from core.statsspec import StatsBlock
    from shards.worker import ShardWorker

    ring, stats = FeatureRing.create(100), StatsBlock.create()
    crumb = breadcrumb.Breadcrumb()
    breadcrumb.install(crumb)
    try:
        worker = ShardWorker(0, Config(), ring, stats, None)

        class PoisonedEngine:  # the compiled engine choking on one pair's data
            def add_pair(self, pair_id: int, symbol: str) -> None:
                raise RuntimeError(f"bad data for {symbol}")

        worker.engine = PoisonedEngine()  # type: ignore[assignment]
        with pytest.raises(RuntimeError):
            worker.apply_plan([(7, POISON)])
        assert crumb.read() == POISON
    finally:
        breadcrumb.install(None)
        ring.close()
        ring.unlink()
        stats.close()
