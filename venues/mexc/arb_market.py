"""exchangeInfo as the triangle scanner needs it: every listed pair's assets, lot step and taker fee.

Why apart from venues/mexc/market.py: the pump scout only needs a symbol's quote asset and status;
the cycle scanner needs both assets of every pair over every quote asset, the base lot step (a leg's
quantity is floored to it) and the taker fee the exchange lists. The parser is strict in the same
way: a malformed row is skipped, a malformed body is a RestError naming the host, and nothing
non-finite or negative reaches the compiled pricer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from venues.mexc.market import EXCHANGE_INFO
from venues.mexc.rest import URGENT, PacedRest, RestError

MAX_TAKER_FEE = 0.05  # a listed fee above 5 % is garbage, not a fee: the configured default applies


@dataclass(frozen=True)
class ArbMarket:
    """One online spot pair: its assets, base lot step (0: unknown) and taker fee (None: not listed)."""

    symbol: str
    base: str
    quote: str
    step: float
    taker_fee: float | None


def _fee(value: Any) -> float | None:
    try:
        fee = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return fee if math.isfinite(fee) and 0.0 <= fee <= MAX_TAKER_FEE else None


def _step(row: dict[str, Any]) -> float:
    """10^-baseAssetPrecision (the base quantity's decimals); 0 when absent or out of range."""
    decimals = row.get("baseAssetPrecision")
    if isinstance(decimals, bool) or not isinstance(decimals, int | str):
        return 0.0
    try:
        n = int(decimals)
    except ValueError:
        return 0.0
    return 10.0**-n if 0 <= n <= 18 else 0.0


def parse_arb_markets(data: Any, host: str = "") -> list[ArbMarket]:
    """Online pairs (status "1"/"ENABLED") with two distinct named assets, sorted by symbol."""
    if not isinstance(data, dict) or not isinstance(data.get("symbols"), list):
        raise RestError(200, None, "exchangeInfo: no symbols list in response", host=host)
    out: dict[str, ArbMarket] = {}
    for row in data["symbols"]:
        if not isinstance(row, dict):
            continue
        symbol, base, quote = row.get("symbol"), row.get("baseAsset"), row.get("quoteAsset")
        if not all(isinstance(x, str) and x and x.isalnum() for x in (symbol, base, quote)) or base == quote:
            continue
        if str(row.get("status", "")) not in ("1", "ENABLED"):
            continue
        out[symbol] = ArbMarket(symbol, base, quote, _step(row), _fee(row.get("takerCommission")))
    return [out[s] for s in sorted(out)]


async def fetch_arb_markets(rest: PacedRest, priority: int = URGENT) -> list[ArbMarket]:
    """exchangeInfo (weight 10) → every online pair the cycle scanner may use."""
    return parse_arb_markets(await rest.get(EXCHANGE_INFO.path, weight=EXCHANGE_INFO.weight, priority=priority), host=rest.host)


LIMIT_DEPTH = "spot@public.limit.depth.v3.api.pb@{symbol}@10"
BOOK_TICKER = "spot@public.aggre.bookTicker.v3.api.pb@100ms@{symbol}"


def arb_channel(symbol: str, kind: str) -> str:
    """The one stream a cycle pair needs: top 10 levels ("limit10") or the best level ("bookTicker")."""
    if kind == "limit10":
        return LIMIT_DEPTH.format(symbol=symbol)
    if kind == "bookTicker":
        return BOOK_TICKER.format(symbol=symbol)
    raise ValueError(f"unknown arb channel kind {kind!r} (limit10 or bookTicker)")


def symbol_of_arb_channel(channel: str) -> str:
    """The symbol of an arb_channel name (limit depth puts the level count after it)."""
    parts = channel.split("@")
    return parts[-2] if channel.startswith("spot@public.limit.depth") and len(parts) >= 2 else parts[-1]
