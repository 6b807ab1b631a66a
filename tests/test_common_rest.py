"""The paced REST client stays inside MEXC's weight budget and waits out 429/418."""

from __future__ import annotations

import asyncio
import time

import pytest

from common.rest import URGENT, PacedRest, RestError
from sim.server import run_emulator


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
