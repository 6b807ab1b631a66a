"""The paced REST client stays inside MEXC's weight budget and waits out 429/418."""

from __future__ import annotations

import asyncio
import time

import pytest

from sim.server import run_emulator
from venues.mexc.market import fetch_universe
from venues.mexc.rest import URGENT, PacedRest, RestError, host_of


async def test_budget_is_never_exceeded_even_under_a_burst() -> None:
    async with run_emulator(pairs=5, weight_budget=30) as emu:
        rest = PacedRest(emu.rest_url, budget_per_10s=30)
        symbol = emu.market.symbols[0].symbol
        # 40 depth requests (weight 1) against a 30/10 s budget: the client paces; the exchange never says 429.
        t0 = time.monotonic()
        results = await asyncio.wait_for(asyncio.gather(*(rest.get("/api/v3/depth", {"symbol": symbol, "limit": 5}) for _ in range(40))), 30)
        await rest.close()
        assert len(results) == 40 and all("lastUpdateId" in r for r in results)
        assert time.monotonic() - t0 >= 9.0  # the last 10 had to wait for the window
        assert emu.rest.state()["bans"] == {}


async def test_429_and_418_pause_the_endpoint_for_retry_after() -> None:
    async with run_emulator(pairs=5) as emu:
        rest = PacedRest(emu.rest_url)
        symbol = emu.market.symbols[0].symbol
        await emu.inject("status", endpoint="/api/v3/depth", status=429, retry_after=2, count=1)
        with pytest.raises(RestError) as info:
            await rest.get("/api/v3/depth", {"symbol": symbol}, priority=URGENT)
        assert info.value.status == 429 and info.value.retry_after == 2
        t0 = time.monotonic()
        await rest.get("/api/v3/depth", {"symbol": symbol})
        assert time.monotonic() - t0 >= 1.9  # waited, did not hammer
        await emu.inject("status", endpoint="/api/v3/klines", status=418, retry_after=1, count=1)
        with pytest.raises(RestError):
            await rest.get("/api/v3/klines", {"symbol": symbol, "interval": "5m"})
        t0 = time.monotonic()
        await rest.get("/api/v3/time")  # a ban covers every endpoint
        assert time.monotonic() - t0 >= 0.9
        await emu.inject("garbage", endpoint="/api/v3/time", count=1)
        with pytest.raises(RestError, match="not JSON"):
            await rest.get("/api/v3/time")
        await rest.close()


async def test_a_rest_error_names_the_host_but_never_the_query() -> None:
    """Issue #24 item 2: "scout failed" must say which host failed, without leaking a signed query."""
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rest = PacedRest(f"http://user:pw@127.0.0.1:{port}/", timeout_s=2.0)
    with pytest.raises(RestError) as info:
        await rest.get("/api/v3/depth", {"symbol": "AUSDT", "signature": "deadbeef", "apiKey": "k3y"})
    await rest.close()
    text = str(info.value)
    assert info.value.host == f"127.0.0.1:{port}" and f"from 127.0.0.1:{port}" in text and "/api/v3/depth" in text
    assert "deadbeef" not in text and "k3y" not in text and "pw" not in text and "AUSDT" not in text


async def test_a_garbage_universe_names_the_host_that_sent_it() -> None:
    from aiohttp import web

    async def garbage(_: web.Request) -> web.Response:
        return web.json_response({"nope": 1, "data": []})

    app = web.Application()
    app.router.add_get("/api/v3/exchangeInfo", garbage)
    app.router.add_get("/api/v3/defaultSymbols", garbage)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rest = PacedRest(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(RestError, match="exchangeInfo") as info:
            await fetch_universe(rest)
    finally:
        await rest.close()
        await runner.cleanup()
    assert f"from 127.0.0.1:{port}" in str(info.value)


def test_host_of_keeps_only_host_and_port() -> None:
    assert host_of("https://exchange.example:8443/api/v3?signature=abc") == "exchange.example:8443"
    assert host_of("http://k:s@127.0.0.1:8080/x?y=1") == "127.0.0.1:8080"
    assert host_of("http://[::1]:9/") == "[::1]:9"
    assert host_of("http://[bad") == "?"
