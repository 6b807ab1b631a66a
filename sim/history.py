"""Synthetic history: the klines and 24 h figures of the time before the market started.

Why synthesised, not generated: the scanner seeds a day of 1-minute bars (and REST asks for
months of 4 h ones) at start, but stepping the market through that past would take minutes.
Hashed noise (sim/noise.py) makes any window a direct computation: 5-minute volumes drawn around
the pair's activity, split into minutes, and a multi-scale price walk that ends exactly at the
start price, so history and the live market join without a jump.
"""

from __future__ import annotations

import math

import numpy as np

from sim.book import Pair
from sim.klines import DAY_MINUTES, MINUTE_MS
from sim.noise import gauss, smooth, u01

BLOCK_MS = 300_000  # history volumes are drawn per 5-minute block, the scanner's baseline unit
_SCALES = (1, 8, 64, 512, 4096, 32768, 262144)  # walk octaves, minutes


class SyntheticHistory:
    """History before start_ms for any pair; answers are pure functions of (pair, window)."""

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self._start_min = start_ms // MINUTE_MS

    def _walk(self, p: Pair, t_min: np.ndarray) -> np.ndarray:
        """Multi-scale log-price walk at times in (fractional) minutes."""
        out = np.zeros(len(t_min))
        for k, s in enumerate(_SCALES):
            out += p.sigma * math.sqrt(s / 2.0) * smooth(p.key + 101 * k, t_min / s)
        return out

    def _price(self, p: Pair, t_min: np.ndarray) -> np.ndarray:
        if p.w_start is None:  # one walk evaluation for both: each costs a fixed dozen NumPy calls per octave
            w = self._walk(p, np.append(t_min, self.start_ms / MINUTE_MS))
            p.w_start = float(w[-1])
            w = w[:-1]
        else:
            w = self._walk(p, t_min)
        return p.p0 * np.exp(np.clip(w - p.w_start, -3.0, 3.0))

    def _block_volumes(self, p: Pair, blocks: np.ndarray) -> np.ndarray:
        """Base volume per 5-minute block: around activity x 300 s x mean trade size, noisy, sometimes 0."""
        lam = p.spec.activity * BLOCK_MS / 1000.0
        p_zero = math.exp(-lam)
        slow = np.exp(0.3 * smooth(p.key + 7, blocks / 12.0) - 0.045)  # an hourly activity rhythm
        size = np.exp(0.5 * gauss(p.key + 8, blocks) - 0.125)
        v = p.mean_qty * lam / (1.0 - p_zero) * size * slow
        return np.where(u01(p.key + 9, blocks) < p_zero, 0.0, v)

    def minutes(self, p: Pair, m0: int, m1: int) -> np.ndarray:
        """Bars (rows: minute, o, h, l, c, v, qv, n) for minutes [m0, m1) clipped to [listing, start)."""
        m0 = max(m0, p.spec.listing_ms // MINUTE_MS)
        m1 = min(m1, self._start_min + 1 if self.start_ms % MINUTE_MS else self._start_min)
        if m1 <= m0:
            return np.zeros((0, 8))
        b0, b1 = m0 // 5, (m1 - 1) // 5 + 1
        blocks = np.arange(b0, b1, dtype=np.int64)
        vol_b = self._block_volumes(p, blocks)
        mins = np.arange(b0 * 5, b1 * 5, dtype=np.int64)
        if p.spec.activity * BLOCK_MS / 1000.0 >= 3.0:
            w = np.exp(0.4 * gauss(p.key + 10, mins)).reshape(-1, 5)
            w /= w.sum(axis=1, keepdims=True)
        else:  # a thin pair's few trades land in one minute of the block
            w = np.zeros((len(blocks), 5))
            w[np.arange(len(blocks)), (u01(p.key + 11, blocks) * 5).astype(np.int64)] = 1.0
        t_edges = np.arange(b0 * 5, b1 * 5 + 1, dtype=np.float64)
        t_edges[t_edges > self.start_ms / MINUTE_MS] = self.start_ms / MINUTE_MS
        px = self._price(p, t_edges)
        vwap_b = 0.5 * (px[0:-1:5] + px[5::5])
        v = (vol_b[:, None] * w).ravel()
        qv = (vol_b[:, None] * w * vwap_b[:, None]).ravel()
        vw = np.repeat(vwap_b, 5)
        o, c = px[:-1], px[1:]
        exc = np.abs(gauss(p.key + 12, mins)) * p.sigma * 0.5
        h = np.maximum(np.maximum(o, c), vw) * (1.0 + exc)
        lo = np.minimum(np.minimum(o, c), vw) * (1.0 - exc)
        start_min = self.start_ms // MINUTE_MS
        if self.start_ms % MINUTE_MS:
            part = mins == start_min
            f = (self.start_ms % MINUTE_MS) / MINUTE_MS
            v = np.where(part, v * f, v)
            qv = np.where(part, qv * f, qv)
        empty = v <= 0
        h = np.where(empty, o, h)
        lo = np.where(empty, o, lo)
        c = np.where(empty, o, c)
        n = np.where(empty, 0.0, np.maximum(1.0, np.round(v / p.mean_qty)))
        out = np.stack([mins.astype(np.float64), o, h, lo, c, v, qv, n], axis=1)
        keep = (mins >= m0) & (mins < m1)
        return out[keep]

    def blocks(self, p: Pair, b0: int, b1: int) -> np.ndarray:
        """Coarse bars for whole 5-minute blocks [b0, b1) wholly before the start block."""
        b0 = max(b0, -(-p.spec.listing_ms // BLOCK_MS))
        b1 = min(b1, self.start_ms // BLOCK_MS)
        if b1 <= b0:
            return np.zeros((0, 8))
        blocks = np.arange(b0, b1, dtype=np.int64)
        v = self._block_volumes(p, blocks)
        px = self._price(p, np.arange(b0, b1 + 1, dtype=np.float64) * 5.0)
        o, c = px[:-1], px[1:]
        vw = 0.5 * (o + c)
        exc = np.abs(gauss(p.key + 13, blocks)) * p.sigma * 1.2
        h = np.maximum(o, c) * (1.0 + exc)
        lo = np.minimum(o, c) * (1.0 - exc)
        empty = v <= 0
        n = np.where(empty, 0.0, np.maximum(1.0, np.round(v / p.mean_qty)))
        return np.stack([blocks.astype(np.float64) * 5.0, o, np.where(empty, o, h), np.where(empty, o, lo), np.where(empty, o, c), v,
                         v * vw, n], axis=1)  # fmt: skip

    def day_window(self, p: Pair, first_min: int) -> tuple[float, float, float, float, float, float]:
        """(volume, quote volume, count, high, low, open) of the history in [first_min, start).

        The scout asks for every pair's ticker every poll, so the day before start is summarised
        once per pair as suffix sums over 5-minute blocks; the window's first partial block is
        left out (at most 4 of 1,440 minutes).
        """
        if first_min * MINUTE_MS >= self.start_ms:
            return (0.0, 0.0, 0.0, -math.inf, math.inf, math.nan)
        if p.ticker_cache is None:
            sb = self.start_ms // BLOCK_MS
            b_first = sb - DAY_MINUTES // 5
            bars = self.blocks(p, b_first, sb)
            tail = self.minutes(p, sb * 5, self._start_min + 1)
            b_first = sb - len(bars)
            suf = np.zeros((len(bars) + 1, 6))
            suf[-1] = (0.0, 0.0, 0.0, -math.inf, math.inf, math.nan)
            if len(bars):
                suf[:-1, 0:3] = np.cumsum(bars[::-1, 5:8], axis=0)[::-1]
                suf[:-1, 3] = np.maximum.accumulate(bars[::-1, 2])[::-1]
                suf[:-1, 4] = np.minimum.accumulate(bars[::-1, 3])[::-1]
                suf[:-1, 5] = bars[:, 1]
            extra = (float(tail[:, 5].sum()), float(tail[:, 6].sum()), float(tail[:, 7].sum()),
                     float(tail[:, 2].max()) if len(tail) else -math.inf, float(tail[:, 3].min()) if len(tail) else math.inf,
                     float(tail[0, 1]) if len(tail) else math.nan)  # fmt: skip
            p.ticker_cache = (b_first, suf, extra)
        b_first, suf, extra = p.ticker_cache
        k = min(max(-(-first_min // 5) - b_first, 0), len(suf) - 1)
        v, qv, n, hi, lo, open_ = suf[k].tolist()
        if math.isnan(open_):
            open_ = extra[5]
        return v + extra[0], qv + extra[1], n + extra[2], max(hi, extra[3]), min(lo, extra[4]), open_
