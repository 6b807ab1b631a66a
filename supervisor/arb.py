"""The triangle child: exchangeInfo → cycles → one book stream per pair → compiled pricer → episodes.

Why a child process of its own (started and restarted like the futures child): the cycle scanner
watches every pair of every cycle over every quote asset, most of which the pump shards do not
watch (BTC-, ETH-, USDC-quoted pairs, pairs under the scout's volume floor). Its own links carry one
stream per pair (limit.depth@10 by default, bookTicker optionally): no REST snapshot, no diff
versions, no resync, so nothing on the shards' hot path changes and a bug here cannot stop the pump
scanner. Frames go from the link callback straight into core/cycles.pyx, which re-prices only the
cycles through the updated pair; Python sees only the cycles that are or just were profitable.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import signal
import time
from collections import deque
from multiprocessing.connection import Connection
from typing import Any

from common.child_pipe import ChildPipe
from common.children import reset_child_signals
from common.config import Config
from common.logs import setup_logging
from common.messages import ArbStats, Message, Notice, Stop
from core.cycles import CycleBook
from core.decode import DecodeError
from detectors.arb_cycles import Cycle, enumerate_cycles, universe_of
from detectors.arb_episodes import ArbEpisode, ArbEpisodes, ArbEvent
from shards.link import LINK_UP, Link, LinkCallbacks
from store.arb import ArbStore, Opportunity
from venues.mexc.arb_market import ArbMarket, arb_channel, fetch_arb_markets, symbol_of_arb_channel
from venues.mexc.rest import PacedRest, RestError

log = logging.getLogger("scanner.arb")

STATS_EVERY_S = 5.0
HOUSEKEEPING_S = 0.5
DURATION_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
DAY_MS = 86_400_000


def select_cycles(cycles: list[Cycle], max_pairs: int) -> list[Cycle]:
    """Cycles in enumeration order while their pairs fit max_pairs (0: all)."""
    if max_pairs <= 0:
        return cycles
    pairs: set[str] = set()
    out = []
    for c in cycles:
        more = {leg.symbol for leg in c.legs} - pairs
        if len(pairs) + len(more) <= max_pairs:
            pairs |= more
            out.append(c)
    return out


class ArbWatch:
    """Owns the links, the pricer, the episodes and the store of the arb child."""

    def __init__(self, config: Config, conn: Connection | None, links: bool = True) -> None:
        self.config = config
        self.conn = conn
        self.pipe = ChildPipe(conn, self._on_message, lambda: self._stop.set(), log)  # common/child_pipe.py
        self.use_links = links  # False: frames are fed by hand (perf/arb_lockstep.py)
        self.store = ArbStore(config.storage.data_dir)
        self.episodes = ArbEpisodes()
        self.cycles: list[Cycle] = []
        self.symbols: list[str] = []
        self.pair_ids: dict[str, int] = {}
        self.book = CycleBook(0, [])
        self.links: list[Link] = []
        self.counts = {"frames": 0, "decode_errors": 0, "opportunities": 0, "stored": 0, "universe_builds": 0}
        self.duration_buckets = [0] * (len(DURATION_BUCKETS_S) + 1)
        self.duration_sum_s = 0.0
        self.latency_us: deque[float] = deque(maxlen=4096)  # frame received -> episode started
        self.exchange_ms = 0  # newest push time seen, and when (monotonic) it was seen
        self._seen_at = time.monotonic()
        self._stop = asyncio.Event()

    # --- universe ------------------------------------------------------------------------------

    def build(self, markets: list[ArbMarket]) -> bool:
        """(Re)build cycles, pricer and subscriptions from exchangeInfo; False when nothing changed."""
        ac = self.config.arb
        cycles = select_cycles(enumerate_cycles(markets, ac.start_assets), ac.max_pairs)
        symbols = universe_of(cycles)
        if symbols == self.symbols and [c.legs for c in cycles] == [c.legs for c in self.cycles]:
            return False
        self._handle(self.episodes.close_all(self._now_ms(), "universe"))
        by_symbol = {m.symbol: m for m in markets}
        ids = {s: i for i, s in enumerate(symbols)}
        book = CycleBook(len(symbols), [[(ids[leg.symbol], leg.buy) for leg in c.legs] for c in cycles],
                         ac.min_profit_bps, ac.min_size_usdt, ac.max_leg_age_ms)  # fmt: skip
        for s, i in ids.items():
            listed = by_symbol[s].taker_fee
            book.set_rules(i, listed if ac.fee_from_exchange and listed is not None else ac.taker_fee, by_symbol[s].step)
        book.set_symbols(symbols)
        self.book, self.cycles, self.symbols, self.pair_ids = book, cycles, symbols, ids
        self.counts["universe_builds"] += 1
        if self.use_links:
            self._subscribe([arb_channel(s, ac.channel) for s in symbols])
        log.info("arb universe", extra={"pairs": len(symbols), "cycles": len(cycles), "links": len(self.links)})
        return True

    def _subscribe(self, channels: list[str]) -> None:
        wanted = set(channels)
        for link in self.links:
            gone = [c for c in link.wanted if c not in wanted]
            if gone:
                link.remove(gone)
            wanted -= link.wanted
        todo = sorted(wanted)
        ws = self.config.ws
        for link in self.links:
            room = link.free_slots()
            if room > 0 and todo:
                link.add(todo[:room])
                todo = todo[room:]
        while todo:
            link = Link(len(self.links), self.config.mexc.ws_url, LinkCallbacks(self._on_binary, lambda i, a: None, lambda i, s: None,
                        self._on_disconnected), max_streams=ws.max_streams_per_conn, max_msg_per_sec=ws.max_msg_per_sec,
                        ping_interval_s=ws.ping_interval_s, pong_timeout_s=min(ws.ping_interval_s, max(1.0, ws.idle_timeout_s - ws.ping_interval_s)),
                        reconnect_min_s=ws.reconnect_min_s, reconnect_max_s=ws.reconnect_max_s)  # fmt: skip
            link.add(todo[: ws.max_streams_per_conn])
            todo = todo[ws.max_streams_per_conn :]
            self.links.append(link)
            link.start()

    # --- frames --------------------------------------------------------------------------------

    def _now_ms(self) -> int:
        """Exchange time now: the newest push time plus the wall time since it arrived."""
        return self.exchange_ms + int((time.monotonic() - self._seen_at) * 1000) if self.exchange_ms else int(time.time() * 1000)

    def _on_binary(self, link_id: int, payload: Any, recv_ns: int) -> None:
        self.counts["frames"] += 1
        try:
            if not self.book.on_frame(payload, self._now_ms()):
                return
        except DecodeError:
            self.counts["decode_errors"] += 1
            return
        self._price_events(recv_ns)

    def _price_events(self, recv_ns: int = 0) -> None:
        for c in self.book.take_touched():
            status, _top, edge, size, size_bps, ages, priced_ms = self.book.result(c)
            if priced_ms > self.exchange_ms:
                self.exchange_ms, self._seen_at = priced_ms, time.monotonic()
            event = self.episodes.on_result(c, status, priced_ms, edge, size, size_bps, ages)
            if event is not None and event.kind == "started" and recv_ns:
                self.latency_us.append((time.time_ns() - recv_ns) / 1000.0)
            self._handle([event] if event else [])

    def _on_disconnected(self, link_id: int, channels: list[str]) -> None:
        """A lost link: its pairs' books are unknown until it is back; their open episodes end as a gap."""
        now = self._now_ms()
        lost = {self.pair_ids[s] for s in map(symbol_of_arb_channel, channels) if s in self.pair_ids}
        hit = sorted({c for p in lost for c in self.book.cycles_of(p)} & set(self.episodes.open))
        self._handle([self.episodes.end(c, now, "gap") for c in hit])
        for p in lost:
            self.book.update(p, now, [], [])
        self.book.take_touched()

    # --- episodes ------------------------------------------------------------------------------

    def _handle(self, events: list[ArbEvent]) -> None:
        for event in events:
            if event.kind == "started":
                self.counts["opportunities"] += 1
            else:
                self._store(event.episode)

    def _store(self, ep: ArbEpisode) -> None:
        cycle = self.cycles[ep.cycle]
        seconds = ep.duration_ms / 1000.0
        self.duration_buckets[bisect.bisect_left(DURATION_BUCKETS_S, seconds)] += 1
        self.duration_sum_s += seconds
        opp = Opportunity(cycle.text, cycle.start, [(leg.symbol, "buy" if leg.buy else "sell") for leg in cycle.legs], ep.start_ms,
                          ep.end_ms or ep.start_ms, ep.peak_ms, ep.peak_bps, ep.size, ep.size_bps, list(ep.ages_ms), ep.updates,
                          ep.ended_by)  # fmt: skip
        try:
            stored = self.store.add(opp)
        except (ValueError, OSError) as exc:
            log.error("arb opportunity not stored", extra={"cycle": cycle.text, "error": str(exc)[:200]})
            return
        if stored:
            self.counts["stored"] += 1
            log.info("arb opportunity", extra={"cycle": cycle.text, "peak_bps": round(ep.peak_bps, 2), "size": round(ep.size, 2),
                                               "duration_ms": ep.duration_ms, "ended_by": ep.ended_by})  # fmt: skip
            if self.config.arb.cards_enabled:
                self._tell(Notice(f"🔺 {cycle.text}: peak {ep.peak_bps:.1f} bps net of fees on {ep.size:,.0f} {cycle.start}, "
                                  f"{ep.duration_ms / 1000:.1f} s ({ep.ended_by}). Detection only, nothing traded."))  # fmt: skip

    # --- pipe, stats and housekeeping ------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters, gauges, the duration histogram and what /arb shows."""
        c = self.counts
        best = [{"cycle": self.cycles[i].text, "top_bps": bps} for i, bps in self.book.best(5)]
        lat = sorted(self.latency_us)
        return {
            "counters": {"arb_frames_total": c["frames"], "arb_decode_errors_total": c["decode_errors"],
                         "arb_book_updates_total": self.book.updates_total, "arb_cycles_repriced_total": self.book.repriced_total,
                         "arb_opportunities_total": c["opportunities"], "arb_opportunities_stored_total": c["stored"]},
            "gauges": {"arb_pairs": len(self.symbols), "arb_cycles": len(self.cycles), "arb_opportunities_open": len(self.episodes.open),
                       "arb_links_up": sum(1 for link in self.links if link.state == LINK_UP),
                       "arb_latency_p50_us": lat[len(lat) // 2] if lat else float("nan")},
            "duration_buckets": list(DURATION_BUCKETS_S), "duration_counts": list(self.duration_buckets), "duration_sum": self.duration_sum_s,
            "best": best, "last_24h": self.store.summary(int(time.time() * 1000) - DAY_MS),
        }  # fmt: skip

    def _tell(self, message: Any) -> None:
        self.pipe.tell(message)

    def _on_message(self, message: Message) -> None:
        if isinstance(message, Stop):
            self._stop.set()

    async def _universe_loop(self) -> None:
        rest = PacedRest(self.config.mexc.rest_url, budget_per_10s=20, timeout_s=self.config.mexc.rest_timeout_s)
        wait = 5.0
        try:
            while not self._stop.is_set():
                try:
                    self.build(await fetch_arb_markets(rest))
                    wait = self.config.arb.universe_refresh_s
                except RestError as exc:
                    log.warning("arb universe failed", extra={"error": str(exc)[:300]})
                    wait = min(max(wait, 5.0) * 2, 120.0) if self.symbols else 5.0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), wait)
        finally:
            await rest.close()

    async def _housekeeping(self) -> None:
        """A leg that stops updating ends its cycles' episodes as stale; stats go to /metrics every few seconds."""
        last_stats = 0.0
        while not self._stop.is_set():
            if self.book.reprice_profitable(self._now_ms()):
                self._price_events()
            if time.monotonic() - last_stats >= STATS_EVERY_S:
                last_stats = time.monotonic()
                self._tell(ArbStats(self.stats()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), HOUSEKEEPING_S)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.pipe.attach(loop, self._stop.set)
        tasks = [loop.create_task(self._universe_loop()), loop.create_task(self._housekeeping())]
        await self._stop.wait()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._handle(self.episodes.close_all(self._now_ms(), "shutdown"))
        for link in self.links:
            await link.close()
        self.store.close()


def arb_main(conn: Connection, config: Config) -> None:
    """Process entry point (after fork from the supervisor; supervisor/children.py passes the pipe first)."""
    import uvloop

    reset_child_signals()
    setup_logging(config.logging.level, "arb", config.secrets(), config.storage.data_dir)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the supervisor owns reloads

    async def main() -> None:
        await ArbWatch(config, conn).run()

    uvloop.run(main())
