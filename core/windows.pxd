# Trades -> 1 s bars -> rolling windows, driven by exchange time only.
from core.history cimport BUCKET_S, Buckets, DepthTrail

cdef enum:
    WINDOW_S = 300              # 5 minutes of one-second bars
    BLOCK_S = 60                # VC blocks: the 5 consecutive 60 s blocks of the 300 s window
    SHORT_S = 64                # ring for the burst and flash features (> RET_LONG_S + 1)
    BURST_S = 10
    FLASH_S = 25                # flash profile: rush orders, trades, volumes, buy share over 25 s
    RUSH_SHORT_S = 5            # rush orders over the last 5 s
    RET_LONG_S = 60             # price return over 60 s (and over FLASH_S)

cdef enum:
    SUM_VOL = 0                 # indices into the array c_sums fills
    SUM_QVOL = 1
    SUM_MAX_BLOCK = 2
    SUM_TRADES_10S = 3
    SUM_BUY_VOL_10S = 4
    SUM_VOL_10S = 5
    N_SUMS = 6

cdef enum:
    FL_RUSH_5S = 0              # indices into the array c_flash fills
    FL_RUSH_25S = 1
    FL_TRADES_25S = 2
    FL_BUY_VOL_25S = 3
    FL_VOL_25S = 4
    FL_QVOL_25S = 5
    FL_PRICE_25S_AGO = 6
    FL_PRICE_60S_AGO = 7
    N_FLASH = 8


cdef class TradeWindows:
    cdef readonly long long bar_sec         # second of the open bar, -1 before the first event
    cdef readonly long long live_from_sec   # second of the first live event, -1 before it
    cdef readonly double bar_vol, bar_qvol, bar_buy_vol, bar_first, bar_last   # the open bar
    cdef readonly int bar_trades
    cdef readonly int bar_rush              # rush orders counted in the open bar
    cdef long long run_time_ms              # the run of deals with one time (ms) and side ...
    cdef int run_side                       # ... that the last deal belongs to
    cdef int run_len
    cdef readonly double last_price
    cdef float[WINDOW_S] vol                # closed one-second bars, slot = sec % WINDOW_S
    cdef float[WINDOW_S] qvol
    cdef float[SHORT_S] buy_vol
    cdef unsigned short[SHORT_S] trades
    cdef unsigned short[SHORT_S] rush
    cdef float[SHORT_S] close               # last trade price at the end of each second (NaN before any)
    cdef Buckets buckets                    # known 5-min buckets and the baseline caches (core/history)
    cdef double open_bucket_vol             # the 5-min bucket in progress
    cdef double open_bucket_trades, open_bucket_rush, open_bucket_qvol
    cdef long long open_bucket
    cdef double[N_SUMS] sums_cache          # c_sums over the closed bars, for sums_for_sec
    cdef long long sums_for_sec
    cdef DepthTrail depth                   # one bid-depth sample per second (core/history)

    cdef void c_on_trade(self, double price, double qty, int side, long long time_ms) noexcept
    cdef int c_advance(self, long long now_ms) noexcept
    cdef void _start(self, long long sec) noexcept
    cdef void _close_bar(self) noexcept
    cdef void _roll_bucket(self, long long b) noexcept
    cdef void _complete_bucket(self, long long bucket, double volume, double trades, double rush,
                               double qvol) noexcept
    cdef void c_flash(self, double* out, bint include_open) noexcept
    cdef int c_flash_baseline(self, double* rates) noexcept
    cdef void c_sums(self, double* out, bint include_open) noexcept
    cdef double c_median_baseline(self, int* count) noexcept
    cdef void c_record_bid_depth(self, long long time_ms, double depth) noexcept
    cdef double c_depth_at(self, long long sec) noexcept
