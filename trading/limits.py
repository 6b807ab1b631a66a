"""Reserve and limits: whether a Buy may spend, decided in one place for paper and live alike.

Why one lock for every Buy: two presses on two cards each read the free balance, each see room
for their stake, and together go below the reserve. The check and the order that spends must be
one step, so every Buy takes FundsGuard's lock from the balance read until its fills are stored;
presses are human-rare, so serialising them costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from common.config import TradingConfig


@dataclass(frozen=True)
class Book:
    """What the limits look at: free quote, open positions and their cost, the pair's last buy."""

    free_quote: float
    open_positions: int
    exposure: float  # cost basis of every open position
    holds_symbol: bool  # a position in this pair is already open (adding to it opens none)
    last_buy_ns: int | None


def buy_refusal(t: TradingConfig, book: Book, stake: float, fee_rate: float, now_ns: int) -> str | None:
    """Why a Buy of stake (plus its fee) must not happen, or None when every limit allows it."""
    spend = stake * (1.0 + fee_rate)
    if book.free_quote < spend:
        return f"insufficient balance: free USDT {book.free_quote:.2f} is less than the stake ${stake:g} and its fee"
    if book.free_quote - spend < t.reserve_usdt:
        return (f"free USDT {book.free_quote:.2f} minus the stake and fee (${spend:.2f}) would fall below the reserve "
                f"{t.reserve_usdt:g} (trading.reserve_usdt is never spent)")  # fmt: skip
    if t.max_open_positions and not book.holds_symbol and book.open_positions >= t.max_open_positions:
        return f"{book.open_positions} positions are open, the most trading.max_open_positions allows"
    if t.max_exposure_usdt and book.exposure + stake > t.max_exposure_usdt:
        return (f"open positions cost ${book.exposure:.2f}; another ${stake:g} would pass trading.max_exposure_usdt "
                f"${t.max_exposure_usdt:g}")  # fmt: skip
    if t.buy_cooldown_s and book.last_buy_ns is not None:
        since = (now_ns - book.last_buy_ns) / 1e9
        if since < t.buy_cooldown_s:
            return f"this pair was bought {since:.0f} s ago; trading.buy_cooldown_s is {t.buy_cooldown_s:g} s"
    return None


class FundsGuard:
    """One lock for every spend (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        async with self._lock:
            yield


__all__ = ["Book", "FundsGuard", "buy_refusal"]
