"""Tick recorder: a live shard session recorded to Parquet replays to the same trades; disk stays bounded."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.config import Config, ConfigError, MexcConfig, RecorderConfig, config_from_mapping
from core.ring import FeatureRing
from core.statsspec import StatsBlock
from shards.recorder import TickRecorder
from shards.worker import ShardWorker
from sim.faults import Faults
from sim.market import build_market
from sim.replay import ReplayMarket
from sim.server import run_emulator
from sim.updates import PairUpdate, Trade
from sim.ws_server import Limits, WsEmulator

START = 1_790_000_040_000


def _read_dir(directory: Path) -> pa.Table:
    files = sorted(directory.glob("ticks-*.parquet"))
    assert files and not list(directory.glob("*.part"))  # every file finished at shutdown
    return pa.concat_tables([pq.read_table(f) for f in files])


async def test_recorded_session_replays_to_the_same_trades(tmp_path: Path) -> None:
    async with run_emulator(pairs=8, seed=6, rate=80, start_ms=START) as emu:
        symbols = [s.symbol for s in emu.market.symbols if s.status == "1"][:4]
        rec = RecorderConfig(enabled=True, dir=str(tmp_path), flush_interval_s=0.2)
        config = dataclasses.replace(Config(), mexc=MexcConfig(ws_url=emu.ws_url, rest_url=emu.rest_url), recorder=rec)
        ring, stats = FeatureRing.create(10_000), StatsBlock.create()
        worker = ShardWorker(0, config, ring, stats, None)
        task = asyncio.create_task(worker.run())
        try:
            worker.apply_plan([(i + 1, s) for i, s in enumerate(symbols)])
            await asyncio.sleep(4.0)
        finally:
            worker._stop.set()
            await asyncio.wait_for(task, 20)
            ring.close(), ring.unlink(), stats.close(), stats.unlink()
    table = _read_dir(tmp_path)
    got = list(zip(*(table.column(c).to_pylist() for c in ("ts_ms", "symbol", "price", "qty", "side")), strict=True))
    assert len(got) > 50 and {r[1] for r in got} <= set(symbols)
    assert worker.recorder is not None and worker.recorder.dropped_frames == 0

    # The same market rebuilt from the seed: inside the recorded span, every trade of a recorded
    # pair is in the dump, with the price and quantity the feed printed.
    twin = build_market(8, 6, START, None, 80)
    expected = []
    for update in twin.advance(max(r[0] for r in got) + 1000):
        for t in update.trades:
            expected.append(
                (
                    t.time_ms,
                    update.symbol,
                    float(twin.fmt_price(update.symbol, t.price)),
                    float(twin.fmt_qty(update.symbol, t.qty)),
                    t.side,
                )
            )
    for symbol in symbols:
        mine = sorted(r for r in got if r[1] == symbol)
        if not mine:
            continue
        theirs = sorted(r for r in expected if r[1] == symbol and mine[0][0] <= r[0] <= mine[-1][0])
        assert mine == theirs

    # And the emulator's replay of the dump delivers exactly those trades.
    dump = tmp_path / "all.parquet"
    pq.write_table(table, dump)
    replay = ReplayMarket(dump)
    replayed = [(t.time_ms, u.symbol, t.price, t.qty, t.side) for u in replay.advance(10**15) for t in u.trades]
    assert sorted(replayed) == sorted(got)


def _frame(ws: WsEmulator, symbol: str, t_ms: int, n: int) -> bytes:
    trades = [Trade(1.0 + k / 100, 2.0, 1 + k % 2, t_ms + k) for k in range(n)]
    return ws.frames.deals(
        f"spot@public.aggre.deals.v3.api.pb@100ms@{symbol}", PairUpdate(symbol, t_ms + n, trades, None)
    )


def test_hourly_files_and_oldest_deleted_beyond_max_hours(tmp_path: Path) -> None:
    market = build_market(2, 1, START, None, 10)
    ws = WsEmulator(market, Faults(), Limits())
    symbol = market.symbols[0].symbol
    rec = TickRecorder(tmp_path, 3, max_mb=100.0, max_hours=2, flush_interval_s=0.0)
    hour0 = START - START % 3_600_000
    for h in range(5):
        rec.add(memoryview(_frame(ws, symbol, hour0 + h * 3_600_000 + 1000, 20)))
        rec.flush()
    rec.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and all(f.startswith("ticks-s3-") and f.endswith(".parquet") for f in files)
    last = pq.read_table(tmp_path / files[-1])
    assert last.num_rows == 20 and last.column("ts_ms")[0].as_py() == hour0 + 4 * 3_600_000 + 1000
    assert rec.trades_written == 100


def test_disk_cap_in_mb_deletes_oldest(tmp_path: Path) -> None:
    market = build_market(2, 1, START, None, 10)
    ws = WsEmulator(market, Faults(), Limits())
    rec = TickRecorder(tmp_path, 0, max_mb=0.004, max_hours=1000, flush_interval_s=0.0)
    hour0 = START - START % 3_600_000
    for h in range(6):
        rec.add(_frame(ws, market.symbols[0].symbol, hour0 + h * 3_600_000, 200))
        rec.flush()
    rec.close()
    files = list(tmp_path.glob("*.parquet"))
    assert 1 <= len(files) < 6 and sum(f.stat().st_size for f in files) <= 4000


def test_recorder_config_is_validated() -> None:
    assert Config().recorder.enabled is False
    with pytest.raises(ConfigError, match="recorder.max_mb"):
        config_from_mapping({"recorder": {"max_mb": 0}})
    with pytest.raises(ConfigError, match="recorder.max_hours"):
        config_from_mapping({"recorder": {"max_hours": "many"}})
