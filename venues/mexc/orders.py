"""The MEXC spot calls trading needs: prices, the book, balances, market orders, order queries, myTrades.

Why here and not in trading/: the paths, parameter names (quoteOrderQty, newClientOrderId,
origClientOrderId), the answers' field names and the codes that mean "MEXC does not know this pair"
are MEXC's. trading/ decides when to buy and how to stay idempotent; it gets plain values from
here and never reads a MEXC body. Every function raises only MexcError (and RuleError, from
venues/mexc/rules.py, for an order no rounding can make valid).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from venues.mexc.client import MexcError, MexcRest
from venues.mexc.rules import OrderShape, RulesCache, SymbolRules, send_shaped, shape_market_buy, shape_market_sell


@dataclass(frozen=True)
class OrderState:
    """A queried order: MEXC's status word, its order id, and the fill (None when nothing filled)."""

    status: str
    order_id: str | None
    executed_qty: float | None
    executed_quote: float | None


def to_float(value: Any) -> float | None:
    """A finite float from a MEXC number field (they arrive as strings), else None."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


async def market_buy_price(rest: MexcRest, symbol: str) -> float:
    """What a market buy would pay now: the best ask, else the last price."""
    try:
        data = await rest.get("/api/v3/ticker/bookTicker", {"symbol": symbol})
        ask = to_float(data.get("askPrice")) if isinstance(data, dict) else None
        if ask is not None and ask > 0:
            return ask
    except MexcError as exc:
        if exc.rate_limited:
            raise
    data = await rest.get("/api/v3/ticker/price", {"symbol": symbol})
    price = to_float(data.get("price")) if isinstance(data, dict) else None
    if price is None or price <= 0:
        raise MexcError(502, None, "MEXC sent a price we cannot read", outcome_unknown=False)
    return price


MINUTE_MS = 60_000


async def minute_open(rest: MexcRest, symbol: str, time_ms: int) -> float | None:
    """The open of symbol's 1-minute kline that contains time_ms (GET /api/v3/klines); None when MEXC has no such candle.

    Only the candle whose open time is that minute's start counts: a neighbour MEXC might send
    instead is another minute's price. MexcError when the call fails or the answer is not klines.
    """
    start = time_ms - time_ms % MINUTE_MS
    data = await rest.get("/api/v3/klines", {"symbol": symbol, "interval": "1m", "startTime": start, "endTime": start + MINUTE_MS - 1,
                                             "limit": 1})  # fmt: skip
    if not isinstance(data, list):
        raise MexcError(502, None, "MEXC sent klines we cannot read", outcome_unknown=False)
    for row in data:
        if isinstance(row, list) and len(row) >= 2 and to_float(row[0]) == start:
            price = to_float(row[1])
            return price if price is not None and price > 0 else None
    return None


async def api_symbols(rest: MexcRest) -> frozenset[str]:
    """defaultSymbols: the pairs MEXC lets an API key trade."""
    data = await rest.get("/api/v3/defaultSymbols")
    names = data.get("data") if isinstance(data, dict) else None
    if not isinstance(names, list):
        raise MexcError(502, None, "MEXC sent a list of API symbols we cannot read", outcome_unknown=False)
    return frozenset(str(n) for n in names)


async def free_balance(rest: MexcRest, asset: str) -> float:
    """The free amount of asset on the spot account (signed); 0 when the account holds none."""
    account = await rest.signed("GET", "/api/v3/account")
    balances = account.get("balances") if isinstance(account, dict) else None
    if not isinstance(balances, list):
        raise MexcError(502, None, "MEXC sent an account we cannot read", outcome_unknown=False)
    return next((to_float(b.get("free")) or 0.0 for b in balances if isinstance(b, dict) and b.get("asset") == asset), 0.0)


async def place_order(rest: MexcRest, rules: RulesCache, symbol: str, shape_of: Callable[[SymbolRules], OrderShape],
                      client_order_id: str) -> str | None:  # fmt: skip
    """POST the order shape_of builds from the symbol's exchange rules; MEXC's order id when the answer names one.

    Rounding and the one corrected retry after a rule refusal are venues/mexc/rules.py's
    send_shaped. MEXC deduplicates newClientOrderId (-2010 on a repeat), which is what makes a
    resend safe. RuleError when no valid order exists (dust, below the minimum).
    """
    data = await send_shaped(rest, rules, symbol, shape_of, {"newClientOrderId": client_order_id})
    return str(data.get("orderId")) if isinstance(data, dict) and data.get("orderId") else None


async def place_market_buy(rest: MexcRest, rules: RulesCache, symbol: str, quote_qty: float, client_order_id: str) -> str | None:
    """A market buy spending quote_qty (rounded down to the pair's quote step)."""
    return await place_order(rest, rules, symbol, lambda r: shape_market_buy(r, quote_qty), client_order_id)


async def place_market_sell(rest: MexcRest, rules: RulesCache, symbol: str, qty: float, price: float, client_order_id: str) -> str | None:
    """A market sell of qty (rounded down to the pair's step; dust refused with RuleError)."""
    return await place_order(rest, rules, symbol, lambda r: shape_market_sell(r, qty, price), client_order_id)


async def fetch_order(rest: MexcRest, symbol: str, client_order_id: str) -> Any:
    """GET the order by our client id (signed); the raw answer, read with parse_order.

    Why two steps: a failed call (e.g. -2011, MEXC never got the order) and an unreadable answer
    mean different things to a reconciling caller, so the caller sees them apart.
    """
    return await rest.signed("GET", "/api/v3/order", {"symbol": symbol, "origClientOrderId": client_order_id})


QUERY_BACKOFF_S = (0.2, 0.5)  # waits between the tries of ask_order after a transient error


async def ask_order(rest: MexcRest, symbol: str, client_order_id: str, read: Callable[[Any], Any] = lambda data: data,
                    backoff_s: tuple[float, ...] = QUERY_BACKOFF_S) -> Any | None:  # fmt: skip
    """fetch_order read by read (e.g. parse_order: an unreadable answer is tried again like a failed
    call), tried again after each wait in backoff_s; None when MEXC did not answer.

    Why one place: the Buy, the exits and the balancer all settle an order in doubt by asking MEXC
    about its client id after a crash or an unclear answer, and must read the same three outcomes
    alike: the order (its data), MEXC never received it (MexcError -2011, raised at once: what an
    order that never existed means is the caller's to decide), or no answer (rate limited, or
    still failing after the last wait: None, the order stays in doubt).
    """
    for delay in (*backoff_s, None):
        try:
            return read(await fetch_order(rest, symbol, client_order_id))
        except MexcError as exc:
            if exc.code == -2011:
                raise
            if exc.rate_limited or delay is None:
                return None
            await asyncio.sleep(delay)
    return None


async def cancel_order(rest: MexcRest, symbol: str, client_order_id: str) -> Any:
    """DELETE the order by our client id (signed); MexcError -2011 when it is no longer open."""
    return await rest.signed("DELETE", "/api/v3/order", {"symbol": symbol, "origClientOrderId": client_order_id})


def parse_order(data: Any) -> OrderState:
    """An order query's answer as an OrderState; MexcError when it is not an order."""
    if not isinstance(data, dict):
        raise MexcError(502, None, "MEXC sent an order we cannot read", outcome_unknown=False)
    return OrderState(status=str(data.get("status") or "UNKNOWN"),
                      order_id=str(data.get("orderId")) if data.get("orderId") else None,
                      executed_qty=to_float(data.get("executedQty")), executed_quote=to_float(data.get("cummulativeQuoteQty")))  # fmt: skip


async def my_trades(rest: MexcRest, symbol: str, order_id: str | None = None, start_ms: int | None = None,
                    limit: int = 1000) -> list[dict[str, Any]]:  # fmt: skip
    """GET /api/v3/myTrades (signed): the account's fills on symbol, oldest first, as plain values.

    Each fill: trade_id, order_id, client_order_id, side (BUY/SELL), price, qty, quote_qty,
    commission, commission_asset, time_ms. A row we cannot read is skipped rather than guessed
    (the caller's rebuild then says the history is incomplete).
    """
    params: dict[str, Any] = {"symbol": symbol, "limit": limit}
    if order_id:
        params["orderId"] = order_id
    if start_ms is not None:
        params["startTime"] = start_ms
    data = await rest.signed("GET", "/api/v3/myTrades", params)
    if not isinstance(data, list):
        raise MexcError(502, None, "MEXC sent a trade history we cannot read", outcome_unknown=False)
    fills = []
    for row in data:
        fill = _fill(row) if isinstance(row, dict) else None
        if fill is not None:
            fills.append(fill)
    return sorted(fills, key=lambda f: (f["time_ms"], f["trade_id"]))


def _fill(row: dict[str, Any]) -> dict[str, Any] | None:
    price, qty, fee = to_float(row.get("price")), to_float(row.get("qty")), to_float(row.get("commission"))
    is_buyer = row.get("isBuyer")
    if price is None or qty is None or price <= 0 or qty <= 0 or not isinstance(is_buyer, bool) or row.get("id") in (None, ""):
        return None
    try:
        time_ms = int(row.get("time") or 0)
    except (TypeError, ValueError):
        return None
    return {"trade_id": str(row["id"]), "order_id": str(row.get("orderId") or ""), "client_order_id": str(row.get("clientOrderId") or ""),
            "side": "BUY" if is_buyer else "SELL", "price": price, "qty": qty,
            "quote_qty": to_float(row.get("quoteQty")) or price * qty, "commission": fee or 0.0,
            "commission_asset": str(row.get("commissionAsset") or ""), "time_ms": time_ms}  # fmt: skip


async def order_book(rest: MexcRest, symbol: str, limit: int = 100) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(bids best first, asks best first) from GET /api/v3/depth; unreadable levels are dropped."""
    data = await rest.get("/api/v3/depth", {"symbol": symbol, "limit": limit})
    if not isinstance(data, dict):
        raise MexcError(502, None, "MEXC sent an order book we cannot read", outcome_unknown=False)

    def side(levels: Any) -> list[tuple[float, float]]:
        out = []
        for level in levels if isinstance(levels, list) else []:
            if isinstance(level, list) and len(level) >= 2:
                p, q = to_float(level[0]), to_float(level[1])
                if p is not None and q is not None and p > 0 and q > 0:
                    out.append((p, q))
        return out

    return side(data.get("bids")), side(data.get("asks"))


async def balances(rest: MexcRest) -> dict[str, float]:
    """Every asset's free amount on the spot account (signed)."""
    account = await rest.signed("GET", "/api/v3/account")
    rows = account.get("balances") if isinstance(account, dict) else None
    if not isinstance(rows, list):
        raise MexcError(502, None, "MEXC sent an account we cannot read", outcome_unknown=False)
    return {str(b.get("asset")): to_float(b.get("free")) or 0.0 for b in rows if isinstance(b, dict) and b.get("asset")}
