# The frame decoder: walks MEXC's PushDataV3ApiWrapper protobuf straight from the frame bytes.
cimport cython

cdef enum:
    BODY_NONE = 0               # no body, or a body the scanner skips (kline, mini tickers, unknown)
    BODY_LIMIT_DEPTH = 303
    BODY_AGGRE_DEPTH = 313
    BODY_AGGRE_DEALS = 314
    BODY_AGGRE_BOOK_TICKER = 315

cdef struct Level:
    double price
    double qty

cdef struct Deal:
    double price
    double qty
    long long time_ms
    int side                    # 1 taker buy, 2 taker sell (tradeType; 0 when absent)


@cython.final
cdef class FrameDecoder:
    cdef readonly int body                  # one of BODY_*
    cdef const unsigned char* symbol_ptr    # wrapper field 3; into the caller's buffer, valid only during the call
    cdef readonly Py_ssize_t symbol_len
    cdef const unsigned char* channel_ptr   # wrapper field 1; same lifetime as symbol_ptr
    cdef readonly Py_ssize_t channel_len
    cdef readonly long long send_time_ms    # wrapper field 6; -1 when absent
    cdef readonly long long create_time_ms  # wrapper field 5; -1 when absent
    cdef readonly unsigned long long from_version   # aggre depth; 0 when absent
    cdef readonly unsigned long long to_version     # aggre depth; 0 when absent
    cdef readonly unsigned long long version        # limit depth and book ticker; 0 when absent
    cdef Level* bids            # growable buffers owned by the decoder, reused frame to frame
    cdef Level* asks
    cdef Deal* deals
    cdef readonly int n_bids, n_asks, n_deals
    cdef readonly double bt_bid_price, bt_bid_qty, bt_ask_price, bt_ask_qty   # book ticker body
    cdef int cap_bids, cap_asks, cap_deals
    cdef int oneof_field                    # wire field number of the last body seen (0: none)
    cdef const unsigned char* base          # start of the frame in progress, for error offsets
    cdef char* text                         # decode()'s own copy of channel + symbol
    cdef Py_ssize_t text_cap
    cdef bint owned                         # symbol_ptr/channel_ptr point into text (set by decode())

    cdef int c_decode(self, const unsigned char* buf, Py_ssize_t n) except -1
    cdef void _reset_body(self) noexcept
    cdef int _fail(self, int err, const unsigned char* at) except -1
    cdef int _grow(self, int which) except -1
    cdef int _own_text(self) except -1
    cdef int _level(self, const unsigned char* p, const unsigned char* end, bint is_bid) except -1
    cdef int _depth(self, const unsigned char* p, const unsigned char* end, bint limit) except -1
    cdef int _deal(self, const unsigned char* p, const unsigned char* end) except -1
    cdef int _deals(self, const unsigned char* p, const unsigned char* end) except -1
    cdef int _book_ticker(self, const unsigned char* p, const unsigned char* end) except -1
