"""MEXC's per-symbol order rules (exchangeInfo), cached, and the rounding every order goes through.

Why rules from the exchange and never hand rounding: a quantity one decimal too fine, or a sell a
cent under the minimum, is refused (30002 and friends) only after the user pressed the button.
Each order is shaped by the symbol's own exchangeInfo entry before it is sent, in exact decimals
(a float such as 0.1 + 0.2 would print a digit MEXC refuses), and a shape that cannot be valid is
refused here with the reason instead of being sent.

How exchangeInfo's fields are read (mexc-api.md §4.3): baseAssetPrecision is the number of
decimals a quantity may have (the step); baseSizePrecision the smallest quantity ("0" = none);
quotePrecision the decimals of a price; quoteAssetPrecision the decimals of a quote amount
(quoteOrderQty); quoteAmountPrecision the smallest order value of a limit order and
quoteAmountPrecisionMarket that of a market order (both in quote); maxQuoteAmount(Market) the
largest. The newer `filters` list is UNCONFIRMED and not read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from venues.mexc.client import MexcError, MexcRest

RULES_TTL_S = 600.0  # listings and their rules change rarely; a stale rule is caught by MEXC's code and refreshed
# exchangeInfo's codes for a symbol MEXC does not know (mexc-api.md §4.2): an answer, not a failure.
UNKNOWN_SYMBOL_CODES = (-1121, 30014, 30021)
# Codes by which MEXC says an order broke a rule we shape by: worth one retry with fresh rules.
RULE_CODES = (30002, 30003, 33333, -1100, -1111, -1013)


def _dec(value: Any, default: str = "0") -> Decimal:
    try:
        out = Decimal(str(value)) if value is not None and value != "" else Decimal(default)
    except (InvalidOperation, ValueError):
        return Decimal(default)
    return out if out.is_finite() and out >= 0 else Decimal(default)


def _decimals(value: Any, default: int) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return default
    return n if 0 <= n <= 18 else default


def plain(value: Decimal) -> str:
    """A decimal as MEXC wants it: no exponent, no trailing zeros ('0.0001', '12', never '1E-4')."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


@dataclass(frozen=True)
class SymbolRules:
    """One exchangeInfo entry: what an order on this symbol may look like."""

    symbol: str
    status: str
    base: str
    quote: str
    spot_trading_allowed: bool
    order_types: tuple[str, ...]
    qty_decimals: int  # baseAssetPrecision
    price_decimals: int  # quotePrecision
    quote_decimals: int  # quoteAssetPrecision
    min_qty: Decimal  # baseSizePrecision (0: no minimum)
    min_notional: Decimal  # quoteAmountPrecision (limit orders)
    min_market_notional: Decimal  # quoteAmountPrecisionMarket
    max_notional: Decimal  # maxQuoteAmount (0: no maximum known)
    max_market_notional: Decimal  # maxQuoteAmountMarket
    side_type: str = "1"  # tradeSideType: 1 all, 2 buy only, 3 sell only, 4 close

    @property
    def online(self) -> bool:
        return self.status in ("1", "ENABLED")

    @property
    def min_market_quote(self) -> float:
        return float(self.min_market_notional)

    @property
    def qty_step(self) -> Decimal:
        return Decimal(1).scaleb(-self.qty_decimals)

    @property
    def price_step(self) -> Decimal:
        return Decimal(1).scaleb(-self.price_decimals)

    @property
    def quote_step(self) -> Decimal:
        return Decimal(1).scaleb(-self.quote_decimals)

    def allows(self, order_type: str, side: str) -> bool:
        side_ok = self.side_type in ("1", "") or (self.side_type == "2" and side == "BUY") or (self.side_type in ("3", "4") and side == "SELL")
        return order_type in self.order_types and side_ok


def parse_rules(info: dict[str, Any]) -> SymbolRules:
    """A SymbolRules from one exchangeInfo symbol entry (missing fields get MEXC's loosest reading)."""
    types = info.get("orderTypes")
    return SymbolRules(
        symbol=str(info.get("symbol", "")), status=str(info.get("status", "1")), base=str(info.get("baseAsset", "")),
        quote=str(info.get("quoteAsset", "")), spot_trading_allowed=info.get("isSpotTradingAllowed") is True,
        order_types=tuple(str(t) for t in types) if isinstance(types, list) else ("LIMIT", "MARKET"),
        qty_decimals=_decimals(info.get("baseAssetPrecision"), 8), price_decimals=_decimals(info.get("quotePrecision"), 8),
        quote_decimals=_decimals(info.get("quoteAssetPrecision"), 8), min_qty=_dec(info.get("baseSizePrecision")),
        min_notional=_dec(info.get("quoteAmountPrecision")), min_market_notional=_dec(info.get("quoteAmountPrecisionMarket")),
        max_notional=_dec(info.get("maxQuoteAmount")), max_market_notional=_dec(info.get("maxQuoteAmountMarket")),
        side_type=str(info.get("tradeSideType", "1")),
    )  # fmt: skip


