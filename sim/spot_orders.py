"""The emulator's spot orders: fills against its own book, fees, partial fills, myTrades, cancel.

Why fills walk the book: a client that computes PnL from fills must see what a real market order
gets on a thin pair, several prices and a fee per fill, not one price at the touch. The book is
the emulator's generated one (Market.depth_snapshot); our orders do not consume it (the market
moves on by its own script), which is enough for a single trader's small orders.

Behaviour where MEXC is UNCONFIRMED, chosen here and kept stable for tests:
- fee: takerCommission (0.05 %) in the quote asset on every fill; on a buy it is charged on top
  of the quote spent, on a sell it is taken from the proceeds;
- a quantity or quoteOrderQty with more decimals than the pair allows: 400 {"code": 30002};
  below the minimum order value: 30002; above the maximum: 30003; selling more than is free:
  10101 "Insufficient balance";
- a LIMIT order fills what crosses at once and rests (NEW / PARTIALLY_FILLED) for the rest; a
  resting order never fills later (the emulator does not match its book against it), and what it
  could still take is locked (account "locked") until it is cancelled;
- a market order that the top 100 levels cannot fill completely fills what they hold and ends
  PARTIALLY_CANCELED with the executed part (how MEXC names that case is UNCONFIRMED); the rest
  is not spent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

TAKER_FEE = 0.0005
MAX_TRADES_LIMIT = 100


class OrderError(Exception):
    """An order MEXC would refuse: HTTP status, MEXC code, message (sim/rest_account.py raises it as ApiError)."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


def _decimals(text: str) -> int:
    try:
        exponent = Decimal(text).normalize().as_tuple().exponent
    except InvalidOperation:
        return 99
    return max(0, -exponent) if isinstance(exponent, int) else 99


def _walk(levels: list[tuple[float, float]], qty: float | None, quote: float | None, limit: float | None, buy: bool) -> list[tuple[float, float]]:
    """(price, qty) pieces taking levels best first until qty (or quote) is used up or the limit price is passed."""
    pieces = []
    for price, size in levels:
        if limit is not None and ((buy and price > limit) or (not buy and price < limit)):
            break
        if qty is not None:
            take = min(size, qty)
            qty -= take
        else:
            assert quote is not None
            take = min(size, quote / price)
            quote -= take * price
        if take > 0:
            pieces.append((price, take))
        if (qty is not None and qty <= 1e-15) or (quote is not None and quote <= 1e-12):
            break
    return pieces


