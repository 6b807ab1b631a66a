"""The futures "last price vs fair price" detector (issue #17): per-contract state and episodes.

A perpetual's last trade price far above its fair (mark) price is a squeeze or a thin-book pump:
the fair price follows the index, the last price follows whoever just traded. Four independent
strategies (config `futures.strategy1..4`, common/futures_config.py) decide, on every ticker
update of a contract, whether their condition holds; each has its own episodes and cooldown per
symbol. The record and the log line are in detectors/futures_episodes.py.

Pure logic: no I/O, no clock. Every time is the exchange's, in ms, passed in, so a replay of the
same updates gives the same episodes. The feed (another module) calls on_ticker / on_book / gap /
close_all; one detector serves every contract.

Semantics, per contract (the tests' reference re-evaluates exactly this from the full history):
- An update counts only if last and fair are positive finite numbers and its time is not before
  the contract's previous counted update; anything else is ignored whole (`ignored` counts them),
  so a NaN, 0 or negative price never starts or ends an episode.
- "History" is the counted updates since the contract's last gap, before the current one.
  price_at(tau) is the last price of the newest history update with time <= tau; none -> the
  strategy does not hold (unknown is never evidence).
- ratio = last / fair. Strategy 1: ratio >= s1.spread_ratio_min, last - fair >= s1.min_abs_diff,
  last >= s1.min_price. Strategy 2: ratio >= s2.spread_ratio_min and last / price_at(t - lookback)
  >= spike_ratio_min. Strategy 3: ratio >= s3.spread_ratio_min; the window is the history updates
  with time > t - W plus the newest one with time <= t - W (required: the contract was watched for
  the whole window), i.e. the prices in effect over [t - W, t); last / mean(their last) >=
  pump_vs_baseline_min and (max - min) / min of their fair and the current fair <=
  mark_stability_max. Strategy 4: ratio >= s4.spread_ratio_min, last - fair >= s4.min_abs_diff,
  and the latest book (summarize_book) has spread_pct <= max_spread_pct and depth_usdt >=
  min_thick_depth_usdt. Seconds are turned into whole ms (round(s * 1000)).
- An episode of strategy k starts at an update where k holds, none is open and t >= the cooldown
  end; the peak moves to an update whose ratio is strictly higher; it ends (by "condition") at the
  first update where k does not hold, end_ms = that update's time; the cooldown then runs to
  end_ms + per_symbol_seconds. Episodes are decided on ticker updates only; a book update is
  state read by the next ticker.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Sequence

from common.futures_config import FuturesConfig
from detectors.futures_episodes import BookSummary, Episode, EpisodeEvent, summarize_book

_INF = math.inf
_NO_EVENTS: tuple[EpisodeEvent, ...] = ()


class _Contract:
    """Everything the detector remembers of one contract."""

    __slots__ = ("t_ms", "last", "fair", "index", "hist_t", "hist_last", "hist_fair", "book", "book_t", "summary",
                 "summary_band", "open", "n_open", "cool_until")  # fmt: skip

    def __init__(self) -> None:
        self.t_ms = -(2**62)  # time of the newest counted update (kept across gaps: time never goes back)
        self.last = self.fair = self.index = math.nan
        # History for the look-backs, three parallel deques (no tuple per update); pruned to the
        # newest update at or before t - the longest look-back, plus everything after it.
        self.hist_t: deque[int] = deque()
        self.hist_last: deque[float] = deque()
        self.hist_fair: deque[float] = deque()
        self.book: tuple[Sequence[Sequence[float]], Sequence[Sequence[float]], float] | None = None
        self.book_t = -(2**62)
        self.summary: BookSummary | None = None  # of book, computed lazily for summary_band
        self.summary_band = math.nan
        self.open: list[Episode | None] = [None, None, None, None]  # per strategy 1..4
        self.n_open = 0
        self.cool_until = [-(2**62)] * 4  # per strategy: no new episode before this time

    def clear_history(self) -> None:
        self.hist_t.clear()
        self.hist_last.clear()
        self.hist_fair.clear()
        self.book = None
        self.summary = None


class FairPriceDetector:
    """Episodes of last price >> fair price for every futures contract, from the feed's updates.

    The config comes in at construction and with set_config (a /cfg or SIGHUP); the memory (history,
    books, open episodes, cooldowns) is kept across a config change. A wider look-back applies once
    that much history has been seen after the change.
    """

    def __init__(self, config: FuturesConfig) -> None:
        self._contracts: dict[str, _Contract] = {}
        self.ignored = 0  # updates dropped: a price not positive and finite, or time going back
        self.set_config(config)

    def set_config(self, config: FuturesConfig) -> None:
        """Take new settings; the thresholds are flattened here so an update reads plain attributes."""
        self.config = config
        self._s1, self._s2, self._s3, self._s4 = config.strategy1, config.strategy2, config.strategy3, config.strategy4
        self._spike_ms = round(self._s2.spike_lookback_secs * 1000)
        self._window_ms = round(self._s3.baseline_window_secs * 1000)
        self._keep_ms = max(self._spike_ms, self._window_ms)
        self._cooldown_ms = round(config.per_symbol_seconds * 1000)
        enabled = [s.spread_ratio_min for s in (self._s1, self._s2, self._s3, self._s4) if s.enabled]
        # Below every enabled strategy's ratio nothing can hold: the quiet path of almost every update.
        self._ratio_floor = min(enabled, default=_INF)
        self._checks = (self._holds1, self._holds2, self._holds3, self._holds4)

    # --------------------------------------------------------------------------------- updates

    def on_ticker(self, symbol: str, t_ms: int, last: float, fair: float, index: float) -> tuple[EpisodeEvent, ...]:
        """One update of a contract's last, fair (mark) and index price at exchange time t_ms.

        The feed passes the latest known value of each (a fair-price push repeats the last price).
        Returns the episodes started and ended by this update, by strategy number (usually none).
        """
        c = self._contracts.get(symbol)
        if c is None:
            c = self._contracts[symbol] = _Contract()
        if not (0.0 < last < _INF and 0.0 < fair < _INF) or t_ms < c.t_ms:
            self.ignored += 1
            return _NO_EVENTS
        hist_t = c.hist_t
        cut = t_ms - self._keep_ms
        while len(hist_t) > 1 and hist_t[1] <= cut:
            hist_t.popleft()
            c.hist_last.popleft()
            c.hist_fair.popleft()
        ratio = last / fair
        events = _NO_EVENTS
        if ratio >= self._ratio_floor or c.n_open:
            events = self._decide(symbol, c, t_ms, last, fair, index, ratio)
        hist_t.append(t_ms)
        c.hist_last.append(last)
        c.hist_fair.append(fair)
        c.t_ms, c.last, c.fair, c.index = t_ms, last, fair, index
        return events

    def on_book(
        self, symbol: str, t_ms: int, bids: Sequence[Sequence[float]], asks: Sequence[Sequence[float]],
        contract_size: float = 1.0,
    ) -> None:  # fmt: skip
        """The contract's latest book (e.g. 20 levels of (price, contracts, orders) per side).

        Kept by reference and summarised only when strategy 4 needs it, so the caller must hand over
        new lists, not mutate these. qty * contract_size is the base amount (1.0 when qty is base
        already). A book older than the one held is ignored.
        """
        c = self._contracts.get(symbol)
        if c is None:
            c = self._contracts[symbol] = _Contract()
        if t_ms < c.book_t:
            return
        c.book, c.book_t, c.summary = (bids, asks, contract_size), t_ms, None

    def gap(self, symbol: str, t_ms: int) -> tuple[EpisodeEvent, ...]:
        """The feed lost this contract's updates (a dropped link, a resubscribe) and noticed at t_ms.

        What happened between the last update and now is unknown, so an open episode ends at the
        last update before the gap (end_ms = that update's time, the last moment the condition
        was known to hold), marked "gap"; the events carry t_ms. The history and the book are
        dropped: look-backs restart from the next update, never spanning the hole. Cooldowns are
        kept (from end_ms).
        """
        c = self._contracts.get(symbol)
        if c is None:
            return _NO_EVENTS
        events = self._end_open(symbol, c, c.t_ms, t_ms, "gap")
        c.clear_history()
        return events

    def close_all(self, t_ms: int, reason: str = "shutdown") -> tuple[EpisodeEvent, ...]:
        """End every open episode: "shutdown" (the process stops at t_ms) or "gap" (every link lost).

        At shutdown the feed was live until t_ms and nothing had ended the condition, so the episode
        ends at t_ms (or its last update, if later), marked "shutdown": cut, not finished. "gap" is
        gap() for every contract.
        """
        if reason not in ("shutdown", "gap"):
            raise ValueError(f"close_all reason: got {reason!r}, expected 'shutdown' or 'gap'")
        events: list[EpisodeEvent] = []
        for symbol in sorted(self._contracts):
            c = self._contracts[symbol]
            if reason == "gap":
                events += self.gap(symbol, t_ms)
            else:
                events += self._end_open(symbol, c, max(t_ms, c.t_ms), t_ms, "shutdown")
        return tuple(events)

    def forget(self, symbol: str, t_ms: int) -> tuple[EpisodeEvent, ...]:
        """A contract left the universe (delisted, filtered out): end it as a gap and drop its memory."""
        events = self.gap(symbol, t_ms)
        self._contracts.pop(symbol, None)
        return events

    # ------------------------------------------------------------------------------ reading

    def open_episodes(self) -> list[Episode]:
        """Copies of the open episodes, by symbol then strategy."""
        return [dataclasses.replace(ep) for s in sorted(self._contracts) for ep in self._contracts[s].open if ep]

    def book_summary(self, symbol: str) -> BookSummary | None:
        """The latest book of symbol as strategy 4 reads it (its band), or None."""
        c = self._contracts.get(symbol)
        return None if c is None else self._summary(c)

    def symbols(self) -> list[str]:
        return sorted(self._contracts)

    # ----------------------------------------------------------------------------- internals

    def _decide(
        self, symbol: str, c: _Contract, t_ms: int, last: float, fair: float, index: float, ratio: float
    ) -> tuple[EpisodeEvent, ...]:
        events: list[EpisodeEvent] = []
        for k in range(4):
            holds = self._checks[k](c, t_ms, last, fair, ratio)
            ep = c.open[k]
            if ep is not None:
                if not holds:
                    events.append(self._end(c, k, ep, t_ms, t_ms, "condition"))
                elif ratio > ep.peak_ratio:
                    ep.peak_ratio, ep.peak_last, ep.peak_fair, ep.peak_ms = ratio, last, fair, t_ms
            elif holds and t_ms >= c.cool_until[k]:
                book = self._summary(c)
                spread, depth = (None, None) if book is None else (book.spread_pct, book.depth_usdt)
                ep = Episode(k + 1, symbol, t_ms, last, fair, index, spread, depth, ratio, last, fair, t_ms)
                c.open[k] = ep
                c.n_open += 1
                events.append(EpisodeEvent("started", t_ms, dataclasses.replace(ep)))
        return tuple(events) if events else _NO_EVENTS

    def _end(self, c: _Contract, k: int, ep: Episode, end_ms: int, t_ms: int, by: str) -> EpisodeEvent:
        ep.end_ms, ep.ended_by = end_ms, by
        c.open[k] = None
        c.n_open -= 1
        c.cool_until[k] = end_ms + self._cooldown_ms
        return EpisodeEvent("ended", t_ms, ep)

    def _end_open(self, symbol: str, c: _Contract, end_ms: int, t_ms: int, by: str) -> tuple[EpisodeEvent, ...]:
        if not c.n_open:
            return _NO_EVENTS
        return tuple(self._end(c, k, ep, end_ms, t_ms, by) for k, ep in enumerate(c.open) if ep is not None)

    def _summary(self, c: _Contract) -> BookSummary | None:
        band = self._s4.depth_band_pct
        if c.book is None:
            return None
        if c.summary is None or c.summary_band != band:
            c.summary, c.summary_band = summarize_book(c.book[0], c.book[1], c.book[2], band), band
        return c.summary

    def _holds1(self, c: _Contract, t_ms: int, last: float, fair: float, ratio: float) -> bool:
        s = self._s1
        return s.enabled and ratio >= s.spread_ratio_min and last - fair >= s.min_abs_diff and last >= s.min_price

    def _holds2(self, c: _Contract, t_ms: int, last: float, fair: float, ratio: float) -> bool:
        s = self._s2
        if not (s.enabled and ratio >= s.spread_ratio_min):
            return False
        tau = t_ms - self._spike_ms
        hist_t = c.hist_t
        for i in range(len(hist_t) - 1, -1, -1):  # newest first: the look-back is a few updates deep
            if hist_t[i] <= tau:
                return last / c.hist_last[i] >= s.spike_ratio_min
        return False

    def _holds3(self, c: _Contract, t_ms: int, last: float, fair: float, ratio: float) -> bool:
        s = self._s3
        if not (s.enabled and ratio >= s.spread_ratio_min):
            return False
        hist_t = c.hist_t
        n = len(hist_t)
        cut = t_ms - self._window_ms
        i = n - 1
        while i >= 0 and hist_t[i] > cut:
            i -= 1
        if i < 0:
            return False  # not watched for the whole window (start, or just after a gap)
        lasts = [c.hist_last[j] for j in range(i, n)]
        if not last / (math.fsum(lasts) / len(lasts)) >= s.pump_vs_baseline_min:
            return False
        fairs = [c.hist_fair[j] for j in range(i, n)]
        fairs.append(fair)
        lo = min(fairs)
        return (max(fairs) - lo) / lo <= s.mark_stability_max

    def _holds4(self, c: _Contract, t_ms: int, last: float, fair: float, ratio: float) -> bool:
        s = self._s4
        if not (s.enabled and ratio >= s.spread_ratio_min and last - fair >= s.min_abs_diff):
            return False
        book = self._summary(c)
        return book is not None and book.spread_pct <= s.max_spread_pct and book.depth_usdt >= s.min_thick_depth_usdt
