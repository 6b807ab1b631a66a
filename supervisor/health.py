"""Is the service doing its job, and what are its figures now: /healthz, /status, the watchdog.

Why health asks more than "are the processes alive": a scanner with no route to the exchange
runs every process and watches nothing; a bot whose token is rejected is restarted forever.
Both must read unhealthy (Docker's HEALTHCHECK and the systemd watchdog act on it), with the
reason in the answer. Why a sampler: CPU % and frames/s are rates; a figure read once (a fresh
psutil.Process, a total divided by the uptime) says 0.0 or the average since start, not now.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from supervisor.children import ChildProcess
from supervisor.forkserver import helper_pids
from supervisor.planning import Planning, ShardHandle

SAMPLE_EVERY_S = 5.0
RATE_WINDOW_S = 30.0
HEARTBEAT_MAX_AGE_NS = 5 * 10**9


class RateWindow:
    """The rate of a growing total over the last window_s (samples added by a periodic tick)."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self.samples: deque[tuple[float, float]] = deque()

    def add(self, t: float, total: float) -> None:
        if self.samples and total < self.samples[-1][1]:  # a restarted counter: start over
            self.samples.clear()
        self.samples.append((t, total))
        while len(self.samples) > 2 and t - self.samples[1][0] >= self.window_s:
            self.samples.popleft()

    def rate(self) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, v0), (t1, v1) = self.samples[0], self.samples[-1]
        return (v1 - v0) / (t1 - t0) if t1 > t0 else None


@dataclass
class HealthLimits:
    startup_grace_s: float
    links_down_max_s: float


