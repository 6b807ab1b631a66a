"""New spot pairs: found in exchangeInfo, stored once, announced by the bot, then their first minutes.

Why here: the scout already fetches exchangeInfo (supervisor/planning.py's scout loop); a pair of
the scout's quote asset that is online now and was not at the previous refresh is a new listing.
The first refresh after a start only learns what exists (else every pair would be "new"), and the
listings table (store/cards.py) keeps each symbol once, so a restart never announces it twice.

A new listing is watched from the next plan on, whatever its 24 h volume (Planning adds
`fresh` to the pairs it picks; ListingAge still gates the pump profiles). Once the chart history
holds FIRST_MINUTES complete minutes of it, the first trade minute, that span's quote volume and
its price range are stored and the bot edits the listing card with them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from common.messages import ListingStored, Message
from store.cards import CardStore
from supervisor.chart_history import MINUTE_MS, ChartHistory

log = logging.getLogger("scanner.supervisor.listings")
FIRST_MINUTES = 5
WATCH_FRESH_S = 24 * 3600  # a new listing is planned regardless of volume for its first day


class ListingWatch:
    """See the module docstring; on_universe() after each exchangeInfo refresh, first_minutes() after each scout pass."""

    def __init__(self, cards: CardStore | None, tell_bot: Callable[[Message], bool], quote: str = "USDT") -> None:
        self.cards = cards
        self.tell_bot = tell_bot
        self.quote = quote
        self.known: set[str] | None = None  # online symbols of the quote asset at the last refresh
        self.fresh: dict[str, float] = {}  # symbol -> wall time it was found (planned regardless of volume)
        self._universe: Any = None

    def on_universe(self, universe: Mapping[str, Any], now_ms: int | None = None) -> list[str]:
        """New online pairs of the quote asset since the previous refresh; each stored and announced once."""
        if universe is self._universe:  # the same exchangeInfo as last pass: nothing to compare
            return []
        self._universe = universe
        online = {s for s, info in universe.items() if info.online and info.quote == self.quote}
        if self.known is None:
            self.known = online
            return []
        new = sorted(online - self.known)
        self.known = online
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        announced = []
        for symbol in new:
            self.fresh[symbol] = time.time()
            if self.cards is None or not self.cards.add_listing(symbol, now_ms, None):
                continue
            announced.append(symbol)
            self.tell_bot(ListingStored(symbol))
            log.info("new listing", extra={"symbol": symbol})
        return announced

    def watched(self) -> set[str]:
        """Fresh listings the planner must watch whatever their volume."""
        now = time.time()
        self.fresh = {s: t for s, t in self.fresh.items() if now - t < WATCH_FRESH_S}
        return set(self.fresh)

    def first_minutes(self, chart: ChartHistory, pair_ids: Mapping[str, int], now_ms: int) -> None:
        """Store the first FIRST_MINUTES complete minutes of each fresh listing once the chart history has them."""
        if self.cards is None:
            return
        for symbol, first_ms in self.cards.listings_without_summary():
            pair_id = pair_ids.get(symbol)
            if pair_id is None:
                continue
            series = chart.series(pair_id, now_ms)
            if not series["t"]:
                continue
            start = series["t"][0] if first_ms is None else first_ms
            done = [i for i, t in enumerate(series["t"]) if start <= t < start + FIRST_MINUTES * MINUTE_MS]
            if now_ms < start + FIRST_MINUTES * MINUTE_MS or not done:
                if first_ms is None:
                    self.cards.set_listing_first_trade(symbol, start)
                continue
            lows = [series["l"][i] for i in done if series["l"][i]]
            highs = [series["h"][i] for i in done if series["h"][i]]
            volume = series["qv5"][done[-1]]
            self.cards.set_listing_summary(symbol, start, volume, min(lows) if lows else None, max(highs) if highs else None)
            self.tell_bot(ListingStored(symbol))


__all__ = ["ListingWatch", "FIRST_MINUTES"]
