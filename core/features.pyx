# cython: language_level=3
"""The feature row of one pair (DESIGN.md, profile Alpha-1), written straight into a C struct.

Undefined values are NaN (no trades in 5 min, book not in sync, baseline not ready), so a rule
on them fails instead of firing on a default; the flags say which groups are meaningful.
"""

from libc.math cimport NAN

from core.book cimport OrderBook
from core.row cimport ROW_BASELINE_READY, ROW_BOOK_VALID, ROW_LISTING_KNOWN, FeatureRow
from core.windows cimport DEPTH_LAG_S, TradeWindows

DEF OBI_BAND_BPS = 10.0
DEF DEPTH_BAND_BPS = 3.0
DEF BASELINE_MIN = 6


cdef void c_fill_row(FeatureRow* row, OrderBook book, TradeWindows win, long long row_time_ms,
                     long long listing_ms, long long recv_ns, unsigned int pair_id):
    cdef double v, q, best, t10, b10, v10, median, bid_size, ask_size, now_depth, then_depth
    cdef int n_base
    cdef unsigned int flags = 0
    v, q, best, t10, b10, v10 = win.sums()
    median = win.c_median_baseline(&n_base)
    row.row_time_ms = row_time_ms
    row.recv_ns = recv_ns
    row.pair_id = pair_id
    row.last_price = win.last_price
    row.quote_vol_5m = q
    row.trades_10s = t10
    row.buy_share_10s = b10 / v10 if v10 > 0.0 else NAN
    if v > 0.0:
        row.vc = best / v
        row.pm = (win.last_price - q / v) / (q / v)
    else:
        row.vc = NAN
        row.pm = NAN
    if n_base >= BASELINE_MIN and median > 0.0:
        row.vsr = v / median
        flags |= ROW_BASELINE_READY
    else:
        row.vsr = NAN
    if book.synced and book.n_bids > 0 and book.n_asks > 0:
        flags |= ROW_BOOK_VALID
        bid_size = book.c_size_within(True, OBI_BAND_BPS)
        ask_size = book.c_size_within(False, OBI_BAND_BPS)
        row.obi = (bid_size - ask_size) / (bid_size + ask_size) if bid_size + ask_size > 0.0 else NAN
        row.spread = (book.asks[0].price - book.bids[0].price) / ((book.asks[0].price + book.bids[0].price) / 2.0)
        now_depth = book.c_size_within(True, DEPTH_BAND_BPS)
        then_depth = win.c_depth_at(row_time_ms // 1000 - DEPTH_LAG_S)
        row.cum_depth_delta = now_depth - then_depth  # NaN when there is no sample from 180 s ago
    else:
        row.obi = NAN
        row.spread = NAN
        row.cum_depth_delta = NAN
    if listing_ms > 0:
        flags |= ROW_LISTING_KNOWN
        row.listing_age_s = (row_time_ms - listing_ms) / 1000.0
    else:
        row.listing_age_s = NAN
    row.flags = flags


def compute_row(OrderBook book, TradeWindows win, long long row_time_ms, long long listing_ms,
                long long recv_ns=0, unsigned int pair_id=0):
    """The row as a dict (tests, slow paths)."""
    cdef FeatureRow row
    row.seq = 0
    c_fill_row(&row, book, win, row_time_ms, listing_ms, recv_ns, pair_id)
    return row
