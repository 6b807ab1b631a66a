# cython: language_level=3
"""One-second bars and the rolling windows behind the Alpha-1 features.

Why float32 slots: 300 one-second bars per pair for 3,000 pairs must stay within a few MB; a
float32 keeps 7 significant digits, plenty for ratios like VSR and VC, and every sum is taken in
double at read time in a fixed order (so no drift from adding and subtracting). The reference
twin stores the same float32 values and sums in the same order, so both give identical results.

Exchange time only: a bar closes when an event of a later second arrives (a deal, or any frame's
sendTime via c_advance); seconds without events are empty bars. The windows cover the closed bars
ending at the start of the open bar:
  - 5 min: the 300 closed seconds [bar_sec - 300, bar_sec): volume, quote volume (vwap = q / v);
  - VC: the largest of the 5 consecutive 60 s blocks of those 300 s;
  - 10 s: trade count, taker-buy and total base volume of [bar_sec - 10, bar_sec).
With include_open the same windows end at the end of the open bar instead (its running totals
standing in for its final ones): what they will be at the close if nothing else trades this second.

Baseline (VSR's denominator): the median of the *known* five-minute volumes among the 72 aligned
buckets before the bucket in progress. A bucket is known when a REST 5m kline seeded it or live
data saw all of it (from its first second; seconds without deals are zero volume); the bucket
live data started in the middle of is not known unless seeded. Seeded rows for the bucket live
data started in, or later, are dropped when live data starts: that kline was still open.

Flash features (the second profile, for pumps that peak within a minute): over the 25 closed
seconds [end - 25, end) the rush orders, trades, taker-buy and total base volume and quote volume;
rush orders also over the last 5 s; the last trade price at the end of the seconds 25 s and 60 s
before end. A rush order is a run of two or more consecutive deals with the same deal time (ms)
and the same side: one taker order sweeping several levels (La Morgia et al.'s strongest
feature); it is counted once, in the bar open when its second deal arrives. Their baseline is the
mean per second over the known five-minute buckets that live data saw whole (REST klines seed
volume only, not trade counts): trades, rush orders and quote volume per second.

Bid depth (CumDepthΔ): one sample per second, kept for 192 s (core/history.pyx, which also holds
the bucket storage and the baseline caches; this module decides what goes in).

Ring stepping: the loops over consecutive seconds step their slots with slots.next_slot (a compare,
no modulo) and read each second through _tail, so the open-bar stand-in is written once.
"""

from libc.math cimport NAN
from libc.string cimport memset

from core.history cimport (BASE_QVOL, BASE_RUSH, BASE_TRADES, BASELINE_N, BUCKET_S, N_BASE, buckets_forget_from,
                           buckets_init, buckets_median, buckets_put, buckets_rates, trail_at, trail_init,
                           trail_record)
from core.slots cimport floordiv, floormod, next_slot
from core.windows cimport (BLOCK_S, BURST_S, FL_BUY_VOL_25S, FL_PRICE_25S_AGO, FL_PRICE_60S_AGO, FL_QVOL_25S,
                           FL_RUSH_5S, FL_RUSH_25S, FL_TRADES_25S, FL_VOL_25S, FLASH_S, N_FLASH, N_SUMS,
                           RET_LONG_S, RUSH_SHORT_S, SHORT_S, SUM_BUY_VOL_10S, SUM_MAX_BLOCK, SUM_QVOL,
                           SUM_TRADES_10S, SUM_VOL, SUM_VOL_10S, WINDOW_S)

DEF DBL_MAX = 1.7976931348623157e308
DEF INT_MAX = 2147483647

SUM_NAMES = ("vol_5m", "qvol_5m", "max_block_vol", "trades_10s", "buy_vol_10s", "vol_10s")
FLASH_NAMES = ("rush_5s", "rush_25s", "trades_25s", "buy_vol_25s", "vol_25s", "qvol_25s", "price_25s_ago",
               "price_60s_ago")
DEF NO_RUN = -9223372036854775807


cdef inline bint _good_trade(double price, double qty) noexcept:
    return 0.0 < price <= DBL_MAX and 0.0 <= qty <= DBL_MAX


