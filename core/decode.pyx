# cython: language_level=3
"""Protobuf decoding of MEXC push frames without a Python object per field.

Why hand-rolled: the `protobuf` package builds a message object and a Python str per field;
on 2,000 pairs that is most of a CPU. This walker reads the wire format (varints, length-
delimited fields) in place, keeps only what the scanner needs, and parses MEXC's decimal strings
to doubles itself. The `protobuf` package and core.reference.decode are the two independent
opinions the tests compare it with.

Decimal strings: [-]digits[.digits]. When the digits fit 2**53 and there are at most 22 of
them after the point, mantissa / 10**k is one IEEE division of two exact numbers and so
correctly rounded (bit-equal to Python float()); longer strings fall back to C strtod on a
stack copy. Exponent notation and strings over 64 bytes are refused: MEXC never sends them.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from libc.stdlib cimport free, realloc, strtod
from libc.string cimport memcpy

DEF MAX_DECIMAL = 64

cdef double[23] _POW10
cdef int _i
_POW10[0] = 1.0
for _i in range(1, 23):
    _POW10[_i] = _POW10[_i - 1] * 10.0


class DecodeError(ValueError):
    """A frame is truncated, malformed or holds a value the scanner cannot use."""


cdef inline const unsigned char* _varint(const unsigned char* p, const unsigned char* end,
                                         unsigned long long* out) except NULL:
    cdef unsigned long long result = 0
    cdef int shift = 0
    cdef unsigned char b
    while True:
        if p >= end:
            raise DecodeError("truncated varint")
        b = p[0]
        p += 1
        if shift == 63 and b > 1:
            raise DecodeError("varint overflows 64 bits")
        result |= (<unsigned long long>(b & 0x7F)) << shift
        if not (b & 0x80):
            out[0] = result
            return p
        shift += 7
        if shift > 63:
            raise DecodeError("varint longer than 10 bytes")


cdef inline const unsigned char* _skip(const unsigned char* p, const unsigned char* end, int wire) except NULL:
    cdef unsigned long long n
    if wire == 0:
        return _varint(p, end, &n)
    if wire == 1:
        if end - p < 8:
            raise DecodeError("truncated fixed64")
        return p + 8
    if wire == 5:
        if end - p < 4:
            raise DecodeError("truncated fixed32")
        return p + 4
    if wire == 2:
        p = _varint(p, end, &n)
        if n > <unsigned long long>(end - p):
            raise DecodeError("length-delimited field runs past its message")
        return p + n
    raise DecodeError(f"unsupported wire type {wire}")


cdef inline const unsigned char* _len_field(const unsigned char* p, const unsigned char* end,
                                            const unsigned char** out_end) except NULL:
    cdef unsigned long long n
    p = _varint(p, end, &n)
    if n > <unsigned long long>(end - p):
        raise DecodeError("length-delimited field runs past its message")
    out_end[0] = p + n
    return p


cdef double parse_decimal(const unsigned char* s, Py_ssize_t n) except? -1.0:
    """ASCII decimal string to double, bit-equal to Python float() for [-]d+[.d+]."""
    cdef Py_ssize_t i = 0
    cdef bint neg = False
    cdef unsigned long long mant = 0
    cdef int frac = 0, digits = 0
    cdef bint dot = False, exact = True
    cdef unsigned char c
    cdef char[MAX_DECIMAL + 1] buf
    cdef double value
    if n <= 0:
        raise DecodeError("empty decimal string")
    if n > MAX_DECIMAL:
        raise DecodeError("decimal string too long")
    if s[0] == 45:  # '-'
        neg = True
        i = 1
        if n == 1:
            raise DecodeError("decimal string without digits")
    while i < n:
        c = s[i]
        if 48 <= c <= 57:
            digits += 1
            if mant < 900719925474099ULL:  # stays below 2**53 after *10 + 9
                mant = mant * 10 + (c - 48)
            elif mant != 0 or c != 48:
                exact = False
            if dot:
                frac += 1
        elif c == 46 and not dot:  # '.'
            dot = True
        else:
            raise DecodeError("not a decimal string")
        i += 1
    if digits == 0:
        raise DecodeError("decimal string without digits")
    if exact and frac <= 22:
        value = mant / _POW10[frac]
    else:
        memcpy(buf, s, n)
        buf[n] = 0
        return strtod(buf, NULL)
    return -value if neg else value


cdef unsigned long long parse_uint(const unsigned char* s, Py_ssize_t n) except? 0:
    cdef unsigned long long v = 0
    cdef Py_ssize_t i
    cdef unsigned char c
    if n <= 0 or n > 20:
        raise DecodeError("bad version string")
    for i in range(n):
        c = s[i]
        if not 48 <= c <= 57:
            raise DecodeError("bad version string")
        if v > (0xFFFFFFFFFFFFFFFFULL - (c - 48)) // 10:
            raise DecodeError("version overflows 64 bits")
        v = v * 10 + (c - 48)
    return v


def py_parse_decimal(bytes s):
    """Test hook for parse_decimal."""
    return parse_decimal(<const unsigned char*>s, len(s))


cdef class FrameDecoder:
    """Decode one frame at a time into reusable C buffers (see decode.pxd for the fields)."""

    def __cinit__(self):
        self.cap_bids = self.cap_asks = self.cap_deals = 0
        self.bids = self.asks = NULL
        self.deals = NULL
        self._reset()

    def __dealloc__(self):
        free(self.bids)
        free(self.asks)
        free(self.deals)

    cdef void _reset(self):
        self.symbol_ptr = NULL
        self.symbol_len = 0
        self.channel_ptr = NULL
        self.channel_len = 0
        self.send_time_ms = -1
        self.create_time_ms = -1
        self._reset_body()

    cdef void _reset_body(self):
        # A oneof: when a frame carries two bodies the last one wins, as in protobuf.
        self.body = BODY_NONE
        self.from_version = self.to_version = self.version = 0
        self.n_bids = self.n_asks = self.n_deals = 0
        self.bt_bid_price = self.bt_bid_qty = self.bt_ask_price = self.bt_ask_qty = 0.0

    cdef int c_decode(self, const unsigned char* buf, Py_ssize_t n) except -1:
        cdef const unsigned char* p = buf
        cdef const unsigned char* end = buf + n
        cdef const unsigned char* sub_end
        cdef unsigned long long key, v
        cdef int field, wire
        self._reset()
        while p < end:
            p = _varint(p, end, &key)
            field = <int>(key >> 3)
            wire = <int>(key & 7)
            if field == 1 and wire == 2:
                self.channel_ptr = _len_field(p, end, &sub_end)
                self.channel_len = sub_end - self.channel_ptr
                p = sub_end
            elif field == 3 and wire == 2:
                self.symbol_ptr = _len_field(p, end, &sub_end)
                self.symbol_len = sub_end - self.symbol_ptr
                p = sub_end
            elif (field == 5 or field == 6) and wire == 0:
                p = _varint(p, end, &v)
                if field == 5:
                    self.create_time_ms = <long long>v
                else:
                    self.send_time_ms = <long long>v
            elif field == BODY_AGGRE_DEALS and wire == 2:
                p = _len_field(p, end, &sub_end)
                self._reset_body()
                self._deals(p, sub_end)
                self.body = BODY_AGGRE_DEALS
                p = sub_end
            elif (field == BODY_AGGRE_DEPTH or field == BODY_LIMIT_DEPTH) and wire == 2:
                p = _len_field(p, end, &sub_end)
                self._reset_body()
                self._depth(p, sub_end, field == BODY_LIMIT_DEPTH)
                self.body = field
                p = sub_end
            elif field == BODY_AGGRE_BOOK_TICKER and wire == 2:
                p = _len_field(p, end, &sub_end)
                self._reset_body()
                self._book_ticker(p, sub_end)
                self.body = BODY_AGGRE_BOOK_TICKER
                p = sub_end
            elif field == 0:
                raise DecodeError(f"field number 0 at offset {<Py_ssize_t>(p - buf)}")
            else:
                p = _skip(p, end, wire)
        return 0

    cdef int _push_level(self, double price, double qty, bint is_bid) except -1:
        cdef Level* arr
        if is_bid:
            if self.n_bids == self.cap_bids:
                self.cap_bids = self.cap_bids * 2 + 16
                arr = <Level*>realloc(self.bids, self.cap_bids * sizeof(Level))
                if arr == NULL:
                    raise MemoryError()
                self.bids = arr
            self.bids[self.n_bids].price = price
            self.bids[self.n_bids].qty = qty
            self.n_bids += 1
        else:
            if self.n_asks == self.cap_asks:
                self.cap_asks = self.cap_asks * 2 + 16
                arr = <Level*>realloc(self.asks, self.cap_asks * sizeof(Level))
                if arr == NULL:
                    raise MemoryError()
                self.asks = arr
            self.asks[self.n_asks].price = price
            self.asks[self.n_asks].qty = qty
            self.n_asks += 1
        return 0

    cdef int _levels(self, const unsigned char* p, const unsigned char* end, bint is_bid) except -1:
        """One depth item {1 price, 2 quantity}; a missing field is proto3's default (0)."""
        cdef unsigned long long key
        cdef const unsigned char* s
        cdef const unsigned char* s_end
        cdef double price = 0.0, qty = 0.0
        cdef int field, wire
        while p < end:
            p = _varint(p, end, &key)
            field = <int>(key >> 3)
            wire = <int>(key & 7)
            if (field == 1 or field == 2) and wire == 2:
                s = _len_field(p, end, &s_end)
                if field == 1:
                    price = parse_decimal(s, s_end - s)
                else:
                    qty = parse_decimal(s, s_end - s)
                p = s_end
            else:
                p = _skip(p, end, wire)
        return self._push_level(price, qty, is_bid)

    cdef int _depth(self, const unsigned char* p, const unsigned char* end, bint limit) except -1:
        cdef unsigned long long key
        cdef const unsigned char* s
        cdef const unsigned char* s_end
        cdef int field, wire
        while p < end:
            p = _varint(p, end, &key)
            field = <int>(key >> 3)
            wire = <int>(key & 7)
            if wire == 2 and (field == 1 or field == 2):
                s = _len_field(p, end, &s_end)
                self._levels(s, s_end, field == 2)
                p = s_end
            elif wire == 2 and field == 4:
                s = _len_field(p, end, &s_end)
                if limit:
                    self.version = parse_uint(s, s_end - s)
                else:
                    self.from_version = parse_uint(s, s_end - s)
                p = s_end
            elif wire == 2 and field == 5 and not limit:
                s = _len_field(p, end, &s_end)
                self.to_version = parse_uint(s, s_end - s)
                p = s_end
            else:
                p = _skip(p, end, wire)
        return 0

    cdef int _deals(self, const unsigned char* p, const unsigned char* end) except -1:
        cdef unsigned long long key, v
        cdef const unsigned char* item_end
        cdef const unsigned char* s
        cdef const unsigned char* s_end
        cdef int field, wire, f2, w2
        cdef Deal* arr
        cdef Deal d
        while p < end:
            p = _varint(p, end, &key)
            field = <int>(key >> 3)
            wire = <int>(key & 7)
            if field == 1 and wire == 2:
                p = _len_field(p, end, &item_end)
                d.price = 0.0
                d.qty = 0.0
                d.time_ms = 0
                d.side = 0
                while p < item_end:
                    p = _varint(p, item_end, &key)
                    f2 = <int>(key >> 3)
                    w2 = <int>(key & 7)
                    if (f2 == 1 or f2 == 2) and w2 == 2:
                        s = _len_field(p, item_end, &s_end)
                        if f2 == 1:
                            d.price = parse_decimal(s, s_end - s)
                        else:
                            d.qty = parse_decimal(s, s_end - s)
                        p = s_end
                    elif (f2 == 3 or f2 == 4) and w2 == 0:
                        p = _varint(p, item_end, &v)
                        if f2 == 3:
                            d.side = <int>v
                        else:
                            d.time_ms = <long long>v
                    else:
                        p = _skip(p, item_end, w2)
                if self.n_deals == self.cap_deals:
                    self.cap_deals = self.cap_deals * 2 + 16
                    arr = <Deal*>realloc(self.deals, self.cap_deals * sizeof(Deal))
                    if arr == NULL:
                        raise MemoryError()
                    self.deals = arr
                self.deals[self.n_deals] = d
                self.n_deals += 1
            else:
                p = _skip(p, end, wire)
        return 0

    cdef int _book_ticker(self, const unsigned char* p, const unsigned char* end) except -1:
        cdef unsigned long long key
        cdef const unsigned char* s
        cdef const unsigned char* s_end
        cdef int field, wire
        while p < end:
            p = _varint(p, end, &key)
            field = <int>(key >> 3)
            wire = <int>(key & 7)
            if 1 <= field <= 5 and wire == 2:
                s = _len_field(p, end, &s_end)
                if field == 1:
                    self.bt_bid_price = parse_decimal(s, s_end - s)
                elif field == 2:
                    self.bt_bid_qty = parse_decimal(s, s_end - s)
                elif field == 3:
                    self.bt_ask_price = parse_decimal(s, s_end - s)
                elif field == 4:
                    self.bt_ask_qty = parse_decimal(s, s_end - s)
                else:
                    self.version = parse_uint(s, s_end - s)
                p = s_end
            else:
                p = _skip(p, end, wire)
        return 0

    # --- Python-visible, for tests and slow paths --------------------------------------------

    def decode(self, object buf):
        """Decode a bytes-like frame; returns the body kind. Raises DecodeError on bad input."""
        cdef Py_buffer view
        self._keep = bytes(buf) if not isinstance(buf, bytes) else buf
        PyObject_GetBuffer(self._keep, &view, PyBUF_SIMPLE)
        try:
            self.c_decode(<const unsigned char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)
        return self.body

    def symbol(self):
        if self.symbol_ptr == NULL or self._keep is None:
            return None
        return (<const char*>self.symbol_ptr)[:self.symbol_len].decode("utf-8", "replace")

    def channel(self):
        if self.channel_ptr == NULL or self._keep is None:
            return None
        return (<const char*>self.channel_ptr)[:self.channel_len].decode("utf-8", "replace")

    def to_dict(self):
        """The decoded frame as plain data (the shape core.reference.decode.decode_frame returns)."""
        return {
            "body": self.body,
            "channel": self.channel(),
            "symbol": self.symbol(),
            "send_time_ms": self.send_time_ms,
            "create_time_ms": self.create_time_ms,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "version": self.version,
            "bids": [(self.bids[i].price, self.bids[i].qty) for i in range(self.n_bids)],
            "asks": [(self.asks[i].price, self.asks[i].qty) for i in range(self.n_asks)],
            "deals": [(self.deals[i].price, self.deals[i].qty, self.deals[i].side, self.deals[i].time_ms) for i in range(self.n_deals)],
            "book_ticker": (self.bt_bid_price, self.bt_bid_qty, self.bt_ask_price, self.bt_ask_qty),
        }
