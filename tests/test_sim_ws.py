"""The emulator's WebSocket protocol, checked with an independent client (websockets + protobuf)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def connect(url: str) -> Any:
    # max_queue=None: an unread backlog must not stop the client from seeing the close frame.
    return websockets.connect(url, max_queue=None, close_timeout=2)


async def _collect(ws: Any, seconds: float) -> tuple[list[pb.PushDataV3ApiWrapper], list[dict]]:
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


async def _text(ws: Any) -> dict:
    """The next JSON reply, skipping pushes already in flight."""
    while isinstance(msg := await asyncio.wait_for(ws.recv(), 3.0), bytes):
        pass
    return json.loads(msg)


async def test_subscribe_several_pairs_and_decode_every_frame() -> None:
    async with run_emulator(pairs=20, seed=3, rate=400) as emu:
        symbols = [s.symbol for s in emu.market.symbols if s.status == "1"][:3]
        params = [c.format(s) for s in symbols for c in (DEALS, DEPTH, TICKER)]
        async with connect(emu.ws_url) as ws:
            await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": params, "id": 7}))
            frames, texts = await _collect(ws, 2.0)
        assert texts[0] == {"id": 7, "code": 0, "msg": ",".join(params)}
        bodies = {w.WhichOneof("body") for w in frames}
        assert {"publicAggreDeals", "publicAggreDepths", "publicAggreBookTicker"} <= bodies
        last_bbo: dict[str, tuple] = {}
        for w in frames:
            assert w.channel in params and w.symbol in symbols and w.symbol in w.channel
            assert w.HasField("sendTime") and not w.HasField("createTime")
            if w.HasField("publicAggreDeals"):
                assert w.channel.startswith("spot@public.aggre.deals") and len(w.publicAggreDeals.deals) >= 1
                for d in w.publicAggreDeals.deals:
                    assert float(d.price) > 0 and float(d.quantity) > 0 and d.tradeType in (1, 2) and d.tradeId
                    assert d.time <= w.sendTime
            if w.HasField("publicAggreDepths"):
                body = w.publicAggreDepths
                assert int(body.fromVersion) <= int(body.toVersion)
                assert all(float(lv.quantity) >= 0 for lv in [*body.asks, *body.bids])
            if w.HasField("publicAggreBookTicker"):
                b = w.publicAggreBookTicker
                bbo = (b.bidPrice, b.bidQuantity, b.askPrice, b.askQuantity)
                assert float(b.bidPrice) < float(b.askPrice)
                assert last_bbo.get(w.symbol) != bbo  # pushed only when the best bid/ask changed
                last_bbo[w.symbol] = bbo


async def test_versions_are_contiguous_and_snapshot_rebuilds_the_book() -> None:
    async with run_emulator(pairs=10, seed=5, rate=300) as emu:
        symbol = emu.market.symbols[0].symbol
        async with connect(emu.ws_url) as ws, aiohttp.ClientSession() as http:
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


async def test_limit_depth_kline_and_minitickers_channels() -> None:
    async with run_emulator(pairs=12, seed=6, rate=300, speed=4) as emu:
        symbol = next(s.symbol for s in emu.market.symbols if s.status == "1")
        limit5 = f"spot@public.limit.depth.v3.api.pb@{symbol}@5"
        kline = f"spot@public.kline.v3.api.pb@{symbol}@Min1"
        hour8 = f"spot@public.kline.v3.api.pb@{symbol}@Hour8"
        minis = "spot@public.miniTickers.v3.api.pb@UTC+8"
        async with connect(emu.ws_url) as ws:
            await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": [limit5, kline, hour8, minis]}))
            frames, texts = await _collect(ws, 2.0)  # 8 s of exchange time
        assert texts == [{"id": 0, "code": 0, "msg": f"{limit5},{kline},{hour8},{minis}"}]
        by_channel: dict[str, list[pb.PushDataV3ApiWrapper]] = {}
        for w in frames:
            by_channel.setdefault(w.channel, []).append(w)
        limits = by_channel[limit5]
        for w in limits:
            body = w.publicLimitDepths
            assert 1 <= len(body.bids) <= 5 and 1 <= len(body.asks) <= 5
            assert float(body.bids[0].price) < float(body.asks[0].price)
            assert [float(x.price) for x in body.bids] == sorted((float(x.price) for x in body.bids), reverse=True)
        assert all(int(a.publicLimitDepths.version) <= int(b.publicLimitDepths.version) for a, b in zip(limits, limits[1:], strict=False))
        klines = by_channel[kline]
        assert 3 <= len(klines) <= 11  # once per exchange second
        for w in klines:
            k = w.publicSpotKline
            assert k.interval == "Min1" and k.windowStart % 60 == 0 and k.windowEnd == k.windowStart + 60
            assert float(k.lowestPrice) <= float(k.closingPrice) <= float(k.highestPrice)
        k8 = by_channel[hour8][-1].publicSpotKline
        assert k8.interval == "Hour8" and k8.windowStart % (8 * 3600) == 0 and k8.windowEnd - k8.windowStart == 8 * 3600
        pushes = by_channel[minis]
        assert 2 <= len(pushes) <= 4  # every 3 exchange seconds
        online = {s.symbol for s in emu.market.symbols if s.status == "1"}
        seen: dict[str, str] = {}
        for w in pushes:
            assert not w.HasField("symbol")
            for item in w.publicMiniTickers.items:
                assert item.symbol in online and float(item.price) > 0
                assert seen.get(item.symbol) != item.price  # only pairs whose price changed
                seen[item.symbol] = item.price
        assert set(seen) == online  # the first push carries every pair


async def test_thirty_first_subscription_is_acked_but_dead() -> None:
    async with run_emulator(pairs=40, seed=2, rate=2000) as emu:
        symbols = [s.symbol for s in emu.market.symbols if s.status == "1"][:31]
        async with connect(emu.ws_url) as ws:
            await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": [DEALS.format(s) for s in symbols[:30]]}))
            await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": [DEALS.format(symbols[30])]}))
            frames, texts = await _collect(ws, 1.5)
            state = emu.state()
        assert texts[1] == {"id": 0, "code": 0, "msg": DEALS.format(symbols[30])}
        assert len({w.symbol for w in frames}) > 10  # the live ones do get data ...
        assert all(w.symbol != symbols[30] for w in frames)  # ... the 31st never does
        (conn,) = state["connections"]
        assert len(conn["subscriptions"]) == 30 and conn["dead_subscriptions"] == [DEALS.format(symbols[30])]
        assert state["streams"] == 30 and state["links"] == 1 and state["dead_streams"] == 1


async def test_refusals_blocked_with_code_zero_and_ping() -> None:
    async with run_emulator(pairs=200, seed=1) as emu:
        good = DEALS.format(emu.market.symbols[0].symbol)
        offline = [s.symbol for s in emu.market.symbols if s.status != "1"]
        assert offline, "the market should list some paused/offline pairs"
        bad = [
            DEALS.format("NOPEUSDT"),  # unknown symbol
            DEALS.format(offline[0]),  # listed but not online
            "spot@public.deals.v3.api@BTCUSDT",  # JSON channel
            "spot@public.deals.v3.api.pb@" + emu.market.symbols[0].symbol,  # legacy 301
            "spot@public.increase.depth.v3.api.pb@" + emu.market.symbols[0].symbol,  # legacy 302
            "spot@public.aggre.deals.v3.api.pb@" + emu.market.symbols[0].symbol,  # interval segment missing
            f"spot@public.kline.v3.api.pb@{emu.market.symbols[0].symbol}@Sec1",  # no such interval
            "spot@public.miniTickers.v3.api.pb@UTC+99",
        ]
        async with connect(emu.ws_url) as ws:
            await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": [good, *bad]}))
            first, second = await _text(ws), await _text(ws)
            await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": bad[:1]}))
            only_bad = await _text(ws)
            await ws.send(json.dumps({"method": "PING"}))
            pong = await _text(ws)
            await ws.send("not json at all")
            garbage = await _text(ws)
            await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": "nope"}))
            bad_params = await _text(ws)
            await ws.send(json.dumps({"method": "UNSUBSCRIPTION", "params": [good]}))
            unsub = await _text(ws)
            await asyncio.sleep(0.3)
            state = emu.state()["connections"][0]
        assert first == {"id": 0, "code": 0, "msg": good}
        assert second == {"id": 0, "code": 0, "msg": REFUSAL.format(",".join(bad))}
        assert second["msg"].endswith(".  Reason\uff1a Blocked! ")
        assert only_bad == {"id": 0, "code": 0, "msg": f"Not Subscribed successfully! [{bad[0]}].  Reason\uff1a Blocked! "}
        assert pong == {"id": 0, "code": 0, "msg": "PONG"}
        assert garbage == {"id": 0, "code": -1, "msg": "Invalid message"}
        assert bad_params["code"] != 0
        assert unsub == {"id": 0, "code": 0, "msg": good} and state["subscriptions"] == []


async def test_no_subscription_no_data_lifetime_and_rate_disconnects() -> None:
    # max_streams_per_conn=0: every subscription is acked but dead, so no data ever flows.
    limits = Limits(no_sub_timeout_s=0.5, no_data_timeout_s=0.8, max_client_msg_per_s=10, max_streams_per_conn=0)
    async with run_emulator(pairs=5, limits=limits) as emu:
        channel = DEALS.format(emu.market.symbols[0].symbol)
        loop = asyncio.get_running_loop()
        async with connect(emu.ws_url) as idle, connect(emu.ws_url) as quiet, connect(emu.ws_url) as pinger:
            t0 = loop.time()
            for ws in (quiet, pinger):
                await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": [channel]}))
                assert (await _text(ws))["msg"] == channel

            async def keep_alive() -> int:  # PING counts as data flow: this one outlives the timeout
                pongs = 0
                while loop.time() - t0 < 2.0:
                    await pinger.send(json.dumps({"method": "PING"}))
                    pongs += (await _text(pinger))["msg"] == "PONG"
                    await asyncio.sleep(0.25)
                return pongs

            pings = asyncio.create_task(keep_alive())
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(idle.recv(), 3.0)
            assert loop.time() - t0 >= 0.4
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(quiet.recv(), 3.0)
            assert loop.time() - t0 >= 0.7
            assert await pings >= 6
            assert [c["id"] for c in emu.state()["connections"]] == [3]
        async with connect(emu.ws_url) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                for _ in range(30):
                    await ws.send(json.dumps({"method": "PING"}))
                await asyncio.wait_for(_drain(ws), 3.0)
        counts = emu.state()["close_counts"]
        assert counts["no subscription"] == 1 and counts["no data"] == 1 and counts["client message rate"] == 1
    async with run_emulator(pairs=5, max_conn_life_s=0.4) as emu, connect(emu.ws_url) as ws:
        await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": [DEALS.format(emu.market.symbols[0].symbol)]}))
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(_drain(ws), 3.0)
        assert emu.state()["close_counts"] == {"lifetime": 1}


async def _drain(ws: Any) -> None:
    while True:
        await ws.recv()


async def test_non_loopback_bind_is_refused() -> None:
    with pytest.raises(ValueError, match="loopback only"):
        check_loopback("0.0.0.0", allow_non_loopback=False)
    with pytest.raises(ValueError, match="loopback only"):
        check_loopback("example.com", allow_non_loopback=False)
    check_loopback("127.0.0.1", allow_non_loopback=False)
    check_loopback("localhost", allow_non_loopback=False)
    with pytest.raises(ValueError, match="loopback only"):
        async with run_emulator(pairs=5, host="0.0.0.0"):
            pass


def test_cli_prints_ready_line_and_stops_cleanly_on_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim", "serve", "--pairs", "20", "--scenario", scenario_path("pumps.yaml"),
         "--fault", "drop_every:seconds=600", "--no-sub-timeout-s", "5"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        ready = json.loads(line)
        assert set(ready) == {"ws", "rest", "futures_ws", "futures_rest"}
        assert ready["ws"].startswith("ws://127.0.0.1:") and ready["ws"].endswith("/ws")
        assert ready["rest"] == ready["ws"].replace("ws://", "http://").removesuffix("/ws")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert proc.stdout.read() == ""  # type: ignore[union-attr]  # exactly one line on stdout
    finally:
        proc.kill()
        proc.wait()
    for argv, message in ((["--host", "0.0.0.0"], "loopback only"), (["--fault", "{nope"], "invalid JSON"),
                          (["--fault", "explode"], "unknown REST fault")):  # fmt: skip
        bad = subprocess.run([sys.executable, "-m", "sim", "serve", "--pairs", "5", *argv], cwd=REPO, capture_output=True, text=True,
                             timeout=30, env=env)  # fmt: skip
        assert bad.returncode == 2 and message in bad.stderr and bad.stdout == ""
