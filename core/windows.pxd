# Trades -> 1 s bars -> rolling windows, driven by exchange time only.

cdef enum:
    WINDOW_S = 300              # 5 minutes of one-second bars
    BLOCK_S = 60                # VC blocks: the 5 consecutive 60 s blocks of the 300 s window
    SHORT_S = 16                # ring for the 10 s burst features
    BURST_S = 10
    BUCKET_S = 300              # baseline buckets: aligned five-minute klines
    BASELINE_N = 72             # five-minute buckets in 6 h
    DEPTH_SLOTS = 192           # one bid-depth sample per second, > DEPTH_LAG_S
    DEPTH_LAG_S = 180

cdef enum:
    SUM_VOL = 0                 # indices into the array c_sums fills
    SUM_QVOL = 1
    SUM_MAX_BLOCK = 2
    SUM_TRADES_10S = 3
    SUM_BUY_VOL_10S = 4
    SUM_VOL_10S = 5
    N_SUMS = 6


cdef class TradeWindows:
    cdef readonly long long bar_sec         # second of the open bar, -1 before the first event
    cdef readonly long long live_from_sec   # second of the first live event, -1 before it
    cdef readonly double bar_vol, bar_qvol, bar_buy_vol, bar_first, bar_last   # the open bar
    cdef readonly int bar_trades
    cdef readonly double last_price
    cdef float[WINDOW_S] vol                # closed one-second bars, slot = sec % WINDOW_S
    cdef float[WINDOW_S] qvol
    cdef float[SHORT_S] buy_vol
    cdef unsigned short[SHORT_S] trades
    cdef float[BASELINE_N] bucket_vol       # known 5-min buckets, slot = id % BASELINE_N
    cdef int[BASELINE_N] bucket_id          # -1: slot empty
    cdef double open_bucket_vol             # the 5-min bucket in progress
    cdef long long open_bucket
    cdef double median_cache
    cdef int median_count
    cdef long long median_for_bucket        # -2: cache stale
    cdef double[N_SUMS] sums_cache          # c_sums over the closed bars, for sums_for_sec
    cdef long long sums_for_sec
    cdef float[DEPTH_SLOTS] depth           # slot = sec % DEPTH_SLOTS, gaps carry the last sample
    cdef long long depth_first_sec, depth_last_sec

    cdef void c_on_trade(self, double price, double qty, int side, long long time_ms) noexcept
    cdef int c_advance(self, long long now_ms) noexcept
    cdef void _start(self, long long sec) noexcept
    cdef void _close_bar(self) noexcept
    cdef void _complete_bucket(self, long long bucket, double volume) noexcept
    cdef void c_sums(self, double* out, bint include_open) noexcept
    cdef double c_median_baseline(self, int* count) noexcept
    cdef void c_record_bid_depth(self, long long time_ms, double depth) noexcept
    cdef double c_depth_at(self, long long sec) noexcept
