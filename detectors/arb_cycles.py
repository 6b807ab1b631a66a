"""Every three-leg cycle of the spot universe, enumerated once per universe change.

Why enumerate, not search per update: the graph (assets as nodes, pairs as edges) changes only when
pairs are listed or delisted, while books change thousands of times a second. So the cycles are
listed here once from exchangeInfo, over every quote asset it names (nothing is hard-coded), and the
compiled pricer (core/cycles.pyx) indexes them by pair.

A cycle starts and ends in a start asset (USDT, USDC, ... from config): start -> X -> Y -> start.
Each leg trades one pair: buying its base pays its quote (the leg from the quote asset to the
base), selling it does the opposite. The same ring of three pairs in the same direction is one
opportunity whichever asset it starts from (USDT -> USDC -> XYZ -> USDT and USDC -> XYZ -> USDT ->
USDC have the same legs), so it is kept once, under the first start asset that reaches it; the
reverse direction is a different cycle (its legs buy where the other sells).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


class MarketLike(Protocol):
    """What enumeration reads of a pair (venues/mexc/arb_market.ArbMarket has it)."""

    @property
    def symbol(self) -> str: ...
    @property
    def base(self) -> str: ...
    @property
    def quote(self) -> str: ...


@dataclass(frozen=True)
class Leg:
    """One trade of a cycle: the pair and whether it buys the base (pays the quote at the asks)."""

    symbol: str
    buy: bool


@dataclass(frozen=True)
class Cycle:
    """start -> assets[1] -> assets[2] -> start through three legs."""

    assets: tuple[str, str, str]
    legs: tuple[Leg, Leg, Leg]

    @property
    def start(self) -> str:
        return self.assets[0]

    @property
    def text(self) -> str:
        """What a person reads and the table stores: 'USDT→BTC→XYZ→USDT (buy BTCUSDT, buy XYZBTC, sell XYZUSDT)'."""
        path = "→".join((*self.assets, self.assets[0]))
        return f"{path} ({', '.join(('buy ' if leg.buy else 'sell ') + leg.symbol for leg in self.legs)})"


def enumerate_cycles(markets: Iterable[MarketLike], start_assets: Sequence[str]) -> list[Cycle]:
    """Every cycle from each start asset in order, each ring-and-direction once, in a stable order."""
    by_asset: dict[str, list[MarketLike]] = {}
    pairs: dict[frozenset[str], MarketLike] = {}
    for m in sorted(markets, key=lambda m: m.symbol):
        if m.base == m.quote:
            continue
        by_asset.setdefault(m.base, []).append(m)
        by_asset.setdefault(m.quote, []).append(m)
        pairs.setdefault(frozenset((m.base, m.quote)), m)  # two listings of one asset pair: the first by name
    seen: set[frozenset[Leg]] = set()
    out: list[Cycle] = []
    for start in dict.fromkeys(start_assets):
        for m1 in by_asset.get(start, ()):
            x = m1.base if m1.quote == start else m1.quote
            for m2 in by_asset.get(x, ()):
                y = m2.base if m2.quote == x else m2.quote
                if m2 is m1 or y == start:
                    continue
                m3 = pairs.get(frozenset((y, start)))
                if m3 is None or m3 is m1 or m3 is m2 or pairs[frozenset((x, start))] is not m1 or pairs[frozenset((x, y))] is not m2:
                    continue
                legs = (Leg(m1.symbol, m1.quote == start), Leg(m2.symbol, m2.quote == x), Leg(m3.symbol, m3.quote == y))
                key = frozenset(legs)
                if key not in seen:
                    seen.add(key)
                    out.append(Cycle((start, x, y), legs))
    return out


def universe_of(cycles: Iterable[Cycle]) -> list[str]:
    """The pairs the cycles use, sorted: the pair ids of the compiled pricer are positions in this list."""
    return sorted({leg.symbol for c in cycles for leg in c.legs})
