"""Scout: which pairs to watch.

exchangeInfo (hourly) says which symbols are online and of our quote asset, defaultSymbols says
which are API-tradable; ticker/24hr (every poll interval) ranks them by quote volume. The result
is the pair set the planner spreads over shards. Pure selection logic is separate from fetching,
so it is tested without a network and the supervisor can re-run it on /cfg changes. Fetching and
reading MEXC's bodies live in venues/mexc/market.py; this module only chooses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from common.config import ScoutConfig
from venues.mexc.market import SymbolInfo, fetch_universe, fetch_volumes
from venues.mexc.rest import URGENT, PacedRest

log = logging.getLogger("scanner.scout")


@dataclass(frozen=True)
class Candidate:
    symbol: str
    quote_volume: float


def select_pairs(
    universe: dict[str, SymbolInfo],
    volumes: dict[str, float],
    config: ScoutConfig,
    excluded: set[str] | frozenset[str] = frozenset(),
) -> list[Candidate]:
    """Online pairs of the quote asset above the volume floor, busiest first, top_n if set."""
    picked = [
        Candidate(symbol, volumes.get(symbol, 0.0))
        for symbol, info in universe.items()
        if info.online
        and info.quote == config.quote_asset
        and symbol not in excluded
        and volumes.get(symbol, 0.0) >= config.min_quote_vol_usd
    ]
    picked.sort(key=lambda c: (-c.quote_volume, c.symbol))
    if config.top_n > 0:
        picked = picked[: config.top_n]
    return picked


class Scout:
    """Fetches exchangeInfo/defaultSymbols/ticker/24hr through the paced client."""

    def __init__(self, rest: PacedRest) -> None:
        self.rest = rest
        self.universe: dict[str, SymbolInfo] = {}
        self.volumes: dict[str, float] = {}

    async def refresh_universe(self) -> None:
        self.universe = await fetch_universe(self.rest, priority=URGENT)
        log.info("universe refreshed", extra={"symbols": len(self.universe)})

    async def refresh_volumes(self) -> None:
        self.volumes = await fetch_volumes(self.rest, priority=URGENT)
