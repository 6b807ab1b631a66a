# cython: language_level=3
"""The feature row of one pair (DESIGN.md, profile Alpha-1), written straight into a C struct.

Undefined values are NaN (no trades in 5 min, book not in sync, baseline not ready), so a rule
on them fails instead of firing on a default; the flags say which groups are meaningful:
  ROW_BOOK_VALID      book in sync with both sides: obi, spread, cum_depth_delta computed
                      (cum_depth_delta is still NaN without a depth sample from 180 s before);
  ROW_BASELINE_READY  at least BASELINE_MIN known five-minute buckets and a median > 0: vsr;
  ROW_LISTING_KNOWN   listing time known (> 0): listing_age_s;
  ROW_CANDIDATE       a row written before its bar closed (c_fill_candidate);
  ROW_FLASH_READY     at least FLASH_BASELINE_MIN live-seen five-minute buckets: the flash ratios.

Flash ratios add 1 to the expected count (trades, rush orders) so a pair that is quiet in its
baseline gets a finite ratio that still grows with the burst: 5 rush orders against an expected
0.1 give 4.5, not 50.

Bands are measured from each side's best price, and the best level always counts (DESIGN.md):
OBI uses both sides within 10 bps, CumDepthΔ the bids within 3 bps of the best bid.
"""

from libc.math cimport NAN

from core.book cimport OrderBook
from core.history cimport BASE_QVOL, BASE_RUSH, BASE_TRADES, DEPTH_LAG_S, N_BASE
from core.row cimport (ROW_BASELINE_READY, ROW_BOOK_VALID, ROW_CANDIDATE, ROW_FLASH_READY,
                       ROW_LISTING_KNOWN, FeatureRow)
from core.slots cimport floordiv
from core.windows cimport (FL_BUY_VOL_25S, FL_PRICE_25S_AGO, FL_PRICE_60S_AGO, FL_QVOL_25S, FL_RUSH_5S,
                           FL_RUSH_25S, FL_TRADES_25S, FL_VOL_25S, FLASH_S, N_FLASH, N_SUMS, SUM_BUY_VOL_10S,
                           SUM_MAX_BLOCK, SUM_QVOL, SUM_TRADES_10S, SUM_VOL, SUM_VOL_10S, WINDOW_S,
                           TradeWindows)

OBI_BAND_BPS = 10.0
DEPTH_BAND_BPS = 3.0
BASELINE_MIN = 6            # known five-minute buckets (30 min) before VSR means anything
FLASH_BASELINE_MIN = 3      # live-seen five-minute buckets (15 min) before the flash ratios do
DEF C_FLASH_BASELINE_MIN = 3
DEF C_OBI_BAND_BPS = 10.0
DEF C_DEPTH_BAND_BPS = 3.0
DEF C_BASELINE_MIN = 6


cdef void _fill(FeatureRow* row, OrderBook book, TradeWindows win, long long row_time_ms,
                long long listing_ms, long long recv_ns, unsigned int pair_id, bint include_open) noexcept:
    cdef double s[N_SUMS]
    cdef double fl[N_FLASH]
    cdef double base[N_BASE]
    cdef double v, q, median, bid_size, ask_size, vwap
    cdef int n_base, n_flash
    cdef unsigned int flags = 0
    win.c_sums(s, include_open)
    win.c_flash(fl, include_open)
    n_flash = win.c_flash_baseline(base)
    row.rush_5s = fl[FL_RUSH_5S]
    row.buy_share_25s = fl[FL_BUY_VOL_25S] / fl[FL_VOL_25S] if fl[FL_VOL_25S] > 0.0 else NAN
    row.ret_25s = win.last_price / fl[FL_PRICE_25S_AGO] - 1.0 if fl[FL_PRICE_25S_AGO] > 0.0 else NAN
    row.ret_60s = win.last_price / fl[FL_PRICE_60S_AGO] - 1.0 if fl[FL_PRICE_60S_AGO] > 0.0 else NAN
    if n_flash >= C_FLASH_BASELINE_MIN:
        flags |= ROW_FLASH_READY
        row.rush_ratio_25s = fl[FL_RUSH_25S] / (base[BASE_RUSH] * FLASH_S + 1.0)
        row.trades_ratio_25s = fl[FL_TRADES_25S] / (base[BASE_TRADES] * FLASH_S + 1.0)
        row.qvol_ratio_25s = fl[FL_QVOL_25S] / (base[BASE_QVOL] * FLASH_S) if base[BASE_QVOL] > 0.0 else NAN
    else:
        row.rush_ratio_25s = row.trades_ratio_25s = row.qvol_ratio_25s = NAN
    v = s[SUM_VOL]
    q = s[SUM_QVOL]
    median = win.c_median_baseline(&n_base)
    row.row_time_ms = row_time_ms
    row.recv_ns = recv_ns
    row.pair_id = pair_id
    row.last_price = win.last_price
    row.quote_vol_5m = q
    row.trades_10s = s[SUM_TRADES_10S]
    row.buy_share_10s = s[SUM_BUY_VOL_10S] / s[SUM_VOL_10S] if s[SUM_VOL_10S] > 0.0 else NAN
    if v > 0.0:
        vwap = q / v
        row.vc = s[SUM_MAX_BLOCK] / v
        row.pm = (win.last_price - vwap) / vwap
    else:
        row.vc = NAN
        row.pm = NAN
    if n_base >= C_BASELINE_MIN and median > 0.0:
        row.vsr = v / median
        flags |= ROW_BASELINE_READY
    else:
        row.vsr = NAN
    if book.synced and book.n_bids > 0 and book.n_asks > 0:
        flags |= ROW_BOOK_VALID
        bid_size = book.c_size_within(True, C_OBI_BAND_BPS)
        ask_size = book.c_size_within(False, C_OBI_BAND_BPS)
        row.obi = (bid_size - ask_size) / (bid_size + ask_size) if bid_size + ask_size > 0.0 else NAN
        row.spread = (book.asks[0].price - book.bids[0].price) / ((book.asks[0].price + book.bids[0].price) / 2.0)
        # NaN when there is no depth sample from 180 s before
        row.cum_depth_delta = book.c_size_within(True, C_DEPTH_BAND_BPS) \
            - win.c_depth_at(floordiv(row_time_ms, 1000) - DEPTH_LAG_S)
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


