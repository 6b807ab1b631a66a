"""Live minute bars: what the market traded since start, kept compact for klines and tickers.

Why this layout: REST klines and ticker/24hr are asked for every pair every poll, so a day of
live trading must be cheap to sum. The current minute is a dict of the pairs that traded;
closed minutes are frozen into (pair indexes, bars) arrays; running 24 h sums and hourly
high/low/open slots make a 24 h ticker O(hours), not O(trades). About a day is kept.
"""

from __future__ import annotations

import math

import numpy as np

from sim.klines import DAY_MINUTES
from sim.updates import Trade

KEEP_MINUTES = 25 * 60  # live minute bars kept (about a day, bounded memory)


class LiveBars:
    """Minute bars of n pairs (by index) from the start minute on."""

    def __init__(self, n: int, start_min: int) -> None:
        self.minute = start_min  # the current, still open minute
        self._cur: dict[int, list[float]] = {}
        self._closed: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._roll = np.zeros((n, 3))  # 24 h sums of closed live minutes: volume, quote volume, count
        self._hr_id = np.full(26, -1, dtype=np.int64)
        self._hr_hi = np.full((n, 26), -np.inf)
        self._hr_lo = np.full((n, 26), np.inf)
        self._hr_open = np.full((n, 26), np.nan)

    def record(self, i: int, trades: list[Trade]) -> None:
        """Fold one step's trades of pair i into its bar of the current minute."""
        bar = self._cur.get(i)
        if bar is None:
            t = trades[0].price
            bar = self._cur[i] = [t, t, t, t, 0.0, 0.0, 0.0]
        for t in trades:
            if t.price > bar[1]:
                bar[1] = t.price
            if t.price < bar[2]:
                bar[2] = t.price
            bar[4] += t.qty
            bar[5] += t.qty * t.price
        bar[3] = trades[-1].price
        bar[6] += len(trades)

    def close_minute(self, new_minute: int) -> None:
        """Freeze the current minute's bars into arrays; slide the 24 h sums; forget old minutes."""
        if self._cur:
            idx = np.fromiter(sorted(self._cur), dtype=np.int64, count=len(self._cur))
            data = np.array([self._cur[i] for i in idx.tolist()])
            m = self.minute
            self._closed[m] = (idx, data)
            self._roll[idx] += data[:, 4:7]
            hour = m // 60
            slot = hour % 26
            if self._hr_id[slot] != hour:
                self._hr_id[slot] = hour
                self._hr_hi[:, slot] = -np.inf
                self._hr_lo[:, slot] = np.inf
                self._hr_open[:, slot] = np.nan
            self._hr_hi[idx, slot] = np.maximum(self._hr_hi[idx, slot], data[:, 1])
            self._hr_lo[idx, slot] = np.minimum(self._hr_lo[idx, slot], data[:, 2])
            fresh = np.isnan(self._hr_open[idx, slot])
            self._hr_open[idx[fresh], slot] = data[fresh, 0]
        self._cur = {}
        for m in range(self.minute + 1 - DAY_MINUTES, new_minute + 1 - DAY_MINUTES):
            old = self._closed.get(m)
            if old is not None:
                self._roll[old[0]] -= old[1][:, 4:7]
        for m in [m for m in self._closed if m < new_minute - KEEP_MINUTES]:
            del self._closed[m]
        self.minute = new_minute

    def bar(self, i: int, minute: int) -> list[float] | None:
        """Pair i's bar (o, h, l, c, v, qv, n) of a live minute, None if it did not trade."""
        if minute == self.minute:
            return self._cur.get(i)
        got = self._closed.get(minute)
        if got is None:
            return None
        idx, data = got
        k = int(np.searchsorted(idx, i))
        if k < len(idx) and idx[k] == i:
            return data[k].tolist()
        return None

    def day_window(self, i: int, first_min: int, hist: tuple[float, float, float, float, float, float]) -> tuple[float, ...]:
        """(volume, quote volume, count, high, low, open) since first_min: history `hist` plus live trading.

        open stays the history's if it has one, else the first live hour's, else the current
        minute's; NaN if pair i never traded in the window.
        """
        v, qv, n, hi, lo, open_ = hist
        v += self._roll[i, 0]
        qv += self._roll[i, 1]
        n += self._roll[i, 2]
        cur = self._cur.get(i)
        if cur is not None:
            v, qv, n = v + cur[4], qv + cur[5], n + cur[6]
            hi, lo = max(hi, cur[1]), min(lo, cur[2])
        slots = np.nonzero(self._hr_id >= first_min // 60)[0]
        if len(slots):
            hi = max(hi, float(self._hr_hi[i, slots].max()))
            lo = min(lo, float(self._hr_lo[i, slots].min()))
            if math.isnan(open_):
                order = slots[np.argsort(self._hr_id[slots])]
                opens = self._hr_open[i, order]
                opens = opens[~np.isnan(opens)]
                open_ = float(opens[0]) if len(opens) else math.nan
        if math.isnan(open_) and cur is not None:
            open_ = cur[0]
        return v, qv, n, hi, lo, open_
