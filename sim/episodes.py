"""Scripted episodes (pumps, natural spikes, quiet pairs): what a scenario does to a pair each step.

Why apart from the book: a scenario never moves the book itself. It only bends the odds (trade
rate, buy share) and gives makers a target mid to lean toward; the book model (sim/book.py)
turns that into trades and level changes. Each episode is anchored at the mid its pair had
when the episode began, so the path is relative to wherever the random walk had taken it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.book import Pair
    from sim.scenario import Episode


@dataclass
class Mod:
    """What the scenario does to one pair in one step."""

    mult: float = 1.0
    buy_p: float = 0.5
    target: float | None = None  # mid target in ticks; makers lean toward it
    force: bool = False  # pump: drag the book to the target every step
    bid_scale: float = 1.0
    ask_scale: float = 1.0
    quiet: bool = False


class EpisodeScript:
    """A scenario's resolved episodes and the mid each one was anchored at."""

    def __init__(self, episodes: list[Episode]) -> None:
        self.episodes = episodes
        self._anchor: dict[int, float] = {}

    def mods(self, t_s: float, pairs: Sequence[Pair]) -> dict[int, Mod]:
        """The scenario's effect on each touched pair at exchange second t_s after start."""
        mods: dict[int, Mod] = {}
        for n, ep in enumerate(self.episodes):
            end = ep.start_s + ep.duration_s
            after = ep.kind == "pump" and end <= t_s < end + 3 * ep.duration_s
            if not (ep.start_s <= t_s < end or after):
                continue
            p = pairs[ep.index]
            m = mods.setdefault(ep.index, Mod())
            if n not in self._anchor:
                self._anchor[n] = (p.bid_top + p.ask_top) / 2.0
            anchor = self._anchor[n]
            if ep.kind == "quiet":
                m.quiet = True
            elif ep.kind == "spike":
                m.mult *= ep.volume_mult
                m.target = anchor
            elif after:  # the pump is over: activity back to normal, price gives back a little, slowly
                peak = anchor * (1.0 + ep.rise_pct / 100.0)
                m.target = peak * (1.0 - 0.25 * (ep.rise_pct / 100.0) / (1.0 + ep.rise_pct / 100.0) * (t_s - end) / (3 * ep.duration_s))
                m.buy_p = 0.47
            else:
                frac = (t_s - ep.start_s) / ep.duration_s
                m.mult *= ep.volume_mult
                m.buy_p = 0.75
                m.target = anchor * (1.0 + ep.rise_pct / 100.0 * frac)
                m.force = True
                m.bid_scale = 2.0 * ep.book_imbalance * (1.0 + frac)
                m.ask_scale = 2.0 * (1.0 - ep.book_imbalance)
        return mods
