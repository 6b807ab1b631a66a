"""The 1 s closes of the pairs the trader holds, for the bot's automatic exits (issue #18).

Why here: the supervisor already reads every pair's feature rows (last price per second) from the
shards' rings; the bot process holds the positions but no market data. The bot names its open
positions' pairs (common/messages.py WatchPrices) and gets their newest closes back (Closes) at
most once per exchange second, so take-profit, stop-loss and the trailing stop are evaluated on
the live closes instead of a REST book read every few seconds. With no open position this costs
one truth test per batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from common.messages import Closes

SEND_EVERY_MS = 1000


class ExitPrices:
    """Collects the watched pairs' closes from scored batches and hands them out once per exchange second."""

    def __init__(self, pair_id_of: Callable[[str], int | None]) -> None:
        self.pair_id_of = pair_id_of  # planning's symbol -> pair_id (None: not watched by any shard)
        self.symbols: dict[int, str] = {}  # pair_id -> symbol, of the watched pairs that are planned
        self.wanted: list[str] = []
        self.prices: dict[str, float] = {}
        self.last_ms = 0
        self._sent_ms = 0

    def watch(self, symbols: list[str]) -> None:
        """The bot's WatchPrices: replaces the list (a closed position drops its pair)."""
        self.wanted = sorted(set(symbols))
        self.refresh()
        self.prices = {s: p for s, p in self.prices.items() if s in self.wanted}

    def refresh(self) -> None:
        """Re-map symbols to pair ids (after a replan a pair may have a new id, or none)."""
        self.symbols = {pid: s for s in self.wanted if (pid := self.pair_id_of(s)) is not None}

    def on_rows(self, rows: Any) -> Closes | None:
        """Fold one batch; a Closes message when a second has passed since the last one and there is news."""
        if not self.symbols:
            return None
        ids = rows["pair_id"]
        hit = np.isin(ids, np.fromiter(self.symbols, dtype=ids.dtype, count=len(self.symbols)))
        if not hit.any():
            return None
        for row in rows[hit]:  # rows are in time order: the last one of a pair wins
            self.last_ms = max(self.last_ms, int(row["row_time_ms"]))
            price = float(row["last_price"])
            if price > 0 and np.isfinite(price):  # a pair with no trade yet has no close
                self.prices[self.symbols[int(row["pair_id"])]] = price
        if not self.prices or self.last_ms - self._sent_ms < SEND_EVERY_MS:
            return None
        self._sent_ms = self.last_ms
        return Closes(dict(self.prices), self.last_ms)
