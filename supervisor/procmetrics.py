"""CPU and memory of every service process, for Prometheus.

Why a collector of our own: prometheus_client's process collector sees only the process that
serves /metrics, and the shards and the bot are forked children whose cost the dashboard must
show apart. Read with psutil at scrape time (a few processes, every 15 s: negligible).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import psutil
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

PREFIX = "scanner"


class ProcessCollector:
    """scanner_process_cpu_seconds_total{process} and scanner_process_memory_bytes{process,kind}."""

    def __init__(self, processes: Callable[[], list[dict[str, Any]]]) -> None:
        self.processes = processes
        self._handles: dict[int, psutil.Process] = {}

    def _handle(self, pid: int) -> psutil.Process:
        proc = self._handles.get(pid)
        if proc is None:
            proc = self._handles[pid] = psutil.Process(pid)
        return proc

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
                    info = proc.memory_full_info()
            except (psutil.Error, OSError):
                continue
            alive.add(pid)
            cpu.add_metric([name], times.user + times.system)
            for kind in ("rss", "pss", "uss"):
                if hasattr(info, kind):
                    mem.add_metric([name, kind], float(getattr(info, kind)))
        self._handles = {pid: p for pid, p in self._handles.items() if pid in alive}
        yield cpu
        yield mem
