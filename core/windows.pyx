# cython: language_level=3
"""One-second bars and the rolling windows behind the Alpha-1 features.

Why float32 slots: 300 one-second bars per pair for 3,000 pairs must stay within a few MB; a
float32 keeps 7 significant digits, plenty for ratios like VSR and VC, and every sum is taken in
double at read time (so no drift from adding and subtracting). The reference twin stores the
same float32 values, so both compute identical results.

Exchange time only: a bar closes when an event of a later second arrives (a deal, or any frame's
sendTime via c_advance); seconds without events are empty bars. Windows cover the closed bars
ending at the start of the open bar.
"""

from libc.math cimport NAN, floor
from libc.string cimport memset

from core.windows cimport BASELINE_N, BLOCK_S, DEPTH_LAG_S, DEPTH_SLOTS, DEPTH_STEP_S, SHORT_S, WINDOW_S

DEF BASELINE_MIN = 6            # buckets before VSR means anything (30 min)


cdef inline long long _floordiv(long long a, long long b):
    return a // b if a >= 0 else -((-a + b - 1) // b)


cdef class TradeWindows:
    """See the module docstring."""

    def __cinit__(self):
        self.bar_sec = -1
        self.bar_vol = self.bar_qvol = self.bar_buy_vol = 0.0
        self.bar_first = self.bar_last = NAN
        self.bar_trades = 0
        self.last_price = NAN
        memset(self.vol, 0, sizeof(self.vol))
        memset(self.qvol, 0, sizeof(self.qvol))
        memset(self.buy_vol, 0, sizeof(self.buy_vol))
        memset(self.trades, 0, sizeof(self.trades))
        memset(self.bucket_vol, 0, sizeof(self.bucket_vol))
        for i in range(BASELINE_N):
            self.bucket_id[i] = -1
        for i in range(DEPTH_SLOTS):
            self.depth_block[i] = -1
            self.depth[i] = 0.0
        self.open_bucket_vol = 0.0
        self.open_bucket = -1
        self.known_from_bucket = -1
        self.median_cache = NAN
        self.median_for_bucket = -2

    cdef void c_on_trade(self, double price, double qty, int side, long long time_ms):
        if self.bar_sec < 0:
            self.bar_sec = _floordiv(time_ms, 1000)
            self.open_bucket = _floordiv(self.bar_sec, 300)
            if self.known_from_bucket < 0:
                self.known_from_bucket = self.open_bucket
        elif time_ms >= (self.bar_sec + 1) * 1000:
            self.c_advance(time_ms)
        # A late trade (older second) counts in the open bar: bars never reopen.
        if self.bar_trades == 0:
            self.bar_first = price
        self.bar_last = price
        self.last_price = price
        self.bar_vol += qty
        self.bar_qvol += qty * price
        if side == 1:
            self.bar_buy_vol += qty
        self.bar_trades += 1

    cdef void _close_bar(self):
        cdef long long s = self.bar_sec
        cdef int slot = s % WINDOW_S
        cdef int short_slot = s % SHORT_S
        self.vol[slot] = <float>self.bar_vol
        self.qvol[slot] = <float>self.bar_qvol
        self.buy_vol[short_slot] = <float>self.bar_buy_vol
        self.trades[short_slot] = <unsigned short>(self.bar_trades if self.bar_trades < 65535 else 65535)
        self.open_bucket_vol += <double>(<float>self.bar_vol)
        self.bar_vol = self.bar_qvol = self.bar_buy_vol = 0.0
        self.bar_trades = 0
        self.bar_first = self.bar_last = NAN

    cdef void _complete_bucket(self, long long bucket, double volume):
        cdef int slot = bucket % BASELINE_N
        if self.bucket_id[slot] <= bucket:
            self.bucket_id[slot] = <int>bucket
            self.bucket_vol[slot] = <float>volume

    cdef int c_advance(self, long long now_ms):
        """Close every bar that ended at or before now_ms; returns how many (empty ones count)."""
        cdef long long now_sec = _floordiv(now_ms, 1000)
        cdef long long s, b
        cdef int closed = 0
        if self.bar_sec < 0:
            self.bar_sec = now_sec
            self.open_bucket = _floordiv(now_sec, 300)
            if self.known_from_bucket < 0:
                self.known_from_bucket = self.open_bucket
            return 0
        if now_sec <= self.bar_sec:
            return 0
        s = self.bar_sec
        while s < now_sec:
            self.bar_sec = s
            self._close_bar()  # the open bar first, then empty seconds (zero slots)
            closed += 1
            b = _floordiv(s + 1, 300)
            if b != self.open_bucket:
                self._complete_bucket(self.open_bucket, self.open_bucket_vol)
                self.open_bucket_vol = 0.0
                self.open_bucket = b
            s += 1
            if s < now_sec - WINDOW_S:
                # A long silence: only the last window's worth of empty slots needs writing; the
                # bucket in progress is complete (nothing else will trade in it), the skipped
                # buckets stay unknown and so count as zero volume.
                self._complete_bucket(self.open_bucket, self.open_bucket_vol)
                s = now_sec - WINDOW_S
                self.open_bucket = _floordiv(s, 300)
                self.open_bucket_vol = 0.0
        self.bar_sec = now_sec
        return closed

    def on_trade(self, double price, double qty, int side, long long time_ms):
        self.c_on_trade(price, qty, side, time_ms)

    def advance(self, long long now_ms):
        return self.c_advance(now_ms)

    def seed_klines(self, list rows):
        """Seed completed 5-min buckets from REST 5m klines: (open_ms, volume, quote_volume)."""
        cdef long long bucket, first = -1
        for open_ms, volume, _ in rows:
            bucket = _floordiv(open_ms, 300_000)
            if self.open_bucket >= 0 and bucket >= self.open_bucket:
                continue  # the open bucket is live data's job
            self._complete_bucket(bucket, volume)
            if first < 0 or bucket < first:
                first = bucket
        if first >= 0 and (self.known_from_bucket < 0 or first < self.known_from_bucket):
            self.known_from_bucket = first
        self.median_for_bucket = -2

    cdef double c_median_baseline(self, int* count):
        """Median of the 72 completed five-minute volumes before the open bucket."""
        cdef float[BASELINE_N] values
        cdef int n = 0, i, j, slot
        cdef long long b, cur = self.open_bucket
        cdef float v
        if cur < 0 or self.known_from_bucket < 0:
            count[0] = 0
            return NAN
        for b in range(cur - BASELINE_N, cur):
            if b < self.known_from_bucket:
                continue
            slot = b % BASELINE_N
            v = self.bucket_vol[slot] if self.bucket_id[slot] == b else 0.0
            # insertion sort: 72 values at most
            j = n
            while j > 0 and values[j - 1] > v:
                values[j] = values[j - 1]
                j -= 1
            values[j] = v
            n += 1
        count[0] = n
        if n == 0:
            return NAN
        if n % 2:
            return values[n // 2]
        return (<double>values[n // 2 - 1] + <double>values[n // 2]) / 2.0

    cdef void c_record_bid_depth(self, long long time_ms, double depth):
        cdef long long block = _floordiv(_floordiv(time_ms, 1000), DEPTH_STEP_S)
        cdef int slot = block % DEPTH_SLOTS
        if self.depth_block[slot] != block:
            self.depth_block[slot] = <int>block
            self.depth[slot] = <float>depth

    def record_bid_depth(self, long long time_ms, double depth):
        self.c_record_bid_depth(time_ms, depth)

    cdef double c_depth_at(self, long long sec):
        cdef long long block = _floordiv(sec, DEPTH_STEP_S)
        cdef int slot = block % DEPTH_SLOTS
        if self.depth_block[slot] == block:
            return self.depth[slot]
        return NAN

    # --- windows over the closed bars -----------------------------------------------------------

    def sums(self):
        """(vol_5m, qvol_5m, max 1-min block volume, trades_10s, buy_vol_10s, vol_10s) over the closed bars."""
        cdef double v = 0.0, q = 0.0, block, best = 0.0, t10 = 0.0, b10 = 0.0, v10 = 0.0
        cdef long long end = self.bar_sec, s
        cdef int k
        if end < 0:
            return (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        for k in range(WINDOW_S // BLOCK_S):
            block = 0.0
            for s in range(end - WINDOW_S + k * BLOCK_S, end - WINDOW_S + (k + 1) * BLOCK_S):
                block += self.vol[s % WINDOW_S]
                q += self.qvol[s % WINDOW_S]
            v += block
            if block > best:
                best = block
        for s in range(end - 10, end):
            t10 += self.trades[s % SHORT_S]
            b10 += self.buy_vol[s % SHORT_S]
            v10 += self.vol[s % WINDOW_S]
        return (v, q, best, t10, b10, v10)

    def median_baseline(self):
        cdef int n
        cdef double m = self.c_median_baseline(&n)
        return m, n
