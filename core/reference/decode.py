"""Plain-Python twin of core/decode.pyx: same wire walk, same result dict, same errors."""

from __future__ import annotations

import re
from typing import Any

from core.decode import DecodeError

BODY_NONE, BODY_LIMIT_DEPTH, BODY_AGGRE_DEPTH, BODY_AGGRE_DEALS, BODY_AGGRE_BOOK_TICKER = 0, 303, 313, 314, 315
_DECIMAL = re.compile(rb"-?(\d+\.?\d*|\.\d+)")


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise DecodeError("truncated varint")
        b = buf[pos]
        pos += 1
        if shift == 63 and b > 1:
            raise DecodeError("varint overflows 64 bits")
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise DecodeError("varint longer than 10 bytes")


def _length(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    n, pos = _varint(buf, pos, end)
    if n > end - pos:
        raise DecodeError("length-delimited field runs past its message")
    return pos, pos + n


def _skip(buf: bytes, pos: int, end: int, wire: int) -> int:
    if wire == 0:
        return _varint(buf, pos, end)[1]
    if wire == 1:
        if end - pos < 8:
            raise DecodeError("truncated fixed64")
        return pos + 8
    if wire == 5:
        if end - pos < 4:
            raise DecodeError("truncated fixed32")
        return pos + 4
    if wire == 2:
        return _length(buf, pos, end)[1]
    raise DecodeError(f"unsupported wire type {wire}")


def parse_decimal(raw: bytes) -> float:
    if not raw:
        raise DecodeError("empty decimal string")
    if len(raw) > 64:
        raise DecodeError("decimal string too long")
    if not _DECIMAL.fullmatch(raw):
        raise DecodeError("not a decimal string")
    return float(raw)


def _uint(raw: bytes) -> int:
    if not raw or len(raw) > 20 or not raw.isdigit():
        raise DecodeError("bad version string")
    value = int(raw)
    if value >= 1 << 64:
        raise DecodeError("version overflows 64 bits")
    return value


def decode_frame(buf: bytes) -> dict[str, Any]:
    """Decode one PushDataV3ApiWrapper frame into the dict FrameDecoder.to_dict() returns."""
    buf = bytes(buf)
    out: dict[str, Any] = {
        "body": BODY_NONE, "channel": None, "symbol": None, "send_time_ms": -1, "create_time_ms": -1,
        "from_version": 0, "to_version": 0, "version": 0, "bids": [], "asks": [], "deals": [],
        "book_ticker": (0.0, 0.0, 0.0, 0.0),
    }  # fmt: skip
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if field in (1, 3) and wire == 2:
            a, b = _length(buf, pos, end)
            out["channel" if field == 1 else "symbol"] = buf[a:b].decode("utf-8", "replace")
            pos = b
        elif field in (5, 6) and wire == 0:
            v, pos = _varint(buf, pos, end)
            out["create_time_ms" if field == 5 else "send_time_ms"] = v - (1 << 64) if v >= 1 << 63 else v
        elif field == BODY_AGGRE_DEALS and wire == 2:
            a, b = _length(buf, pos, end)
            _reset_body(out)
            out.update(deals=_deals(buf, a, b), body=field)
            pos = b
        elif field in (BODY_AGGRE_DEPTH, BODY_LIMIT_DEPTH) and wire == 2:
            a, b = _length(buf, pos, end)
            _reset_body(out)
            _depth(buf, a, b, field == BODY_LIMIT_DEPTH, out)
            out["body"] = field
            pos = b
        elif field == BODY_AGGRE_BOOK_TICKER and wire == 2:
            a, b = _length(buf, pos, end)
            _reset_body(out)
            _book_ticker(buf, a, b, out)
            out["body"] = field
            pos = b
        elif field == 0:
            raise DecodeError("field number 0")
        else:
            pos = _skip(buf, pos, end, wire)
    return out


def _reset_body(out: dict[str, Any]) -> None:
    out.update(body=BODY_NONE, from_version=0, to_version=0, version=0, bids=[], asks=[], deals=[], book_ticker=(0.0, 0.0, 0.0, 0.0))


def _level(buf: bytes, pos: int, end: int) -> tuple[float, float]:
    price = qty = 0.0
    while pos < end:
        key, pos = _varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if field in (1, 2) and wire == 2:
            a, b = _length(buf, pos, end)
            if field == 1:
                price = parse_decimal(buf[a:b])
            else:
                qty = parse_decimal(buf[a:b])
            pos = b
        else:
            pos = _skip(buf, pos, end, wire)
    return price, qty


def _depth(buf: bytes, pos: int, end: int, limit: bool, out: dict[str, Any]) -> None:
    while pos < end:
        key, pos = _varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if wire == 2 and field in (1, 2):
            a, b = _length(buf, pos, end)
            out["bids" if field == 2 else "asks"].append(_level(buf, a, b))
            pos = b
        elif wire == 2 and field == 4:
            a, b = _length(buf, pos, end)
            out["version" if limit else "from_version"] = _uint(buf[a:b])
            pos = b
        elif wire == 2 and field == 5 and not limit:
            a, b = _length(buf, pos, end)
            out["to_version"] = _uint(buf[a:b])
            pos = b
        else:
            pos = _skip(buf, pos, end, wire)


def _deals(buf: bytes, pos: int, end: int) -> list[tuple[float, float, int, int]]:
    deals = []
    while pos < end:
        key, pos = _varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if field == 1 and wire == 2:
            a, b = _length(buf, pos, end)
            price = qty = 0.0
            side = time_ms = 0
            p = a
            while p < b:
                k2, p = _varint(buf, p, b)
                f2, w2 = k2 >> 3, k2 & 7
                if f2 in (1, 2) and w2 == 2:
                    s, e = _length(buf, p, b)
                    if f2 == 1:
                        price = parse_decimal(buf[s:e])
                    else:
                        qty = parse_decimal(buf[s:e])
                    p = e
                elif f2 in (3, 4) and w2 == 0:
                    v, p = _varint(buf, p, b)
                    if f2 == 3:
                        side = v & 0xFFFFFFFF
                        side = side - (1 << 32) if side >= 1 << 31 else side
                    else:
                        time_ms = v - (1 << 64) if v >= 1 << 63 else v
                else:
                    p = _skip(buf, p, b, w2)
            deals.append((price, qty, side, time_ms))
            pos = b
        else:
            pos = _skip(buf, pos, end, wire)
    return deals


def _book_ticker(buf: bytes, pos: int, end: int, out: dict[str, Any]) -> None:
    values = list(out["book_ticker"])
    while pos < end:
        key, pos = _varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if 1 <= field <= 5 and wire == 2:
            a, b = _length(buf, pos, end)
            if field == 5:
                out["version"] = _uint(buf[a:b])
            else:
                values[field - 1] = parse_decimal(buf[a:b])
            pos = b
        else:
            pos = _skip(buf, pos, end, wire)
    out["book_ticker"] = tuple(values)