class RuleError(ValueError):
    """An order that no rounding can make valid (below the minimum, dust, a refused type); message says why."""


@dataclass(frozen=True)
class OrderShape:
    """An order's parameters after rounding, as the strings MEXC receives."""

    symbol: str
    side: str
    type: str
    quantity: str | None = None
    quote_order_qty: str | None = None
    price: str | None = None

    def params(self) -> dict[str, str]:
        out = {"symbol": self.symbol, "side": self.side, "type": self.type}
        for key, value in (("quantity", self.quantity), ("quoteOrderQty", self.quote_order_qty), ("price", self.price)):
            if value is not None:
                out[key] = value
        return out


def _check_type(rules: SymbolRules, order_type: str, side: str) -> None:
    if not rules.online:
        raise RuleError(f"{rules.symbol} is not trading right now (status {rules.status})")
    if not rules.allows(order_type, side):
        raise RuleError(f"{rules.symbol} does not take {order_type} {side} orders")


def shape_market_buy(rules: SymbolRules, quote_amount: float | Decimal) -> OrderShape:
    """A market buy spending at most quote_amount: rounded down to the quote step, within min/max."""
    _check_type(rules, "MARKET", "BUY")
    amount = _dec(quote_amount).quantize(rules.quote_step, rounding=ROUND_FLOOR)
    if amount <= 0 or amount < rules.min_market_notional:
        raise RuleError(f"${plain(amount)} is below {rules.symbol}'s minimum market order ${plain(rules.min_market_notional)}")
    if rules.max_market_notional > 0 and amount > rules.max_market_notional:
        raise RuleError(f"${plain(amount)} is above {rules.symbol}'s maximum market order ${plain(rules.max_market_notional)}")
    return OrderShape(rules.symbol, "BUY", "MARKET", quote_order_qty=plain(amount))


def shape_market_sell(rules: SymbolRules, qty: float | Decimal, price: float | Decimal) -> OrderShape:
    """A market sell of at most qty: rounded down to the step; dust (below min qty or min value at price) is refused."""
    _check_type(rules, "MARKET", "SELL")
    amount = _dec(qty).quantize(rules.qty_step, rounding=ROUND_FLOOR)
    value = amount * _dec(price)
    if amount <= 0 or amount < rules.min_qty or value < rules.min_market_notional:
        raise RuleError(f"dust: {plain(_dec(qty))} {rules.base or rules.symbol} (about ${value:.2f}) is below "
                        f"{rules.symbol}'s minimum sell (qty {plain(rules.min_qty)}, value ${plain(rules.min_market_notional)})")  # fmt: skip
    if rules.max_market_notional > 0 and value > rules.max_market_notional:
        raise RuleError(f"${value:.2f} is above {rules.symbol}'s maximum market order ${plain(rules.max_market_notional)}")
    return OrderShape(rules.symbol, "SELL", "MARKET", quantity=plain(amount))


def shape_limit(rules: SymbolRules, side: str, qty: float | Decimal, price: float | Decimal) -> OrderShape:
    """A limit order: price to the tick (a buy rounds down, a sell up: never worse than asked), qty down to the step."""
    _check_type(rules, "LIMIT", side)
    px = _dec(price).quantize(rules.price_step, rounding=ROUND_FLOOR if side == "BUY" else ROUND_CEILING)
    amount = _dec(qty).quantize(rules.qty_step, rounding=ROUND_FLOOR)
    value = amount * px
    if px <= 0 or amount <= 0 or amount < rules.min_qty or value < rules.min_notional:
        raise RuleError(f"{plain(amount)} at {plain(px)} is below {rules.symbol}'s minimum order "
                        f"(qty {plain(rules.min_qty)}, value ${plain(rules.min_notional)})")  # fmt: skip
    if rules.max_notional > 0 and value > rules.max_notional:
        raise RuleError(f"${value:.2f} is above {rules.symbol}'s maximum order ${plain(rules.max_notional)}")
    return OrderShape(rules.symbol, side, "LIMIT", quantity=plain(amount), price=plain(px))


