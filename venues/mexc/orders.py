"""The MEXC spot calls a Buy needs: prices, tradability rules, the free balance, market orders.

Why here and not in trading/: the paths, parameter names (quoteOrderQty, newClientOrderId,
origClientOrderId), the answers' field names and the codes that mean "MEXC does not know this pair"
are MEXC's. trading/ decides when to buy and how to stay idempotent; it gets plain values from
here and never reads a MEXC body. Every function raises only MexcError.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from venues.mexc.client import MexcError, MexcRest

# exchangeInfo's codes for a symbol MEXC does not know (mexc-api.md §4.2): an answer, not a failure.
_UNKNOWN_SYMBOL_CODES = (-1121, 30014, 30021)


@dataclass(frozen=True)
class SymbolRules:
    """One exchangeInfo entry, as far as a market buy cares."""

    status: str
    spot_trading_allowed: bool
    min_market_quote: float  # quoteAmountPrecisionMarket: the smallest quote amount a market order takes

    @property
    def online(self) -> bool:
        return self.status in ("1", "ENABLED")


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


def amount(value: float) -> str:
    """A decimal without exponent (f"{1e6:g}" would give '1e+06', which MEXC refuses)."""
    return f"{value:.8f}".rstrip("0").rstrip(".")


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


async def api_symbols(rest: MexcRest) -> frozenset[str]:
    """defaultSymbols: the pairs MEXC lets an API key trade."""
    data = await rest.get("/api/v3/defaultSymbols")
    names = data.get("data") if isinstance(data, dict) else None
    if not isinstance(names, list):
        raise MexcError(502, None, "MEXC sent a list of API symbols we cannot read", outcome_unknown=False)
    return frozenset(str(n) for n in names)


async def symbol_rules(rest: MexcRest, symbol: str) -> SymbolRules | None:
    """The pair's exchangeInfo entry, or None when MEXC does not know the pair."""
    try:
        data = await rest.get("/api/v3/exchangeInfo", {"symbol": symbol})
        entries = data.get("symbols") if isinstance(data, dict) else None
        info = next((s for s in entries or [] if isinstance(s, dict) and s.get("symbol") == symbol), None)
    except MexcError as exc:
        if exc.code not in _UNKNOWN_SYMBOL_CODES:
            raise
        return None
    if info is None:
        return None
    return SymbolRules(status=str(info.get("status", "1")), spot_trading_allowed=info.get("isSpotTradingAllowed") is True,
                       min_market_quote=to_float(info.get("quoteAmountPrecisionMarket")) or 0.0)  # fmt: skip


async def free_balance(rest: MexcRest, asset: str) -> float:
    """The free amount of asset on the spot account (signed); 0 when the account holds none."""
    account = await rest.signed("GET", "/api/v3/account")
    balances = account.get("balances") if isinstance(account, dict) else None
    if not isinstance(balances, list):
        raise MexcError(502, None, "MEXC sent an account we cannot read", outcome_unknown=False)
    return next((to_float(b.get("free")) or 0.0 for b in balances if isinstance(b, dict) and b.get("asset") == asset), 0.0)


async def place_market_buy(rest: MexcRest, symbol: str, quote_qty: float, client_order_id: str) -> str | None:
    """POST a market buy of quote_qty (quote asset); MEXC's order id when the answer names one.

    MEXC deduplicates newClientOrderId (-2010 on a repeat), which is what makes a resend safe.
    """
    params = {"symbol": symbol, "side": "BUY", "type": "MARKET", "quoteOrderQty": amount(quote_qty),
              "newClientOrderId": client_order_id}  # fmt: skip
    data = await rest.signed("POST", "/api/v3/order", params)
    return str(data.get("orderId")) if isinstance(data, dict) and data.get("orderId") else None


async def fetch_order(rest: MexcRest, symbol: str, client_order_id: str) -> Any:
    """GET the order by our client id (signed); the raw answer, read with parse_order.

    Why two steps: a failed call (e.g. -2011, MEXC never got the order) and an unreadable answer
    mean different things to a reconciling caller, so the caller sees them apart.
    """
    return await rest.signed("GET", "/api/v3/order", {"symbol": symbol, "origClientOrderId": client_order_id})


def parse_order(data: Any) -> OrderState:
    """An order query's answer as an OrderState; MexcError when it is not an order."""
    if not isinstance(data, dict):
        raise MexcError(502, None, "MEXC sent an order we cannot read", outcome_unknown=False)
    return OrderState(status=str(data.get("status") or "UNKNOWN"),
                      order_id=str(data.get("orderId")) if data.get("orderId") else None,
                      executed_qty=to_float(data.get("executedQty")), executed_quote=to_float(data.get("cummulativeQuoteQty")))  # fmt: skip