cdef enum:
    T_RUSH = 0                  # indices into the array _tail fills
    T_RUSH_5S = 1
    T_TRADES = 2
    T_BUY_VOL = 3
    T_VOL = 4
    T_QVOL = 5
    N_TAIL = 6


cdef inline void _tail(TradeWindows w, long long e, int n, bint include_open, double* out) noexcept:
    """Fill out[N_TAIL] with the sums over the seconds [e - n, e), n <= SHORT_S, in time order.

    The one loop over both rings (WINDOW_S and SHORT_S slots) that c_sums (the 10 s burst) and
    c_flash (25 s) share. With include_open the last second is the open bar, its running totals
    rounded as _close_bar will store them. Inline, so each caller gets its own copy with n constant.
    """
    cdef long long s
    cdef int slot = <int>floormod(e - n, WINDOW_S), short = <int>floormod(e - n, SHORT_S)
    cdef double r, r_all = 0.0, r_last = 0.0, t = 0.0, b = 0.0, v = 0.0, q = 0.0
    for s in range(e - n, e):
        if include_open and s == e - 1:
            r = w.bar_rush if w.bar_rush < 65535 else 65535
            t += w.bar_trades if w.bar_trades < 65535 else 65535
            b += <double>(<float>w.bar_buy_vol)
            v += <double>(<float>w.bar_vol)
            q += <double>(<float>w.bar_qvol)
        else:
            r = w.rush[short]
            t += w.trades[short]
            b += w.buy_vol[short]
            v += w.vol[slot]
            q += w.qvol[slot]
        r_all += r
        if s >= e - RUSH_SHORT_S:
            r_last += r
        slot = next_slot(slot, WINDOW_S)
        short = next_slot(short, SHORT_S)
    out[T_RUSH] = r_all
    out[T_RUSH_5S] = r_last
    out[T_TRADES] = t
    out[T_BUY_VOL] = b
    out[T_VOL] = v
    out[T_QVOL] = q


