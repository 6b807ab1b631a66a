"""The emulator's REST API: shapes, signing exactly as MEXC, orders, weights and bans."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from sim.rest_account import DEFAULT_API_KEY, DEFAULT_API_SECRET, sign
from sim.server import run_emulator


def test_signature_matches_the_documented_vectors() -> None:
    secret = "45d0b3c26f2644f19bfb98b07741b2f5"
    total = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=11&recvWindow=5000&timestamp=1644489390087"
    assert sign(secret, total) == "fd3e4e8543c5188531eb7279d68ae7d26a573d0fc5ab0d18eb692451654d837a"
    mixed = "symbol=BTCUSDT&side=BUY&type=LIMIT" + "quantity=1&price=11&recvWindow=5000&timestamp=1644489390087"
    assert sign(secret, mixed) == "d1a676610ceb39174c8039b3f548357994b2a34139a8addd33baadba65684592"


async def _signed(http: aiohttp.ClientSession, method: str, url: str, params: dict[str, Any], *, secret: str = DEFAULT_API_SECRET,
                  key: str | None = DEFAULT_API_KEY, ts_offset_ms: int = 0) -> tuple[int, Any]:  # fmt: skip
    params = {**params, "timestamp": int(time.time() * 1000) + ts_offset_ms}
    query = urlencode(params)
    query += "&signature=" + sign(secret, query)
    headers = {"X-MEXC-APIKEY": key} if key else {}
    async with http.request(method, f"{url}?{query}", headers=headers) as resp:
        return resp.status, await resp.json()


async def test_market_data_shapes_and_depth_version_axis() -> None:
    async with run_emulator(pairs=30, seed=9, rate=200) as emu, aiohttp.ClientSession() as http:
        base = emu.rest_url + "/api/v3"
        symbol = emu.market.symbols[0].symbol
        async with http.get(base + "/exchangeInfo") as r:
            info = await r.json()
        row = info["symbols"][0]
        for key in ("symbol", "status", "quoteAsset", "isSpotTradingAllowed", "quoteAmountPrecisionMarket", "orderTypes"):
            assert key in row
        assert {s["status"] for s in info["symbols"]} <= {"1", "2", "3"}
        async with http.get(base + "/defaultSymbols") as r:
            default = await r.json()
        assert default["code"] == 200 and symbol in default["data"]
        async with http.get(base + "/depth", params={"symbol": symbol, "limit": "5"}) as r:
            depth = await r.json()
        assert len(depth["bids"]) == 5 and float(depth["bids"][0][0]) < float(depth["asks"][0][0])
        assert depth["lastUpdateId"] == emu.market.depth_snapshot(symbol, 1)[0] or depth["lastUpdateId"] < emu.market.depth_snapshot(symbol, 1)[0]
        async with http.get(base + "/klines", params={"symbol": symbol, "interval": "5m", "limit": "72"}) as r:
            klines = await r.json()
        assert len(klines) == 72 and all(len(k) == 8 for k in klines)
        assert all(b[0] - a[0] == 300_000 for a, b in zip(klines, klines[1:], strict=False))
        async with http.get(base + "/klines", params={"symbol": symbol, "interval": "1h"}) as r:
            assert r.status == 400 and (await r.json()) == {"code": -1121, "msg": "Invalid interval."}
        async with http.get(base + "/ticker/24hr") as r:
            tickers = await r.json()
        assert all("quoteVolume" in t for t in tickers)
        async with http.get(base + "/depth", params={"symbol": "NOPEUSDT"}) as r:
            assert r.status == 400 and (await r.json())["code"] == -1121


async def test_signed_orders_and_every_refusal() -> None:
    async with run_emulator(pairs=60, seed=11, rate=300, usdt_balance=150.0) as emu, aiohttp.ClientSession() as http:
        url = emu.rest_url + "/api/v3/order"
        specs = emu.market.symbols
        good = next(s.symbol for s in specs if s.api_tradable and s.market_order_allowed and s.status == "1")
        order = {"symbol": good, "side": "BUY", "type": "MARKET", "quoteOrderQty": "100", "newClientOrderId": "sig1"}
        status, body = await _signed(http, "POST", url, order)
        assert status == 200 and body["symbol"] == good and body["orderListId"] == -1
        status, body = await _signed(http, "POST", url, order)
        assert status == 400 and body["code"] == -2010  # same client id never buys twice
        assert len(emu.rest.state()["orders"]) == 1
        status, body = await _signed(http, "GET", url, {"symbol": good, "origClientOrderId": "sig1"})
        assert status == 200 and body["status"] == "FILLED"
        status, body = await _signed(http, "GET", url, {"symbol": good, "origClientOrderId": "nope"})
        assert body["code"] == -2011
        status, body = await _signed(http, "POST", url, {**order, "newClientOrderId": "sig2"})
        assert body == {"code": 10101, "msg": "Insufficient balance"}
        status, body = await _signed(http, "POST", url, {**order, "quoteOrderQty": "1", "newClientOrderId": "sig3"})
        assert body["code"] == 30002
        status, body = await _signed(http, "POST", url, {**order, "newClientOrderId": "x"}, secret="wrong")
        assert status == 401 and body["code"] == 700002
        status, body = await _signed(http, "POST", url, {**order, "newClientOrderId": "x"}, ts_offset_ms=-10_000)
        assert body["code"] == 700003
        status, body = await _signed(http, "POST", url, {**order, "newClientOrderId": "x", "recvWindow": 60000})
        assert body["code"] == 700005
        status, body = await _signed(http, "POST", url, order, key=None)
        assert body == {"code": 400, "msg": "api key required"}
        status, body = await _signed(http, "POST", url, order, key="other")
        assert body["code"] == 10072
        not_api = [s.symbol for s in specs if not s.api_tradable and s.status == "1"]
        if not_api:
            status, body = await _signed(http, "POST", url, {**order, "symbol": not_api[0], "newClientOrderId": "y"})
            assert body == {"code": 10007, "msg": "symbol not support api"}
        no_market = [s.symbol for s in specs if s.api_tradable and not s.market_order_allowed and s.status == "1"]
        if no_market:
            status, body = await _signed(http, "POST", url, {**order, "symbol": no_market[0], "newClientOrderId": "z"})
            assert body["code"] == 30019
        status, body = await _signed(http, "GET", emu.rest_url + "/api/v3/account", {})
        usdt = next(b for b in body["balances"] if b["asset"] == "USDT")
        spent = float(emu.rest.state()["orders"][0]["cummulativeQuoteQty"])  # at most 100: fills are whole quantity steps
        assert 99 < spent <= 100 and float(usdt["free"]) == pytest.approx(150 - spent * 1.0005)  # plus the 0.05 % taker fee


async def test_fill_then_5xx_is_queryable_by_client_id() -> None:
    async with run_emulator(pairs=10, seed=2) as emu, aiohttp.ClientSession() as http:
        url = emu.rest_url + "/api/v3/order"
        symbol = emu.market.symbols[0].symbol
        await emu.inject("order_5xx_after_fill", status=503)
        status, _ = await _signed(http, "POST", url, {"symbol": symbol, "side": "BUY", "type": "MARKET", "quoteOrderQty": "20", "newClientOrderId": "u1"})
        assert status == 503
        status, body = await _signed(http, "GET", url, {"symbol": symbol, "origClientOrderId": "u1"})
        assert status == 200 and body["status"] == "FILLED"


async def test_weight_budget_gives_429_then_418_with_retry_after() -> None:
    async with run_emulator(pairs=5, weight_budget=20, ban_base_s=3) as emu, aiohttp.ClientSession() as http:
        url = emu.rest_url + "/api/v3/exchangeInfo"  # weight 10
        statuses = []
        for _ in range(12):
            async with http.get(url) as r:
                statuses.append((r.status, r.headers.get("Retry-After")))
        assert statuses[0][0] == statuses[1][0] == 200
        assert statuses[2][0] == 429 and int(statuses[2][1]) >= 1
        assert 418 in [s for s, _ in statuses] and all(ra for s, ra in statuses if s in (429, 418))
        async with http.get(emu.rest_url + "/api/v3/depth", params={"symbol": emu.market.symbols[0].symbol}) as r:
            assert r.status == 418  # a ban covers every endpoint
        assert emu.rest.state()["bans"]


async def test_rest_faults_are_observable() -> None:
    async with run_emulator(pairs=5) as emu, aiohttp.ClientSession() as http:
        await emu.inject("status", endpoint="/api/v3/depth", status=429, retry_after=7, count=1)
        await emu.inject("garbage", endpoint="/api/v3/ticker/24hr", count=1)
        await emu.inject("slow", endpoint="/api/v3/time", delay_s=0.3, count=1)
        async with http.get(emu.rest_url + "/api/v3/depth", params={"symbol": emu.market.symbols[0].symbol}) as r:
            assert r.status == 429 and r.headers["Retry-After"] == "7"
        async with http.get(emu.rest_url + "/api/v3/ticker/24hr") as r:
            assert r.status == 200 and "html" in (await r.text())
        t0 = time.monotonic()
        async with http.get(emu.rest_url + "/api/v3/time") as r:
            assert r.status == 200
        assert time.monotonic() - t0 >= 0.3
        assert emu.rest.state()["faults_fired"] == {"status": 1, "garbage": 1, "slow": 1}
        with pytest.raises(ValueError):
            await emu.inject("nonsense")
