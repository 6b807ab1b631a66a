# Trades -> 1 s bars -> rolling windows, driven by exchange time only.

cdef enum:
    WINDOW_S = 300              # 5 minutes of one-second bars
    BLOCK_S = 60                # VC blocks
    SHORT_S = 16                # ring for the 10 s burst features
    BASELINE_N = 72             # five-minute buckets in 6 h
    DEPTH_SLOTS = 40            # 5-second depth samples (200 s)
    DEPTH_STEP_S = 5
    DEPTH_LAG_S = 180


cdef class TradeWindows:
    cdef readonly long long bar_sec         # second of the open bar, -1 before the first event
    cdef double bar_vol, bar_qvol, bar_buy_vol, bar_first, bar_last
    cdef int bar_trades
    cdef readonly double last_price
    cdef float[WINDOW_S] vol                # closed one-second bars, slot = sec % WINDOW_S
    cdef float[WINDOW_S] qvol
    cdef float[SHORT_S] buy_vol
    cdef unsigned short[SHORT_S] trades
    cdef float[BASELINE_N] bucket_vol       # completed 5-min buckets, slot = id % BASELINE_N
    cdef int[BASELINE_N] bucket_id
    cdef double open_bucket_vol             # the 5-min bucket in progress
    cdef long long open_bucket
    cdef long long known_from_bucket        # first bucket with trustworthy data (seeded or live)
    cdef double median_cache
    cdef long long median_for_bucket
    cdef float[DEPTH_SLOTS] depth
    cdef int[DEPTH_SLOTS] depth_block

    cdef void c_on_trade(self, double price, double qty, int side, long long time_ms)
    cdef int c_advance(self, long long now_ms)
    cdef void _close_bar(self)
    cdef void _complete_bucket(self, long long bucket, double volume)
    cdef double c_median_baseline(self, int* count)
    cdef void c_record_bid_depth(self, long long time_ms, double depth)
    cdef double c_depth_at(self, long long sec)
