# Protobuf wire primitives for the frame decoder, as inline C functions over a byte range.
#
# Why here and not in decode.pyx: the primitives are the part that must never read past a bound
# and must parse decimals exactly; keeping them small and separate lets tests hit each one through
# the def wrappers in wire.pyx, and lets any other core module cimport them without a Python call.
#
# Error convention: a primitive never raises. On bad input it returns NULL (or 0 / 0.0) and stores
# one of the WIRE_ERR_* codes in *err; the caller, which knows the frame's start, turns that into
# DecodeError("<what> at offset <n>") with raise_wire_error(). No Python object is made on success.

from libc.stdint cimport uint64_t

cdef extern from *:
    """
    /* 10**0 .. 10**22 are exact doubles: one IEEE multiply or divide by them rounds once. */
    static const double wire_pow10[23] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    """
    const double wire_pow10[23]

cdef enum:
    WIRE_VARINT = 0
    WIRE_FIXED64 = 1
    WIRE_LEN = 2
    WIRE_START_GROUP = 3
    WIRE_END_GROUP = 4
    WIRE_FIXED32 = 5
    MAX_FIELD_NUMBER = 536870911     # 2**29 - 1, protobuf's limit
    MAX_DECIMAL_LEN = 64             # longer decimal strings are refused (MEXC's are < 25 bytes)
    MAX_FAST_MANTISSA = 9007199254740992   # 2**53: every integer up to here is an exact double

cdef enum:
    WIRE_OK = 0
    WIRE_ERR_VARINT_TRUNCATED = 1
    WIRE_ERR_VARINT_TOO_LONG = 2
    WIRE_ERR_VARINT_OVERFLOW = 3
    WIRE_ERR_FIXED64_TRUNCATED = 4
    WIRE_ERR_FIXED32_TRUNCATED = 5
    WIRE_ERR_LENGTH_OVERRUN = 6
    WIRE_ERR_GROUP = 7
    WIRE_ERR_WIRE_TYPE = 8
    WIRE_ERR_FIELD_NUMBER = 9
    WIRE_ERR_DECIMAL_EMPTY = 10
    WIRE_ERR_DECIMAL_SYNTAX = 11
    WIRE_ERR_DECIMAL_TOO_LONG = 12
    WIRE_ERR_DECIMAL_RANGE = 13
    WIRE_ERR_UINT_SYNTAX = 14
    WIRE_ERR_UINT_OVERFLOW = 15


# Defined in wire.pyx (not inline: rare paths).
cdef double decimal_slow(const unsigned char* s, Py_ssize_t n, int* err) noexcept nogil
cdef int raise_wire_error(int err, Py_ssize_t offset) except -1


cdef inline const unsigned char* read_varint(const unsigned char* p, const unsigned char* end,
                                             uint64_t* out, int* err) noexcept nogil:
    """Read one base-128 varint starting at p; NULL on a truncated, >10-byte or >64-bit varint."""
    cdef uint64_t result
    cdef unsigned int shift = 7
    cdef unsigned char b
    if p < end and p[0] < 0x80:     # tags, sides and lengths < 128: one byte
        out[0] = p[0]
        return p + 1
    if p >= end:
        err[0] = WIRE_ERR_VARINT_TRUNCATED
        return NULL
    result = p[0] & 0x7F
    p += 1
    while True:
        if p >= end:
            err[0] = WIRE_ERR_VARINT_TRUNCATED
            return NULL
        b = p[0]
        p += 1
        if shift == 63:
            if b & 0x80:
                err[0] = WIRE_ERR_VARINT_TOO_LONG
                return NULL
            if b > 1:
                err[0] = WIRE_ERR_VARINT_OVERFLOW
                return NULL
        result |= (<uint64_t>(b & 0x7F)) << shift
        if not (b & 0x80):
            out[0] = result
            return p
        shift += 7


cdef inline const unsigned char* read_tag(const unsigned char* p, const unsigned char* end,
                                          int* field, int* wire, int* err) noexcept nogil:
    """Read a field key; refuses field 0, numbers past 2**29-1, groups (3/4) and wire types 6/7."""
    cdef uint64_t key
    p = read_varint(p, end, &key, err)
    if p == NULL:
        return NULL
    if key < 8 or (key >> 3) > MAX_FIELD_NUMBER:
        err[0] = WIRE_ERR_FIELD_NUMBER
        return NULL
    wire[0] = <int>(key & 7)
    if wire[0] == WIRE_START_GROUP or wire[0] == WIRE_END_GROUP:
        err[0] = WIRE_ERR_GROUP
        return NULL
    if wire[0] > WIRE_FIXED32:
        err[0] = WIRE_ERR_WIRE_TYPE
        return NULL
    field[0] = <int>(key >> 3)
    return p


cdef inline const unsigned char* read_len(const unsigned char* p, const unsigned char* end,
                                          const unsigned char** sub_end, int* err) noexcept nogil:
    """Read a length prefix; the payload [result, *sub_end) must lie inside [p, end)."""
    cdef uint64_t n
    p = read_varint(p, end, &n, err)
    if p == NULL:
        return NULL
    if n > <uint64_t>(end - p):
        err[0] = WIRE_ERR_LENGTH_OVERRUN
        return NULL
    sub_end[0] = p + n
    return p


