# The feature row: one per pair per closed 1 s bar. Field order, types and alignment match
# core.rowspec.FEATURE_ROW_DTYPE exactly (a test checks it), so the shard writes a C struct and
# the supervisor reads the same bytes as a NumPy structured array.
from libc.stdint cimport int64_t, uint32_t, uint64_t

cdef enum RowFlags:
    ROW_BOOK_VALID = 1          # book in sync: OBI, spread, depth fields are meaningful
    ROW_BASELINE_READY = 2      # the 6 h five-minute baseline has data: VSR meaningful
    ROW_LISTING_KNOWN = 4       # listing time known: listing_age_s meaningful
    ROW_CANDIDATE = 8           # cheap pre-check passed (written before the bar closed)
    ROW_FLASH_READY = 16        # the flash baseline has data: the *_ratio_25s fields meaningful

cdef struct FeatureRow:
    uint64_t seq                # ring sequence number, written by the ring, 1-based
    int64_t row_time_ms         # exchange time of the row (end of the bar that closed)
    int64_t recv_ns             # time.time_ns() when the newest frame feeding this row arrived
    uint32_t pair_id            # the shard-independent pair id the supervisor assigned
    uint32_t flags              # RowFlags
    double last_price
    double vsr                  # 5-min volume / median of the 72 five-minute volumes of 6 h
    double vc                   # largest 1-min volume of the last 5 / 5-min volume
    double pm                   # (last - vwap_5m) / vwap_5m
    double obi                  # (bid - ask) / (bid + ask) sizes within 10 bps of the best
    double cum_depth_delta      # bid size within 3 bps of the best bid now - 180 s ago
    double spread               # (ask1 - bid1) / mid
    double listing_age_s        # row time - listing time
    double quote_vol_5m         # quote volume of the last 5 min
    double trades_10s           # trade count of the last 10 s (for burst profiles)
    double buy_share_10s        # taker-buy share of base volume over the last 10 s
    double rush_5s              # rush orders (>= 2 deals with one ms and side) in the last 5 s
    double rush_ratio_25s       # rush orders of 25 s / (baseline rate * 25 s + 1)
    double trades_ratio_25s     # trades of 25 s / (baseline rate * 25 s + 1)
    double qvol_ratio_25s       # quote volume of 25 s / (baseline rate * 25 s)
    double buy_share_25s        # taker-buy share of base volume over the last 25 s
    double ret_25s              # last price / price 25 s ago - 1
    double ret_60s              # last price / price 60 s ago - 1
