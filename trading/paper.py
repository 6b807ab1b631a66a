"""Paper fills: a market order walked through an order book level by level, with the configured fee.

Why walk the book and not take the last price: a $100 market buy on a thin pair eats several ask
levels; paper PnL at the last price would be better than anything a real order could get. The
fee is the taker fee in the quote asset, as MEXC charges it on buys and sells (FIELD-NOTES).
Pure: the book comes in as (price, size) levels, best first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from trading.avgcost import Fill

Levels = Sequence[tuple[float, float]]


def walk_buy(asks: Levels, quote_amount: float, fee_rate: float, quote: str, order_id: str, time_ms: int) -> list[Fill]:
    """Fills of a market buy spending quote_amount on the asks (the fee comes on top, in quote); short book: partial."""
    fills: list[Fill] = []
    left = quote_amount
    for i, (price, size) in enumerate(asks):
        if left <= 1e-12 or price <= 0 or size <= 0:
            continue
        take = min(size, left / price)
        fills.append(Fill(f"{order_id}-{i:03d}", "BUY", price, take, take * price * fee_rate, quote, time_ms))
        left -= take * price
    return fills


def walk_sell(bids: Levels, qty: float, fee_rate: float, quote: str, order_id: str, time_ms: int) -> list[Fill]:
    """Fills of a market sell of qty on the bids (fee in quote, taken from the proceeds); short book: partial."""
    fills: list[Fill] = []
    left = qty
    for i, (price, size) in enumerate(bids):
        if left <= 1e-15 or price <= 0 or size <= 0:
            continue
        take = min(size, left)
        fills.append(Fill(f"{order_id}-{i:03d}", "SELL", price, take, take * price * fee_rate, quote, time_ms))
        left -= take
    return fills


class Priced(Protocol):
    """A fill as vwap reads it: a walked Fill, or a stored FillRow (store/positions.py)."""

    qty: float
    price: float


def vwap(fills: Sequence[Priced]) -> tuple[float, float]:
    """(quantity, volume-weighted price) of fills; (0, 0) for none."""
    qty = sum(f.qty for f in fills)
    return qty, (sum(f.qty * f.price for f in fills) / qty if qty > 0 else 0.0)


__all__ = ["vwap", "walk_buy", "walk_sell"]
