"""The daily planned reconnect (issue #23): links renewed one at a time, spread out, never all at once.

A shard opens all its links within seconds of its start, so a fixed lifetime would renew all of
them in the same second 23 h later. Run here against the emulator at 10x with the lifetime cut
to 4 s: handovers happen one after another, each new link open before its old one closes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest

from common.config import Config, MexcConfig, WsConfig
from shards.worker import PLANNED_SPREAD, planned_lifetime
from sim.server import run_emulator
from tests.test_shards_worker import _until, running_worker


def test_lifetimes_spread_over_the_window_and_never_pass_the_planned_limit() -> None:
    planned = 23 * 3600.0
    lifetimes = [planned_lifetime(i, planned) for i in range(120)]
    assert all(planned * (1 - PLANNED_SPREAD) <= t <= planned for t in lifetimes)
    gaps = sorted(b - a for a, b in zip(sorted(lifetimes), sorted(lifetimes)[1:], strict=False))
    assert gaps[0] > 10.0  # 120 links opened together: no two renewed within 10 s of each other
    for start in range(0, 110, 10):  # any ten consecutive links (one shard's) cover most of the window
        window = lifetimes[start : start + 10]
        assert max(window) - min(window) > 0.8 * PLANNED_SPREAD * planned


async def test_handovers_run_one_at_a_time_and_every_link_stays_covered(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="scanner.shard")
    async with run_emulator(pairs=80, seed=4, rate=800, speed=10.0) as emu:
        config = dataclasses.replace(Config(), mexc=MexcConfig(ws_url=emu.ws_url, rest_url=emu.rest_url),
                                     ws=dataclasses.replace(WsConfig(), planned_reconnect_s=4.0))  # fmt: skip
        async with running_worker(config, 200_000) as (worker, _ring, stats):
            symbols = [s.symbol for s in emu.market.symbols if s.status == "1"][:60]
            worker.apply_plan([(i + 1, s) for i, s in enumerate(symbols)])
            assert await _until(lambda: len(emu.state()["connections"]) == 4, 10)  # 120 streams, 30 a link
            first = {c["id"] for c in emu.state()["connections"]}
            counts = []
            loop = asyncio.get_running_loop()
            end = loop.time() + 14
            while loop.time() < end and not {c["id"] for c in emu.state()["connections"]}.isdisjoint(first):
                counts.append(len(emu.state()["connections"]))
                await asyncio.sleep(0.02)
            assert {c["id"] for c in emu.state()["connections"]}.isdisjoint(first), "every first link was renewed"
            assert min(counts) >= 4 and max(counts) <= 5, counts  # each old link closes after its new one opened; one at a time
            assert int(stats.view["reconnects"]) == 0
    starts = [r.created for r in caplog.records if r.getMessage() == "planned reconnect: opening a replacement link"]
    dones = [r.created for r in caplog.records if r.getMessage() == "planned reconnect done"]
    assert len(starts) >= 4
    for start, done, next_start in zip(starts, dones, starts[1:], strict=False):
        assert start <= done <= next_start  # the next handover starts only after the previous one finished
