"""Which pairs are watched, and by which shard: scouting, planning, blocked pairs, quality drop.

Why one room: a pair's life (picked by the scout, given an id, placed on a shard, moved, refused
by the exchange, dropped for poor quality, re-checked later) is one story; the pipeline only asks
"which symbol is pair 17" and "drop these rows' pairs", and the shards only receive plans.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from common.config import Config
from common.memtrim import release_free_memory
from common.messages import Plan
from supervisor.children import ChildProcess
from supervisor.planner import plan_shards
from supervisor.scout import Candidate, Scout, select_pairs
from venues.mexc.rest import PacedRest, RestError

log = logging.getLogger("scanner.supervisor.planning")

SCOUT_RETRY_MIN_S = 5.0
SCOUT_RETRY_MAX_S = 120.0
LIVE_DATA_BEFORE_DROP_S = 300.0  # a pair needs 5 minutes of live data before its 5-min volume means anything
MOVE_OVERLAP_S = 5.0


@dataclass
class ShardHandle:
    """One shard: its shared memory (ring, stats block), its process, and the pairs it watches."""

    index: int
    ring: Any
    stats: Any
    child: ChildProcess | None = None
    pairs: dict[str, int] = field(default_factory=dict)  # symbol -> pair_id

    def release(self) -> None:
        """Close and unlink the shared memory (the supervisor owns it; the shard has stopped)."""
        for block in (self.ring, self.stats):
            with contextlib.suppress(Exception):
                block.close()
                block.unlink()


class Planning:
    """Owns pair ids and the pair → shard assignment; sends each shard its plan."""

    def __init__(self, config: Config, shards: list[ShardHandle], on_new_pair: Callable[[int, str], None] = lambda pid, s: None) -> None:
        self.config = config
        self.shards = shards
        self.on_new_pair = on_new_pair
        self.symbols: dict[int, str] = {}
        self.pair_ids: dict[str, int] = {}
        self.assignment: dict[str, int] = {}
        self.blocked: set[str] = set()
        self.quarantined: dict[str, dict[str, Any]] = {}  # symbol -> {deaths, shard, since}: a poisoned pair, out until restart
        self.dropped_until: dict[str, float] = {}
        self.watch_since: dict[str, float] = {}
        self.volumes_24h: dict[str, float] = {}
        self.scout_error: str | None = None  # the last scout failure while no plan succeeded since
        self.plan_event = asyncio.Event()
        self.first_plan_done = asyncio.Event()
        self.on_scout: Callable[[Scout], None] = lambda scout: None  # after each scout pass, before its plan
        self.always_watch: Callable[[], set[str]] = set  # pairs planned whatever their volume (fresh listings)

    def figures(self) -> dict[str, float]:
        """Metrics of the shards' rings and processes and of the plan."""
        return {"ring_lag_rows": float(sum(int(h.ring.lag) for h in self.shards)),
                "ring_overflow_total": float(sum(int(h.ring.overflow) for h in self.shards)),
                "pairs_planned": float(len(self.assignment)),
                "shard_restarts_total": float(sum(h.child.restarts for h in self.shards if h.child))}  # fmt: skip

    def pair_id(self, symbol: str) -> int:
        """The pair's id, allocated on first use and never reused while the service runs."""
        if symbol not in self.pair_ids:
            pair_id = len(self.pair_ids) + 1
            self.pair_ids[symbol] = pair_id
            self.symbols[pair_id] = symbol
            self.on_new_pair(pair_id, symbol)
        return self.pair_ids[symbol]

    def send_plan(self, handle: ShardHandle) -> None:
        if handle.child is not None:
            handle.child.send(Plan(pairs=[(pid, sym) for sym, pid in sorted(handle.pairs.items())]))

    def on_blocked(self, handle: ShardHandle, symbols: list[str]) -> None:
        """The exchange refused these pairs: never plan them again in this run."""
        for symbol in symbols:
            self.blocked.add(symbol)
            handle.pairs.pop(symbol, None)
        log.warning("pairs blocked by exchange", extra={"count": len(symbols), "shard": handle.index})

    def quarantine(self, handle: ShardHandle, symbol: str, deaths: int) -> None:
        """A pair that killed its shard `deaths` times: never plan it again in this run, say so loudly.

        Called from the shard's exit handler, before its restart, so the restarted shard's plan
        already lacks the pair and the other pairs are watched again at once.
        """
        self.quarantined[symbol] = {"deaths": deaths, "shard": handle.index, "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        handle.pairs.pop(symbol, None)
        self.assignment.pop(symbol, None)
        self.watch_since.pop(symbol, None)
        log.error(f"pair {symbol} quarantined: shard{handle.index} died {deaths} times while handling it; it is no longer watched "
                  "until the service restarts", extra={"symbol": symbol, "shard": handle.index, "deaths": deaths})  # fmt: skip

    # --- scouting --------------------------------------------------------------------------------

    async def scout_loop(self, stop: asyncio.Event, n_shards: int) -> None:
        """Refresh the universe and volumes, replan; on REST errors back off (5 s doubling to 2 min)."""
        config = self.config
        rest = PacedRest(config.mexc.rest_url, budget_per_10s=max(20, config.mexc.rest_weight_per_10s // (n_shards + 1)))
        scout = Scout(rest)
        host = urlsplit(config.mexc.rest_url).netloc or config.mexc.rest_url
        last_universe = 0.0
        retry = SCOUT_RETRY_MIN_S
        try:
            while not stop.is_set():
                try:
                    if time.monotonic() - last_universe > self.config.scout.exchange_info_interval_s or not scout.universe:
                        await scout.refresh_universe()
                        last_universe = time.monotonic()
                    await scout.refresh_volumes()
                    self.volumes_24h = dict(scout.volumes)
                    self.on_scout(scout)  # new listings (supervisor/listings.py), before the plan that must include them
                    self.replan(scout)
                    release_free_memory()  # the tickers' JSON is garbage now (common/memtrim.py)
                except RestError as exc:
                    wait = max(retry, min(exc.retry_after or 0.0, SCOUT_RETRY_MAX_S)) * random.uniform(0.9, 1.1)
                    self.scout_error = str(exc) if host in str(exc) else f"{host}: {exc}"
                    log.warning("scout failed", extra={"host": host, "error": str(exc)[:300], "retry_in_s": round(wait, 1)})
                    retry = min(retry * 2, SCOUT_RETRY_MAX_S)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), wait)
                    continue
                retry, self.scout_error = SCOUT_RETRY_MIN_S, None
                self.plan_event.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.plan_event.wait(), self.config.scout.poll_interval_s)
        finally:
            await rest.close()

    def replan(self, scout: Scout) -> None:
        now = time.monotonic()
        self.dropped_until = {s: t for s, t in self.dropped_until.items() if t > now}
        excluded = self.blocked | set(self.dropped_until) | set(self.quarantined)
        picked = select_pairs(scout.universe, scout.volumes, self.config.scout, excluded)
        have = {c.symbol for c in picked}  # fresh listings are watched from their first trade, whatever their 24 h volume
        picked += [Candidate(s, scout.volumes.get(s, 0.0)) for s in sorted(self.always_watch()) if s not in have and s not in excluded
                   and s in scout.universe and scout.universe[s].online]  # fmt: skip
        activity = {c.symbol: c.quote_volume for c in picked}
        new_assignment = plan_shards(activity, len(self.shards), self.assignment)
        for symbol in new_assignment:
            self.pair_id(symbol)
            self.watch_since.setdefault(symbol, now)
        for symbol in set(self.watch_since) - set(new_assignment):
            self.watch_since.pop(symbol, None)
        # Add before remove: a moved pair is watched by its new shard before the old one lets go.
        moved = {s for s in new_assignment if s in self.assignment and self.assignment[s] != new_assignment[s]}
        for handle in self.shards:
            wanted = {s: self.pair_ids[s] for s, k in new_assignment.items() if k == handle.index}
            keep_until_moved = {s: self.pair_ids[s] for s in moved if self.assignment.get(s) == handle.index}
            pairs = {**wanted, **keep_until_moved}
            if pairs != handle.pairs:  # an unchanged plan (most scout passes) is not pickled and sent again
                handle.pairs = pairs
                self.send_plan(handle)
        if moved:
            asyncio.get_running_loop().call_later(MOVE_OVERLAP_S, self.finish_moves)
        self.assignment = new_assignment
        log.info("plan", extra={"pairs": len(new_assignment), "moved": len(moved), "blocked": len(self.blocked)})
        if not self.first_plan_done.is_set():
            self.first_plan_done.set()
            log.info(f"watching {len(new_assignment)} pairs over {len(self.shards)} shards",
                     extra={"pairs": len(new_assignment), "shards": len(self.shards)})  # fmt: skip

    def finish_moves(self) -> None:
        for handle in self.shards:
            handle.pairs = {s: self.pair_ids[s] for s, k in self.assignment.items() if k == handle.index}
            self.send_plan(handle)

    # --- quality drop ----------------------------------------------------------------------------

    def quality_check(self, rows: np.ndarray, keep: set[int]) -> None:
        """Quality drop (spec): spread > quality_spread_max or 5-min quote volume below the floor.

        keep: pair ids never dropped now (a pair with an open outcome watch stays: dropping it
        would blind the watch mid-horizon).
        """
        scout = self.config.scout
        if scout.quality_min_quote_vol_5m <= 0 and scout.quality_spread_max <= 0:
            return
        now = time.monotonic()
        bad = (rows["spread"] > scout.quality_spread_max) | (rows["quote_vol_5m"] < scout.quality_min_quote_vol_5m)
        if not bad.any():
            return
        changed = False
        for pair_id in set(rows["pair_id"][bad].tolist()) - keep:
            symbol = self.symbols.get(int(pair_id))
            if symbol is None or now - self.watch_since.get(symbol, now) < LIVE_DATA_BEFORE_DROP_S or symbol in self.dropped_until:
                continue
            self.dropped_until[symbol] = now + scout.recheck_interval_s
            changed = True
            log.info("quality drop", extra={"symbol": symbol})
        if changed:
            self.plan_event.set()
