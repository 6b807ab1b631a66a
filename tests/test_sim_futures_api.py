"""The futures emulator's wire (issue #17): REST envelopes, WebSocket acks/pushes/errors, heartbeat, ready line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets

from sim.server import run_emulator

REPO = Path(__file__).resolve().parent.parent
TICKER_FIELDS = {"contractId", "symbol", "lastPrice", "bid1", "ask1", "volume24", "amount24", "holdVol", "lower24Price", "high24Price",
                 "riseFallRate", "riseFallValue", "indexPrice", "fairPrice", "fundingRate", "maxBidPrice", "minAskPrice", "timestamp"}  # fmt: skip
TICKERS_FIELDS = {"symbol", "timestamp", "lastPrice", "volume24", "amount24", "riseFallRate", "fairPrice", "indexPrice", "maxBidPrice",
                  "minAskPrice", "lower24Price", "high24Price"}  # fmt: skip


def _connect(url: str) -> Any:
    # max_queue=None: an unread backlog must not hold up the close handshake.
    return websockets.connect(url, max_queue=None, close_timeout=2)


async def _get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as resp:
        assert resp.status == 200
        return await resp.json()


async def _collect(ws: Any, seconds: float) -> list[dict]:
    out = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        try:
            msg = await asyncio.wait_for(ws.recv(), left)
        except (TimeoutError, websockets.ConnectionClosed):
            break
        assert isinstance(msg, str)  # every futures frame is TEXT
        out.append(json.loads(msg))
    return out


async def test_rest_envelopes_and_fields() -> None:
    async with run_emulator(pairs=3, futures_contracts=12, seed=4) as emu, aiohttp.ClientSession() as http:
        base = emu.futures_rest_url + "/api/v1/contract"
        sym = emu.futures.market.contracts[2].symbol
        details = await _get(http, f"{base}/detail")
        assert details["success"] is True and details["code"] == 0 and len(details["data"]) == 12
        one = (await _get(http, f"{base}/detail?symbol={sym}"))["data"]
        assert one == details["data"][2]
        assert {"symbol", "displayName", "baseCoin", "quoteCoin", "contractSize", "priceUnit", "priceScale", "state", "apiAllowed"} <= set(one)
        tickers = (await _get(http, f"{base}/ticker"))["data"]
        assert [t["symbol"] for t in tickers] == [d["symbol"] for d in details["data"]]
        ticker = (await _get(http, f"{base}/ticker?symbol={sym}"))["data"]
        assert set(ticker) >= TICKER_FIELDS and ticker["symbol"] == sym and ticker["bid1"] < ticker["ask1"]
        assert set(ticker["riseFallRates"]) >= {"zone", "r", "v"}
        depth = (await _get(http, f"{base}/depth/{sym}?limit=5"))["data"]
        assert set(depth) == {"asks", "bids", "version", "timestamp"} and len(depth["asks"]) == len(depth["bids"]) == 5
        assert all(len(level) == 3 for level in depth["asks"] + depth["bids"])
        assert depth["asks"][0][0] > depth["bids"][0][0] and [a[0] for a in depth["asks"]] == sorted(a[0] for a in depth["asks"])
        assert len((await _get(http, f"{base}/depth/{sym}"))["data"]["asks"]) == 20
        fair = (await _get(http, f"{base}/fair_price/{sym}"))["data"]
        index = (await _get(http, f"{base}/index_price/{sym}"))["data"]
        assert set(fair) == {"symbol", "fairPrice", "timestamp"} and set(index) == {"symbol", "indexPrice", "timestamp"}
        assert fair["fairPrice"] == pytest.approx(index["indexPrice"], rel=0.004)
        assert (await _get(http, f"{base}/ping"))["data"] == emu.futures.market.now_ms()
        for path in ("detail?symbol=NOPE_USDT", "ticker?symbol=NOPE_USDT", "depth/NOPE_USDT", "fair_price/NOPE_USDT", "index_price/NOPE_USDT"):
            assert await _get(http, f"{base}/{path}") == {"success": False, "code": 1001, "message": "Contract does not exist"}
        assert (await _get(http, f"{base}/depth/{sym}?limit=x"))["code"] == 600


def _sub(method: str, **param: Any) -> str:
    return json.dumps({"method": method, "param": param})


async def test_ws_acks_pushes_and_errors_for_every_channel() -> None:
    async with run_emulator(pairs=3, futures_contracts=10, seed=2, speed=2) as emu:
        market = emu.futures.market
        sym = market.contracts[0].symbol
        async with _connect(emu.futures_ws_url) as ws:
            for method, param in (("sub.tickers", {}), ("sub.ticker", {"symbol": sym}), ("sub.deal", {"symbol": sym}),
                                  ("sub.depth", {"symbol": sym}), ("sub.depth.full", {"symbol": sym, "limit": 5}),
                                  ("sub.fair.price", {"symbol": sym}), ("sub.index.price", {"symbol": sym})):  # fmt: skip
                await ws.send(_sub(method, **param))
                ack = json.loads(await ws.recv())
                assert set(ack) == {"channel", "data", "ts"} and ack["channel"] == f"rs.{method}" and ack["data"] == "success"
            await ws.send(_sub("sub.ticker", symbol="NOPE_USDT"))
            await ws.send(_sub("sub.nonsense", symbol=sym))  # an unknown method gets no answer
            await ws.send(json.dumps({"method": "ping"}))
            msgs = await _collect(ws, 3.0)
        by: dict[str, list[dict]] = {}
        for m in msgs:
            by.setdefault(m["channel"], []).append(m)
        assert [m["data"] for m in by["rs.error"]] == ["Contract [NOPE_USDT] not exists"]
        assert isinstance(by["pong"][0]["data"], int) and len(by["pong"]) == 1
        assert not any(c.startswith("rs.") and c != "rs.error" for c in by)
        for channel in ("push.ticker", "push.deal", "push.depth", "push.depth.full", "push.fair.price", "push.index.price"):
            assert by.get(channel), channel
            assert all(m["symbol"] == sym and isinstance(m["ts"], int) for m in by[channel])
        assert set(by["push.ticker"][0]["data"]) >= TICKER_FIELDS
        tickers = by["push.tickers"]
        assert all(len(m["data"]) == 10 and set(m["data"][0]) == TICKERS_FIELDS for m in tickers)
        assert all(b["ts"] - a["ts"] == 2000 for a, b in zip(tickers, tickers[1:], strict=False))
        tick_ts = [m["ts"] for m in by["push.ticker"]]
        assert all(t % 1000 == 0 for t in tick_ts) and len(set(tick_ts)) == len(tick_ts)
        for d in (x for m in by["push.deal"] for x in m["data"]):
            assert set(d) == {"p", "v", "T", "O", "M", "t", "i"}
        versions = [m["data"]["version"] for m in by["push.depth"]]
        assert versions == list(range(versions[0], versions[0] + len(versions)))  # +1 per push
        full = by["push.depth.full"][-1]["data"]
        assert set(full) == {"asks", "bids", "version"} and len(full["asks"]) == len(full["bids"]) == 5
        assert set(by["push.fair.price"][0]["data"]) == {"symbol", "price"}
        assert set(by["push.index.price"][0]["data"]) == {"symbol", "price"}


async def test_unsubscribe_stops_pushes_and_usub_depth_full_works() -> None:
    async with run_emulator(pairs=3, futures_contracts=6, seed=1, speed=2) as emu:
        sym = emu.futures.market.contracts[0].symbol
        async with _connect(emu.futures_ws_url) as ws:
            await ws.send(_sub("sub.depth", symbol=sym))
            await ws.send(_sub("sub.depth.full", symbol=sym))
            await _collect(ws, 0.8)
            await ws.send(_sub("unsub.depth", symbol=sym))
            await ws.send(_sub("usub.depth.full", symbol=sym))
            acks = []
            while len(acks) < 2:
                m = json.loads(await ws.recv())
                if m["channel"].startswith("rs."):
                    acks.append(m["channel"])
            assert acks == ["rs.unsub.depth", "rs.usub.depth.full"]
            assert await _collect(ws, 1.0) == []
            assert emu.futures.market.watched == set()


async def test_the_socket_closes_after_the_ping_timeout_even_while_streaming() -> None:
    async with run_emulator(pairs=3, futures_contracts=5, seed=1, futures_ping_timeout_s=1.5) as emu:
        sym = emu.futures.market.contracts[0].symbol
        async with _connect(emu.futures_ws_url) as quiet, _connect(emu.futures_ws_url) as pinging:
            for ws in (quiet, pinging):
                await ws.send(_sub("sub.depth", symbol=sym))
            loop = asyncio.get_running_loop()
            end = loop.time() + 3.0
            seen: list[dict] = []
            while loop.time() < end:
                await pinging.send(json.dumps({"method": "ping"}))
                seen += await _collect(quiet, 0.5)
                await asyncio.sleep(0.5 if quiet.close_code is not None else 0)
            assert quiet.close_code is not None and pinging.close_code is None
            assert seen[-1] == {"channel": "rs.error", "data": "more than 1.5 seconds no response, close the channel"}
            assert any(m["channel"] == "push.depth" for m in seen)
        closed = emu.futures.state()["closed"]
        assert {"reason": "no ping"} in [{"reason": c["reason"]} for c in closed]


async def test_a_live_scripted_spike_shows_in_the_ticker_and_the_state() -> None:
    async with run_emulator(pairs=3, futures_contracts=8, seed=3, speed=4) as emu, aiohttp.ClientSession() as http:
        sym = emu.futures.market.contracts[5].symbol
        async with _connect(emu.futures_ws_url) as ws:
            await ws.send(_sub("sub.ticker", symbol=sym))
            await ws.recv()
            body = {"symbol": sym, "in_s": 1, "duration_s": 30, "premium_pct": 25, "spike": True, "approach_s": 1, "book": "thin"}
            async with http.post(emu.rest_url + "/_sim/futures/anomaly", json=body) as resp:
                scripted = (await resp.json())["anomaly"]
            msgs = await _collect(ws, 3.5)
            async with http.post(emu.rest_url + "/_sim/futures/anomaly", json={"symbol": sym, "in_s": 1}) as resp:
                assert resp.status == 400 and (await resp.json())["ok"] is False
        state = await _get(http, emu.rest_url + "/_sim/futures/state")
    assert state["anomalies"] == [{**scripted, "active": True, "holding": True}]
    hold = [m["data"] for m in msgs if m["channel"] == "push.ticker" and scripted["hold_from_ms"] <= m["ts"] < scripted["hold_until_ms"]]
    assert len(hold) >= 4
    assert all(t["lastPrice"] / t["fairPrice"] >= 1.25 for t in hold)
    before = [m["data"] for m in msgs if m["channel"] == "push.ticker" and m["ts"] < scripted["start_ms"]]
    assert all(abs(t["lastPrice"] / t["fairPrice"] - 1) < 0.05 for t in before)


def test_cli_ready_line_has_the_futures_keys(tmp_path: Path) -> None:
    scenario = tmp_path / "f.yaml"
    scenario.write_text("futures_anomalies:\n  - {rank: 1, start_s: 1, duration_s: 5, premium_pct: 30, spike: true}\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-m", "sim", "serve", "--pairs", "5"]
    proc = subprocess.Popen([*args, "--futures-contracts", "7", "--futures-scenario", str(scenario)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        ready = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        assert set(ready) == {"ws", "rest", "futures_ws", "futures_rest"}
        assert ready["futures_ws"] == ready["ws"].removesuffix("/ws") + "/edge" and ready["futures_rest"] == ready["rest"]
        with urllib.request.urlopen(ready["rest"] + "/_sim/futures/state", timeout=5) as resp:  # noqa: S310 - loopback, from the ready line
            state = json.loads(resp.read())
        assert state["contracts"] == 7 and state["anomalies"][0]["premium_pct"] == 30
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait()
    off = subprocess.Popen([*args, "--futures-contracts", "0"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert set(json.loads(off.stdout.readline())) == {"ws", "rest"}  # type: ignore[union-attr]
    finally:
        off.kill()
        off.wait()
    scenario.write_text("futures_anomalies:\n  - {rank: 1, start_s: 1, duration_s: 5, premium_pct: 30, book: soft}\n")
    bad = subprocess.run([*args, "--futures-scenario", str(scenario)], cwd=REPO, capture_output=True, text=True, timeout=30, env=env)
    assert bad.returncode == 2 and "futures_anomalies[0].book" in bad.stderr and bad.stdout == ""
