# cython: language_level=3
"""Known five-minute buckets (VSR's median, the flash baseline) and the bid-depth trail (CumDepthΔ).

Why apart from core/windows.pyx: these are the coarse, slow-moving parts of a pair's state —
touched once per bucket, per closed second or per feature row — while windows.pyx is the per-deal
and per-second path. The structs live inline in TradeWindows, so the split costs no memory and
no allocation; TradeWindows keeps the rules (which bucket is known, when live data starts) and
these functions keep the storage and the caches.

Buckets: a ring of BASELINE_N slots, slot = bucket id % BASELINE_N; a slot holds the newest
bucket written to it (an older id never overwrites a newer one). The median and the per-second
rates are taken over the BASELINE_N buckets before the open one and cached per open bucket.

Depth trail: one sample per second (the first recorded in a second wins), kept for DEPTH_SLOTS
seconds; trail_at(sec) is the latest sample at or before sec — seconds without a sample carry the
previous one, because the book only changes through diffs and every diff frame records.
"""

from libc.math cimport NAN
from libc.string cimport memset

from core.slots cimport floormod


cdef void buckets_init(Buckets* b) noexcept:
    cdef int i
    memset(b, 0, sizeof(Buckets))
    for i in range(BASELINE_N):
        b.id[i] = -1
    b.rates_for = b.median_for = -2
    b.median_cache = NAN


cdef void buckets_forget_from(Buckets* b, long long first) noexcept:
    """Drop buckets with id >= first (seeded klines that were still open when live data started)."""
    cdef int i
    for i in range(BASELINE_N):
        if b.id[i] >= first:
            b.id[i] = -1
    b.rates_for = b.median_for = -2


cdef void buckets_put(Buckets* b, long long bucket, double volume, double trades, double rush, double qvol,
                      bint live) noexcept:
    """Store a finished bucket unless its slot holds a newer one; trades, rush and qvol only if live."""
    cdef int slot = <int>floormod(bucket, BASELINE_N)
    if b.id[slot] > bucket:
        return
    b.id[slot] = <int>bucket
    b.vol[slot] = <float>volume
    b.live[slot] = 1 if live else 0
    if live:
        b.trades[slot] = <float>trades
        b.rush[slot] = <float>rush
        b.qvol[slot] = <float>qvol
    b.rates_for = b.median_for = -2


cdef double buckets_median(Buckets* b, long long cur, int* count) noexcept:
    """Median of the known volumes among the BASELINE_N buckets before cur; NaN when none."""
    cdef float values[BASELINE_N]
    cdef int n = 0, j, slot
    cdef long long k
    cdef float v
    if b.median_for == cur:
        count[0] = b.median_count
        return b.median_cache
    if cur >= 0:
        for k in range(cur - BASELINE_N, cur):
            slot = <int>floormod(k, BASELINE_N)
            if b.id[slot] != k:
                continue
            v = b.vol[slot]
            j = n  # insertion sort: 72 values at most, once per bucket thanks to the cache
            while j > 0 and values[j - 1] > v:
                values[j] = values[j - 1]
                j -= 1
            values[j] = v
            n += 1
    if n == 0:
        b.median_cache = NAN
    elif n % 2:
        b.median_cache = values[n // 2]
    else:
        b.median_cache = (<double>values[n // 2 - 1] + <double>values[n // 2]) / 2.0
    b.median_count = n
    b.median_for = cur
    count[0] = n
    return b.median_cache


cdef int buckets_rates(Buckets* b, long long cur, double* rates) noexcept:
    """Per-second means of trades, rush orders, quote volume over the live-seen buckets before cur.

    Fills rates[N_BASE] (BASE_* order; 0 when none) and returns how many buckets they cover.
    """
    cdef long long k
    cdef double t = 0.0, r = 0.0, q = 0.0
    cdef int n = 0, slot, i
    if b.rates_for != cur:
        if cur >= 0:
            for k in range(cur - BASELINE_N, cur):
                slot = <int>floormod(k, BASELINE_N)
                if b.id[slot] != k or not b.live[slot]:
                    continue
                t += b.trades[slot]
                r += b.rush[slot]
                q += b.qvol[slot]
                n += 1
        b.rates_count = n
        b.rates_cache[BASE_TRADES] = t / (n * BUCKET_S) if n else 0.0
        b.rates_cache[BASE_RUSH] = r / (n * BUCKET_S) if n else 0.0
        b.rates_cache[BASE_QVOL] = q / (n * BUCKET_S) if n else 0.0
        b.rates_for = cur
    for i in range(N_BASE):
        rates[i] = b.rates_cache[i]
    return b.rates_count


cdef void trail_init(DepthTrail* d) noexcept:
    memset(d, 0, sizeof(DepthTrail))
    d.first_sec = d.last_sec = -1


cdef void trail_record(DepthTrail* d, long long sec, double depth) noexcept:
    """The sample of second sec; a second already sampled (or older) keeps its first sample."""
    cdef long long s
    cdef float carry
    if d.last_sec >= 0 and sec <= d.last_sec:
        return
    if d.last_sec >= 0:
        carry = d.sample[floormod(d.last_sec, DEPTH_SLOTS)]
        s = d.last_sec + 1
        if s < sec - DEPTH_SLOTS + 1:
            s = sec - DEPTH_SLOTS + 1
        while s < sec:
            d.sample[floormod(s, DEPTH_SLOTS)] = carry
            s += 1
    else:
        d.first_sec = sec
    d.sample[floormod(sec, DEPTH_SLOTS)] = <float>depth
    d.last_sec = sec


cdef double trail_at(DepthTrail* d, long long sec) noexcept:
    """The latest sample at or before sec; NaN if none is kept."""
    if d.last_sec < 0 or sec < d.first_sec or sec <= d.last_sec - DEPTH_SLOTS:
        return NAN
    if sec > d.last_sec:
        sec = d.last_sec
    return d.sample[floormod(sec, DEPTH_SLOTS)]
