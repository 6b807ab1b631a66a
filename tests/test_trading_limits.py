"""The reserve is never crossed under any interleaving of concurrent Buys (trading/limits.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from hypothesis import given, settings
from hypothesis import strategies as st

from common.config import TradingConfig
from trading.limits import Book, FundsGuard, buy_refusal

FEE = 0.002


class _Exchange:
    """A balance whose reads and orders each take a drawn number of event-loop turns."""

    def __init__(self, usdt: float, delays: list[int]) -> None:
        self.usdt, self.lowest, self.delays = usdt, usdt, delays

    async def _turns(self) -> None:
        for _ in range(self.delays.pop() if self.delays else 0):
            await asyncio.sleep(0)

    async def free(self) -> float:
        seen = self.usdt  # what the exchange answered; the answer then takes its time to arrive
        await self._turns()
        return seen

    async def buy(self, stake: float) -> None:
        await self._turns()
        self.usdt -= stake * (1 + FEE / 4)  # the real fee is below what the check allows for
        self.lowest = min(self.lowest, self.usdt)


async def _press(ex: _Exchange, guard: FundsGuard | None, t: TradingConfig, stake: float) -> bool:
    @contextlib.asynccontextmanager
    async def nothing() -> AsyncIterator[None]:
        yield

    async with guard.hold() if guard else nothing():
        why = buy_refusal(t, Book(await ex.free(), 0, 0.0, False, None), stake, FEE, 0)
        if why is None:
            await ex.buy(stake)
        return why is None


async def _run(usdt: float, reserve: float, stakes: list[float], delays: list[int], guarded: bool) -> _Exchange:
    ex = _Exchange(usdt, delays)
    t = TradingConfig(reserve_usdt=reserve)
    guard = FundsGuard() if guarded else None
    await asyncio.gather(*(_press(ex, guard, t, s) for s in stakes))
    return ex


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 5000), st.floats(0, 5000), st.lists(st.floats(1, 1000), min_size=1, max_size=12),
       st.lists(st.integers(0, 5), max_size=40))  # fmt: skip
def test_the_reserve_is_never_crossed_under_any_interleaving(usdt: float, reserve: float, stakes: list[float], delays: list[int]) -> None:
    ex = asyncio.run(_run(usdt, reserve, stakes, delays, guarded=True))
    assert ex.lowest >= min(reserve, usdt) - 1e-9


def test_without_the_guard_the_same_presses_do_cross_it() -> None:
    """The harness can fail: two unguarded presses both read 1000 and both buy past a 850 reserve."""
    ex = asyncio.run(_run(1000.0, 850.0, [100.0, 100.0], [0, 0, 3, 3], guarded=False))
    assert ex.lowest < 850.0
