"""Triangle opportunities as episodes: start, peak, end, per cycle.

Why episodes and not points: a dislocation lasts from a few hundred milliseconds to minutes and
its cycle is re-priced on every update of any of its three pairs; a row per pricing would be
thousands of rows for one opportunity. An episode starts when the cycle's size-aware profit clears
min_profit_bps with at least min_size_usdt (the compiled pricer's PROFITABLE), tracks its peak (the
profit of min_size_usdt after fees, rounding and the L10 walk, with the largest size and leg ages
at that moment) and ends at the first pricing that is not profitable, naming why (below the
threshold, a stale, one-sided or crossed leg), or on a gap or shutdown.

Pure Python on plain numbers: the child process (supervisor/arb.py) reads the pricer's results and
feeds them here; tests drive it directly.
"""

from __future__ import annotations

from dataclasses import dataclass

END_REASONS = {0: "below", 2: "unseen", 3: "one_sided", 4: "crossed", 5: "stale"}  # core.cycles status codes
PROFITABLE = 1


@dataclass(slots=True)
class ArbEpisode:
    """One opportunity of one cycle (end_ms None while open)."""

    cycle: int
    start_ms: int
    peak_ms: int
    peak_bps: float
    size: float  # the largest start amount above the threshold, at the peak
    size_bps: float  # the profit of that size
    ages_ms: tuple[int, int, int]  # each leg's age at the peak
    updates: int = 1
    end_ms: int | None = None
    ended_by: str = ""

    @property
    def duration_ms(self) -> int:
        return 0 if self.end_ms is None else self.end_ms - self.start_ms


@dataclass(frozen=True, slots=True)
class ArbEvent:
    kind: str  # "started" or "ended"
    episode: ArbEpisode


class ArbEpisodes:
    """Open episodes by cycle; on_result turns each pricing of a touched cycle into events."""

    def __init__(self) -> None:
        self.open: dict[int, ArbEpisode] = {}

    def on_result(self, cycle: int, status: int, t_ms: int, edge_bps: float, size: float, size_bps: float,
                  ages_ms: tuple[int, int, int]) -> ArbEvent | None:  # fmt: skip
        """One pricing of a cycle (core.cycles result fields); an event when an episode starts or ends."""
        ep = self.open.get(cycle)
        if status == PROFITABLE:
            if ep is None:
                ep = self.open[cycle] = ArbEpisode(cycle, t_ms, t_ms, edge_bps, size, size_bps, ages_ms)
                return ArbEvent("started", ep)
            ep.updates += 1
            if edge_bps > ep.peak_bps:
                ep.peak_ms, ep.peak_bps, ep.size, ep.size_bps, ep.ages_ms = t_ms, edge_bps, size, size_bps, ages_ms
            return None
        if ep is None:
            return None
        return self.end(cycle, t_ms, END_REASONS.get(status, "below"))

    def end(self, cycle: int, t_ms: int, reason: str) -> ArbEvent:
        """End one open episode now (a gap in its legs' feed)."""
        ep = self.open.pop(cycle)
        ep.end_ms, ep.ended_by = max(t_ms, ep.start_ms), reason
        return ArbEvent("ended", ep)

    def close_all(self, t_ms: int, reason: str) -> list[ArbEvent]:
        """End every open episode (a gap in the feed, a universe change, shutdown)."""
        return [self.end(c, t_ms, reason) for c in sorted(self.open)]
