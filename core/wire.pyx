# cython: language_level=3
"""Protobuf wire primitives (see wire.pxd): the rare paths, the error type, and test hooks.

The inline primitives live in wire.pxd so decode.pyx compiles them into its own loops. This
module holds what is not worth inlining — the strtod fallback of the decimal parser and the
one place that turns an error code into DecodeError — plus thin `py_*` wrappers so tests can
hit every primitive directly with Python bytes.

Decimal format decision: MEXC sends plain decimals ("0.000012", "80535.88"). Exponent notation
("1e-5", "1.234E-9") is accepted as well, because a Java backend printing BigDecimal with
toString() instead of toPlainString() would produce it for small prices; refusing it would turn
a harmless format change into lost frames. Signs other than a leading '-', spaces, '_', "inf",
"nan", hex and strings over 64 bytes are refused; so is a value outside the double range.
"""

from libc.math cimport isfinite
from libc.string cimport memcpy
from libc.stdint cimport uint64_t

cdef extern from *:
    """
    #include <locale.h>
    #include <stdlib.h>
    /* strtod follows LC_NUMERIC; a process that calls setlocale() could make it stop at '.'.
       strtod_l with a private "C" locale parses the same way whatever the process locale is. */
    static locale_t wire_c_numeric = (locale_t)0;
    static int wire_init_c_locale(void) {
        if (!wire_c_numeric) wire_c_numeric = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
        return wire_c_numeric != (locale_t)0;
    }
    static double wire_strtod_c(const char* s, char** endp) {
        return wire_c_numeric ? strtod_l(s, endp, wire_c_numeric) : strtod(s, endp);
    }
    """
    int wire_init_c_locale() nogil
    double wire_strtod_c(const char* s, char** endp) nogil

wire_init_c_locale()


class DecodeError(ValueError):
    """A frame is truncated, malformed, or holds a value the scanner cannot use.

    The message says what was wrong and at which byte offset of the frame (or of the string
    handed to a py_* hook).
    """


# Indexed by the WIRE_ERR_* codes of wire.pxd; core.reference.decode uses the same texts.
MESSAGES: tuple[str, ...] = (
    "no error",
    "truncated varint",
    "varint longer than 10 bytes",
    "varint overflows 64 bits",
    "truncated fixed64",
    "truncated fixed32",
    "length-delimited field runs past its enclosing message",
    "group wire type (3/4) is not supported",
    "invalid wire type (6/7)",
    "field number 0 or above 2**29-1",
    "empty decimal string",
    "malformed decimal string",
    "decimal string longer than 64 bytes",
    "decimal outside the double range",
    "malformed version string",
    "version overflows 64 bits",
)


cdef int raise_wire_error(int err, Py_ssize_t offset) except -1:
    """Raise DecodeError for a WIRE_ERR_* code found at byte `offset`."""
    text = MESSAGES[err] if 0 < err < len(MESSAGES) else f"wire error {err}"
    raise DecodeError(f"{text} at offset {offset}")


cdef double decimal_slow(const unsigned char* s, Py_ssize_t n, int* err) noexcept nogil:
    """strtod on a NUL-terminated stack copy. Called only on text parse_decimal already validated."""
    cdef char[MAX_DECIMAL_LEN + 1] buf
    cdef char* stop
    cdef double value
    memcpy(buf, s, n)
    buf[n] = 0
    value = wire_strtod_c(buf, &stop)
    if stop != buf + n:
        err[0] = WIRE_ERR_DECIMAL_SYNTAX
        return 0.0
    if not isfinite(value):
        err[0] = WIRE_ERR_DECIMAL_RANGE
        return 0.0
    return value


# --- test hooks: each primitive on Python bytes, errors raised as DecodeError ------------------

def py_parse_decimal(const unsigned char[::1] data) -> float:
    """parse_decimal over the whole of `data`."""
    cdef int err = WIRE_OK
    cdef const unsigned char* p = &data[0] if data.shape[0] else <const unsigned char*>b""
    cdef double value = parse_decimal(p, data.shape[0], &err)
    if err:
        raise_wire_error(err, 0)
    return value


def py_parse_uint(const unsigned char[::1] data) -> int:
    """parse_uint over the whole of `data`."""
    cdef int err = WIRE_OK
    cdef const unsigned char* p = &data[0] if data.shape[0] else <const unsigned char*>b""
    cdef uint64_t value = parse_uint(p, data.shape[0], &err)
    if err:
        raise_wire_error(err, 0)
    return value


cdef inline const unsigned char* _at(const unsigned char[::1] data, Py_ssize_t pos) except NULL:
    if pos < 0 or pos > data.shape[0]:
        raise IndexError(f"position {pos} outside 0..{data.shape[0]}")
    return <const unsigned char*>b"" if data.shape[0] == 0 else &data[0]


def py_read_varint(const unsigned char[::1] data, Py_ssize_t pos=0) -> tuple[int, int]:
    """(value, next position) of the varint at `pos`."""
    cdef int err = WIRE_OK
    cdef uint64_t value = 0
    cdef const unsigned char* base = _at(data, pos)
    cdef const unsigned char* q = read_varint(base + pos, base + data.shape[0], &value, &err)
    if q == NULL:
        raise_wire_error(err, pos)
    return value, q - base


def py_read_tag(const unsigned char[::1] data, Py_ssize_t pos=0) -> tuple[int, int, int]:
    """(field number, wire type, next position) of the key at `pos`."""
    cdef int err = WIRE_OK, field = 0, wire = 0
    cdef const unsigned char* base = _at(data, pos)
    cdef const unsigned char* q = read_tag(base + pos, base + data.shape[0], &field, &wire, &err)
    if q == NULL:
        raise_wire_error(err, pos)
    return field, wire, q - base


def py_skip_field(const unsigned char[::1] data, Py_ssize_t pos, int wire) -> int:
    """Position after the value of wire type `wire` that starts at `pos`."""
    cdef int err = WIRE_OK
    cdef const unsigned char* base = _at(data, pos)
    cdef const unsigned char* q = skip_field(base + pos, base + data.shape[0], wire, &err)
    if q == NULL:
        raise_wire_error(err, pos)
    return q - base
