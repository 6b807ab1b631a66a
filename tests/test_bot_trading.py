"""Live and paper buys against the emulator's signed REST API: the safety gate and idempotency."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pyarrow.parquet as pq

from bot.storage import Store
from bot.trading import Trader, client_order_id
from common.config import Config, config_from_mapping
from common.signal import Signal, make_signal_id
from sim.rest_server import DEFAULT_API_KEY, DEFAULT_API_SECRET
from sim.server import run_emulator


def _config(rest_url: str, **trading: object) -> Config:
    return config_from_mapping(
        {"mexc": {"rest_url": rest_url, "api_key": DEFAULT_API_KEY, "api_secret": DEFAULT_API_SECRET},
         "telegram": {"allowed_ids": [1]}, "trading": {"live": True, "stake_usd": 100, **trading}},
        environ={},
    )  # fmt: skip


def _signal(symbol: str, price: float, age_s: float = 0.0, n: int = 0) -> Signal:
    now = time.time_ns()
    t = 1_790_000_000_000 + n
    return Signal(make_signal_id(symbol, t, 0), symbol, "alpha1", t, now - int(age_s * 1e9), now, price, 0.8, {}, [], 0)


def _pick(emu, **want: bool) -> str:  # type: ignore[no-untyped-def]
    for spec in emu.market.symbols:
        if spec.status == "1" and all(getattr(spec, k) == v for k, v in want.items()):
            return spec.symbol
    raise AssertionError(f"no symbol with {want}")


async def test_live_buy_places_one_signed_order_even_when_pressed_twice(tmp_path: Path) -> None:
    async with run_emulator(pairs=60, seed=11) as emu:
        symbol = _pick(emu, api_tradable=True, market_order_allowed=True)
        trader = Trader(_config(emu.rest_url), Store(tmp_path))
        sig = _signal(symbol, emu.market.last_price(symbol))
        first, second = await asyncio.gather(trader.buy(sig, 1), trader.buy(sig, 1))
        await trader.close()
        orders = emu.rest.state()["orders"]
        assert len(orders) == 1 and orders[0]["clientOrderId"] == client_order_id(sig.signal_id)
        assert first.ok and first.mode == "live" and "bought $100" in first.message
        assert "already ordered" in second.message
        assert trader.store.get_order(first.client_order_id).status == "FILLED"


async def test_every_refusal_is_explained_and_places_no_order(tmp_path: Path) -> None:
    async with run_emulator(pairs=200, seed=11, usdt_balance=150) as emu:  # 200 pairs include non-API and no-market pairs
        good = _pick(emu, api_tradable=True, market_order_allowed=True)
        price = emu.market.last_price(good)
        cases = [
            (_config(emu.rest_url), _signal(good, price, age_s=120, n=1), "the signal is 120 s old"),
            (_config(emu.rest_url), _signal(good, price / 1.10, n=2), "the price ran 10.0% past the signal"),
            (_config(emu.rest_url, stake_usd=2), _signal(good, price, n=3), "below the pair's minimum $5"),
            (_config(emu.rest_url, reserve_usdt=100), _signal(good, price, n=4), "below the reserve 100"),
            (_config(emu.rest_url), _signal(_pick(emu, api_tradable=False), 1.0, n=5), "can't be traded through the API"),
        ]
        for config, sig, expected in cases:
            trader = Trader(config, Store(tmp_path))
            if sig.symbol != good:
                sig.price = emu.market.last_price(sig.symbol)
            result = await trader.buy(sig, 1)
            await trader.close()
            assert not result.ok and expected in result.message, (expected, result.message)
        no_market = [s.symbol for s in emu.market.symbols if s.status == "1" and s.api_tradable and not s.market_order_allowed]
        assert no_market
        if no_market:
            trader = Trader(_config(emu.rest_url), Store(tmp_path))
            result = await trader.buy(_signal(no_market[0], emu.market.last_price(no_market[0]), n=6), 1)
            await trader.close()
            assert not result.ok and "market orders through the API are disabled" in result.message
        assert emu.rest.state()["orders"] == []


async def test_5xx_after_fill_is_reconciled_not_bought_twice(tmp_path: Path) -> None:
    async with run_emulator(pairs=20, seed=11) as emu:
        symbol = _pick(emu, api_tradable=True, market_order_allowed=True)
        await emu.inject("order_5xx_after_fill", status=503)
        trader = Trader(_config(emu.rest_url), Store(tmp_path))
        sig = _signal(symbol, emu.market.last_price(symbol))
        result = await trader.buy(sig, 1)
        again = await trader.buy(sig, 1)
        await trader.close()
        assert result.ok and "confirmed after an exchange error" in result.message
        assert "already ordered" in again.message
        assert len(emu.rest.state()["orders"]) == 1
        assert emu.rest.state()["requests"]["GET /api/v3/order"] >= 1


async def test_rate_limit_is_reported_and_honoured(tmp_path: Path) -> None:
    async with run_emulator(pairs=20, seed=11) as emu:
        symbol = _pick(emu, api_tradable=True, market_order_allowed=True)
        await emu.inject("status", endpoint="/api/v3/ticker/price", status=429, retry_after=30, count=1)
        trader = Trader(_config(emu.rest_url), Store(tmp_path))
        result = await trader.buy(_signal(symbol, emu.market.last_price(symbol)), 1)
        before = sum(emu.rest.state()["requests"].values())
        again = await trader.buy(_signal(symbol, emu.market.last_price(symbol), n=9), 1)
        await trader.close()
        assert not result.ok and "wait 30 s" in result.message
        assert not again.ok and sum(emu.rest.state()["requests"].values()) == before  # waits, does not hammer


async def test_store_mirrors_signals_to_monthly_parquet_atomically(tmp_path: Path) -> None:
    store = Store(tmp_path)
    sig = _signal("AAAUSDT", 1.0)
    assert store.add_signal(sig) and not store.add_signal(sig)
    path = store.mirror_parquet(time.strftime("%Y%m", time.gmtime(sig.exchange_time_ms / 1000)))
    table = pq.read_table(path)
    assert table.column("signal_id").to_pylist() == [sig.signal_id]
    assert not list(path.parent.glob("*.tmp"))