cdef class TradeWindows:
    """See the module docstring. c_* methods are the hot path; def wrappers serve tests and slow paths."""

    def __cinit__(self):
        cdef int i
        self.bar_sec = -1
        self.live_from_sec = -1
        self.bar_vol = self.bar_qvol = self.bar_buy_vol = 0.0
        self.bar_trades = 0
        self.bar_rush = 0
        self.run_time_ms = NO_RUN
        self.run_side = 0
        self.run_len = 0
        self.bar_first = self.bar_last = NAN
        self.last_price = NAN
        memset(self.rush, 0, sizeof(self.rush))
        for i in range(SHORT_S):
            self.close[i] = NAN
        buckets_init(&self.buckets)
        trail_init(&self.depth)
        self.open_bucket_trades = self.open_bucket_rush = self.open_bucket_qvol = 0.0
        memset(self.vol, 0, sizeof(self.vol))
        memset(self.qvol, 0, sizeof(self.qvol))
        memset(self.buy_vol, 0, sizeof(self.buy_vol))
        memset(self.trades, 0, sizeof(self.trades))
        self.open_bucket_vol = 0.0
        self.open_bucket = -1
        memset(self.sums_cache, 0, sizeof(self.sums_cache))
        self.sums_for_sec = -2

    # --- events ------------------------------------------------------------------------------------

    cdef void _start(self, long long sec) noexcept:
        """The first live event: open its bar and drop seeded buckets that were still open."""
        self.bar_sec = sec
        self.live_from_sec = sec
        self.open_bucket = floordiv(sec, BUCKET_S)
        buckets_forget_from(&self.buckets, self.open_bucket)

    cdef void c_on_trade(self, double price, double qty, int side, long long time_ms) noexcept:
        """One deal (side 1 = taker buy). A late deal (older second) joins the open bar: bars never reopen."""
        if not _good_trade(price, qty):
            return
        if self.bar_sec < 0:
            self._start(floordiv(time_ms, 1000))
        elif time_ms >= (self.bar_sec + 1) * 1000:
            self.c_advance(time_ms)
        if self.bar_trades == 0:
            self.bar_first = price
        self.bar_last = price
        self.last_price = price
        self.bar_vol += qty
        self.bar_qvol += qty * price
        if side == 1:
            self.bar_buy_vol += qty
        self.bar_trades += 1
        if time_ms == self.run_time_ms and side == self.run_side:
            self.run_len += 1
            if self.run_len == 2:
                self.bar_rush += 1
        else:
            self.run_time_ms = time_ms
            self.run_side = side
            self.run_len = 1

    cdef void _close_bar(self) noexcept:
        cdef long long s = self.bar_sec
        cdef int slot = <int>floormod(s, WINDOW_S)
        cdef int short_slot = <int>floormod(s, SHORT_S)
        self.vol[slot] = <float>self.bar_vol
        self.qvol[slot] = <float>self.bar_qvol
        self.buy_vol[short_slot] = <float>self.bar_buy_vol
        self.trades[short_slot] = <unsigned short>(self.bar_trades if self.bar_trades < 65535 else 65535)
        self.rush[short_slot] = <unsigned short>(self.bar_rush if self.bar_rush < 65535 else 65535)
        self.close[short_slot] = <float>self.last_price
        self.open_bucket_vol += <double>(<float>self.bar_vol)
        self.open_bucket_trades += self.trades[short_slot]
        self.open_bucket_rush += self.rush[short_slot]
        self.open_bucket_qvol += <double>(<float>self.bar_qvol)
        self.bar_vol = self.bar_qvol = self.bar_buy_vol = 0.0
        self.bar_trades = 0
        self.bar_rush = 0
        self.bar_first = self.bar_last = NAN

    cdef void _complete_bucket(self, long long bucket, double volume, double trades, double rush,
                               double qvol) noexcept:
        """A finished bucket: kept only if live data saw it from its first second."""
        if bucket * BUCKET_S >= self.live_from_sec:
            buckets_put(&self.buckets, bucket, volume, trades, rush, qvol, True)

    cdef void _roll_bucket(self, long long b) noexcept:
        """Complete the open bucket and open bucket b."""
        self._complete_bucket(self.open_bucket, self.open_bucket_vol, self.open_bucket_trades,
                              self.open_bucket_rush, self.open_bucket_qvol)
        self.open_bucket_vol = self.open_bucket_trades = self.open_bucket_rush = self.open_bucket_qvol = 0.0
        self.open_bucket = b

    cdef int c_advance(self, long long now_ms) noexcept:
        """Close every bar that ended at or before now_ms; returns how many (empty ones count)."""
        cdef long long now_sec = floordiv(now_ms, 1000)
        cdef long long s, b, target, total
        if self.bar_sec < 0:
            self._start(now_sec)
            return 0
        if now_sec <= self.bar_sec:
            return 0
        total = now_sec - self.bar_sec
        s = self.bar_sec
        while s < now_sec:
            self.bar_sec = s
            self._close_bar()  # the open bar first, then empty seconds (zero slots)
            b = floordiv(s + 1, BUCKET_S)
            if b != self.open_bucket:
                self._roll_bucket(b)
            s += 1
            if s < now_sec - WINDOW_S:
                # A long silence: only the last window's worth of empty slots needs writing. The
                # buckets it spans are complete and (after the open one) empty: known zeros.
                target = now_sec - WINDOW_S
                b = floordiv(target, BUCKET_S)
                if b != self.open_bucket:
                    s = self.open_bucket + 1
                    self._roll_bucket(b)
                    if s < b - BASELINE_N:
                        s = b - BASELINE_N
                    while s < b:
                        self._complete_bucket(s, 0.0, 0.0, 0.0, 0.0)
                        s += 1
                s = target
        self.bar_sec = now_sec
        return <int>total if total < INT_MAX else INT_MAX

    def on_trade(self, double price, double qty, int side, long long time_ms) -> None:
        """Slow-path wrapper; refuses a bad deal with ValueError (the hot path skips it)."""
        if not _good_trade(price, qty):
            raise ValueError(f"bad deal: price {price!r} must be finite and > 0, qty {qty!r} finite and >= 0")
        self.c_on_trade(price, qty, side, time_ms)

    def advance(self, long long now_ms) -> int:
        return self.c_advance(now_ms)

    def replay_trades(self, const double[::1] price, const double[::1] qty, const int[::1] side,
                      const long long[::1] time_ms) -> None:
        """Feed many deals from arrays in one call (replay, benchmarks); bad deals are skipped."""
        cdef Py_ssize_t n = price.shape[0], i
        if qty.shape[0] != n or side.shape[0] != n or time_ms.shape[0] != n:
            raise ValueError("price, qty, side and time_ms must have the same length")
        for i in range(n):
            self.c_on_trade(price[i], qty[i], side[i], time_ms[i])

    def seed_klines(self, list rows) -> None:
        """Seed finished 5-min buckets from REST 5m klines: (open_ms, volume, quote_volume).

        Rows for the bucket in progress (or later) are ignored once live data runs; before that,
        they are dropped when live data starts. Raises ValueError on a bad row (nothing stored).
        """
        cdef list buckets = []
        cdef long long bucket
        for row in rows:
            try:
                open_ms, volume, _ = row
                bucket = floordiv(int(open_ms), BUCKET_S * 1000)
                volume = float(volume)
            except (TypeError, ValueError, OverflowError) as exc:
                raise ValueError(f"bad kline row {row!r}: want (open_ms, volume, quote_volume)") from exc
            if not 0.0 <= volume <= DBL_MAX or bucket < 0 or bucket > INT_MAX:
                raise ValueError(f"bad kline row {row!r}: volume must be finite and >= 0, open time >= 0")
            buckets.append((bucket, volume))
        for bucket, volume in buckets:
            if self.open_bucket < 0 or bucket < self.open_bucket:
                buckets_put(&self.buckets, bucket, volume, 0.0, 0.0, 0.0, False)

    # --- windows ---------------------------------------------------------------------------------

    cdef void c_sums(self, double* out, bint include_open) noexcept:
        """Fill out[N_SUMS] (SUM_* order); the closed-bar variant is cached per open bar."""
        cdef long long end = self.bar_sec, lo
        cdef double v = 0.0, q = 0.0, block, best = 0.0
        cdef double tail[N_TAIL]
        cdef int k, i, j, slot
        if not include_open and self.sums_for_sec == end:
            for i in range(N_SUMS):
                out[i] = self.sums_cache[i]
            return
        if end >= 0:
            # The 300 seconds [lo, lo + 300) in time order; with include_open the last is the open bar.
            lo = end - WINDOW_S + (1 if include_open else 0)
            slot = <int>floormod(lo, WINDOW_S)
            for k in range(WINDOW_S // BLOCK_S):
                block = 0.0
                for j in range(BLOCK_S):
                    if include_open and k == WINDOW_S // BLOCK_S - 1 and j == BLOCK_S - 1:
                        block += <double>(<float>self.bar_vol)
                        q += <double>(<float>self.bar_qvol)
                    else:
                        block += self.vol[slot]
                        q += self.qvol[slot]
                    slot = next_slot(slot, WINDOW_S)
                v += block
                if block > best:
                    best = block
            _tail(self, lo + WINDOW_S, BURST_S, include_open, tail)
        else:
            for i in range(N_TAIL):
                tail[i] = 0.0
        out[SUM_VOL] = v
        out[SUM_QVOL] = q
        out[SUM_MAX_BLOCK] = best
        out[SUM_TRADES_10S] = tail[T_TRADES]
        out[SUM_BUY_VOL_10S] = tail[T_BUY_VOL]
        out[SUM_VOL_10S] = tail[T_VOL]
        if not include_open:
            for i in range(N_SUMS):
                self.sums_cache[i] = out[i]
            self.sums_for_sec = end

    def sums(self, bint include_open=False) -> tuple:
        """(vol_5m, qvol_5m, max 1-min block volume, trades_10s, buy_vol_10s, vol_10s); see SUM_NAMES."""
        cdef double out[N_SUMS]
        self.c_sums(out, include_open)
        return tuple(out[i] for i in range(N_SUMS))

    cdef void c_flash(self, double* out, bint include_open) noexcept:
        """Fill out[N_FLASH] (FL_* order) over [e - 25, e), e = end of the closed bars (+1 with include_open)."""
        cdef long long e, ref
        cdef double tail[N_TAIL]
        cdef int i
        for i in range(N_FLASH):
            out[i] = 0.0
        out[FL_PRICE_25S_AGO] = NAN
        out[FL_PRICE_60S_AGO] = NAN
        if self.bar_sec < 0:
            return
        e = self.bar_sec + (1 if include_open else 0)
        _tail(self, e, FLASH_S, include_open, tail)
        out[FL_RUSH_5S] = tail[T_RUSH_5S]
        out[FL_RUSH_25S] = tail[T_RUSH]
        out[FL_TRADES_25S] = tail[T_TRADES]
        out[FL_BUY_VOL_25S] = tail[T_BUY_VOL]
        out[FL_VOL_25S] = tail[T_VOL]
        out[FL_QVOL_25S] = tail[T_QVOL]
        ref = e - 1 - FLASH_S
        if ref >= self.live_from_sec:
            out[FL_PRICE_25S_AGO] = self.close[floormod(ref, SHORT_S)]
        ref = e - 1 - RET_LONG_S
        if ref >= self.live_from_sec:
            out[FL_PRICE_60S_AGO] = self.close[floormod(ref, SHORT_S)]

    def flash(self, bint include_open=False) -> tuple:
        """The flash sums; see FLASH_NAMES."""
        cdef double out[N_FLASH]
        self.c_flash(out, include_open)
        return tuple(out[i] for i in range(N_FLASH))

    cdef int c_flash_baseline(self, double* rates) noexcept:
        """Per-second means of trades, rush orders, quote volume over the live-seen buckets of 6 h.

        Returns how many buckets they were taken over (rates are 0 when none).
        """
        return buckets_rates(&self.buckets, self.open_bucket, rates)

    def flash_baseline(self) -> tuple:
        """(trades/s, rush orders/s, quote volume/s, number of live-seen buckets)."""
        cdef double rates[N_BASE]
        cdef int n = self.c_flash_baseline(rates)
        return rates[BASE_TRADES], rates[BASE_RUSH], rates[BASE_QVOL], n

    cdef double c_median_baseline(self, int* count) noexcept:
        """Median of the known five-minute volumes among the 72 buckets before the open one."""
        return buckets_median(&self.buckets, self.open_bucket, count)

    def median_baseline(self) -> tuple:
        """(median, number of known buckets it was taken over)."""
        cdef int n
        cdef double m = self.c_median_baseline(&n)
        return m, n

    # --- bid depth history -------------------------------------------------------------------------

    cdef void c_record_bid_depth(self, long long time_ms, double depth) noexcept:
        trail_record(&self.depth, floordiv(time_ms, 1000), depth)

    def record_bid_depth(self, long long time_ms, double depth) -> None:
        """Bid depth sample (size within 3 bps of the best bid) for the second of time_ms."""
        self.c_record_bid_depth(time_ms, depth)

    cdef double c_depth_at(self, long long sec) noexcept:
        return trail_at(&self.depth, sec)

    def depth_at(self, long long sec) -> float:
        """The latest bid-depth sample at or before second sec; NaN if none is kept."""
        return self.c_depth_at(sec)

    def nbytes(self) -> int:
        """Bytes this object holds (all its arrays are inline: nothing else is allocated)."""
        return (<object>self).__sizeof__()


def advance_all(list wins, long long now_ms) -> int:
    """Advance every TradeWindows in wins to now_ms in one call; returns the bars closed in all.

    For batch paths (replay, benchmarks): the exchange clock passing for a whole set of pairs.
    """
    cdef long long total = 0
    cdef TradeWindows win
    for obj in wins:
        if not isinstance(obj, TradeWindows):
            raise TypeError(f"want TradeWindows, got {type(obj).__name__}")
    for obj in wins:
        win = <TradeWindows>obj
        total += win.c_advance(now_ms)
    return total
