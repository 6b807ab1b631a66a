"""The futures child: the contract feed → the last-vs-fair detector → episodes in SQLite and the logs.

Why a child process of its own (started and restarted like a shard, supervisor/children.py): the
contract stream is JSON for ~1,200 perpetuals; parsing it in the supervisor would put its bursts
on the same loop that scores spot rows, and a bug in it would take the spot scanner down with it.
It needs nothing from the spot side: its own socket (venues/mexc/futures_feed.py), its own detector
(detectors/futures.py) and its own table (store/episodes.py). Cards, when futures.cards_enabled is
on, go to the supervisor as Notice messages, which forwards them to the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import time
from multiprocessing.connection import Connection
from typing import Any

from common.child_pipe import ChildPipe
from common.children import reset_child_signals
from common.config import Config
from common.futures_config import ThickBookConfig
from common.logs import setup_logging
from common.memtrim import release_free_memory
from common.messages import FuturesStats, Message, Notice, OpenInterest, Stop, WatchedContracts
from detectors.futures import FairPriceDetector
from detectors.futures_episodes import Episode, format_log_line
from store.episodes import EpisodeStore
from venues.mexc.futures_feed import FuturesFeed
from venues.mexc.futures_rest import ContractRest

log = logging.getLogger("scanner.futures")

STATS_EVERY_S = 5.0
BOOK_PICK_EVERY_S = 5.0


class FuturesWatch:
    """Owns the feed, the detector and the episode store of one futures child."""

    def __init__(self, config: Config, conn: Connection | None) -> None:
        self.config = config
        self.conn = conn
        self.pipe = ChildPipe(conn, self._on_message, lambda: self._stop.set(), log)  # common/child_pipe.py
        fc = config.futures
        self.only = set(fc.symbols)
        self.detector = FairPriceDetector(fc)
        self.store = EpisodeStore(config.storage.data_dir)
        self.rest = ContractRest(fc.rest_url)
        self.feed = FuturesFeed(fc.ws_url, self._on_ticker, rest=self.rest, on_book=self._on_book, on_gap=self._on_gap,
                                backoff_min_s=fc.reconnect_min_s, backoff_max_s=fc.reconnect_max_s,
                                universe_refresh_s=fc.universe_refresh_s)  # fmt: skip
        self.ratios: dict[str, float] = {}
        self.oi_wanted: set[str] = set()  # contracts the short watcher follows: their holdVol goes to the supervisor
        self.episodes_stored = 0
        self._stop = asyncio.Event()

    # --- feed callbacks ------------------------------------------------------------------------

    def _on_ticker(self, symbol: str, t_ms: int, last: float, fair: float, index: float) -> None:
        if symbol in self.oi_wanted:  # before the detector's symbol filter: the short watcher wants any contract
            hold_vol = self.feed.open_interest.get(symbol, math.nan)
            if math.isfinite(hold_vol):
                self._tell(OpenInterest(symbol, t_ms, hold_vol))
        if self.only and symbol not in self.only:
            return
        if fair > 0:
            self.ratios[symbol] = last / fair
        self._handle(self.detector.on_ticker(symbol, t_ms, last, fair, index))

    def _on_book(self, symbol: str, t_ms: int, bids: Any, asks: Any) -> None:
        self.detector.on_book(symbol, t_ms, bids, asks)

    def _on_gap(self, symbol: str, t_ms: int) -> None:
        """A dropped link ends every open episode at its last update before the gap; a delisted contract is forgotten."""
        if symbol == "*":
            self._handle(self.detector.close_all(t_ms, "gap"))
        else:
            self._handle(self.detector.forget(symbol, t_ms))
            self.ratios.pop(symbol, None)

    def _handle(self, events: Any) -> None:
        for event in events or ():
            if event.kind == "ended":
                self._store(event.episode)
            elif event.kind == "started" and self.config.futures.cards_enabled:
                self._tell(Notice(_start_card(event.episode), key=_card_key(event.episode)))

    def _store(self, ep: Episode) -> None:
        extra = {"start_last": ep.start_last, "start_fair": ep.start_fair, "start_index": ep.start_index,
                 "start_spread_pct": ep.start_spread_pct, "start_depth_usdt": ep.start_depth_usdt}  # fmt: skip
        try:
            stored = self.store.add_episode(ep.strategy, ep.symbol, ep.start_ms, ep.end_ms, ep.peak_ratio, ep.peak_last, ep.peak_fair,
                                            ep.peak_ms, ep.ended_by, extra, format_log_line(ep))  # fmt: skip
        except (ValueError, OSError) as exc:
            log.error("episode not stored", extra={"symbol": ep.symbol, "strategy": ep.strategy, "error": str(exc)[:200]})
            return
        if stored:
            self.episodes_stored += 1
            log.info("futures episode", extra={"symbol": ep.symbol, "strategy": ep.strategy, "peak_ratio": ep.peak_ratio,
                                               "duration_s": ep.duration, "ended_by": ep.ended_by})  # fmt: skip
            if self.config.futures.cards_enabled:  # the start card, edited in place with the end and the peak
                self._tell(Notice(_start_card(ep) + "\n" + _end_line(ep), key=_card_key(ep), edit=True))

    # --- pipe and housekeeping -------------------------------------------------------------------

    def _tell(self, message: Any) -> None:
        self.pipe.tell(message)

    def _on_message(self, message: Message) -> None:
        if isinstance(message, Stop):
            self._stop.set()
        elif isinstance(message, WatchedContracts):
            self.oi_wanted = set(message.symbols)

    async def _housekeeping(self) -> None:
        """Books for the contracts closest to strategy 4's ratio (the per-link subscription cap allows
        a few dozen, not 1,200), and the counters for the supervisor's /metrics."""
        last_stats = 0.0
        while not self._stop.is_set():
            if self.config.futures.strategy4.enabled:
                self.feed.set_books(book_candidates(self.ratios, self.config.futures.strategy4))
            release_free_memory()  # each push.tickers parse frees ~1,200 dicts: give the pages back (common/memtrim.py)
            if time.monotonic() - last_stats >= STATS_EVERY_S:
                last_stats = time.monotonic()
                self._tell(FuturesStats({**self.feed.metrics(), "futures_episodes_stored_total": float(self.episodes_stored),
                                         "futures_episodes_open": float(len(self.detector.open_episodes()))}))  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), BOOK_PICK_EVERY_S)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.pipe.attach(loop, self._stop.set)
        tasks = [loop.create_task(self.feed.run()), loop.create_task(self._housekeeping())]
        log.info("futures feed running", extra={"ws": self.config.futures.ws_url, "symbols": len(self.only) or "all"})
        await self._stop.wait()
        await self.feed.stop()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # Graceful shutdown: open episodes are closed and stored, marked as cut by the shutdown.
        self._handle(self.detector.close_all(int(time.time() * 1000), "shutdown"))
        with contextlib.suppress(Exception):
            await self.rest.close()
        self.store.close()


