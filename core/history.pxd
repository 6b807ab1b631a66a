# The slow history behind the baselines: known five-minute buckets and per-second bid depth.
#
# Plain C structs embedded in TradeWindows (no object, no pointer per pair), with the functions in
# history.pyx. They run once per bucket, per closed second or per row, never per deal.

cdef enum:
    BUCKET_S = 300              # baseline buckets: aligned five-minute klines
    BASELINE_N = 72             # five-minute buckets in 6 h
    DEPTH_SLOTS = 192           # one bid-depth sample per second, > DEPTH_LAG_S
    DEPTH_LAG_S = 180
    BASE_TRADES = 0             # indices into the per-second baseline rates buckets_rates fills
    BASE_RUSH = 1
    BASE_QVOL = 2
    N_BASE = 3


cdef struct Buckets:
    float vol[BASELINE_N]               # known 5-min buckets, slot = id % BASELINE_N
    int id[BASELINE_N]                  # -1: slot empty
    float trades[BASELINE_N]            # live-seen buckets only (klines carry no trade counts)
    float rush[BASELINE_N]
    float qvol[BASELINE_N]
    unsigned char live[BASELINE_N]      # 1: live data saw the whole bucket
    double rates_cache[N_BASE]          # buckets_rates, cached per open bucket
    int rates_count
    long long rates_for                 # -2: cache stale
    double median_cache                 # buckets_median, cached per open bucket
    int median_count
    long long median_for                # -2: cache stale


cdef struct DepthTrail:
    float sample[DEPTH_SLOTS]           # slot = sec % DEPTH_SLOTS, gaps carry the last sample
    long long first_sec, last_sec       # -1 before the first sample


cdef void buckets_init(Buckets* b) noexcept
cdef void buckets_forget_from(Buckets* b, long long first) noexcept
cdef void buckets_put(Buckets* b, long long bucket, double volume, double trades, double rush, double qvol,
                      bint live) noexcept
cdef double buckets_median(Buckets* b, long long cur, int* count) noexcept
cdef int buckets_rates(Buckets* b, long long cur, double* rates) noexcept
cdef void trail_init(DepthTrail* d) noexcept
cdef void trail_record(DepthTrail* d, long long sec, double depth) noexcept
cdef double trail_at(DepthTrail* d, long long sec) noexcept