class SpotOrders:
    """Orders, trades and the balances they move, for the emulator's one account."""

    def __init__(self, market: Any, balances: dict[str, list[float]], clock_ms: Callable[[], int]) -> None:
        self.market = market
        self.balances = balances
        self.clock_ms = clock_ms
        self.orders: list[dict[str, Any]] = []
        self.trades: list[dict[str, Any]] = []
        self.by_client_id: dict[str, dict[str, Any]] = {}
        self._seq = 0
        self._trade_seq = 0
        self._locked: dict[str, tuple[str, float]] = {}  # resting order id -> (asset, amount locked)

    def _bal(self, asset: str) -> list[float]:
        return self.balances.setdefault(asset, [0.0, 0.0])

    def place(self, spec: Any, params: dict[str, str]) -> dict[str, Any]:
        symbol, side, kind = spec.symbol, params.get("side", "").upper(), params.get("type", "").upper()
        client_id = params.get("newClientOrderId") or ""
        if client_id and client_id in self.by_client_id:
            raise OrderError(400, -2010, "Duplicate order sent.")
        qty_text, quote_text, price_text = params.get("quantity"), params.get("quoteOrderQty"), params.get("price")
        try:
            qty = float(qty_text) if qty_text else None
            quote = float(quote_text) if quote_text else None
            limit = float(price_text) if price_text else None
        except ValueError:
            raise OrderError(400, 33333, "Parameter error: quantity/quoteOrderQty/price") from None
        if kind == "LIMIT" and (qty is None or limit is None):
            raise OrderError(400, 44444, "Parameter null or invalid: quantity/price")
        if kind == "MARKET" and qty is None and quote is None:
            raise OrderError(400, 44444, "Parameter null or invalid: quantity/quoteOrderQty")
        if qty_text and _decimals(qty_text) > spec.qty_decimals:
            raise OrderError(400, 30002, f"quantity scale is invalid: at most {spec.qty_decimals} decimals")
        if quote_text and _decimals(quote_text) > spec.price_decimals:
            raise OrderError(400, 30002, f"quoteOrderQty scale is invalid: at most {spec.price_decimals} decimals")
        if price_text and _decimals(price_text) > spec.price_decimals:
            raise OrderError(400, 30002, f"price scale is invalid: at most {spec.price_decimals} decimals")
        bid, _, ask, _ = self.market.best_bid_ask(symbol)
        value = quote if quote is not None else (qty or 0.0) * (limit if limit is not None else (ask if side == "BUY" else bid))
        minimum = spec.min_market_quote if kind == "MARKET" else 1.0
        if value < minimum:
            raise OrderError(400, 30002, f"Minimum transaction volume cannot be less than: {minimum:g}{spec.quote}")
        if value > (100000 if kind == "MARKET" else 2000000):
            raise OrderError(400, 30003, "Maximum transaction volume cannot be more than the pair's maximum")
        quote_bal, base_bal = self._bal(spec.quote), self._bal(spec.base)
        if side == "BUY" and quote_bal[0] < value * (1 + TAKER_FEE):
            raise OrderError(400, 10101, "Insufficient balance")
        if side == "SELL" and base_bal[0] < (qty or 0.0) - 1e-12:
            raise OrderError(400, 10101, "Insufficient balance")
        _, bids, asks = self.market.depth_snapshot(symbol, 100)
        step = 10.0 ** -spec.qty_decimals  # a fill's quantity is whole steps, as myTrades and the balance show it
        raw = _walk(asks if side == "BUY" else bids, qty if quote is None else None, quote, limit, side == "BUY")
        raw_qty, raw_quote = sum(q for _, q in raw), sum(p * q for p, q in raw)
        full = (qty is not None and raw_qty >= qty * (1 - 1e-9)) or (quote is not None and raw_quote >= quote * (1 - 1e-9))
        pieces = [(p, float(f"{math.floor(q / step + 1e-9) * step:.{spec.qty_decimals}f}")) for p, q in raw]
        pieces = [(p, q) for p, q in pieces if q > 0]
        self._seq += 1
        order_id = f"C02__{self._seq:012d}"
        now = self.clock_ms()
        done_qty = done_quote = 0.0
        for price, take in pieces:
            fee = take * price * TAKER_FEE
            if side == "BUY":
                quote_bal[0] -= take * price + fee
                base_bal[0] += take
            else:
                base_bal[0] -= take
                quote_bal[0] += take * price - fee
            done_qty += take
            done_quote += take * price
            self._trade_seq += 1
            self.trades.append({"symbol": symbol, "id": f"T{self._trade_seq:012d}", "orderId": order_id, "orderListId": -1,
                                "price": self.market.fmt_price(symbol, price), "qty": self.market.fmt_qty(symbol, take),
                                "quoteQty": f"{take * price:.8f}", "commission": f"{fee:.10f}", "commissionAsset": spec.quote,
                                "time": now, "isBuyerMaker": side == "SELL", "isBestMatch": True, "isBuyer": side == "BUY",
                                "isMaker": False, "isSelfTrade": False, "clientOrderId": client_id})  # fmt: skip
        orig = qty if qty is not None else done_qty
        if kind == "LIMIT":
            status = "FILLED" if full else ("PARTIALLY_FILLED" if done_qty else "NEW")
        else:
            status = "FILLED" if full else ("PARTIALLY_CANCELED" if done_qty else "CANCELED")
        order = {"symbol": symbol, "orderId": order_id, "orderListId": -1, "clientOrderId": client_id,
                 "price": price_text or self.market.fmt_price(symbol, done_quote / done_qty if done_qty else 0.0),
                 "origQty": self.market.fmt_qty(symbol, orig), "executedQty": self.market.fmt_qty(symbol, done_qty),
                 "cummulativeQuoteQty": f"{done_quote:.8f}", "status": status, "timeInForce": None, "type": kind, "side": side,
                 "stopPrice": None, "icebergQty": None, "time": now, "updateTime": now, "isWorking": True,
                 "origQuoteOrderQty": quote_text or "", "transactTime": now}  # fmt: skip
        if kind == "LIMIT" and status != "FILLED" and limit is not None:  # the resting rest is locked until cancelled
            rest = max(0.0, orig - done_qty)
            asset, amount = (spec.base, rest) if side == "SELL" else (spec.quote, rest * limit * (1 + TAKER_FEE))
            bal = self._bal(asset)
            bal[0], bal[1] = bal[0] - amount, bal[1] + amount
            self._locked[order_id] = (asset, amount)
        self.orders.append(order)
        if client_id:
            self.by_client_id[client_id] = order
        return order

    def find(self, params: dict[str, str]) -> dict[str, Any]:
        """An earlier order by origClientOrderId or orderId (and symbol), else MEXC's -2011."""
        order = None
        if params.get("origClientOrderId"):
            order = self.by_client_id.get(params["origClientOrderId"])
        elif params.get("orderId"):
            order = next((o for o in self.orders if o["orderId"] == params["orderId"]), None)
        if order is None or order["symbol"] != params.get("symbol", order["symbol"]):
            raise OrderError(400, -2011, "Unknown order sent.")
        return order

    def cancel(self, params: dict[str, str]) -> dict[str, Any]:
        """Cancel a resting order; a finished one answers -2011 like an unknown one."""
        order = self.find(params)
        if order["status"] not in ("NEW", "PARTIALLY_FILLED"):
            raise OrderError(400, -2011, "Unknown order sent.")
        order["status"] = "PARTIALLY_CANCELED" if float(order["executedQty"]) > 0 else "CANCELED"
        asset, amount = self._locked.pop(order["orderId"], ("", 0.0))
        if asset:
            bal = self._bal(asset)
            bal[0], bal[1] = bal[0] + amount, bal[1] - amount
        order["updateTime"] = self.clock_ms()
        return {k: order[k] for k in ("symbol", "orderId", "clientOrderId", "price", "origQty", "executedQty",
                                      "cummulativeQuoteQty", "status", "type", "side")}  # fmt: skip

    def open_orders(self, symbol: str) -> list[dict[str, Any]]:
        return [o for o in self.orders if o["symbol"] == symbol and o["status"] in ("NEW", "PARTIALLY_FILLED")]

    def my_trades(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """Trades of symbol, filtered by orderId / startTime / endTime, oldest first, at most limit (max 100)."""
        try:
            limit = min(int(params.get("limit", "100")), MAX_TRADES_LIMIT)
            start, end = int(params.get("startTime", "0")), int(params.get("endTime", str(2**62)))
        except ValueError:
            raise OrderError(400, 33333, "Parameter error: limit/startTime/endTime") from None
        rows = [t for t in self.trades if t["symbol"] == params.get("symbol") and start <= t["time"] <= end
                and (not params.get("orderId") or t["orderId"] == params["orderId"])]  # fmt: skip
        return rows[:limit] if params.get("startTime") else rows[-limit:]
