# The frame decoder: walks MEXC's PushDataV3ApiWrapper protobuf straight from the frame bytes.

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
    int side                    # 1 taker buy, 2 taker sell


cdef class FrameDecoder:
    cdef readonly int body
    cdef const unsigned char* symbol_ptr    # into the caller's buffer: valid only during the call
    cdef readonly Py_ssize_t symbol_len
    cdef const unsigned char* channel_ptr
    cdef readonly Py_ssize_t channel_len
    cdef readonly long long send_time_ms    # -1 when absent
    cdef readonly long long create_time_ms  # -1 when absent
    cdef readonly unsigned long long from_version
    cdef readonly unsigned long long to_version
    cdef readonly unsigned long long version
    cdef Level* bids            # growable buffers owned by the decoder, reused frame to frame
    cdef Level* asks
    cdef Deal* deals
    cdef readonly int n_bids, n_asks, n_deals
    cdef int cap_bids, cap_asks, cap_deals
    cdef readonly double bt_bid_price, bt_bid_qty, bt_ask_price, bt_ask_qty
    cdef bytes _keep            # the Python-level decode() keeps its buffer alive for symbol()/channel()

    cdef int c_decode(self, const unsigned char* buf, Py_ssize_t n) except -1
    cdef void _reset(self)
    cdef void _reset_body(self)
    cdef int _push_level(self, double price, double qty, bint is_bid) except -1
    cdef int _levels(self, const unsigned char* p, const unsigned char* end, bint is_bid) except -1
    cdef int _deals(self, const unsigned char* p, const unsigned char* end) except -1
    cdef int _depth(self, const unsigned char* p, const unsigned char* end, bint limit) except -1
    cdef int _book_ticker(self, const unsigned char* p, const unsigned char* end) except -1