class Health:
    """Samples the running figures and judges health from the shards, the bot and planning."""

    def __init__(self, shards: list[ShardHandle], others: Callable[[], list[ChildProcess]], planning: Planning, limits: HealthLimits,
                 extra: Callable[[], dict[str, Any]], memory: Callable[[int], dict[str, float]] = lambda pid: {},
                 futures: Callable[[], dict[str, float] | None] = lambda: None) -> None:  # fmt: skip
        self.shards = shards
        self.others = others  # the other children (the bot, the futures feed): alive and not dying, or unhealthy
        self.planning = planning
        self.limits = limits
        self.extra = extra
        self.memory = memory  # the metrics collector's cached PSS/USS (reading smaps costs ms per process)
        self.futures = futures  # the futures child's last FuturesStats ({} before the first), None when futures are off
        self.started = time.monotonic()
        self.frames = RateWindow()
        self.cpu: dict[int, RateWindow] = {}
        self._procs: dict[int, psutil.Process] = {}
        self.links_down_since: float | None = None

    def processes(self) -> list[tuple[str, int]]:
        """Name and pid of every running service process: supervisor, forkserver, shards, bot, ..."""
        entries = [("supervisor", os.getpid()), *helper_pids()]
        entries += [(h.child.name, h.child.pid) for h in self.shards if h.child is not None and h.child.pid is not None]
        entries += [(c.name, c.pid) for c in self.others() if c.alive() and c.pid is not None]
        return entries

    def _views(self) -> list[Any]:
        return [h.stats.view for h in self.shards]

    def sample(self, now: float | None = None) -> None:
        """One tick: frames total, each process's CPU seconds, and whether any link is up."""
        now = time.monotonic() if now is None else now
        views = self._views()
        self.frames.add(now, float(sum(int(v["frames_total"]) for v in views)))
        alive = set()
        for _, pid in self.processes():
            try:
                proc = self._procs.get(pid) or self._procs.setdefault(pid, psutil.Process(pid))
                times = proc.cpu_times()
            except (psutil.Error, OSError):
                continue
            alive.add(pid)
            self.cpu.setdefault(pid, RateWindow()).add(now, times.user + times.system)
        self._procs = {p: v for p, v in self._procs.items() if p in alive}
        self.cpu = {p: v for p, v in self.cpu.items() if p in alive}
        links_up = sum(int(v["links_up"]) for v in views)
        if links_up or not self.planning.assignment:
            self.links_down_since = None
        elif self.links_down_since is None:
            self.links_down_since = now

    def check(self, now_ns: int | None = None) -> tuple[bool, dict[str, Any]]:
        """(ok, detail): ok only while shards run and beat, the bot lives, and pairs are watched over live links."""
        # The shards beat on CLOCK_MONOTONIC (one clock for every process): an NTP step of the wall
        # clock neither makes a live shard look stale nor hides a dead one.
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        now = time.monotonic()
        reasons: list[str] = []
        for h in self.shards:
            if h.child is None or not h.child.alive():
                reasons.append(f"shard{h.index} is down")
            elif now - h.child.started_at > HEARTBEAT_MAX_AGE_NS / 1e9 and (
                    not (beat := int(h.stats.view["heartbeat_ns"])) or now_ns - beat >= HEARTBEAT_MAX_AGE_NS):
                reasons.append(f"shard{h.index} heartbeat is stale")
            if h.child is not None and h.child.keeps_dying():
                reasons.append(f"shard{h.index} keeps dying ({h.child.restarts} restarts, last exit code {h.child.last_exit})")
        others = self.others()
        for child in others:
            if child.keeps_dying():
                reasons.append(f"{child.name} keeps dying ({child.restarts} restarts, last exit code {child.last_exit})")
            elif not child.alive():
                reasons.append(f"{child.name} is down")
        views = self._views()
        subscribed = sum(int(v["pairs_subscribed"]) for v in views)
        if now - self.started > self.limits.startup_grace_s and subscribed == 0:
            why = f" (scout: {self.planning.scout_error})" if self.planning.scout_error else ""
            reasons.append(f"no pair subscribed {self.limits.startup_grace_s:g} s after start{why}")
        if self.links_down_since is not None and now - self.links_down_since > self.limits.links_down_max_s:
            reasons.append(f"no WebSocket link up for {now - self.links_down_since:.0f} s")
        detail = {"reasons": reasons, "pairs": len(self.planning.assignment), "pairs_subscribed": subscribed,
                  "links_up": sum(int(v["links_up"]) for v in views),
                  "children": [h.child.status() for h in self.shards if h.child is not None] + [c.status() for c in others],
                  "processes": [{"name": n, "pid": p} for n, p in self.processes()],
                  "warnings": self._futures_warnings(now),
                  "quarantined_pairs": self.planning.quarantined}  # fmt: skip
        return not reasons, detail

    def _futures_warnings(self, now: float) -> list[str]:
        """The futures feed without a link, as a warning, not a reason.

        Why not unhealthy: the spot scanner, the product's core, still watches every pair and sends
        cards; a restart would not bring back a contract API that is unreachable or blocked. So
        /healthz stays 200 and says it in `warnings` (and /status shows it), after the same start-up
        grace as the spot links.
        """
        stats = self.futures()
        if stats is None or now - self.started <= self.limits.startup_grace_s:
            return []
        if not stats:
            return ["futures feed: no figures from the futures child yet"]
        if stats.get("futures_link_up"):
            return []
        age = stats.get("futures_last_frame_age_seconds", float("nan"))
        since = f"last frame {age:.0f} s ago" if age == age else "never connected"
        return [f"futures feed: no link to the contract API ({since})"]

    def status(self) -> dict[str, Any]:
        """The /status figures, current (rates over the last RATE_WINDOW_S), not averages since start."""
        processes = []
        for name, pid in self.processes():
            proc = self._procs.get(pid)
            try:
                proc = proc or psutil.Process(pid)
                with proc.oneshot():
                    mem = proc.memory_info()
                    uptime = time.time() - proc.create_time()
            except (psutil.Error, OSError):
                continue
            cpu = self.cpu.get(pid)
            rate = cpu.rate() if cpu is not None else None
            processes.append({"name": name, "pid": pid, "cpu_percent": None if rate is None else 100.0 * rate,
                              "rss_bytes": mem.rss, "pss_bytes": self.memory(pid).get("pss"), "uptime_s": uptime})  # fmt: skip
        views = self._views()
        healthy, detail = self.check()
        futures = self.futures()
        return {
            "processes": processes,
            "links": int(sum(int(v["links_up"]) for v in views)),
            "streams": int(sum(int(v["streams_subscribed"]) for v in views)),
            "frames_per_s": self.frames.rate(),
            "reconnects": int(sum(int(v["reconnects"]) for v in views)),
            "pairs_watched": len(self.planning.assignment),
            # Poisoned pairs (supervisor/children.py QUARANTINE_AFTER): out of the plan until a restart.
            "quarantined_pairs": self.planning.quarantined,
            "healthy": healthy,
            "warnings": detail["warnings"],
            "futures": None if futures is None else {"link_up": bool(futures.get("futures_link_up")),
                                                     "contracts": int(futures.get("futures_universe_size", 0)),
                                                     "episodes_stored": int(futures.get("futures_episodes_stored_total", 0)),
                                                     "episodes_open": int(futures.get("futures_episodes_open", 0))},
            **self.extra(),
        }
