# The Alpha-1 feature row of one pair, written straight into the ring's C struct.
from core.book cimport OrderBook
from core.row cimport FeatureRow
from core.windows cimport TradeWindows

cdef void c_fill_row(FeatureRow* row, OrderBook book, TradeWindows win, long long row_time_ms,
                     long long listing_ms, long long recv_ns, unsigned int pair_id) noexcept
cdef void c_fill_candidate(FeatureRow* row, OrderBook book, TradeWindows win, long long now_ms,
                           long long listing_ms, long long recv_ns, unsigned int pair_id) noexcept
cdef bint c_precheck(TradeWindows win, double pm_min, double bar_vol_mult, double vsr_min) noexcept