cdef void c_fill_row(FeatureRow* row, OrderBook book, TradeWindows win, long long row_time_ms,
                     long long listing_ms, long long recv_ns, unsigned int pair_id) noexcept:
    """The row for the closed bars; row_time_ms is the end of the bar that closed (the open bar's start).

    Leaves row.seq alone: the ring writes it.
    """
    _fill(row, book, win, row_time_ms, listing_ms, recv_ns, pair_id, False)


cdef void c_fill_candidate(FeatureRow* row, OrderBook book, TradeWindows win, long long now_ms,
                           long long listing_ms, long long recv_ns, unsigned int pair_id) noexcept:
    """A row before the open bar closes: windows end at the end of the open bar, ROW_CANDIDATE set.

    If nothing else trades in that second, its values equal the row written when the bar closes.
    """
    _fill(row, book, win, now_ms, listing_ms, recv_ns, pair_id, True)
    row.flags |= ROW_CANDIDATE


cdef bint c_precheck(TradeWindows win, double pm_min, double bar_vol_mult, double vsr_min) noexcept:
    """Cheap test on every deal: may this pair be a candidate before its bar closes?

    True when the open bar has traded, its last price is at least pm_min above the 5-min vwap
    of the closed bars, and either its volume so far is at least bar_vol_mult times the mean
    one-second volume of those bars (a burst starting), or the 5-min volume with the open bar is
    at least vsr_min times the 6 h baseline median (a pump in its second minute or later: its own
    burst has raised the 5-min mean, so no single bar is 3x it any more, yet VSR still says pump).
    Costs a few comparisons: the closed-bar sums and the median are cached.
    """
    cdef double s[N_SUMS]
    cdef double vwap, median
    cdef int n_base
    if win.bar_trades == 0:
        return False
    win.c_sums(s, False)
    if s[SUM_VOL] <= 0.0:
        return False  # no vwap to compare with; the bar's own row comes within a second
    vwap = s[SUM_QVOL] / s[SUM_VOL]
    if (win.last_price - vwap) / vwap < pm_min:
        return False
    if win.bar_vol * WINDOW_S >= bar_vol_mult * s[SUM_VOL]:
        return True
    median = win.c_median_baseline(&n_base)
    return n_base >= C_BASELINE_MIN and median > 0.0 and s[SUM_VOL] + win.bar_vol >= vsr_min * median


def compute_row(OrderBook book not None, TradeWindows win not None, long long row_time_ms, long long listing_ms,
                long long recv_ns=0, unsigned int pair_id=0, bint candidate=False) -> dict:
    """The row as a dict (tests, slow paths); candidate=True gives c_fill_candidate's row at row_time_ms."""
    cdef FeatureRow row
    row.seq = 0
    if candidate:
        c_fill_candidate(&row, book, win, row_time_ms, listing_ms, recv_ns, pair_id)
    else:
        c_fill_row(&row, book, win, row_time_ms, listing_ms, recv_ns, pair_id)
    return row


def precheck(TradeWindows win not None, double pm_min, double bar_vol_mult, double vsr_min) -> bool:
    """See c_precheck."""
    return c_precheck(win, pm_min, bar_vol_mult, vsr_min)


def fill_rows(list books, list wins, long long row_time_ms, const long long[::1] listing_ms,
              const unsigned int[::1] pair_ids, object out) -> int:
    """Fill out[i] (a FEATURE_ROW_DTYPE array) with the closed-bar row of pair i; returns the count.

    A batch entry point for snapshots of every pair and for benchmarks: one Python call, then C.
    """
    cdef Py_ssize_t n = len(books), i
    cdef FeatureRow* rows
    cdef OrderBook book
    cdef TradeWindows win
    if len(wins) != n or listing_ms.shape[0] != n or pair_ids.shape[0] != n:
        raise ValueError("books, wins, listing_ms and pair_ids must have the same length")
    if out.dtype.itemsize != sizeof(FeatureRow) or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a writeable C-contiguous FEATURE_ROW_DTYPE array")
    if out.shape[0] < n:
        raise ValueError(f"out holds {out.shape[0]} rows, {n} needed")
    for i in range(n):  # type checks first, so a bad list leaves out untouched
        if not isinstance(books[i], OrderBook) or not isinstance(wins[i], TradeWindows):
            raise TypeError(f"pair {i}: want OrderBook and TradeWindows")
    rows = <FeatureRow*><size_t>out.__array_interface__["data"][0]
    for i in range(n):
        book = <OrderBook>books[i]
        win = <TradeWindows>wins[i]
        c_fill_row(&rows[i], book, win, row_time_ms, listing_ms[i], 0, pair_ids[i])
    return n