def violations(rules: SymbolRules, shape: OrderShape) -> list[str]:
    """What MEXC would refuse in a shaped order (empty: nothing); the exchange side of the contract, for tests and the emulator."""
    out: list[str] = []
    if not rules.online or not rules.allows(shape.type, shape.side):
        out.append("type/side/status")
    ref_price = _dec(shape.price) if shape.price is not None else None
    if shape.quote_order_qty is not None:
        q = _dec(shape.quote_order_qty)
        if q != q.quantize(rules.quote_step) or q < rules.min_market_notional or (rules.max_market_notional and q > rules.max_market_notional):
            out.append("quoteOrderQty")
    if shape.quantity is not None:
        q = _dec(shape.quantity)
        if q != q.quantize(rules.qty_step) or q <= 0 or q < rules.min_qty:
            out.append("quantity")
        if ref_price is not None and (ref_price != ref_price.quantize(rules.price_step) or q * ref_price < rules.min_notional):
            out.append("price/value")
    return out


async def fetch_rules(rest: MexcRest, symbol: str) -> SymbolRules | None:
    """The symbol's exchangeInfo entry, or None when MEXC does not know it."""
    try:
        data = await rest.get("/api/v3/exchangeInfo", {"symbol": symbol})
    except MexcError as exc:
        if exc.code in UNKNOWN_SYMBOL_CODES:
            return None
        raise
    entries = data.get("symbols") if isinstance(data, dict) else None
    info = next((s for s in entries or [] if isinstance(s, dict) and s.get("symbol") == symbol), None)
    return parse_rules(info) if info is not None else None


class RulesCache:
    """Per-symbol rules fetched on first use and refreshed after ttl_s, or at once after a rule refusal."""

    def __init__(self, rest: MexcRest, ttl_s: float = RULES_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.rest = rest
        self.ttl_s = ttl_s
        self.clock = clock
        self._cache: dict[str, tuple[float, SymbolRules | None]] = {}

    async def get(self, symbol: str, refresh: bool = False) -> SymbolRules | None:
        now = self.clock()
        cached = self._cache.get(symbol)
        if refresh or cached is None or now - cached[0] > self.ttl_s:
            cached = self._cache[symbol] = (now, await fetch_rules(self.rest, symbol))
        return cached[1]

    def put(self, rules: SymbolRules) -> None:
        """Seed the cache (e.g. from a full exchangeInfo the scout already read)."""
        self._cache[rules.symbol] = (self.clock(), rules)


async def send_shaped(rest: MexcRest, cache: RulesCache, symbol: str, shape_of: Callable[[SymbolRules], OrderShape],
                      extra: dict[str, str]) -> Any:  # fmt: skip
    """POST the order shape_of builds from the symbol's rules; a rule refusal gets one retry with fresh rules.

    Why one retry: the usual cause of a 30002 after our own rounding is a rule MEXC changed since
    the cache was filled; a second refusal with fresh rules is a real refusal and is reported as
    such (MexcError with MEXC's code and our words), never retried in a loop.
    RuleError when the rules leave no valid order.
    """
    rules = await cache.get(symbol)
    if rules is None:
        raise RuleError(f"MEXC does not know {symbol}")
    shape = shape_of(rules)
    try:
        return await rest.signed("POST", "/api/v3/order", {**shape.params(), **extra})
    except MexcError as exc:
        if exc.code not in RULE_CODES:
            raise
        first = exc
    fresh = await cache.get(symbol, refresh=True)
    if fresh is None:
        raise RuleError(f"MEXC does not know {symbol} any more")
    retry = shape_of(fresh)
    if retry == shape:
        raise MexcError(first.status, first.code, f"{first.message} (the order already followed {symbol}'s current rules)",
                        outcome_unknown=False)  # fmt: skip
    try:
        return await rest.signed("POST", "/api/v3/order", {**retry.params(), **extra})
    except MexcError as exc:
        if exc.code in RULE_CODES:
            raise MexcError(exc.status, exc.code, f"{exc.message} (refused again after re-reading {symbol}'s rules)",
                            outcome_unknown=False) from None  # fmt: skip
        raise


__all__ = ["OrderShape", "RuleError", "RulesCache", "SymbolRules", "fetch_rules", "parse_rules", "plain", "send_shaped",
           "shape_limit", "shape_market_buy", "shape_market_sell", "violations"]  # fmt: skip
