"""Prometheus /metrics and /healthz, served by the supervisor from one custom collector.

Why one collector over the shards' shared-memory stats blocks instead of prometheus_client's
multiprocess mode: shards never touch Prometheus objects (no per-frame Python cost, no metrics
directory), and a restarted shard simply starts new counters that the collector reads. Labels are
shard/channel/reason/outcome only, never the symbol (2,000 pairs would explode cardinality).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from supervisor.procmetrics import ProcessCollector

log = logging.getLogger("scanner.metrics")

PREFIX = "scanner"
LATENCY_BUCKETS_MS = (5, 10, 25, 50, 100, 200, 500, 1000, 2000, 5000)


class ShardStatsCollector(Collector):
    """Reads every shard's stats block at scrape time."""

    def __init__(self, shards: Callable[[], list[tuple[int, Any]]], extra: Callable[[], dict[str, float]],
                 outcomes: Callable[[], dict[tuple[str, str], int]] | None = None) -> None:  # fmt: skip
        self.shards = shards
        self.extra = extra
        self.outcomes = outcomes

    def collect(self) -> Iterable[Any]:
        counters = {
            "frames": ("frames_total", "Binary frames received"),
            "bytes": ("bytes_total", "Frame bytes received"),
            "decode_errors": ("decode_errors", "Frames that failed to decode (counted and skipped)"),
            "resyncs": ("resyncs", "Order-book resyncs from REST snapshots"),
            "ws_reconnects": ("reconnects", "WebSocket reconnects"),
            "rows_written": ("rows_written", "Feature rows written to the ring"),
            "rows_dropped": ("rows_dropped", "Feature rows dropped because the ring was full"),
            "candidate_rows": ("candidate_rows", "Rows written before their bar closed (a pre-check saw a pump forming)"),
            "rest_requests": ("rest_requests", "REST requests sent"),
            "rest_throttled": ("rest_throttled", "REST answers 429/418"),
        }
        gauges = {
            "links_up": ("links_up", "WebSocket links connected"),
            "streams_subscribed": ("streams_subscribed", "Streams confirmed by the exchange"),
            "pairs_subscribed": ("pairs_subscribed", "Pairs watched"),
            "pairs_blocked": ("pairs_blocked", "Pairs refused by the exchange (Blocked!)"),
        }
        families: dict[str, Any] = {}
        for name, (_, doc) in counters.items():
            families[name] = CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=["shard"])
        for name, (_, doc) in gauges.items():
            families[name] = GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=["shard"])
        age = GaugeMetricFamily(f"{PREFIX}_last_frame_age_seconds", "Seconds since the shard's newest frame", labels=["shard"])
        frames_by_channel = CounterMetricFamily(f"{PREFIX}_frames_by_channel", "Frames by channel", labels=["shard", "channel"])
        now_ns = time.time_ns()
        for index, view in self.shards():
            label = [str(index)]
            for name, (field, _) in {**counters, **gauges}.items():
                families[name].add_metric(label, float(view[field]))
            last = int(view["last_frame_ns"])
            age.add_metric(label, (now_ns - last) / 1e9 if last else float("nan"))
            for channel, field in (("deals", "deals_frames"), ("depth", "depth_frames"), ("other", "other_frames")):
                frames_by_channel.add_metric([str(index), channel], float(view[field]))
        yield from families.values()
        yield age
        yield frames_by_channel
        for name, value in self.extra().items():
            gauge = GaugeMetricFamily(f"{PREFIX}_{name}", name.replace("_", " "))
            gauge.add_metric([], value)
            yield gauge
        if self.outcomes is not None:
            yield from outcome_families(self.outcomes())


def outcome_families(counts: dict[tuple[str, str], int]) -> list[Any]:
    """Closed signal watches by label and profile (never by symbol), and the hit rate per profile.

    counts: (label, profile) -> total, labels hit/miss/unknown and TP/SL/TIMEOUT (the Store's
    outcome_counts). The hit rate is hits / (hits + misses); unknown outcomes are left out.
    """
    labels = ["outcome", "profile"]
    watch = CounterMetricFamily(f"{PREFIX}_outcomes", "Closed signal watches: hit (max gain >= outcome.hit_gain), miss, unknown", labels=labels)
    trade = CounterMetricFamily(f"{PREFIX}_trade_outcomes", "Closed signal watches by trade label: TP, SL, TIMEOUT", labels=labels)
    rate = GaugeMetricFamily(f"{PREFIX}_outcome_hit_rate", "Hits / (hits + misses) of closed signal watches", labels=["profile"])
    profiles = sorted({p for _, p in counts})
    for profile in profiles:
        for label in ("hit", "miss", "unknown"):
            watch.add_metric([label, profile], float(counts.get((label, profile), 0)))
        for label in ("TP", "SL", "TIMEOUT"):
            trade.add_metric([label, profile], float(counts.get((label, profile), 0)))
        decided = counts.get(("hit", profile), 0) + counts.get(("miss", profile), 0)
        rate.add_metric([profile], counts.get(("hit", profile), 0) / decided if decided else float("nan"))
    return [watch, trade, rate]


class Metrics:
    """The supervisor's registry: shard collector + histograms the supervisor observes itself."""

    def __init__(
        self,
        shards: Callable[[], list[tuple[int, Any]]],
        extra: Callable[[], dict[str, float]],
        processes: Callable[[], list[dict[str, Any]]] | None = None,
        outcomes: Callable[[], dict[tuple[str, str], int]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(ShardStatsCollector(shards, extra, outcomes))
        self.processes: ProcessCollector | None = None
        if processes is not None:
            self.processes = ProcessCollector(processes)
            self.registry.register(self.processes)
        self.latency_pipeline_ms = Histogram(
            f"{PREFIX}_latency_pipeline_ms",
            "Frame received to signal handed on, milliseconds",
            buckets=LATENCY_BUCKETS_MS,
            registry=self.registry,
        )
        self.signals = Histogram(
            f"{PREFIX}_signal_probability", "Probability of emitted signals", buckets=(0.5, 0.6, 0.7, 0.8, 0.9, 1.0), registry=self.registry
        )
        self._latencies_ms: list[float] = []

    def observe_latency(self, ms: float) -> None:
        self.latency_pipeline_ms.observe(ms)
        self._latencies_ms.append(ms)
        if len(self._latencies_ms) > 2048:
            del self._latencies_ms[:1024]

    def latency_p95_ms(self) -> float | None:
        if not self._latencies_ms:
            return None
        ordered = sorted(self._latencies_ms)
        return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def serve_metrics(metrics: Metrics, healthy: Callable[[], tuple[bool, dict[str, Any]]], host: str, port: int) -> web.AppRunner:
    """Serve /metrics and /healthz on host:port (127.0.0.1 unless configured otherwise)."""

    async def metrics_handler(request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), content_type="text/plain", charset="utf-8")

    async def health_handler(request: web.Request) -> web.Response:
        ok, detail = healthy()
        return web.json_response({"ok": ok, **detail}, status=200 if ok else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", health_handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner
