"""Plain-Python twin of core/windows.pyx: the same float32 slots, the same closing rules."""

from __future__ import annotations

import math

import numpy as np

WINDOW_S, BLOCK_S, SHORT_S, BASELINE_N, DEPTH_SLOTS, DEPTH_STEP_S, DEPTH_LAG_S = 300, 60, 16, 72, 40, 5, 180
f32 = np.float32


class ReferenceWindows:
    def __init__(self) -> None:
        self.bar_sec = -1
        self.bar_vol = self.bar_qvol = self.bar_buy = 0.0
        self.bar_trades = 0
        self.last_price = math.nan
        self.vol = [f32(0)] * WINDOW_S
        self.qvol = [f32(0)] * WINDOW_S
        self.buy_vol = [f32(0)] * SHORT_S
        self.trades = [0] * SHORT_S
        self.buckets: dict[int, float] = {}  # completed bucket id -> float32 volume
        self.open_bucket = -1
        self.open_bucket_vol = 0.0
        self.known_from = -1
        self.depth: dict[int, float] = {}

    def on_trade(self, price: float, qty: float, side: int, time_ms: int) -> None:
        if self.bar_sec < 0:
            self.bar_sec = time_ms // 1000
            self.open_bucket = self.bar_sec // 300
            if self.known_from < 0:
                self.known_from = self.open_bucket
        elif time_ms >= (self.bar_sec + 1) * 1000:
            self.advance(time_ms)
        self.last_price = price
        self.bar_vol += qty
        self.bar_qvol += qty * price
        if side == 1:
            self.bar_buy += qty
        self.bar_trades += 1

    def _close_bar(self) -> None:
        s = self.bar_sec
        self.vol[s % WINDOW_S] = f32(self.bar_vol)
        self.qvol[s % WINDOW_S] = f32(self.bar_qvol)
        self.buy_vol[s % SHORT_S] = f32(self.bar_buy)
        self.trades[s % SHORT_S] = min(self.bar_trades, 65535)
        self.open_bucket_vol += float(f32(self.bar_vol))
        self.bar_vol = self.bar_qvol = self.bar_buy = 0.0
        self.bar_trades = 0

    def _complete(self, bucket: int, volume: float) -> None:
        self.buckets[bucket] = float(f32(volume))
        for old in [b for b in self.buckets if b < bucket - 2 * BASELINE_N]:
            del self.buckets[old]

    def advance(self, now_ms: int) -> int:
        now_sec = now_ms // 1000
        if self.bar_sec < 0:
            self.bar_sec = now_sec
            self.open_bucket = now_sec // 300
            if self.known_from < 0:
                self.known_from = self.open_bucket
            return 0
        if now_sec <= self.bar_sec:
            return 0
        closed = 0
        s = self.bar_sec
        while s < now_sec:
            self.bar_sec = s
            self._close_bar()
            closed += 1
            b = (s + 1) // 300
            if b != self.open_bucket:
                self._complete(self.open_bucket, self.open_bucket_vol)
                self.open_bucket_vol = 0.0
                self.open_bucket = b
            s += 1
            if s < now_sec - WINDOW_S:
                self._complete(self.open_bucket, self.open_bucket_vol)
                s = now_sec - WINDOW_S
                self.open_bucket = s // 300
                self.open_bucket_vol = 0.0
        self.bar_sec = now_sec
        return closed

    def seed_klines(self, rows: list[tuple[int, float, float]]) -> None:
        first = -1
        for open_ms, volume, _ in rows:
            bucket = open_ms // 300_000
            if self.open_bucket >= 0 and bucket >= self.open_bucket:
                continue
            self._complete(bucket, volume)
            first = bucket if first < 0 else min(first, bucket)
        if first >= 0 and (self.known_from < 0 or first < self.known_from):
            self.known_from = first

    def median_baseline(self) -> tuple[float, int]:
        cur = self.open_bucket
        if cur < 0 or self.known_from < 0:
            return math.nan, 0
        values = [self.buckets.get(b, 0.0) for b in range(cur - BASELINE_N, cur) if b >= self.known_from]
        if not values:
            return math.nan, 0
        values.sort()
        n = len(values)
        return (values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2.0), n

    def record_bid_depth(self, time_ms: int, depth: float) -> None:
        block = (time_ms // 1000) // DEPTH_STEP_S
        if block not in self.depth:
            self.depth[block] = float(f32(depth))
        for old in [b for b in self.depth if b <= block - DEPTH_SLOTS]:
            del self.depth[old]

    def depth_at(self, sec: int) -> float:
        return self.depth.get(sec // DEPTH_STEP_S, math.nan)

    def sums(self) -> tuple[float, float, float, float, float, float]:
        end = self.bar_sec
        if end < 0:
            return (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        v = q = best = 0.0
        for k in range(WINDOW_S // BLOCK_S):
            block = 0.0
            for s in range(end - WINDOW_S + k * BLOCK_S, end - WINDOW_S + (k + 1) * BLOCK_S):
                block += float(self.vol[s % WINDOW_S])
                q += float(self.qvol[s % WINDOW_S])
            v += block
            best = max(best, block)
        t10 = float(sum(self.trades[s % SHORT_S] for s in range(end - 10, end)))
        b10 = 0.0
        v10 = 0.0
        for s in range(end - 10, end):
            b10 += float(self.buy_vol[s % SHORT_S])
            v10 += float(self.vol[s % WINDOW_S])
        return (v, q, best, t10, b10, v10)
