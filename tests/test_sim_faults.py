"""Every emulator fault must be visible to a client and in /_sim/state, or it proves nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp
import pytest
import websockets
from google.protobuf.message import DecodeError

from sim.faults import Faults, parse_fault_spec, select_targets
from sim.proto import mexc_push_pb2 as pb
from sim.server import run_emulator

DEALS = "spot@public.aggre.deals.v3.api.pb@100ms@{}"
DEPTH = "spot@public.aggre.depth.v3.api.pb@100ms@{}"


def connect(url: str) -> Any:
    return websockets.connect(url, max_queue=None, close_timeout=2)


async def _subscribe(url: str, channels: list[str]) -> Any:
    ws = await connect(url)
    await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": channels}))
    assert json.loads(await ws.recv())["msg"] == ",".join(channels)
    return ws


async def _frames(ws: Any, seconds: float) -> list[bytes]:
    out: list[bytes] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        try:
            msg = await asyncio.wait_for(ws.recv(), left)
        except (TimeoutError, websockets.ConnectionClosed):
            break
        if isinstance(msg, bytes):
            out.append(msg)
    return out


def _busiest(emu: Any, n: int) -> list[str]:
    """The most active online pairs, so a fault has frames to act on within a short test."""
    online = [s for s in emu.market.symbols if s.status == "1"]
    return [s.symbol for s in sorted(online, key=lambda s: -s.activity)[:n]]


def _parse(frame: bytes) -> pb.PushDataV3ApiWrapper | None:
    w = pb.PushDataV3ApiWrapper()
    try:
        w.ParseFromString(frame)
    except DecodeError:
        return None
    return w


async def _closed(ws: Any, timeout: float = 3.0) -> bool:
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed:
        return True
    except TimeoutError:
        return False


async def test_depth_gap_makes_the_next_from_version_jump() -> None:
    async with run_emulator(pairs=10, seed=4, rate=400) as emu:
        symbol, other = _busiest(emu, 2)
        ws = await _subscribe(emu.ws_url, [DEPTH.format(symbol), DEPTH.format(other)])
        try:
            before = await _frames(ws, 0.5)
            await emu.inject("depth_gap", symbol=symbol, frames=2)
            after = await _frames(ws, 2.0)
        finally:
            await ws.close()
        versions: dict[str, list[tuple[int, int]]] = {}
        for frame in before + after:
            w = _parse(frame)
            assert w is not None
            body = w.publicAggreDepths
            versions.setdefault(w.symbol, []).append((int(body.fromVersion), int(body.toVersion)))
        jumps = {s: [b[0] - a[1] - 1 for a, b in zip(v, v[1:], strict=False) if b[0] != a[1] + 1] for s, v in versions.items()}
        assert len(jumps[symbol]) == 1 and jumps[symbol][0] >= 2  # one hole covering the two swallowed diffs
        assert jumps[other] == []  # the other pair is untouched
        assert emu.state()["faults_fired"]["depth_gap"] == 2


async def test_malformed_frames_for_one_symbol_then_clean_again() -> None:
    async with run_emulator(pairs=10, seed=4, rate=400) as emu:
        symbol, other = _busiest(emu, 2)
        ws = await _subscribe(emu.ws_url, [DEALS.format(symbol), DEPTH.format(symbol), DEPTH.format(other)])
        try:
            await _frames(ws, 0.3)
            await emu.inject("malformed", symbol=symbol, frames=3)
            frames = await _frames(ws, 1.5)
        finally:
            await ws.close()
        parsed = [_parse(f) for f in frames]
        bad = [i for i, w in enumerate(parsed) if w is None]
        assert len(bad) == 3  # truncated, garbage and wrong wire type: none decodes
        assert any(w is not None and w.symbol == symbol for w in parsed[bad[-1] + 1 :])  # clean again afterwards
        fired = emu.state()["faults_fired"]
        assert fired["malformed"] == 3 and fired["malformed_truncated"] == fired["malformed_garbage"] == fired["malformed_wire_type"] == 1


async def test_stall_hits_only_the_link_carrying_the_symbol() -> None:
    async with run_emulator(pairs=10, seed=4, rate=600) as emu:
        a, b = _busiest(emu, 2)
        ws_a = await _subscribe(emu.ws_url, [DEPTH.format(a)])
        ws_b = await _subscribe(emu.ws_url, [DEPTH.format(b)])
        try:
            await _frames(ws_a, 0.3)
            assert await emu.inject("stall", seconds=1.2, symbol=a) == 1
            stalled = emu.state()["connections"]
            with contextlib.suppress(TimeoutError):
                while True:  # drain what was already on the wire
                    await asyncio.wait_for(ws_a.recv(), 0.15)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            got_b = await _frames(ws_b, 0.5)
            await asyncio.wait_for(ws_a.recv(), 3.0)  # nothing while stalled, then data resumes, link still open
            assert loop.time() - t0 >= 0.6
        finally:
            await ws_a.close()
            await ws_b.close()
        assert len(got_b) >= 2
        assert [c["stalled"] for c in stalled] == [True, False]
        assert emu.state()["faults_fired"]["stall"] == 1


async def test_drop_by_symbol_by_count_and_every_k_seconds() -> None:
    async with run_emulator(pairs=10, seed=4, rate=300) as emu:
        syms = _busiest(emu, 3)
        links = [await _subscribe(emu.ws_url, [DEALS.format(s)]) for s in syms]
        try:
            assert await emu.inject("drop", symbol=syms[1]) == 1
            assert await _closed(links[1])
            assert [c["subscriptions"] for c in emu.state()["connections"]] == [[DEALS.format(syms[0])], [DEALS.format(syms[2])]]
            assert await emu.inject("drop", count=1) == 1
            assert await _closed(links[0])
            assert len(emu.state()["connections"]) == 1
            await emu.inject("drop_every", seconds=0.5)
            fresh = await _subscribe(emu.ws_url, [DEALS.format(syms[0])])
            assert await _closed(links[2]) and await _closed(fresh)
            await emu.inject("drop_every", seconds=0)
            survivor = await _subscribe(emu.ws_url, [DEALS.format(syms[0])])
            assert not await _closed(survivor, 1.0)
            await survivor.close()
        finally:
            for ws in links:
                await ws.close()
        state = emu.state()
        assert state["faults_fired"]["drop"] == 4 and state["close_counts"]["fault: drop"] == 4


async def test_http_control_api_and_rest_faults() -> None:
    async with run_emulator(pairs=10, seed=4, faults=[{"kind": "malformed", "frames": 1}]) as emu, aiohttp.ClientSession() as http:
        (symbol,) = _busiest(emu, 1)
        ws = await _subscribe(emu.ws_url, [DEALS.format(symbol), DEPTH.format(symbol)])
        try:
            first = await _frames(ws, 0.5)
            assert _parse(first[0]) is None and all(_parse(f) is not None for f in first[1:])
            async with http.post(f"{emu.rest_url}/_sim/fault", json={"kind": "status", "endpoint": "/api/v3/depth", "status": 429,
                                                                       "retry_after": 3, "count": 1}) as r:  # fmt: skip
                assert r.status == 200 and (await r.json())["ok"] is True
            async with http.get(f"{emu.rest_url}/api/v3/depth", params={"symbol": symbol}) as r:
                assert r.status == 429 and r.headers["Retry-After"] == "3"
            async with http.get(f"{emu.rest_url}/api/v3/depth", params={"symbol": symbol}) as r:
                assert r.status == 200
            for body in ({"kind": "explode"}, {"nokind": 1}, [1, 2], {"kind": "depth_gap"}, {"kind": "stall", "seconds": -1}):
                async with http.post(f"{emu.rest_url}/_sim/fault", json=body) as r:
                    assert r.status == 400 and (await r.json())["ok"] is False
            async with http.post(f"{emu.rest_url}/_sim/fault", data=b"not json") as r:
                assert r.status == 400
            async with http.post(f"{emu.rest_url}/_sim/fault", json={"kind": "drop"}) as r:
                assert (await r.json()) == {"ok": True, "result": 1}
            assert await _closed(ws)
            async with http.get(f"{emu.rest_url}/_sim/state") as r:
                state = await r.json()
        finally:
            await ws.close()
        assert state["faults_fired"]["malformed"] == 1  # the start-up fault (as --fault gives) fired
        assert state["faults_fired"]["drop"] == 1 and state["rest"]["faults_fired"]["status"] == 1
        assert state["links"] == 0 and state["frames_sent"] >= 1


def test_fault_specs_and_target_selection() -> None:
    assert parse_fault_spec('{"kind": "drop", "count": 2}') == {"kind": "drop", "count": 2}
    assert parse_fault_spec("stall:seconds=2.5,symbol=PEPEUSDT") == {"kind": "stall", "seconds": 2.5, "symbol": "PEPEUSDT"}
    assert parse_fault_spec("drop") == {"kind": "drop"}
    for bad in ("{oops", '{"count": 1}', ":x=1", "stall:seconds"):
        with pytest.raises(ValueError):
            parse_fault_spec(bad)

    class C:
        def __init__(self, conn_id: int, live: list[str]) -> None:
            self.conn_id, self.live = conn_id, live

    conns = [C(1, [DEALS.format("AUSDT")]), C(2, ["spot@public.limit.depth.v3.api.pb@BUSDT@5"]), C(3, [DEPTH.format("BUSDT")])]
    assert [c.conn_id for c in select_targets(conns, symbol="BUSDT")] == [2, 3]
    assert [c.conn_id for c in select_targets(conns, symbol="USDT")] == []
    assert [c.conn_id for c in select_targets(conns, count=2)] == [1, 2]
    assert [c.conn_id for c in select_targets(conns, ids=[3, 9])] == [3]
    with pytest.raises(ValueError):
        select_targets(conns, count=-1)
    faults = Faults()
    with pytest.raises(ValueError):
        faults.add_malformed("X", 0)
    faults.add_malformed("", 2)  # anyone's frames
    frame = pb.PushDataV3ApiWrapper(channel="c", symbol="X", sendTime=5).SerializeToString() + b"\x12\x04abcd"
    broken = [faults.maybe_corrupt("X", frame), faults.maybe_corrupt("Y", frame)]
    assert all(b != frame for b in broken) and faults.maybe_corrupt("X", frame) == frame
