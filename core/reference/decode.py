"""Plain-Python twin of core/decode.pyx: same wire walk, same result dict, same errors.

Why a twin: the compiled decoder is checked against two independent opinions — this module
(obvious Python, decimals parsed by float() after a grammar check) and the `protobuf` package
(tests only; nothing here imports it). Errors carry the same message and byte offset as the
compiled decoder, so a fuzzer can compare outcomes exactly.
"""

from __future__ import annotations

import math
import re
from typing import Any

from core.wire import MESSAGES, DecodeError

BODY_NONE, BODY_LIMIT_DEPTH, BODY_AGGRE_DEPTH, BODY_AGGRE_DEALS, BODY_AGGRE_BOOK_TICKER = 0, 303, 313, 314, 315
FIRST_BODY, LAST_BODY = 301, 315
MAX_FIELD_NUMBER = (1 << 29) - 1
MAX_DECIMAL_LEN = 64
# The decimal grammar core/wire.pxd accepts (see core/wire.pyx for why exponents are allowed).
_DECIMAL = re.compile(rb"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

(ERR_VARINT_TRUNCATED, ERR_VARINT_TOO_LONG, ERR_VARINT_OVERFLOW, ERR_FIXED64_TRUNCATED, ERR_FIXED32_TRUNCATED,
 ERR_LENGTH_OVERRUN, ERR_GROUP, ERR_WIRE_TYPE, ERR_FIELD_NUMBER, ERR_DECIMAL_EMPTY, ERR_DECIMAL_SYNTAX,
 ERR_DECIMAL_TOO_LONG, ERR_DECIMAL_RANGE, ERR_UINT_SYNTAX, ERR_UINT_OVERFLOW) = range(1, 16)  # fmt: skip


def _fail(code: int, offset: int) -> DecodeError:
    return DecodeError(f"{MESSAGES[code]} at offset {offset}")


def read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """(value, next position) of the base-128 varint at pos; at most 10 bytes, at most 64 bits."""
    start, result = pos, 0
    for i in range(10):
        if pos >= end:
            raise _fail(ERR_VARINT_TRUNCATED, start)
        b = buf[pos]
        pos += 1
        if i == 9:
            if b & 0x80:
                raise _fail(ERR_VARINT_TOO_LONG, start)
            if b > 1:
                raise _fail(ERR_VARINT_OVERFLOW, start)
        result |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            return result, pos
    raise AssertionError("unreachable")


def read_tag(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(field, wire type, next position); refuses field 0 / > 2**29-1, groups and wire types 6/7."""
    key, nxt = read_varint(buf, pos, end)
    field, wire = key >> 3, key & 7
    if field == 0 or field > MAX_FIELD_NUMBER:
        raise _fail(ERR_FIELD_NUMBER, pos)
    if wire in (3, 4):
        raise _fail(ERR_GROUP, pos)
    if wire > 5:
        raise _fail(ERR_WIRE_TYPE, pos)
    return field, wire, nxt


def read_len(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """(payload start, payload end) of the length-delimited value at pos."""
    n, start = read_varint(buf, pos, end)
    if n > end - start:
        raise _fail(ERR_LENGTH_OVERRUN, pos)
    return start, start + n


def skip_field(buf: bytes, pos: int, end: int, wire: int) -> int:
    """Position after a value of wire type `wire` starting at pos."""
    if wire == 0:
        return read_varint(buf, pos, end)[1]
    if wire == 2:
        return read_len(buf, pos, end)[1]
    if wire == 1:
        if end - pos < 8:
            raise _fail(ERR_FIXED64_TRUNCATED, pos)
        return pos + 8
    if wire == 5:
        if end - pos < 4:
            raise _fail(ERR_FIXED32_TRUNCATED, pos)
        return pos + 4
    raise _fail(ERR_GROUP if wire in (3, 4) else ERR_WIRE_TYPE, pos)


def parse_decimal(raw: bytes, offset: int = 0) -> float:
    """MEXC decimal string to float; the compiled parser must give the very same double."""
    if not raw:
        raise _fail(ERR_DECIMAL_EMPTY, offset)
    if len(raw) > MAX_DECIMAL_LEN:
        raise _fail(ERR_DECIMAL_TOO_LONG, offset)
    if not _DECIMAL.fullmatch(raw):
        raise _fail(ERR_DECIMAL_SYNTAX, offset)
    value = float(raw)
    if not math.isfinite(value):
        raise _fail(ERR_DECIMAL_RANGE, offset)
    return value


def parse_uint(raw: bytes, offset: int = 0) -> int:
    """Version string to int in [0, 2**64); scanned left to right like the compiled parser."""
    if not raw:
        raise _fail(ERR_UINT_SYNTAX, offset)
    value = 0
    for b in raw:
        if not 48 <= b <= 57:
            raise _fail(ERR_UINT_SYNTAX, offset)
        value = value * 10 + (b - 48)
        if value >= 1 << 64:
            raise _fail(ERR_UINT_OVERFLOW, offset)
    return value


def _int64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _int32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _empty_body(out: dict[str, Any]) -> None:
    out.update(body=BODY_NONE, from_version=0, to_version=0, version=0, bids=[], asks=[], deals=[],
               book_ticker=(0.0, 0.0, 0.0, 0.0))  # fmt: skip


def decode_frame(buf: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Decode one PushDataV3ApiWrapper frame into the dict FrameDecoder.to_dict() returns."""
    buf = bytes(buf)
    out: dict[str, Any] = {"channel": None, "symbol": None, "send_time_ms": -1, "create_time_ms": -1}
    _empty_body(out)
    oneof = 0
    pos, end = 0, len(buf)
    while pos < end:
        field, wire, pos = read_tag(buf, pos, end)
        if wire == 2:
            a, b = read_len(buf, pos, end)
            if field in (1, 3):
                out["channel" if field == 1 else "symbol"] = buf[a:b].decode("utf-8", "replace")
            elif FIRST_BODY <= field <= LAST_BODY:
                if field != oneof:  # protobuf oneof: another member replaces, the same one merges
                    _empty_body(out)
                    oneof = field
                if field == BODY_AGGRE_DEALS:
                    out["body"] = field
                    _deals(buf, a, b, out)
                elif field in (BODY_AGGRE_DEPTH, BODY_LIMIT_DEPTH):
                    out["body"] = field
                    _depth(buf, a, b, field == BODY_LIMIT_DEPTH, out)
                elif field == BODY_AGGRE_BOOK_TICKER:
                    out["body"] = field
                    _book_ticker(buf, a, b, out)
            pos = b
        elif wire == 0 and field in (5, 6):
            v, pos = read_varint(buf, pos, end)
            out["create_time_ms" if field == 5 else "send_time_ms"] = _int64(v)
        else:
            pos = skip_field(buf, pos, end, wire)
    return out


def _fields(buf: bytes, pos: int, end: int):  # type: ignore[no-untyped-def]
    """Yield (field, wire, value start, value end) for each field of the message [pos, end)."""
    while pos < end:
        field, wire, pos = read_tag(buf, pos, end)
        if wire == 2:
            a, b = read_len(buf, pos, end)
            yield field, wire, a, b
            pos = b
        else:
            nxt = skip_field(buf, pos, end, wire)
            yield field, wire, pos, nxt
            pos = nxt


def _level(buf: bytes, pos: int, end: int) -> tuple[float, float]:
    price = qty = 0.0
    for field, wire, a, b in _fields(buf, pos, end):
        if wire == 2 and field == 1:
            price = parse_decimal(buf[a:b], a)
        elif wire == 2 and field == 2:
            qty = parse_decimal(buf[a:b], a)
    return price, qty


def _depth(buf: bytes, pos: int, end: int, limit: bool, out: dict[str, Any]) -> None:
    for field, wire, a, b in _fields(buf, pos, end):
        if wire != 2:
            continue
        if field in (1, 2):
            out["bids" if field == 2 else "asks"].append(_level(buf, a, b))
        elif field == 4:
            out["version" if limit else "from_version"] = parse_uint(buf[a:b], a)
        elif field == 5 and not limit:
            out["to_version"] = parse_uint(buf[a:b], a)


def _deals(buf: bytes, pos: int, end: int, out: dict[str, Any]) -> None:
    for field, wire, a, b in _fields(buf, pos, end):
        if field == 1 and wire == 2:
            price = qty = 0.0
            side = time_ms = 0
            for f2, w2, s, e in _fields(buf, a, b):
                if w2 == 2 and f2 == 1:
                    price = parse_decimal(buf[s:e], s)
                elif w2 == 2 and f2 == 2:
                    qty = parse_decimal(buf[s:e], s)
                elif w2 == 0 and f2 == 3:
                    side = _int32(read_varint(buf, s, e)[0])
                elif w2 == 0 and f2 == 4:
                    time_ms = _int64(read_varint(buf, s, e)[0])
            out["deals"].append((price, qty, side, time_ms))


def _book_ticker(buf: bytes, pos: int, end: int, out: dict[str, Any]) -> None:
    values = list(out["book_ticker"])
    for field, wire, a, b in _fields(buf, pos, end):
        if wire == 2 and 1 <= field <= 4:
            values[field - 1] = parse_decimal(buf[a:b], a)
        elif wire == 2 and field == 5:
            out["version"] = parse_uint(buf[a:b], a)
    out["book_ticker"] = tuple(values)
