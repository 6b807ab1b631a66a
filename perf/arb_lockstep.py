"""The triangle child's pricing path in lock-step with the emulator, on exchange time.

Why: over WebSockets the frames a cycle sees depend on timing; here the emulator's market steps
100 ms at a time, every depth change of a cycle pair becomes the same limit.depth@10 (or
bookTicker) push the emulator would send (sim/frames.py), and ArbWatch (supervisor/arb.py) takes
it through the same decode -> CycleBook -> episodes -> arb_opportunities path as the service,
with its clock set to the market's. Used by tests/test_arb_emulator.py and perf/bench_arb.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.config import Config
from sim.frames import FrameEncoder
from sim.market import Market
from sim.scenario import scenario_from_mapping
from supervisor.arb import ArbWatch
from venues.mexc.arb_market import ArbMarket, arb_channel


def markets_of(market: Market, fee: float = 0.0005) -> list[ArbMarket]:
    """The emulator's exchangeInfo as venues/mexc/arb_market.py reads it (online pairs)."""
    return [ArbMarket(s.symbol, s.base, s.quote, 10.0**-s.qty_decimals, fee) for s in market.symbols if s.status == "1"]


class ArbLockstep:
    """A market with cross pairs and an ArbWatch fed from it frame by frame."""

    def __init__(self, config: Config, data_dir: str | Path, pairs: int = 200, seed: int = 7, scenario: dict[str, Any] | None = None,
                 start_ms: int = 1_767_225_600_000) -> None:  # fmt: skip
        config.storage.data_dir = str(data_dir)
        self.market = Market(pairs, seed, start_ms, scenario_from_mapping(scenario or {"cross": 20}))
        self.encoder = FrameEncoder(self.market)
        self.watch = ArbWatch(config, None, links=False)
        self.watch._now_ms = self.market.now_ms  # type: ignore[method-assign]  # exchange time, not wall time
        self.markets = markets_of(self.market)
        self.watch.build(self.markets)
        self.kind = config.arb.channel
        self.frames = 0
        self.filter: Callable[[str, list[Any], list[Any]], tuple[list[Any], list[Any]] | None] | None = None

    def frame(self, symbol: str, t_ms: int) -> bytes | None:
        """The push the emulator sends for a pair's current book (None when a filter drops it)."""
        version, bids, asks = self.market.depth_snapshot(symbol, 10)
        if self.filter is not None:
            kept = self.filter(symbol, bids, asks)
            if kept is None:
                return None
            bids, asks = kept
        channel = arb_channel(symbol, self.kind)
        if self.kind == "limit10":
            return self.encoder.limit_depth(channel, symbol, version, bids, asks, t_ms)
        return self.encoder.book_ticker(channel, symbol, (*bids[0], *asks[0]), t_ms)

    def run(self, seconds: float, on_step: Callable[[int], None] | None = None) -> None:
        """Step the market; each changed cycle pair's push goes to the watch, then its housekeeping."""
        ids = self.watch.pair_ids
        for _ in range(round(seconds * 10)):
            updates = self.market.advance(self.market.now_ms() + 100)
            for symbol in dict.fromkeys(u.symbol for u in updates if u.depth is not None and u.symbol in ids):
                frame = self.frame(symbol, self.market.now_ms())
                if frame is not None:
                    self.frames += 1
                    self.watch._on_binary(0, frame, time.time_ns())
            if self.watch.book.reprice_profitable(self.market.now_ms()):
                self.watch._price_events()
            if on_step is not None:
                on_step(self.market.now_ms())

    def stop(self) -> None:
        """End open episodes as at shutdown and close the store."""
        self.watch._handle(self.watch.episodes.close_all(self.market.now_ms(), "shutdown"))
        self.watch.store.close()
