"""The emulator's private spot endpoints: fills walk its book with fees, partial fills, LIMIT orders
that rest, openOrders, cancel, myTrades, precision refusals and HMAC on every one of them."""

from __future__ import annotations

import math

import aiohttp
import pytest

from sim.server import run_emulator
from tests.test_sim_rest import _signed


async def test_fills_fees_limit_orders_cancel_and_my_trades() -> None:
    async with run_emulator(pairs=30, seed=9, usdt_balance=10_000.0) as emu, aiohttp.ClientSession() as http:
        spec = next(s for s in emu.market.symbols if s.status == "1" and s.quote == "USDT" and s.api_tradable and s.market_order_allowed)
        sym, api = spec.symbol, emu.rest_url + "/api/v3"
        _, bids, asks = emu.market.depth_snapshot(sym, 100)
        big = sum(p * q for p, q in asks[:3]) * 1.01  # spends past the best three ask levels
        quote = f"{min(big, 9000):.2f}"
        status, order = await _signed(http, "POST", api + "/order", {"symbol": sym, "side": "BUY", "type": "MARKET",
                                                                      "quoteOrderQty": quote, "newClientOrderId": "b1"})  # fmt: skip
        assert status == 200
        status, trades = await _signed(http, "GET", api + "/myTrades", {"symbol": sym, "orderId": order["orderId"]})
        assert status == 200 and len(trades) >= 2 and len({t["price"] for t in trades}) >= 2  # walked several levels
        for t in trades:
            assert t["isBuyer"] is True and t["commissionAsset"] == "USDT" and t["clientOrderId"] == "b1"
            assert math.isclose(float(t["commission"]), float(t["price"]) * float(t["qty"]) * 0.0005, rel_tol=1e-6)
        held = sum(float(t["qty"]) for t in trades)
        assert math.isclose(emu.rest.account.balances[spec.base][0], held, rel_tol=1e-9)
        qty = f"{held:.{spec.qty_decimals}f}"
        status, limit = await _signed(http, "POST", api + "/order", {"symbol": sym, "side": "SELL", "type": "LIMIT", "quantity": qty,
                                                                      "price": f"{asks[0][0] * 2:.{spec.price_decimals}f}"})  # fmt: skip
        assert status == 200
        status, limit = await _signed(http, "GET", api + "/order", {"symbol": sym, "orderId": limit["orderId"]})
        assert limit["status"] == "NEW" and float(limit["executedQty"]) == 0  # nothing crosses twice the ask: it rests
        assert math.isclose(emu.rest.account.balances[spec.base][1], held, rel_tol=1e-9)  # locked while it rests
        status, open_orders = await _signed(http, "GET", api + "/openOrders", {"symbol": sym})
        assert limit["orderId"] in [o["orderId"] for o in open_orders]
        status, cancelled = await _signed(http, "DELETE", api + "/order", {"symbol": sym, "orderId": limit["orderId"]})
        assert status == 200 and cancelled["status"] == "CANCELED"
        status, again = await _signed(http, "DELETE", api + "/order", {"symbol": sym, "orderId": limit["orderId"]})
        assert status == 400 and again["code"] == -2011
        status, open_orders = await _signed(http, "GET", api + "/openOrders", {"symbol": sym})
        assert limit["orderId"] not in [o["orderId"] for o in open_orders]
        assert abs(emu.rest.account.balances[spec.base][1]) < 1e-9  # the cancel gave it back
        status, part = await _signed(http, "POST", api + "/order", {"symbol": sym, "side": "SELL", "type": "LIMIT", "quantity": qty,
                                                                     "price": f"{bids[0][0]:.{spec.price_decimals}f}",
                                                                     "newClientOrderId": "s1"})  # fmt: skip
        status, part = await _signed(http, "GET", api + "/order", {"symbol": sym, "origClientOrderId": "s1"})
        assert part["status"] in ("FILLED", "PARTIALLY_FILLED") and float(part["executedQty"]) > 0
        too_fine = f"{int(held)}." + "0" * spec.qty_decimals + "1"  # one decimal more than the pair allows
        status, fine = await _signed(http, "POST", api + "/order", {"symbol": sym, "side": "SELL", "type": "MARKET", "quantity": too_fine})
        assert status == 400 and fine["code"] == 30002 and "decimals" in fine["msg"]
        status, too_much = await _signed(http, "POST", api + "/order", {"symbol": sym, "side": "SELL", "type": "MARKET",
                                                                         "quantity": f"{held * 3:.{spec.qty_decimals}f}"})  # fmt: skip
        assert status == 400 and too_much["code"] == 10101


@pytest.mark.parametrize("path,method", [("/myTrades", "GET"), ("/openOrders", "GET"), ("/order", "DELETE")])
async def test_every_private_endpoint_checks_the_signature(path: str, method: str) -> None:
    async with run_emulator(pairs=5, seed=9) as emu, aiohttp.ClientSession() as http:
        sym = emu.market.symbols[0].symbol
        status, body = await _signed(http, method, emu.rest_url + "/api/v3" + path, {"symbol": sym, "orderId": "x"}, secret="wrong")
        assert status == 401 and body["code"] == 700002
