"""The emulator's WebSocket protocol, checked with an independent client (websockets + protobuf)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import websockets

from sim.proto import mexc_push_pb2 as pb
from sim.server import check_loopback, run_emulator, scenario_path
from sim.ws_server import REFUSAL, Limits

REPO = Path(__file__).resolve().parent.parent

DEALS = "spot@public.aggre.deals.v3.api.pb@100ms@{}"
DEPTH = "spot@public.aggre.depth.v3.api.pb@100ms@{}"
TICKER = "spot@public.aggre.bookTicker.v3.api.pb@100ms@{}"


async def _collect(ws: websockets.ClientConnection, seconds: float) -> tuple[list[pb.PushDataV3ApiWrapper], list[dict]]:
    frames, texts = [], []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        try:
            msg = await asyncio.wait_for(ws.recv(), left)
        except (TimeoutError, websockets.ConnectionClosed):
            break
        if isinstance(msg, bytes):
            w = pb.PushDataV3ApiWrapper()
            w.ParseFromString(msg)
            frames.append(w)
        else:
            texts.append(json.loads(msg))
    return frames, texts


async def test_subscribe_several_pairs_and_decode_every_frame() -> None:
    async with run_emulator(pairs=20, seed=3, rate=400) as emu:
        symbols = [s.symbol for s in emu.market.symbols[:3]]
        params = [c.format(s) for s in symbols for c in (DEALS, DEPTH, TICKER)]
        async with websockets.connect(emu.ws_url) as ws:
            await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": params}))
            frames, texts = await _collect(ws, 2.0)
        assert texts[0] == {"id": 0, "code": 0, "msg": ",".join(params)}
        bodies = {w.WhichOneof("body") for w in frames}
        assert {"publicAggreDeals", "publicAggreDepths", "publicAggreBookTicker"} <= bodies
        for w in frames:
            assert w.channel in params and w.symbol in symbols
            assert w.HasField("sendTime") and not w.HasField("createTime")
            if w.HasField("publicAggreDeals"):
                for d in w.publicAggreDeals.deals:
                    assert float(d.price) > 0 and float(d.quantity) > 0 and d.tradeType in (1, 2)
                    assert d.time <= w.sendTime
            if w.HasField("publicAggreDepths"):
                body = w.publicAggreDepths
                assert int(body.fromVersion) <= int(body.toVersion)


async def test_versions_are_contiguous_and_snapshot_rebuilds_the_book() -> None:
    async with run_emulator(pairs=10, seed=5, rate=300) as emu:
        symbol = emu.market.symbols[0].symbol
        async with websockets.connect(emu.ws_url) as ws, aiohttp.ClientSession() as http:
            await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": [DEPTH.format(symbol)]}))
            await ws.recv()
            first = pb.PushDataV3ApiWrapper()
            first.ParseFromString(await ws.recv())
            async with http.get(f"{emu.rest_url}/api/v3/depth", params={"symbol": symbol, "limit": "1000"}) as resp:
                snap = await resp.json()
            bids = {float(p): float(q) for p, q in snap["bids"]}
            asks = {float(p): float(q) for p, q in snap["asks"]}
            version = snap["lastUpdateId"]
            assert version >= int(first.publicAggreDepths.fromVersion) - 1
            applied = 0
            loop = asyncio.get_running_loop()
            end = loop.time() + 5.0
            # Apply diffs until our book has reached the emulator's current version, then compare.
            while loop.time() < end:
                try:
                    msg = await asyncio.wait_for(ws.recv(), 0.3)
                except TimeoutError:
                    msg = None
                if isinstance(msg, bytes):
                    w = pb.PushDataV3ApiWrapper()
                    w.ParseFromString(msg)
                    body = w.publicAggreDepths
                    if int(body.toVersion) <= version:
                        continue
                    assert int(body.fromVersion) == version + 1  # contiguous, as MEXC promises
                    for side, levels in ((bids, body.bids), (asks, body.asks)):
                        for lv in levels:
                            q = float(lv.quantity)
                            if q == 0:
                                side.pop(float(lv.price), None)
                            else:
                                side[float(lv.price)] = q
                    version = int(body.toVersion)
                    applied += 1
                emu_version, emu_bids, emu_asks = emu.market.depth_snapshot(symbol, 1000)
                if applied and emu_version == version:
                    assert bids == dict(emu_bids) and asks == dict(emu_asks)
                    return
            raise AssertionError(f"never caught up with the emulator's book (applied {applied})")


async def test_thirty_first_subscription_is_acked_but_dead() -> None:
    async with run_emulator(pairs=40, seed=2, rate=2000) as emu:
        symbols = [s.symbol for s in emu.market.symbols if s.status == "1"][:31]
        async with websockets.connect(emu.ws_url) as ws:
            await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": [DEALS.format(s) for s in symbols[:30]]}))
            await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": [DEALS.format(symbols[30])]}))
            frames, texts = await _collect(ws, 1.5)
        assert texts[1]["msg"] == DEALS.format(symbols[30]) and texts[1]["code"] == 0
        assert all(w.symbol != symbols[30] for w in frames)
        state = emu.state()["connections"]
        assert state == [] or len(state[0]["subscriptions"]) <= 30


async def test_unknown_symbol_and_json_channel_are_blocked_with_code_zero() -> None:
    async with run_emulator(pairs=5) as emu:
        good = DEALS.format(emu.market.symbols[0].symbol)
        bad = [DEALS.format("NOPEUSDT"), "spot@public.deals.v3.api@BTCUSDT", "spot@public.increase.depth.v3.api.pb@X"]
        async with websockets.connect(emu.ws_url) as ws:
            await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": [good, *bad]}))
            first = json.loads(await ws.recv())
            second = json.loads(await ws.recv())
            await ws.send(json.dumps({"method": "PING"}))
            pong = await ws.recv()
            while isinstance(pong, bytes):
                pong = await ws.recv()
        assert first == {"id": 0, "code": 0, "msg": good}
        assert second == {"id": 0, "code": 0, "msg": REFUSAL.format(",".join(bad))}
        assert "Reason\uff1a Blocked! " in second["msg"] and second["msg"].endswith(" ")
        assert json.loads(pong) == {"id": 0, "code": 0, "msg": "PONG"}


async def test_idle_and_rate_limits_disconnect() -> None:
    limits = Limits(no_sub_timeout_s=0.5, no_data_timeout_s=0.8, max_client_msg_per_s=10)
    async with run_emulator(pairs=5, limits=limits) as emu:
        async with websockets.connect(emu.ws_url) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 3.0)
        async with websockets.connect(emu.ws_url) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                for _ in range(30):
                    await ws.send(json.dumps({"method": "PING"}))
                await asyncio.wait_for(_drain(ws), 3.0)
        reasons = {c["reason"] for c in emu.state()["closed"]}
        assert {"no subscription", "client message rate"} <= reasons


async def _drain(ws: websockets.ClientConnection) -> None:
    while True:
        await ws.recv()


async def test_faults_are_observable() -> None:
    async with run_emulator(pairs=10, seed=4, rate=400) as emu:
        symbol = emu.market.symbols[0].symbol
        async with websockets.connect(emu.ws_url) as ws:
            await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": [DEPTH.format(symbol), DEALS.format(symbol)]}))
            await ws.recv()
            raw: list[bytes] = []
            while True:  # one good depth frame first, so the gap has something to jump from
                msg = await ws.recv()
                raw.append(msg)
                w = pb.PushDataV3ApiWrapper()
                w.ParseFromString(msg)
                if w.HasField("publicAggreDepths"):
                    break
            await emu.inject("depth_gap", symbol=symbol, frames=2)
            await emu.inject("malformed", symbol=symbol, frames=3)
            end = asyncio.get_running_loop().time() + 2.0
            while asyncio.get_running_loop().time() < end:
                try:
                    msg = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                if isinstance(msg, bytes):
                    raw.append(msg)
            bad, versions = 0, []
            for msg in raw:
                w = pb.PushDataV3ApiWrapper()
                try:
                    w.ParseFromString(msg)
                except Exception:  # noqa: BLE001 - the malformed frames are the point
                    bad += 1
                    continue
                if w.HasField("publicAggreDepths"):
                    versions.append((int(w.publicAggreDepths.fromVersion), int(w.publicAggreDepths.toVersion)))
            assert bad >= 1
            assert any(b[0] != a[1] + 1 for a, b in zip(versions, versions[1:], strict=False))
            stalled = await emu.inject("stall", seconds=1.5)
            assert stalled == 1
            with contextlib.suppress(TimeoutError):
                while True:  # drain what was already in flight
                    await asyncio.wait_for(ws.recv(), 0.2)
            t0 = asyncio.get_running_loop().time()
            await asyncio.wait_for(ws.recv(), 3.0)  # nothing arrives while stalled, then data resumes
            assert asyncio.get_running_loop().time() - t0 >= 0.5
            dropped = await emu.inject("drop")
            assert dropped == 1
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(_drain(ws), 2.0)
        fired = emu.state()["faults_fired"]
        assert fired["depth_gap"] == 2 and fired["malformed"] == 3 and fired["drop"] == 1 and fired["stall"] == 1


def test_non_loopback_bind_is_refused() -> None:
    with pytest.raises(ValueError, match="loopback only"):
        check_loopback("0.0.0.0", allow_non_loopback=False)
    check_loopback("127.0.0.1", allow_non_loopback=False)


def test_cli_prints_ready_line_and_stops_cleanly_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim", "serve", "--pairs", "20", "--scenario", scenario_path("pumps.yaml")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        ready = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        assert ready["ws"].startswith("ws://127.0.0.1:") and ready["ws"].endswith("/ws")
        assert ready["rest"].startswith("http://127.0.0.1:")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
    bad = subprocess.run([sys.executable, "-m", "sim", "serve", "--host", "0.0.0.0"], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "loopback only" in bad.stderr
