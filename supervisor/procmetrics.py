"""CPU and memory of every service process, for Prometheus.

Why a collector of our own: prometheus_client's process collector sees only the process that
serves /metrics, and the shards and the bot are forked children whose cost the dashboard must
show apart. Read with psutil at scrape time (a few processes, every 15 s: negligible).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import psutil
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

PREFIX = "scanner"


class ProcessCollector:
    """scanner_process_cpu_seconds_total{process} and scanner_process_memory_bytes{process,kind}."""

    # PSS/USS come from /proc/PID/smaps_rollup, which costs milliseconds per process and runs on the
    # supervisor's event loop: read them at most this often, RSS and CPU (cheap) on every scrape.
    FULL_MEMORY_EVERY_S = 30.0

    def __init__(self, processes: Callable[[], list[dict[str, Any]]]) -> None:
        self.processes = processes
        self._handles: dict[int, psutil.Process] = {}
        self._full: dict[int, tuple[float, dict[str, float]]] = {}

    def _handle(self, pid: int) -> psutil.Process:
        proc = self._handles.get(pid)
        if proc is None:
            proc = self._handles[pid] = psutil.Process(pid)
        return proc

    def cached_memory(self, pid: int) -> dict[str, float]:
        """PSS/USS of pid as of the last full read (at most FULL_MEMORY_EVERY_S old); {} before the first."""
        full = self._full.get(pid)
        return dict(full[1]) if full is not None else {}

    def collect(self) -> Iterable[Any]:
        cpu = CounterMetricFamily(f"{PREFIX}_process_cpu_seconds", "CPU seconds (user + system) per service process", labels=["process"])
        mem = GaugeMetricFamily(f"{PREFIX}_process_memory_bytes", "Memory per service process (rss, pss, uss)", labels=["process", "kind"])
        alive = set()
        for entry in self.processes():
            pid, name = int(entry["pid"]), str(entry["name"])
            try:
                proc = self._handle(pid)
                with proc.oneshot():
                    times = proc.cpu_times()
                    rss = float(proc.memory_info().rss)
                full = self._full.get(pid)
                if full is None or time.monotonic() - full[0] > self.FULL_MEMORY_EVERY_S:
                    info = proc.memory_full_info()
                    full = (time.monotonic(), {k: float(getattr(info, k)) for k in ("pss", "uss") if hasattr(info, k)})
                    self._full[pid] = full
            except (psutil.Error, OSError):
                continue
            alive.add(pid)
            cpu.add_metric([name], times.user + times.system)
            mem.add_metric([name, "rss"], rss)
            for kind, value in full[1].items():
                mem.add_metric([name, kind], value)
        self._handles = {pid: p for pid, p in self._handles.items() if pid in alive}
        self._full = {pid: f for pid, f in self._full.items() if pid in alive}
        yield cpu
        yield mem
