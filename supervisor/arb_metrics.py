"""The triangle child's figures on /metrics: counters, gauges and the episode-duration histogram.

Why a collector of its own: the child sends plain numbers every few seconds (common/messages.py
ArbStats); the supervisor turns them into proper Prometheus types at scrape time (counters end in
_total, the durations are a real histogram in seconds so dashboards can take quantiles), never
labelled by cycle or symbol.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

PREFIX = "scanner"
DOCS = {
    "arb_frames_total": "Book frames received by the triangle child",
    "arb_decode_errors_total": "Book frames of the triangle child that failed to decode",
    "arb_book_updates_total": "Pair book updates applied to the cycle pricer",
    "arb_cycles_repriced_total": "Cycle pricings (only the cycles through each updated pair)",
    "arb_opportunities_total": "Triangle opportunities started (size-aware profit above arb.min_profit_bps)",
    "arb_opportunities_stored_total": "Triangle opportunities ended and stored in arb_opportunities",
    "arb_pairs": "Pairs the triangle child watches",
    "arb_cycles": "Cycles enumerated from exchangeInfo",
    "arb_opportunities_open": "Triangle opportunities open now",
    "arb_links_up": "WebSocket links of the triangle child that are up",
    "arb_latency_p50_us": "Frame received to opportunity started, median of the recent ones, microseconds",
}


class ArbCollector(Collector):
    """Reads the newest ArbStats values (empty until the child reports)."""

    def __init__(self, values: Callable[[], dict[str, Any]]) -> None:
        self.values = values

    def collect(self) -> Iterable[Any]:
        v = self.values()
        if not v:
            return
        for name, value in (v.get("counters") or {}).items():
            family = CounterMetricFamily(f"{PREFIX}_{name.removesuffix('_total')}", DOCS.get(name, name))
            family.add_metric([], float(value))
            yield family
        for name, value in (v.get("gauges") or {}).items():
            family = GaugeMetricFamily(f"{PREFIX}_{name}", DOCS.get(name, name))
            family.add_metric([], float(value))
            yield family
        bounds, counts = v.get("duration_buckets") or [], v.get("duration_counts") or []
        if len(counts) == len(bounds) + 1:
            running, buckets = 0, []
            for bound, n in zip([*map(str, bounds), "+Inf"], counts, strict=True):
                running += int(n)
                buckets.append((bound, float(running)))
            total = float(v.get("duration_sum") or 0.0)
            hist = HistogramMetricFamily(f"{PREFIX}_arb_opportunity_duration_seconds", "Durations of stored triangle opportunities",
                                         buckets=buckets, sum_value=total if math.isfinite(total) else 0.0)  # fmt: skip
            yield hist
