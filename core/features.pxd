from core.book cimport OrderBook
from core.row cimport FeatureRow
from core.windows cimport TradeWindows

cdef void c_fill_row(FeatureRow* row, OrderBook book, TradeWindows win, long long row_time_ms,
                     long long listing_ms, long long recv_ns, unsigned int pair_id)
