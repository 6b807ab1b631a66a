"""Buy button against the emulator's signed REST API on loopback: paper, the safety gate,
never buying twice, unknown outcomes, rate limits, and the client's error handling."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from common.config import Config, config_from_mapping
from common.signal import Signal, make_signal_id
from sim.rest_server import DEFAULT_API_KEY, DEFAULT_API_SECRET
from sim.server import run_emulator
from store.history import Store
from trading.trader import Trader, client_order_id
from venues.mexc.client import MexcError, MexcRest, sign


def _config(rest_url: str, live: bool = True, secret: str = DEFAULT_API_SECRET, **trading: object) -> Config:
    mexc = {"rest_url": rest_url, "api_key": DEFAULT_API_KEY, "api_secret": secret} if live else {"rest_url": rest_url}
    return config_from_mapping(
        {"mexc": mexc, "telegram": {"allowed_ids": [1]}, "trading": {"live": live, "stake_usd": 100, **trading}}, environ={}
    )


def _signal(symbol: str, price: float, age_s: float = 0.0, n: int = 0) -> Signal:
    now = time.time_ns()
    t = 1_790_000_000_000 + n
    return Signal(make_signal_id(symbol, t, 0), symbol, "alpha1", t, now - int(age_s * 1e9), now, price, 0.8, {}, [], 0)


def _pick(emu: Any, **want: bool) -> str:
    for spec in emu.market.symbols:
        if spec.status == "1" and spec.quote == "USDT" and all(getattr(spec, k) == v for k, v in want.items()):
            return str(spec.symbol)
    raise AssertionError(f"the emulated market has no USDT pair with {want}")


def _ask(emu: Any, symbol: str) -> float:
    return float(emu.market.best_bid_ask(symbol)[2])


async def test_paper_buy_records_a_paper_order_at_a_fresh_price_and_says_so(tmp_path: Path) -> None:
    async with run_emulator(pairs=20, seed=11) as emu:
        symbol = _pick(emu, api_tradable=True)
        trader = Trader(_config(emu.rest_url, live=False), Store(tmp_path))
        sig = _signal(symbol, _ask(emu, symbol) * 0.9)  # the signal's price is not what a buy pays now
        result = await trader.buy(sig, 1)
        await trader.close()
        state = emu.rest.state()
    assert result.ok and result.mode == "paper" and result.message.startswith(f"paper buy: $100 of {symbol} at ")
    assert "(dry-run, no real order)" in result.message
    stored = trader.store.get_order(client_order_id(sig.signal_id))
    assert stored is not None and stored.mode == "paper" and stored.status == "FILLED"
    assert stored.price is not None and abs(stored.price / (sig.price / 0.9) - 1) < 0.01  # the fresh ask, not the signal price
    assert state["orders"] == [] and "/api/v3/account" not in state["requests"]  # no keys used, nothing sent
    assert trader.store.stats(0)["paper_orders"] == 1


async def test_live_buy_places_one_signed_order_even_when_pressed_twice(tmp_path: Path) -> None:
    async with run_emulator(pairs=20, seed=11) as emu:
        symbol = _pick(emu, api_tradable=True, market_order_allowed=True)
        trader = Trader(_config(emu.rest_url), Store(tmp_path))
        sig = _signal(symbol, _ask(emu, symbol))
        first, second = await asyncio.gather(trader.buy(sig, 1), trader.buy(sig, 1))
        third = await trader.buy(sig, 1)
        await trader.close()
        orders = emu.rest.state()["orders"]
        balance = emu.rest.state()["balances"]["USDT"]["free"]
    assert len(orders) == 1 and orders[0]["clientOrderId"] == client_order_id(sig.signal_id)
    assert orders[0]["type"] == "MARKET" and orders[0]["side"] == "BUY" and 99 < float(orders[0]["cummulativeQuoteQty"]) <= 100
    assert abs(balance - (1000 - float(orders[0]["cummulativeQuoteQty"]) * 1.0005)) < 1e-6  # what the fills spent + the 0.05 % fee
    assert first.ok and first.mode == "live" and first.message.startswith("bought $100 of " + symbol)
    assert "already ordered" in second.message and "already ordered" in third.message
    stored = trader.store.get_order(first.client_order_id)
    assert stored is not None and stored.status == "FILLED" and stored.exchange_order_id == orders[0]["orderId"]
    assert stored.qty is not None and stored.qty > 0 and stored.price is not None and stored.price > 0
    assert trader.store.stats(0)["live_orders"] == 1


def test_client_order_id_is_deterministic_short_and_safe() -> None:
    ids = {client_order_id(make_signal_id("A" * 24, 1_790_000_000_000 + i, 9)) for i in range(500)}
    assert len(ids) == 500
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,32}", cid) for cid in ids)
    assert client_order_id("PEPEUSDT-1790000000000-0") == client_order_id("PEPEUSDT-1790000000000-0")


async def test_every_refusal_is_explained_and_places_no_order(tmp_path: Path) -> None:
    async with run_emulator(pairs=60, seed=3, usdt_balance=150) as emu:
        good = _pick(emu, api_tradable=True, market_order_allowed=True)
        no_api = _pick(emu, api_tradable=False)
        no_market = _pick(emu, api_tradable=True, market_order_allowed=False)
        url = emu.rest_url
        cases: list[tuple[Config, Callable[[int], Signal], str]] = [
            (_config(url), lambda n: _signal(good, _ask(emu, good), age_s=120, n=n), "the signal is 120 s old"),
            (_config(url), lambda n: _signal(good, _ask(emu, good) / 1.2, n=n), "past the signal"),
            (_config(url), lambda n: _signal(good, _ask(emu, good) * 1.2, n=n), "below the signal"),
            (_config(url, stake_usd=2), lambda n: _signal(good, _ask(emu, good), n=n), "below the pair's minimum $5"),
            (_config(url, reserve_usdt=100), lambda n: _signal(good, _ask(emu, good), n=n), "below the reserve 100"),
            (_config(url, stake_usd=200), lambda n: _signal(good, _ask(emu, good), n=n), "insufficient balance"),
            (_config(url), lambda n: _signal(no_api, _ask(emu, no_api), n=n), "this pair can't be traded through the API"),
            (_config(url), lambda n: _signal(no_market, _ask(emu, no_market), n=n),
             "market orders through the API are disabled"),
            (_config(url), lambda n: _signal("NOSUCHUSDT", 1.0, n=n), "MEXC does not know this pair"),
        ]  # fmt: skip
        store = Store(tmp_path)
        for n, (config, make, expected) in enumerate(cases):
            trader = Trader(config, store)
            sig = make(n)
            result = await trader.buy(sig, 1)
            await trader.close()
            assert not result.ok and result.message.startswith("not bought: ") and expected in result.message, (expected, result.message)
            assert store.get_order(result.client_order_id).status in ("REFUSED", "REJECTED")  # type: ignore[union-attr]
        assert emu.rest.state()["orders"] == []
        assert store.stats(0)["live_orders"] == 0


async def test_a_refused_buy_may_be_pressed_again_once_the_cause_is_gone(tmp_path: Path) -> None:
    async with run_emulator(pairs=20, seed=11) as emu:
        symbol = _pick(emu, api_tradable=True, market_order_allowed=True)
        store = Store(tmp_path)
        sig = _signal(symbol, _ask(emu, symbol))
        refused = await Trader(_config(emu.rest_url, reserve_usdt=950), store).buy(sig, 1)
        trader = Trader(_config(emu.rest_url), store)
        bought = await trader.buy(sig, 1)
        await trader.close()
        assert not refused.ok and bought.ok and len(emu.rest.state()["orders"]) == 1


async def test_5xx_after_fill_is_reconciled_not_bought_twice(tmp_path: Path) -> None:
    async with run_emulator(pairs=20, seed=11) as emu:
        symbol = _pick(emu, api_tradable=True, market_order_allowed=True)
        await emu.inject("order_5xx_after_fill", status=503)
        trader = Trader(_config(emu.rest_url), Store(tmp_path))
        sig = _signal(symbol, _ask(emu, symbol))
        result = await trader.buy(sig, 1)
        again = await trader.buy(sig, 1)
        await trader.close()
        state = emu.rest.state()
    assert result.ok and "confirmed after an exchange error" in result.message
    assert "already ordered" in again.message
    assert len(state["orders"]) == 1 and state["requests"]["POST /api/v3/order"] == 1
    assert state["requests"]["GET /api/v3/order"] >= 1
    assert trader.store.get_order(result.client_order_id).status == "FILLED"  # type: ignore[union-attr]


async def test_5xx_before_the_order_exists_is_queried_then_sent_once_more(tmp_path: Path) -> None:
    async with run_emulator(pairs=20, seed=11) as emu:
        symbol = _pick(emu, api_tradable=True, market_order_allowed=True)
        await emu.inject("status", endpoint="POST /api/v3/order", status=502, count=1)
        trader = Trader(_config(emu.rest_url), Store(tmp_path))
        result = await trader.buy(_signal(symbol, _ask(emu, symbol)), 1)
        await trader.close()
        state = emu.rest.state()
    assert result.ok and len(state["orders"]) == 1
    assert state["requests"]["POST /api/v3/order"] == 2 and state["requests"]["GET /api/v3/order"] >= 1


async def test_unanswered_order_stays_unknown_and_a_later_press_checks_before_buying(tmp_path: Path) -> None:
    async with run_emulator(pairs=20, seed=11) as emu:
        symbol = _pick(emu, api_tradable=True, market_order_allowed=True)
        await emu.inject("order_5xx_after_fill", status=500)
        await emu.inject("status", endpoint="GET /api/v3/order", status=500, count=10)
        trader = Trader(_config(emu.rest_url), Store(tmp_path))
        sig = _signal(symbol, _ask(emu, symbol))
        unknown = await trader.buy(sig, 1)
        assert not unknown.ok and "outcome unknown" in unknown.message
        assert trader.store.get_order(unknown.client_order_id).status == "UNKNOWN"  # type: ignore[union-attr]
        emu.rest._faults.clear()  # MEXC answers again
        later = await trader.buy(sig, 1)
        await trader.close()
        state = emu.rest.state()
    assert later.ok and "confirmed" in later.message and len(state["orders"]) == 1
    assert state["requests"]["POST /api/v3/order"] == 1


async def test_rate_limit_is_reported_and_honoured(tmp_path: Path) -> None:
    async with run_emulator(pairs=20, seed=11) as emu:
        symbol = _pick(emu, api_tradable=True, market_order_allowed=True)
        await emu.inject("status", endpoint="/api/v3/ticker/bookTicker", status=429, retry_after=30, count=1)
        trader = Trader(_config(emu.rest_url), Store(tmp_path))
        result = await trader.buy(_signal(symbol, _ask(emu, symbol)), 1)
        before = sum(emu.rest.state()["requests"].values())
        again = await trader.buy(_signal(symbol, _ask(emu, symbol), n=9), 1)
        await trader.close()
        assert not result.ok and "wait 30 s" in result.message
        assert not again.ok and re.search(r"wait (29|30) s", again.message)
        assert sum(emu.rest.state()["requests"].values()) == before  # waits, does not hammer
        assert emu.rest.state()["orders"] == []


async def test_bad_keys_are_explained_and_never_leak(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret = "wrong-secret-0123456789abcdef"
    caplog.set_level(logging.DEBUG)
    async with run_emulator(pairs=20, seed=11) as emu:
        symbol = _pick(emu, api_tradable=True, market_order_allowed=True)
        trader = Trader(_config(emu.rest_url, secret=secret), Store(tmp_path))
        result = await trader.buy(_signal(symbol, _ask(emu, symbol)), 1)
        await trader.close()
        assert emu.rest.state()["orders"] == []
    assert not result.ok and "signature was refused" in result.message
    everything = result.message + caplog.text + repr(trader.rest) + repr(result)
    assert secret not in everything and DEFAULT_API_KEY not in everything


async def test_clock_skew_is_corrected_once_from_server_time() -> None:
    async with run_emulator(pairs=20, seed=11) as emu:
        rest = MexcRest(emu.rest_url, DEFAULT_API_KEY, DEFAULT_API_SECRET, clock_ms=lambda: int(time.time() * 1000) - 20_000)
        account = await rest.signed("GET", "/api/v3/account")
        await rest.close()
        assert account["accountType"] == "SPOT"
        assert emu.rest.state()["requests"]["/api/v3/account"] == 2 and emu.rest.state()["requests"]["/api/v3/time"] == 1


def test_signature_matches_the_documented_test_vectors() -> None:
    secret = "45d0b3c26f2644f19bfb98b07741b2f5"
    total = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=11&recvWindow=5000&timestamp=1644489390087"
    assert sign(secret, total) == "fd3e4e8543c5188531eb7279d68ae7d26a573d0fc5ab0d18eb692451654d837a"
    mixed = "symbol=BTCUSDT&side=BUY&type=LIMIT" + "quantity=1&price=11&recvWindow=5000&timestamp=1644489390087"
    assert sign(secret, mixed) == "d1a676610ceb39174c8039b3f548357994b2a34139a8addd33baadba65684592"


@asynccontextmanager
async def _canned(status: int, body: bytes, headers: dict[str, str] | None = None) -> AsyncIterator[tuple[str, list[int]]]:
    """A loopback server answering every request with one canned response; yields (url, hit counter)."""
    hits: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(1)
        return web.Response(status=status, body=body, headers=headers, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", hits
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("status", "body", "code", "words", "unknown"),
    [
        (400, b'{"msg":"api market order is disabled","code":30019,"_extend":null}', 30019, "market orders through the API", False),
        (400, b'{"code":10007,"msg":"symbol not support api"}', 10007, "can't be traded through the API", False),
        (400, b'{"code":10101,"msg":"Insufficient balance"}', 10101, "insufficient balance", False),
        (400, b'{"code":30002,"msg":"Minimum transaction volume"}', 30002, "below the pair's minimum", False),
        (200, b'{"code":99999,"msg":"something new"}', 99999, "MEXC refused: something new (code 99999)", False),
        (503, b'{"code":503,"msg":"busy"}', 503, "outcome is unknown", True),
        (200, b"<html>upstream hiccup</html>", None, "not JSON", True),
        (400, b"<html>bad gateway</html>", None, "not JSON", False),
    ],
)
async def test_error_bodies_become_one_plain_error(status: int, body: bytes, code: int | None, words: str, unknown: bool) -> None:
    async with _canned(status, body) as (url, _):
        rest = MexcRest(url, DEFAULT_API_KEY, DEFAULT_API_SECRET)
        with pytest.raises(MexcError) as info:
            await rest.signed("POST", "/api/v3/order", {"symbol": "AUSDT"})
        await rest.close()
    assert info.value.code == code and words in info.value.message and info.value.outcome_unknown is unknown
    assert DEFAULT_API_SECRET not in str(info.value)


async def test_418_ban_stops_every_call_for_retry_after() -> None:
    async with _canned(418, b'{"code":418,"msg":"IP banned"}', {"Retry-After": "120"}) as (url, hits):
        rest = MexcRest(url)
        for path in ("/api/v3/ticker/price", "/api/v3/exchangeInfo", "/api/v3/ticker/price"):
            with pytest.raises(MexcError) as info:
                await rest.get(path, {"symbol": "AUSDT"})
            assert info.value.rate_limited and not info.value.outcome_unknown
        await rest.close()
    assert len(hits) == 1 and re.search(r"wait 1(19|20) s", info.value.message)


async def test_no_answer_is_an_unknown_outcome_not_a_crash() -> None:
    async with _canned(200, b"{}") as (url, _):
        pass  # the server is gone: connection refused
    rest = MexcRest(url, DEFAULT_API_KEY, DEFAULT_API_SECRET, timeout_s=2.0)
    with pytest.raises(MexcError) as info:
        await rest.signed("POST", "/api/v3/order", {"symbol": "AUSDT"})
    await rest.close()
    assert info.value.status == 0 and info.value.outcome_unknown and "no answer from MEXC" in info.value.message
