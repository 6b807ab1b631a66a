"""Replay of a Parquet tick dump: every trade exactly once, in order, with its recorded time."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import websockets

from sim.proto import mexc_push_pb2 as pb
from sim.replay import ReplayError, ReplayMarket
from sim.server import run_emulator

T0 = 1_700_000_000_123


def _dump(path: Path, n: int = 400) -> pa.Table:
    rng = np.random.default_rng(5)
    ts = T0 + np.sort(rng.integers(0, 20_000, size=n))
    table = pa.table({
        "ts_ms": pa.array(ts, pa.int64()),
        "symbol": pa.array(rng.choice(["AAAUSDT", "BBBUSDT"], size=n).tolist(), pa.string()),
        "price": pa.array(1.0 + rng.random(n) * 0.01, pa.float64()),
        "qty": pa.array(rng.random(n) * 10 + 0.1, pa.float64()),
        "side": pa.array(rng.integers(1, 3, size=n), pa.int8()),
    })  # fmt: skip
    pq.write_table(table, path)
    return table


def test_every_trade_once_in_order_whatever_the_chunking(tmp_path: Path) -> None:
    table = _dump(tmp_path / "d.parquet")
    for chunks in ([T0 + 30_000], list(range(T0, T0 + 30_000, 777)) + [T0 + 30_000]):
        market = ReplayMarket(tmp_path / "d.parquet")
        got = []
        for to in chunks:
            for u in market.advance(to):
                assert u.depth is None or u.depth.from_version <= u.depth.to_version
                got.extend((t.time_ms, u.symbol, t.price, t.qty, t.side) for t in u.trades)
        want = sorted(zip(table["ts_ms"].to_pylist(), table["symbol"].to_pylist(), table["price"].to_pylist(), table["qty"].to_pylist(),
                          table["side"].to_pylist(), strict=True), key=lambda r: r[0])  # fmt: skip
        for symbol in ("AAAUSDT", "BBBUSDT"):  # each pair's stream is in time order
            mine = [g[0] for g in got if g[1] == symbol]
            assert mine == sorted(mine)
        assert sorted(got) == sorted(want)


def test_bad_dumps_are_refused_clearly(tmp_path: Path) -> None:
    pq.write_table(pa.table({"ts_ms": [1], "symbol": ["X"]}), tmp_path / "bad.parquet")
    with pytest.raises(ReplayError, match="column 'price' missing"):
        ReplayMarket(tmp_path / "bad.parquet")
    with pytest.raises(ReplayError, match="cannot read"):
        ReplayMarket(tmp_path / "missing.parquet")


async def test_replay_over_the_websocket_carries_recorded_times(tmp_path: Path) -> None:
    table = _dump(tmp_path / "d.parquet", n=120)
    async with run_emulator(replay=str(tmp_path / "d.parquet"), speed=10) as emu, websockets.connect(emu.ws_url) as ws:
        await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": [f"spot@public.aggre.deals.v3.api.pb@100ms@{s}" for s in ("AAAUSDT", "BBBUSDT")]}))
        times: list[int] = []
        end = asyncio.get_running_loop().time() + 4.0
        while asyncio.get_running_loop().time() < end and len(times) < 120:
            try:
                msg = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            if isinstance(msg, bytes):
                w = pb.PushDataV3ApiWrapper()
                w.ParseFromString(msg)
                times.extend(d.time for d in w.publicAggreDeals.deals)
    # The clock starts with the emulator, so trades before the subscription landed are not seen;
    # from the first one received on, every trade arrives exactly once with its recorded time.
    recorded = sorted(table["ts_ms"].to_pylist())
    assert times
    first = min(times)
    assert sorted(times) == [t for t in recorded if t >= first]
