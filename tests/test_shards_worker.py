"""A shard in-process against the emulator: subscriptions, resyncs, planned reconnect with overlap."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from common.config import Config, MexcConfig, WsConfig
from common.messages import Blocked, Plan, decode, encode
from core.ring import FeatureRing
from core.statsspec import StatsBlock
from shards.worker import ShardWorker
from sim.server import run_emulator


async def _until(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    end = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < end:
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return bool(predicate())


@contextlib.asynccontextmanager
async def running_worker(config: Config, ring_rows: int, conn: Any = None) -> AsyncIterator[tuple[ShardWorker, Any, Any]]:
    """A shard worker running in this loop with its own ring and stats block, torn down after."""
    ring, stats = FeatureRing.create(ring_rows), StatsBlock.create()
    worker = ShardWorker(0, config, ring, stats, conn)
    task = asyncio.create_task(worker.run())
    try:
        yield worker, ring, stats
        assert not task.done()
    finally:
        worker._stop.set()
        await asyncio.wait_for(task, 20)
        ring.close()
        ring.unlink()
        stats.close()
        stats.unlink()


async def test_planned_reconnect_overlaps_without_resync_or_loss() -> None:
    async with run_emulator(pairs=40, seed=4, rate=600) as emu:
        # planned_reconnect_s is validated >= 60 in config files; a test may go below that.
        config = dataclasses.replace(Config(), mexc=MexcConfig(ws_url=emu.ws_url, rest_url=emu.rest_url),
                                     ws=dataclasses.replace(WsConfig(), planned_reconnect_s=3.0))  # fmt: skip
        async with running_worker(config, 100_000) as (worker, ring, stats):
            symbols = [s.symbol for s in emu.market.symbols if s.status == "1"][:20]
            worker.apply_plan([(i + 1, s) for i, s in enumerate(symbols)])
            assert await _until(lambda: int(stats.view["resyncs"]) >= len(symbols), 10)
            first_ids = {c["id"] for c in emu.state()["connections"]}
            assert len(first_ids) == 2  # 40 streams: 30 + 10
            # After 3 s every link is replaced by a new connection, overlapping the old one.
            assert await _until(lambda: {c["id"] for c in emu.state()["connections"]}.isdisjoint(first_ids) and len(emu.state()["connections"]) == 2, 15)
            view = stats.view
            assert int(view["reconnects"]) == 0 and int(view["resyncs"]) == len(symbols)  # no book was lost
            assert int(view["duplicate_frames"]) > 0  # the overlap really delivered pushes twice
            rows = ring.read_new()
            assert rows["seq"].tolist() == list(range(1, len(rows) + 1)) and len(rows) > 0
            assert all(len(c["subscriptions"]) <= 30 for c in emu.state()["connections"])


async def test_refused_pairs_are_marked_blocked_not_retried() -> None:
    async with run_emulator(pairs=10, seed=4) as emu:
        config = dataclasses.replace(Config(), mexc=MexcConfig(ws_url=emu.ws_url, rest_url=emu.rest_url))
        async with running_worker(config, 1000) as (worker, _, _):
            worker.apply_plan([(1, emu.market.symbols[0].symbol), (2, "DELISTEDUSDT")])
            assert await _until(lambda: "DELISTEDUSDT" in worker.blocked, 5)
            await asyncio.sleep(1.0)
            subs = [ch for c in emu.state()["connections"] for ch in c["subscriptions"]]
            assert not any("DELISTED" in ch for ch in subs) and len(subs) == 2
            worker.apply_plan([(1, emu.market.symbols[0].symbol), (2, "DELISTEDUSDT")])
            assert "DELISTEDUSDT" not in worker.pairs  # not resubscribed in a loop


async def test_a_large_plan_over_the_pipe_does_not_stop_the_shard() -> None:
    import multiprocessing as mp
    import threading

    async with run_emulator(pairs=5, seed=4) as emu:
        config = dataclasses.replace(Config(), mexc=MexcConfig(ws_url=emu.ws_url, rest_url=emu.rest_url))
        ours, theirs = mp.Pipe(duplex=True)
        received: list = []
        stop_reading = threading.Event()

        def drain() -> None:  # the supervisor's side keeps reading, as the real one does
            while not stop_reading.is_set():
                if ours.poll(0.1):
                    received.append(ours.recv())

        reader = threading.Thread(target=drain)
        async with running_worker(config, 1000, theirs) as (worker, _, _):
            await asyncio.sleep(0.2)
            plan = encode(Plan([(i + 1, f"PAIR{i:05d}USDT") for i in range(3000)]))  # ~100 KB, far above a pipe buffer
            sender = threading.Thread(target=ours.send, args=(plan,))
            sender.start()
            reader.start()
            try:
                assert await _until(lambda: len(worker.pairs) + len(worker.blocked) >= 3000, 10)
                sender.join(5)
                assert not worker._stop.is_set()
                blocked = lambda: [m for m in map(decode, received) if isinstance(m, Blocked)]  # noqa: E731
                assert await _until(lambda: sum(len(m.symbols) for m in blocked()) >= 2990, 10)
                assert len(blocked()) < 100  # batched, not one per pair
            finally:
                stop_reading.set()
                reader.join(5)


async def test_row_wakeups_are_coalesced_but_a_first_row_wakes_at_once() -> None:
    """The supervisor is woken at most once per NOTIFY_MIN_INTERVAL_S: a scoring pass costs the
    same for one row as for a hundred, so a wake-up per read burst wasted its CPU."""
    from shards.worker import NOTIFY_MIN_INTERVAL_S

    ring, stats = FeatureRing.create(100), StatsBlock.create()
    try:
        worker = ShardWorker(0, Config(), ring, stats, None)
        loop = asyncio.get_running_loop()
        woken: list[float] = []

        class Recorder:
            def notify_done(self) -> None:
                woken.append(loop.time())

            def flush_notify(self) -> None:
                pass

        worker.sink = worker.engine = Recorder()  # type: ignore[assignment]
        t0 = loop.time()
        worker._schedule_notify()
        await asyncio.sleep(0)
        assert len(woken) == 1 and woken[0] - t0 < NOTIFY_MIN_INTERVAL_S / 2  # quiet before: at once
        worker._schedule_notify()  # rows again right after: they wait for the interval
        await asyncio.sleep(0)
        assert len(woken) == 1
        await asyncio.sleep(NOTIFY_MIN_INTERVAL_S * 3)
        assert len(woken) == 2 and woken[1] - woken[0] >= NOTIFY_MIN_INTERVAL_S * 0.99
        await asyncio.sleep(NOTIFY_MIN_INTERVAL_S * 2)
        t1 = loop.time()
        worker._schedule_notify()
        await asyncio.sleep(0)
        assert len(woken) == 3 and woken[2] - t1 < NOTIFY_MIN_INTERVAL_S / 2
    finally:
        ring.close()
        ring.unlink()
        stats.close()
        stats.unlink()
