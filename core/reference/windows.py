"""Plain-Python twin of core/windows.pyx: the same float32 slots, closing rules and summing order.

Why the same float32 rounding: the compiled windows keep one-second bars as float32 to fit the
memory budget; the twin rounds the same values at the same points and adds them in the same
order, so the property tests can demand exact equality rather than a tolerance. The storage is
plain (dicts keyed by second or bucket) so the rules can be read without ring-buffer arithmetic.
"""

from __future__ import annotations

import math

import numpy as np

WINDOW_S, BLOCK_S, BURST_S, BUCKET_S, BASELINE_N, DEPTH_SLOTS, DEPTH_LAG_S = 300, 60, 10, 300, 72, 192, 180
FLASH_S, RUSH_SHORT_S, RET_LONG_S = 25, 5, 60
f32 = np.float32


def _r(x: float) -> float:
    """x rounded to float32, back as a Python float."""
    return float(f32(x))


def _good_trade(price: float, qty: float) -> bool:
    return price > 0.0 and math.isfinite(price) and qty >= 0.0 and math.isfinite(qty)


class ReferenceWindows:
    """Closed one-second bars by second, known five-minute buckets by id, depth samples by second."""

    def __init__(self) -> None:
        self.bar_sec = -1
        self.live_from_sec = -1
        self.bar_vol = self.bar_qvol = self.bar_buy_vol = 0.0
        self.bar_trades = self.bar_rush = 0
        self.run: tuple[int, int] | None = None  # (time_ms, side) of the last deal's run
        self.run_len = 0
        self.bar_first = self.bar_last = math.nan
        self.last_price = math.nan
        # sec -> f32 vol, qvol, buy vol; trades, rush orders; f32 last price at the end of the second
        self.bars: dict[int, tuple[float, float, float, int, int, float]] = {}
        self.buckets: dict[int, float] = {}  # known bucket id -> f32 volume
        self.live: dict[int, tuple[float, float, float]] = {}  # live-seen bucket -> f32 trades, rush, qvol
        self.open_bucket = -1
        self.open_bucket_vol = 0.0
        self.open_flash = [0.0, 0.0, 0.0]  # trades, rush, qvol of the bucket in progress
        self.depth: dict[int, float] = {}  # sec -> f32 sample
        self.depth_first = -1

    def _start(self, sec: int) -> None:
        self.bar_sec = self.live_from_sec = sec
        self.open_bucket = sec // BUCKET_S
        self.buckets = {b: v for b, v in self.buckets.items() if b < self.open_bucket}

    def on_trade(self, price: float, qty: float, side: int, time_ms: int) -> None:
        if not _good_trade(price, qty):
            raise ValueError(f"bad deal: price {price!r}, qty {qty!r}")
        if self.bar_sec < 0:
            self._start(time_ms // 1000)
        elif time_ms >= (self.bar_sec + 1) * 1000:
            self.advance(time_ms)
        if self.bar_trades == 0:
            self.bar_first = price
        self.bar_last = self.last_price = price
        self.bar_vol += qty
        self.bar_qvol += qty * price
        if side == 1:
            self.bar_buy_vol += qty
        self.bar_trades += 1
        if self.run == (time_ms, side):
            self.run_len += 1
            if self.run_len == 2:  # a rush order: counted once, when its second deal arrives
                self.bar_rush += 1
        else:
            self.run, self.run_len = (time_ms, side), 1

    def _close_bar(self) -> None:
        s = self.bar_sec
        trades, rush = min(self.bar_trades, 65535), min(self.bar_rush, 65535)
        self.bars[s] = (_r(self.bar_vol), _r(self.bar_qvol), _r(self.bar_buy_vol), trades, rush, _r(self.last_price))
        if len(self.bars) > WINDOW_S + 2:
            self.bars = {t: bar for t, bar in self.bars.items() if t >= s - WINDOW_S}
        self.open_bucket_vol += _r(self.bar_vol)
        self.open_flash = [self.open_flash[0] + trades, self.open_flash[1] + rush, self.open_flash[2] + _r(self.bar_qvol)]
        self.bar_vol = self.bar_qvol = self.bar_buy_vol = 0.0
        self.bar_trades = self.bar_rush = 0
        self.bar_first = self.bar_last = math.nan

    def _complete(self, bucket: int, volume: float, flash: list[float]) -> None:
        if bucket * BUCKET_S < self.live_from_sec:
            return  # live data started inside this bucket: its volume is partial
        self.buckets[bucket] = _r(volume)
        self.live[bucket] = (_r(flash[0]), _r(flash[1]), _r(flash[2]))
        for old in [b for b in self.buckets if b < bucket - 2 * BASELINE_N]:
            del self.buckets[old]
            self.live.pop(old, None)

    def advance(self, now_ms: int) -> int:
        now_sec = now_ms // 1000
        if self.bar_sec < 0:
            self._start(now_sec)
            return 0
        if now_sec <= self.bar_sec:
            return 0
        total = now_sec - self.bar_sec
        # Close the open bar, then every empty second; bucket boundaries complete buckets.
        # (The compiled windows skip most of a long silence; the outcome is the same.)
        s = self.bar_sec
        while s < now_sec:
            if s < now_sec - WINDOW_S - 1 and s > self.bar_sec:
                # Seconds that can no longer reach the window: only bucket bookkeeping matters.
                next_bucket_start = (s // BUCKET_S + 1) * BUCKET_S
                s = min(next_bucket_start - 1, now_sec - WINDOW_S - 1)
            self.bar_sec = s
            self._close_bar()
            b = (s + 1) // BUCKET_S
            if b != self.open_bucket:
                self._complete(self.open_bucket, self.open_bucket_vol, self.open_flash)
                self.open_bucket_vol = 0.0
                self.open_flash = [0.0, 0.0, 0.0]
                self.open_bucket = b
            s += 1
        self.bar_sec = now_sec
        return min(total, 2**31 - 1)

    def seed_klines(self, rows: list[tuple[int, float, float]]) -> None:
        parsed = []
        for row in rows:
            try:
                open_ms, volume, _ = row
                bucket, volume = int(open_ms) // (BUCKET_S * 1000), float(volume)
            except (TypeError, ValueError, OverflowError) as exc:
                raise ValueError(f"bad kline row {row!r}") from exc
            if not (volume >= 0.0 and math.isfinite(volume)) or not 0 <= bucket <= 2**31 - 1:
                raise ValueError(f"bad kline row {row!r}")
            parsed.append((bucket, volume))
        for bucket, volume in parsed:
            if self.open_bucket >= 0 and bucket >= self.open_bucket:
                continue
            slot_holder = [b for b in self.buckets if b % BASELINE_N == bucket % BASELINE_N]
            if all(b <= bucket for b in slot_holder):
                for b in slot_holder:
                    del self.buckets[b]
                    self.live.pop(b, None)
                self.buckets[bucket] = _r(volume)  # seeded: not live-seen

    def _bar(self, s: int, include_open: bool) -> tuple[float, float, float, int, int, float]:
        if include_open and s == self.bar_sec:
            return (_r(self.bar_vol), _r(self.bar_qvol), _r(self.bar_buy_vol), min(self.bar_trades, 65535),
                    min(self.bar_rush, 65535), math.nan)  # fmt: skip
        return self.bars.get(s, (0.0, 0.0, 0.0, 0, 0, math.nan))

    def flash(self, include_open: bool = False) -> tuple[float, ...]:
        """(rush_5s, rush_25s, trades_25s, buy_vol_25s, vol_25s, qvol_25s, price_25s_ago, price_60s_ago)."""
        end = self.bar_sec
        if end < 0:
            return (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, math.nan, math.nan)
        e = end + (1 if include_open else 0)
        r5 = r25 = t = b = v = q = 0.0
        for s in range(e - FLASH_S, e):
            vol, qvol, buy, trades, rush, _ = self._bar(s, include_open)
            r25 += rush
            t += trades
            b += buy
            v += vol
            q += qvol
            if s >= e - RUSH_SHORT_S:
                r5 += rush

        def price_at(sec: int) -> float:
            return self.bars[sec][5] if sec >= self.live_from_sec and sec in self.bars else math.nan

        return (r5, r25, t, b, v, q, price_at(e - 1 - FLASH_S), price_at(e - 1 - RET_LONG_S))

    def flash_baseline(self) -> tuple[float, float, float, int]:
        """Per-second mean trades, rush orders and quote volume over the live-seen buckets of 6 h."""
        cur = self.open_bucket
        seen = [self.live[b] for b in range(cur - BASELINE_N, cur) if b in self.live and b in self.buckets] if cur >= 0 else []
        if not seen:
            return 0.0, 0.0, 0.0, 0
        t = r = q = 0.0
        for trades, rush, qvol in seen:
            t, r, q = t + trades, r + rush, q + qvol
        span = len(seen) * BUCKET_S
        return t / span, r / span, q / span, len(seen)

    def sums(self, include_open: bool = False) -> tuple[float, float, float, float, float, float]:
        end = self.bar_sec
        if end < 0:
            return (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        lo = end - WINDOW_S + (1 if include_open else 0)
        v = q = best = 0.0
        for k in range(WINDOW_S // BLOCK_S):
            block = 0.0
            for s in range(lo + k * BLOCK_S, lo + (k + 1) * BLOCK_S):
                bar = self._bar(s, include_open)
                block += bar[0]
                q += bar[1]
            v += block
            best = max(best, block)
        t10 = b10 = v10 = 0.0
        for s in range(lo + WINDOW_S - BURST_S, lo + WINDOW_S):
            bar = self._bar(s, include_open)
            t10 += bar[3]
            b10 += bar[2]
            v10 += bar[0]
        return (v, q, best, t10, b10, v10)

    def median_baseline(self) -> tuple[float, int]:
        cur = self.open_bucket
        values = sorted(self.buckets[b] for b in range(cur - BASELINE_N, cur) if b in self.buckets) if cur >= 0 else []
        n = len(values)
        if n == 0:
            return math.nan, 0
        return (values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2.0), n

    def record_bid_depth(self, time_ms: int, depth: float) -> None:
        sec = time_ms // 1000
        if self.depth and sec <= max(self.depth):
            return  # the first sample of a second wins
        if not self.depth:
            self.depth_first = sec
        self.depth[sec] = _r(depth)
        # Keep every sample a lookup can still reach: those after sec - DEPTH_SLOTS and the one before.
        older = [t for t in self.depth if t <= sec - DEPTH_SLOTS]
        for t in sorted(older)[:-1]:
            del self.depth[t]

    def depth_at(self, sec: int) -> float:
        """The latest sample at or before sec, if sec is within the kept DEPTH_SLOTS seconds."""
        if not self.depth:
            return math.nan
        last = max(self.depth)
        if sec < self.depth_first or sec <= last - DEPTH_SLOTS:
            return math.nan
        return self.depth[max(t for t in self.depth if t <= sec)]
