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


def test_advance_delivers_everything_up_to_to_ms_and_the_book_stays_consistent(tmp_path: Path) -> None:
    table = _dump(tmp_path / "d.parquet")
    market = ReplayMarket(tmp_path / "d.parquet")
    first = min(table["ts_ms"].to_pylist())
    assert market.now_ms() == first - 1
    version, bids, asks = market.depth_snapshot("AAAUSDT", 1000)
    assert len(bids) >= 50 and len(asks) >= 50 and bids[0][0] < asks[0][0]
    book_b, book_a = dict(bids), dict(asks)
    delivered = 0
    for to in (first, first + 150, first + 5_003, T0 + 40_000):
        updates = market.advance(to)
        delivered += sum(len(u.trades) for u in updates)
        assert delivered == sum(1 for t in table["ts_ms"].to_pylist() if t <= to) and market.now_ms() == to
        for u in updates:
            assert all(t.time_ms <= u.window_end_ms for t in u.trades)
            if u.symbol == "AAAUSDT" and u.depth is not None:
                assert u.depth.from_version == version + 1
                version = u.depth.to_version
                for side, levels in ((book_b, u.depth.bids), (book_a, u.depth.asks)):
                    for p, q in levels:
                        if q == 0:
                            side.pop(p, None)
                        else:
                            side[p] = q
    v2, bids2, asks2 = market.depth_snapshot("AAAUSDT", 1000)
    assert v2 == version and dict(bids2) == book_b and dict(asks2) == book_a
    recorded = sorted(zip(table["ts_ms"].to_pylist(), table["symbol"].to_pylist(), table["price"].to_pylist(), strict=True),
                      key=lambda r: r[0])  # stable: equal times keep their recorded order  # fmt: skip
    last = [price for _, symbol, price in recorded if symbol == "AAAUSDT"][-1]
    assert bids2[0][0] < last < asks2[0][0] and market.last_price("AAAUSDT") == last


def test_klines_and_ticker_come_from_the_dump(tmp_path: Path) -> None:
    table = _dump(tmp_path / "d.parquet")
    market = ReplayMarket(tmp_path / "d.parquet")
    market.advance(T0 + 40_000)
    rows = [r for r in zip(table["ts_ms"].to_pylist(), table["symbol"].to_pylist(), table["price"].to_pylist(), table["qty"].to_pylist(),
                           strict=True) if r[1] == "BBBUSDT"]  # fmt: skip
    klines = market.klines("BBBUSDT", "1m", None, None, 10)
    assert sum(float(k[5]) for k in klines) == pytest.approx(sum(r[3] for r in rows), rel=1e-6)
    assert float(market.ticker_24h("BBBUSDT")["quoteVolume"]) == pytest.approx(sum(r[2] * r[3] for r in rows), rel=1e-6)
    spec = market.spec("BBBUSDT")
    assert spec is not None and spec.quote == "USDT" and spec.base == "BBB" and spec.listing_ms == min(r[0] for r in rows)


def test_bad_dumps_are_refused_clearly(tmp_path: Path) -> None:
    pq.write_table(pa.table({"ts_ms": [1], "symbol": ["X"]}), tmp_path / "bad.parquet")
    with pytest.raises(ReplayError, match="column 'price' missing"):
        ReplayMarket(tmp_path / "bad.parquet")
    with pytest.raises(ReplayError, match="cannot read"):
        ReplayMarket(tmp_path / "missing.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ReplayError, match="cannot read"):
        ReplayMarket(tmp_path / "junk.parquet")
    cols = {"ts_ms": pa.array([1, 2], pa.int64()), "symbol": pa.array(["AUSDT", "AUSDT"]), "price": pa.array([1.0, 1.0]),
            "qty": pa.array([1.0, 1.0]), "side": pa.array([1, 3], pa.int8())}  # fmt: skip
    pq.write_table(pa.table(cols), tmp_path / "side.parquet")
    with pytest.raises(ReplayError, match="side must be 1"):
        ReplayMarket(tmp_path / "side.parquet")
    pq.write_table(pa.table({**cols, "side": pa.array([1, 2], pa.int64())}), tmp_path / "type.parquet")
    with pytest.raises(ReplayError, match="column 'side' is int64, expected int8"):
        ReplayMarket(tmp_path / "type.parquet")
    pq.write_table(pa.table({**cols, "side": pa.array([1, 2], pa.int8()), "price": pa.array([1.0, -1.0])}), tmp_path / "neg.parquet")
    with pytest.raises(ReplayError, match="finite and > 0"):
        ReplayMarket(tmp_path / "neg.parquet")


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