cdef inline const unsigned char* skip_field(const unsigned char* p, const unsigned char* end,
                                            int wire, int* err) noexcept nogil:
    """Step over the value of a field the caller does not want (unknown or skipped)."""
    cdef uint64_t ignored
    cdef const unsigned char* sub_end
    if wire == WIRE_VARINT:
        return read_varint(p, end, &ignored, err)
    if wire == WIRE_LEN:
        if read_len(p, end, &sub_end, err) == NULL:
            return NULL
        return sub_end
    if wire == WIRE_FIXED64:
        if end - p < 8:
            err[0] = WIRE_ERR_FIXED64_TRUNCATED
            return NULL
        return p + 8
    if wire == WIRE_FIXED32:
        if end - p < 4:
            err[0] = WIRE_ERR_FIXED32_TRUNCATED
            return NULL
        return p + 4
    err[0] = WIRE_ERR_GROUP if wire == WIRE_START_GROUP or wire == WIRE_END_GROUP else WIRE_ERR_WIRE_TYPE
    return NULL


cdef inline double parse_decimal(const unsigned char* s, Py_ssize_t n, int* err) noexcept nogil:
    """ASCII decimal [-]digits[.digits][(e|E)[+|-]digits] to the double Python float() gives.

    Fast path (nearly every MEXC string): at most 19 significant digits forming a mantissa
    <= 2**53 and a net power of ten within 10**±22 — both operands are exact doubles, so one
    IEEE multiply or divide is the correctly rounded result. Anything else goes to strtod in the
    C locale (correctly rounded too). Empty, malformed, > 64 bytes or non-finite → *err.
    """
    cdef Py_ssize_t i = 0
    cdef bint neg = False, seen_dot = False, exp_neg = False
    cdef uint64_t mant = 0
    cdef int sig = 0, frac = 0, mant_digits = 0, exp_digits = 0, exp_val = 0, e10
    cdef unsigned char c
    cdef double value
    if n <= 0:
        err[0] = WIRE_ERR_DECIMAL_EMPTY
        return 0.0
    if n > MAX_DECIMAL_LEN:
        err[0] = WIRE_ERR_DECIMAL_TOO_LONG
        return 0.0
    if s[0] == 45:  # '-'
        neg = True
        i = 1
    while i < n:
        c = s[i]
        if 48 <= c <= 57:
            mant_digits += 1
            if mant != 0 or c != 48:   # leading zeros are not significant
                sig += 1
                if sig <= 19:         # 19 digits always fit a uint64
                    mant = mant * 10 + (c - 48)
            if seen_dot:
                frac += 1
        elif c == 46 and not seen_dot:  # '.'
            seen_dot = True
        else:
            break
        i += 1
    if mant_digits == 0:
        err[0] = WIRE_ERR_DECIMAL_SYNTAX
        return 0.0
    if i < n:
        if s[i] != 101 and s[i] != 69:  # 'e' / 'E'
            err[0] = WIRE_ERR_DECIMAL_SYNTAX
            return 0.0
        i += 1
        if i < n and (s[i] == 43 or s[i] == 45):  # '+' / '-'
            exp_neg = s[i] == 45
            i += 1
        while i < n:
            c = s[i]
            if not 48 <= c <= 57:
                err[0] = WIRE_ERR_DECIMAL_SYNTAX
                return 0.0
            exp_digits += 1
            if exp_val < 100000:      # past this the value is 0 or inf anyway; strtod decides
                exp_val = exp_val * 10 + (c - 48)
            i += 1
        if exp_digits == 0:
            err[0] = WIRE_ERR_DECIMAL_SYNTAX
            return 0.0
    if mant == 0:
        return -0.0 if neg else 0.0
    e10 = (-exp_val if exp_neg else exp_val) - frac
    if sig <= 19 and mant <= MAX_FAST_MANTISSA and -22 <= e10 <= 22:
        if e10 < 0:
            value = <double>mant / wire_pow10[-e10]
        else:
            value = <double>mant * wire_pow10[e10]   # < 2**53 * 1e22: never overflows
        return -value if neg else value
    return decimal_slow(s, n, err)


cdef inline uint64_t parse_uint(const unsigned char* s, Py_ssize_t n, int* err) noexcept nogil:
    """ASCII digits to uint64 (MEXC's version strings); empty, non-digit or >= 2**64 → *err."""
    cdef uint64_t v = 0
    cdef Py_ssize_t i
    cdef unsigned int d
    if n <= 0:
        err[0] = WIRE_ERR_UINT_SYNTAX
        return 0
    for i in range(n):
        d = <unsigned int>s[i] - 48
        if d > 9:
            err[0] = WIRE_ERR_UINT_SYNTAX
            return 0
        if v > (0xFFFFFFFFFFFFFFFFULL - d) // 10:
            err[0] = WIRE_ERR_UINT_OVERFLOW
            return 0
        v = v * 10 + d
    return v
