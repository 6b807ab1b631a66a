"""A shard: one process, one uvloop, many links, one Cython engine, one feature ring.

Why this split: the engine (core/) owns every per-pair number and knows nothing of sockets;
this module owns sockets, subscriptions and REST, and knows nothing of scoring. Frames go from
the picows callback straight into the engine; everything slow (REST snapshots, kline seeding,
control messages) runs in separate tasks so it never delays a frame.

Crash-only: a shard keeps no state worth saving. When the supervisor restarts it, it receives the
plan again, re-subscribes, re-seeds and resyncs — start-up and recovery are the same path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from common import breadcrumb
from common.children import reset_child_signals
from common.config import Config
from common.logs import setup_logging
from common.memtrim import release_free_memory
from common.messages import Blocked, DropLinks, Message, MessageError, Plan, Ready, Stop, decode, encode
from shards.fastpath import FrameSink
from shards.link import LINK_UP, Link, LinkCallbacks
from shards.recorder import TickRecorder
from venues.mexc.channels import Ack, AckKind, pair_channels, symbol_of
from venues.mexc.market import fetch_depth, fetch_kline_seed
from venues.mexc.rest import BULK, URGENT, PacedRest, RestError

log = logging.getLogger("scanner.shard")

# The supervisor is woken at most once per this interval per shard. Why: rows close one pair at a
# time as each pair's next frame arrives, so without a floor nearly every read burst wakes the
# supervisor for a batch of one or two rows, and a scoring pass costs about the same for 1 row as
# for 100 (NumPy call overhead). A first row after a quiet spell still wakes it at once; later rows
# wait at most this long, far inside the card-latency budget.
NOTIFY_MIN_INTERVAL_S = 0.01
KLINE_BASELINE_ROWS = 72  # the 72 five-minute volumes of the last 6 h


PLANNED_SPREAD = 0.1  # planned reconnects spread over the last 10 % of ws.planned_reconnect_s (23 h: from 20.7 h on)


def planned_lifetime(link_id: int, planned_s: float) -> float:
    """How long link link_id lives before its planned handover: planned_s less a per-link share of PLANNED_SPREAD.

    Why: a shard opens all its links within seconds at start, so one fixed lifetime would renew
    every link in the same second 23 h later (60 new connections and their subscriptions at once,
    for every shard). The share is the fractional part of link_id times the golden ratio, which
    spreads any run of consecutive ids evenly over the window; never more than planned_s, so
    MEXC's 24 h limit is never reached.
    """
    return planned_s * (1.0 - PLANNED_SPREAD * ((link_id * 0.6180339887498949) % 1.0))


@dataclass
class PairSlot:
    pair_id: int
    symbol: str
    link: Link | None = None
    seeded: bool = False


class ShardWorker:
    """Runs one shard's links and engine until told to stop."""

    def __init__(self, index: int, config: Config, ring: Any, stats: Any, conn: Connection | None, n_shards: int = 1) -> None:
        from core.engine import ShardEngine  # compiled; imported here so tests can build workers lazily

        self.index = index
        self.config = config
        self.ring = ring
        self.stats = stats
        self.conn = conn
        self.engine = ShardEngine(ring, stats)
        self.rest = PacedRest(
            config.mexc.rest_url,
            budget_per_10s=max(1, config.mexc.rest_weight_per_10s // max(1, n_shards + 1)),
            timeout_s=config.mexc.rest_timeout_s,
            on_event=self._on_rest_event,
        )
        self.pairs: dict[str, PairSlot] = {}
        self.links: list[Link] = []
        self.blocked: set[str] = set()
        self._resync_queue: deque[str] = deque()
        self._resync_pending: set[str] = set()
        self._resync_event = asyncio.Event()
        self._seed_queue: deque[str] = deque()
        self._seed_event = asyncio.Event()
        self._stop = asyncio.Event()
        self._next_link_id = 0
        self._replacing: dict[int, tuple[Link, float]] = {}  # retiring link id -> (replacement, started)
        self._retiring: set[int] = set()
        # Refused pairs are reported in one message per housekeeping tick: a burst of small
        # messages could fill the pipe while the supervisor is busy sending a large plan.
        self._blocked_unreported: list[str] = []
        self._last_notify = -math.inf  # loop time of the last row wake-up
        self.recorder: TickRecorder | None = None
        rec = config.recorder
        if rec.enabled:
            self.recorder = TickRecorder(rec.dir, index, rec.max_mb, rec.max_hours, rec.flush_interval_s, rec.max_buffer_frames)
        # The compiled per-frame path: frames → engine (and the recorder, when on), resync and
        # row-notify hooks (shards/fastpath.pyx).
        self.sink = FrameSink(self.engine, self._collect_resyncs, self._schedule_notify,
                              self.recorder.add if self.recorder is not None else None)  # fmt: skip

    # --- hot path ----------------------------------------------------------------------------

    def _schedule_notify(self) -> None:
        # After every frame of the read burst is in the ring, and no sooner than
        # NOTIFY_MIN_INTERVAL_S after the previous wake-up.
        loop = asyncio.get_running_loop()
        wait = self._last_notify + NOTIFY_MIN_INTERVAL_S - loop.time()
        if wait > 0:
            loop.call_later(wait, self._notify_rows)
        else:
            loop.call_soon(self._notify_rows)

    def _notify_rows(self) -> None:
        self._last_notify = asyncio.get_running_loop().time()
        self.sink.notify_done()
        self.engine.flush_notify()

    # --- link callbacks ----------------------------------------------------------------------

    def _on_ack(self, link_id: int, ack: Ack) -> None:
        if ack.kind is AckKind.REFUSED:
            for channel in ack.refused:
                symbol = symbol_of(channel)
                if symbol in self.pairs and symbol not in self.blocked:
                    self.blocked.add(symbol)
                    self._blocked_unreported.append(symbol)
                    log.warning("subscription refused", extra={"symbol": symbol, "shard": self.index})
                    self._remove_pair(symbol)
        elif ack.kind is AckKind.ERROR:
            log.warning("control reply not understood", extra={"text": ack.text[:120], "shard": self.index})

    def _on_link_state(self, link_id: int, state: int) -> None:
        self.engine.set_link_state(link_id, state, sum(1 for link in self.links if link.state == LINK_UP))

    def _on_disconnected(self, link_id: int, channels: list[str]) -> None:
        if link_id in self._retiring:
            return  # a planned handover: the replacement link already carries these streams
        # Diffs were missed while the link was down: those books must resync once the link is back.
        self.engine.count_reconnect()
        for channel in channels:
            if ".depth." in channel:
                symbol = symbol_of(channel)
                if symbol in self.pairs:
                    self.engine.reset_book(symbol)
                    self._queue_resync(symbol)

    def _on_rest_event(self, kind: str, endpoint: str) -> None:
        self.engine.count_rest(kind == "throttled")

    # --- plan --------------------------------------------------------------------------------

    def apply_plan(self, pairs: list[tuple[int, str]]) -> None:
        wanted = {symbol: pair_id for pair_id, symbol in pairs}
        for symbol in [s for s in self.pairs if s not in wanted]:
            self._remove_pair(symbol)
        for symbol, pair_id in wanted.items():
            if symbol not in self.pairs and symbol not in self.blocked:
                self._add_pair(pair_id, symbol)
        self.engine.set_pair_counts(len(self.pairs), len(self.blocked), sum(len(link.wanted) for link in self.links))

    def _link_with_room(self, needed: int) -> Link:
        for link in self.links:
            if link.free_slots() >= needed and link.link_id not in self._retiring:
                return link
        return self._new_link()

    def _new_link(self) -> Link:
        ws = self.config.ws
        link = Link(
            self._next_link_id,
            self.config.mexc.ws_url,
            LinkCallbacks(self.sink, self._on_ack, self._on_link_state, self._on_disconnected),
            max_streams=ws.max_streams_per_conn,
            max_msg_per_sec=ws.max_msg_per_sec,
            ping_interval_s=ws.ping_interval_s,
            pong_timeout_s=min(ws.ping_interval_s, max(1.0, ws.idle_timeout_s - ws.ping_interval_s)),
            reconnect_min_s=ws.reconnect_min_s,
            reconnect_max_s=ws.reconnect_max_s,
        )
        self._next_link_id += 1
        self.links.append(link)
        link.start()
        return link

    def _add_pair(self, pair_id: int, symbol: str) -> None:
        with breadcrumb.on(symbol):  # a pair that kills the shard here is quarantined (supervisor/children.py)
            channels = list(pair_channels(symbol, self.config.mexc.deals_interval, self.config.mexc.depth_interval))
            self.engine.add_pair(pair_id, symbol)
            link = self._link_with_room(len(channels))
            link.add(channels)
            self.pairs[symbol] = PairSlot(pair_id, symbol, link)
        self._queue_resync(symbol)
        self._seed_queue.append(symbol)
        self._seed_event.set()

    def _remove_pair(self, symbol: str) -> None:
        slot = self.pairs.pop(symbol, None)
        if slot is None:
            return
        if slot.link is not None:
            channels = list(pair_channels(symbol, self.config.mexc.deals_interval, self.config.mexc.depth_interval))
            slot.link.remove(channels)
            replacement = self._replacing.get(slot.link.link_id)
            if replacement is not None:
                replacement[0].remove(channels)
        self.engine.remove_pair(symbol)

    # --- REST work ---------------------------------------------------------------------------

    def _collect_resyncs(self) -> None:
        for symbol in self.engine.take_resyncs():
            self._queue_resync(symbol)

    def _queue_resync(self, symbol: str) -> None:
        if symbol not in self._resync_pending:
            self._resync_pending.add(symbol)
            self._resync_queue.append(symbol)
            self._resync_event.set()

    async def _resync_loop(self) -> None:
        """Fetch depth snapshots for books that need one, one at a time within the budget."""
        while not self._stop.is_set():
            await self._resync_event.wait()
            self._resync_event.clear()
            while self._resync_queue:
                symbol = self._resync_queue.popleft()
                if symbol not in self.pairs:
                    self._resync_pending.discard(symbol)
                    continue
                # Let the stream deliver a first diff so the snapshot can be checked against it.
                await asyncio.sleep(0.05)
                try:
                    snapshot = await fetch_depth(self.rest, symbol, limit=100, priority=URGENT)
                except (RestError, KeyError, TypeError, ValueError) as exc:
                    log.warning("depth snapshot failed", extra={"symbol": symbol, "error": str(exc)[:160]})
                    await asyncio.sleep(getattr(exc, "retry_after", None) or 1.0)
                    self._resync_queue.append(symbol)
                    continue
                if symbol not in self.pairs:
                    self._resync_pending.discard(symbol)
                    continue
                with breadcrumb.on(symbol):
                    applied = self.engine.apply_snapshot(symbol, snapshot.last_update_id, snapshot.bids, snapshot.asks)
                if applied:
                    self._resync_pending.discard(symbol)
                else:
                    # Snapshot older than the buffered diffs (or a gap): fetch again shortly.
                    await asyncio.sleep(0.2)
                    self._resync_queue.append(symbol)
            self._collect_resyncs()
            if not self._resync_queue:
                release_free_memory()  # the books' freed diff buffers and the snapshots' JSON (common/memtrim.py)

    async def _seed_loop(self) -> None:
        """Seed the 6 h baseline and listing time from REST klines so features are ready at once."""
        while not self._stop.is_set():
            await self._seed_event.wait()
            self._seed_event.clear()
            while self._seed_queue:
                symbol = self._seed_queue.popleft()
                slot = self.pairs.get(symbol)
                if slot is None or slot.seeded:
                    continue
                try:
                    seed, listing_ms = await fetch_kline_seed(self.rest, symbol, KLINE_BASELINE_ROWS + 1, priority=BULK)
                except (RestError, ValueError) as exc:
                    log.warning("kline seeding failed", extra={"symbol": symbol, "error": str(exc)[:160]})
                    await asyncio.sleep(getattr(exc, "retry_after", None) or 2.0)
                    self._seed_queue.append(symbol)
                    continue
                if symbol in self.pairs:
                    with breadcrumb.on(symbol):
                        self.engine.seed_klines(symbol, seed)
                        if listing_ms > 0:
                            self.engine.set_listing(symbol, listing_ms)
                    slot.seeded = True
            release_free_memory()  # the seeding burst's JSON is garbage now (common/memtrim.py)

    # --- control and housekeeping --------------------------------------------------------------

    def _send(self, message: Message) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError, ValueError):
                self.conn.send(encode(message))

    def _on_control_readable(self) -> None:
        assert self.conn is not None
        try:
            while self.conn.poll():
                data = self.conn.recv()
                try:
                    self._handle_control(decode(data))
                except MessageError as exc:
                    log.warning("ignored a bad control message", extra={"shard": self.index, "error": str(exc)[:200]})
        except (EOFError, OSError):
            # The supervisor is gone: a shard has no reason to live without it.
            self._stop.set()

    def _handle_control(self, message: Message) -> None:
        if isinstance(message, Plan):
            self.apply_plan(list(message.pairs))
        elif isinstance(message, DropLinks):
            for link in self.links:
                link.drop()
        elif isinstance(message, Stop):
            self._stop.set()

    async def _housekeeping(self) -> None:
        """Close bars on exchange time for quiet pairs, publish stats, plan reconnects."""
        planned = self.config.ws.planned_reconnect_s
        while not self._stop.is_set():
            await asyncio.sleep(0.25)
            # No per-pair step is running here (they never await): a mark left by a step whose
            # exception the loop caught is stale, and must not blame that pair for a later death.
            breadcrumb.clear()
            self.engine.tick()
            self.engine.flush_notify()
            if self.recorder is not None:
                self.recorder.maybe_flush()
            if self._blocked_unreported:
                self._send(Blocked(self._blocked_unreported))
                self._blocked_unreported = []
            self.engine.set_pair_counts(len(self.pairs), len(self.blocked), sum(len(link.confirmed) for link in self.links))
            self.engine.heartbeat(time.monotonic_ns())  # monotonic: a wall-clock step must not make a beat look stale
            now = time.monotonic()
            if not self._replacing:  # one planned handover at a time: the links are never renewed together
                for link in self.links:
                    if (link.state == LINK_UP and link.link_id not in self._retiring
                            and now - link.connected_at > planned_lifetime(link.link_id, planned)):  # fmt: skip
                        self._start_handover(link)
                        break
            for old_id, (new, started) in list(self._replacing.items()):
                if new.wanted <= new.confirmed or now - started > 15.0:
                    await self._finish_handover(old_id, new)

    def _start_handover(self, old: Link) -> None:
        """Planned reconnect before MEXC's 24 h limit: open the replacement first, overlap, then close.

        While both links run, the engine drops repeated deals pushes (same sendTime) and stale
        depth diffs (old versions), so the overlap neither loses nor doubles data.
        """
        log.info("planned reconnect: opening a replacement link", extra={"link": old.link_id, "shard": self.index})
        self._retiring.add(old.link_id)
        new = self._new_link()
        new.add(sorted(old.wanted))
        self._replacing[old.link_id] = (new, time.monotonic())

    async def _finish_handover(self, old_id: int, new: Link) -> None:
        del self._replacing[old_id]
        old = next((link for link in self.links if link.link_id == old_id), None)
        for slot in self.pairs.values():
            if slot.link is old:
                slot.link = new
        if old is not None:
            self.links.remove(old)
            await old.close()
        self._retiring.discard(old_id)
        log.info("planned reconnect done", extra={"old_link": old_id, "new_link": new.link_id, "shard": self.index})

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        if self.conn is not None:
            loop.add_reader(self.conn.fileno(), self._on_control_readable)
            # Keep the pipe blocking: a large plan arrives in pieces (see supervisor.app._watch_pipe).
            os.set_blocking(self.conn.fileno(), True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        tasks = [loop.create_task(coro) for coro in (self._resync_loop(), self._seed_loop(), self._housekeeping())]
        self._send(Ready(self.index, os.getpid()))
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        for link in self.links:
            await link.close()
        await self.rest.close()
        if self.recorder is not None:
            # The writer thread finishes the open file; off the loop so a slow disk blocks nobody.
            await loop.run_in_executor(None, self.recorder.close)


def shard_main(conn: Connection, index: int, config: Config, ring: Any, stats: Any, n_shards: int) -> None:
    """Process entry point (after fork from the supervisor; supervisor/children.py passes the pipe first)."""
    import uvloop

    reset_child_signals()
    setup_logging(config.logging.level, f"shard{index}", config.secrets(), config.storage.data_dir, config.logging)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the supervisor owns reloads

    async def main() -> None:
        await ShardWorker(index, config, ring, stats, conn, n_shards).run()

    uvloop.run(main())
