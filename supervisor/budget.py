"""Card budget: at most scanner.max_cards_per_hour and scanner.max_cards_per_day cards; the rest are stored suppressed.

Why: even a good profile fires a few hundred times a day over ~2,000 MEXC pairs, and a noisy market
(one coin pulling its sector) fires dozens of pairs in a minute. Nobody reads that many cards; the
real pumps drown. The budget keeps the chat readable and keeps every signal: one over the budget is
stored with `suppressed = "card budget: ..."` (its outcome is still watched) and counted in /stats.

Strength (what "the strongest" means): how far the signal's probability is above its profile's
threshold, as a share of the room left above that threshold,

    strength = (prob - prob_threshold) / (1 - prob_threshold)      0 at the threshold, 1 at prob 1

so profiles with different thresholds (alpha1 0.60, flash 0.98) compare fairly; ties go to the
larger magnitude (the detector's re-alert field, PM for pumps).

Rules, per window (the last 60 min and the last 24 h of exchange time; a cap of 0 = no limit):
  1. The signals scored together (one batch of a shard's rows) are judged strongest first, so a
     burst larger than the budget left sends its strongest signals.
  2. Full: a window that already holds `cap` cards lets nothing through.
  3. Second half: once a window holds half its cap, a new card must be at least as strong as the
     median card of that window sent before this pass; the rest of the budget is kept for signals
     stronger than usual, so a steady drizzle of weak signals does not spend it all in the first
     minutes. (Cards of the same exchange second do not raise the bar: a burst is judged by rank.)
A later, stronger signal never goes over the cap (the cap is a promise to the chat); it is stored
suppressed like the others, and /stats shows how many were held back and the strongest of them.

Exchange time, as the cooldown: a replay gives the same cards at any speed. Caps are read from the
running config on every signal, so /cfg and /reload change them at once.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable
from typing import Any

from common.config import ScannerConfig
from detectors.registry import DETECTORS
from store.schema import BUDGET_REASON

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
REASON_PREFIX = BUDGET_REASON


def strength(prob: float, threshold: float) -> float:
    """(prob - threshold) / (1 - threshold), clipped to [0, 1]; 1 - threshold <= 0 counts prob >= 1 as full strength."""
    room = 1.0 - threshold
    if room <= 0.0:
        return 1.0 if prob >= 1.0 else 0.0
    return min(max((prob - threshold) / room, 0.0), 1.0)


def profile_threshold(detectors_config: Any, profile: str) -> tuple[float, str]:
    """(the running prob_threshold, the detector's magnitude field) of a profile; (0.0, "") for an unknown one."""
    for detector in DETECTORS.values():
        if any(p.name == profile for p in detector.profiles):
            return float(detector.settings(detector.section(detectors_config), profile).prob_threshold), detector.magnitude
    return 0.0, ""


def signal_strength(prob: float, profile: str, detectors_config: Any) -> float:
    """strength() of a signal under its profile's running threshold."""
    return strength(prob, profile_threshold(detectors_config, profile)[0])


class CardBudget:
    """The cards of the last 24 h (exchange ms, strength) and the verdict for the next one."""

    def __init__(self) -> None:
        self.cards: deque[tuple[int, float]] = deque()  # (exchange ms, strength)
        self.suppressed = 0  # signals held back by the budget since start
        self.newest_ms = 0

    def restore(self, cards: Iterable[tuple[int, float]]) -> None:
        """Cards a previous run sent (exchange ms, strength), so a restart does not reopen a spent budget."""
        self.cards = deque(sorted(cards))
        if self.cards:
            self.newest_ms = max(self.newest_ms, self.cards[-1][0])

    def _expire(self, now_ms: int) -> None:
        while self.cards and self.cards[0][0] <= now_ms - DAY_MS:
            self.cards.popleft()

    def check(self, t_ms: int, value: float, config: ScannerConfig) -> str | None:
        """None when a card of this strength may go out at exchange time t_ms; else why not (the stored reason)."""
        self.newest_ms = max(self.newest_ms, t_ms)
        self._expire(self.newest_ms)
        for name, span, cap in (("hour", HOUR_MS, config.max_cards_per_hour), ("day", DAY_MS, config.max_cards_per_day)):
            if cap <= 0:
                continue
            window = [(t, s) for t, s in self.cards if t > self.newest_ms - span]
            if len(window) >= cap:
                return f"{REASON_PREFIX}: {cap} cards per {name} used"
            earlier = [s for t, s in window if t // 1000 != t_ms // 1000]  # a burst's own cards do not raise its bar
            if 2 * len(window) >= cap and earlier and value < (bar := statistics.median(earlier)):
                return (f"{REASON_PREFIX}: half of the {cap} cards per {name} used and strength {value:.3f} "
                        f"is below the median card's {bar:.3f}")  # fmt: skip
        return None

    def record(self, t_ms: int, value: float) -> None:
        """A card went out."""
        self.cards.append((t_ms, value))

    def figures(self) -> dict[str, float]:
        """Prometheus gauges: cards in the windows and signals held back since start."""
        last_hour = sum(1 for t, _ in self.cards if t > self.newest_ms - HOUR_MS)
        return {"cards_last_hour": float(last_hour), "cards_last_day": float(len(self.cards)),
                "cards_suppressed_by_budget_total": float(self.suppressed)}  # fmt: skip


def strongest_first(decisions: list[Any], detectors_config: Any) -> list[Any]:
    """The decisions of one pass, strongest first, ties by magnitude (stable: equal ones keep exchange-time order)."""
    if len(decisions) < 2:
        return decisions

    def key(d: Any) -> tuple[float, float]:
        threshold, magnitude = profile_threshold(detectors_config, d.profile)
        m = float(d.row.get(magnitude, 0.0) or 0.0) if magnitude else 0.0
        return strength(float(d.prob), threshold), m if m == m else 0.0

    return sorted(decisions, key=key, reverse=True)


__all__ = ["CardBudget", "REASON_PREFIX", "profile_threshold", "signal_strength", "strength", "strongest_first"]
