"""Scout: which pairs to watch.

exchangeInfo (hourly) says which symbols are online and of our quote asset, defaultSymbols says
which are API-tradable; ticker/24hr (every poll interval) ranks them by quote volume. The result
is the pair set the planner spreads over shards. Pure selection logic is separate from fetching,
so it is tested without a network and the supervisor can re-run it on /cfg changes.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from common.config import ScoutConfig
from common.rest import URGENT, PacedRest, RestError

log = logging.getLogger("scanner.scout")


@dataclass(frozen=True)
class SymbolInfo:
    """What the scout knows about one listed symbol."""

    symbol: str
    quote: str
    online: bool
    api_tradable: bool


@dataclass(frozen=True)
class Candidate:
    symbol: str
    quote_volume: float


def parse_exchange_info(data: Any, default_symbols: Any) -> dict[str, SymbolInfo]:
    """Turn exchangeInfo + defaultSymbols JSON into SymbolInfo; malformed rows are skipped."""
    if not isinstance(data, dict) or not isinstance(data.get("symbols"), list):
        raise RestError(200, None, "exchangeInfo: no symbols list in response")
    tradable: set[str] = set()
    if isinstance(default_symbols, dict) and isinstance(default_symbols.get("data"), list):
        tradable = {s for s in default_symbols["data"] if isinstance(s, str)}
    out: dict[str, SymbolInfo] = {}
    for row in data["symbols"]:
        if not isinstance(row, dict) or not isinstance(row.get("symbol"), str):
            continue
        symbol = row["symbol"]
        status = str(row.get("status", ""))
        out[symbol] = SymbolInfo(
            symbol=symbol,
            quote=str(row.get("quoteAsset", "")),
            online=status in ("1", "ENABLED"),
            api_tradable=symbol in tradable and bool(row.get("isSpotTradingAllowed", True)),
        )
    return out


def parse_tickers(data: Any) -> dict[str, float]:
    """symbol → 24 h quote volume; null or garbage volumes count as 0 (MEXC sends nulls)."""
    if not isinstance(data, list):
        raise RestError(200, None, "ticker/24hr: expected a list")
    out: dict[str, float] = {}
    for row in data:
        if not isinstance(row, dict) or not isinstance(row.get("symbol"), str):
            continue
        try:
            qv = float(row.get("quoteVolume") or 0.0)
        except (TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit JSON integer
            qv = 0.0
        out[row["symbol"]] = qv if math.isfinite(qv) and qv > 0 else 0.0
    return out


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
        info = await self.rest.get("/api/v3/exchangeInfo", weight=10, priority=URGENT)
        default = await self.rest.get("/api/v3/defaultSymbols", weight=1, priority=URGENT)
        self.universe = parse_exchange_info(info, default)
        log.info("universe refreshed", extra={"symbols": len(self.universe)})

    async def refresh_volumes(self) -> None:
        data = await self.rest.get("/api/v3/ticker/24hr", weight=40, priority=URGENT)
        self.volumes = parse_tickers(data)