def book_candidates(ratios: dict[str, float], s4: ThickBookConfig) -> list[str]:
    """The contracts to book for strategy 4, nearest first: last/fair at least halfway to its ratio.

    Why halfway: a book must be there when the ratio crosses, and a link carries a few dozen
    subscriptions, not 1,200 (the feed caps the list and drops the tail).
    """
    floor = 1.0 + (s4.spread_ratio_min - 1.0) / 2
    return [s for _, s in sorted(((r, s) for s, r in ratios.items() if r >= floor), reverse=True)]


def _card_key(ep: Episode) -> str:
    """One episode's card: the end edits the message its start sent (common/messages.py Notice)."""
    return f"futures:{ep.strategy}:{ep.symbol}:{ep.start_ms}"


def _end_line(ep: Episode) -> str:
    return (f"📉 ended ({ep.ended_by}) after {ep.duration:g} s; peak last/fair {ep.peak_ratio:.4g} "
            f"(last {ep.peak_last:g}, fair {ep.peak_fair:g})")  # fmt: skip


def _start_card(ep: Episode) -> str:
    book = "" if ep.start_depth_usdt is None else f", book {ep.start_depth_usdt:,.0f} USDT within the band"
    ratio = ep.start_last / ep.start_fair if ep.start_fair else float("nan")
    return (f"📈 {ep.symbol}: last {ep.start_last:g} is {ratio:.4g}x the fair price {ep.start_fair:g} "
            f"(index {ep.start_index:g}{book}) — strategy {ep.strategy}. Futures: no Buy button.")  # fmt: skip


def futures_main(conn: Connection, config: Config) -> None:
    """Process entry point (after fork from the supervisor; supervisor/children.py passes the pipe first)."""
    import uvloop

    reset_child_signals()
    setup_logging(config.logging.level, "futures", config.secrets(), config.storage.data_dir, config.logging)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the supervisor owns reloads

    async def main() -> None:
        await FuturesWatch(config, conn).run()

    uvloop.run(main())
