"""The Cython frame decoder equals the plain-Python twin and the protobuf package, and fails cleanly.

Three opinions on every generated frame: core.decode (compiled), core.reference.decode (plain
Python) and sim.proto's protobuf classes. Frames are assembled from individually serialised
fields in random order, with random omissions, repeated bodies and unknown fields, because MEXC
may send any valid encoding, not only the one protobuf's serialiser happens to produce.
"""

from __future__ import annotations

import math
import re
import struct
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.decode import DecodeError, FrameDecoder
from core.reference import decode as ref
from core.reference.decode import decode_frame
from core.wire import py_parse_decimal, py_parse_uint, py_read_tag, py_read_varint, py_skip_field
from sim.encode import field_bytes, varint
from sim.proto import mexc_push_pb2 as pb

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


# --- decimal strings ---------------------------------------------------------------------------

_GRAMMAR = rb"-?([0-9]{1,25}(\.[0-9]{0,25})?|\.[0-9]{1,25})([eE][+-]?[0-9]{1,4})?"


def _decimal_text() -> st.SearchStrategy[str]:
    """Decimal strings as MEXC prints them, plus the shapes that hit the strtod fallback."""
    plain = st.builds(lambda i, f, k: f"{i}.{str(f).zfill(k)}", st.integers(0, 10**9), st.integers(0, 10**12), st.integers(0, 14))
    from_float = st.builds(lambda x, k: f"{x:.{k}f}", st.floats(1e-9, 1e9), st.integers(0, 18))
    digits = st.builds(lambda i, k: f"{Decimal(i).scaleb(-k):f}", st.integers(1, 10**25), st.integers(0, 30))
    sci = st.builds(lambda m, e: f"{m}e{e}", st.integers(1, 10**6) | st.integers(1, 10**20), st.integers(-40, 40))
    return st.one_of(plain, from_float, digits, sci, st.integers(0, 2**64).map(str))


def _halfway() -> st.SearchStrategy[str]:
    """Exact decimal midpoints between two neighbouring doubles: the hardest rounding cases."""
    def mid(x: float) -> str:
        return f"{(Decimal(x) + Decimal(math.nextafter(x, math.inf))) / 2:f}"
    return st.floats(1e-3, 1e7).map(mid)


@PROPS
@given(st.one_of(_decimal_text(), _halfway(), st.from_regex(_GRAMMAR, fullmatch=True).map(bytes.decode)), st.booleans())
@example("0.000012", False)
@example("80535.88", False)
@example("9007199254740993", False)   # 2**53 + 1: just past the exact-mantissa fast path
@example("1e22", False)
@example("3e23", False)               # 10**23 is not an exact double: 3 * fl(1e23) rounds wrong
@example("0.00000000000000000000002", False)  # 23 decimals: 2 / fl(1e23) rounds wrong
@example("0", True)                   # -0.0
def test_decimal_equals_python_float_bit_for_bit(text: str, negative: bool) -> None:
    if negative and not text.startswith("-"):
        text = "-" + text
    raw = text.encode()
    expected: Any
    try:
        expected = ref.parse_decimal(raw)
    except DecodeError as exc:
        expected = str(exc)
    try:
        got: Any = py_parse_decimal(raw)
    except DecodeError as exc:
        got = str(exc)
    if isinstance(expected, float):
        assert isinstance(got, float) and _bits(got) == _bits(expected) == _bits(float(text))
    else:
        # Only length and range refuse a string of this grammar, never the rounding.
        assert got == expected
        assert len(raw) > 64 or not math.isfinite(float(text))


@pytest.mark.parametrize(
    ("bad", "why"),
    [(b"", "empty"), (b"-", "malformed"), (b".", "malformed"), (b"1.2.3", "malformed"), (b"1e", "malformed"),
     (b"1e+", "malformed"), (b"e5", "malformed"), (b"abc", "malformed"), (b" 1", "malformed"), (b"1 ", "malformed"),
     (b"+1", "malformed"), (b"1_000", "malformed"), (b"inf", "malformed"), (b"nan", "malformed"), (b"0x10", "malformed"),
     (b"--1", "malformed"), (b"1" * 65, "longer than 64"), (b"1e400", "outside the double range")],
)  # fmt: skip
def test_bad_decimals_raise_a_clear_error(bad: bytes, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        py_parse_decimal(bad)
    with pytest.raises(DecodeError, match=why):
        ref.parse_decimal(bad)


@PROPS
@given(st.one_of(st.integers(0, 2**64 - 1).map(lambda v: str(v).encode()), st.binary(max_size=24),
                 st.integers(2**64, 2**70).map(lambda v: str(v).encode())))  # fmt: skip
def test_version_strings_parse_to_uint64_or_fail_alike(raw: bytes) -> None:
    try:
        expected: Any = ref.parse_uint(raw)
    except DecodeError as exc:
        expected = str(exc)
    try:
        got: Any = py_parse_uint(raw)
    except DecodeError as exc:
        got = str(exc)
    assert got == expected
    if raw.isdigit() and int(raw) < 2**64:
        assert got == int(raw)


# --- wire primitives ---------------------------------------------------------------------------

def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except DecodeError as exc:
        return str(exc)


@PROPS
@given(st.binary(max_size=14), st.sampled_from([0, 1, 2, 5]))
@example(b"\xff" * 9 + b"\x01", 0)   # 2**64 - 1, the largest 10-byte varint
@example(b"\xff" * 9 + b"\x02", 0)   # 65 bits
@example(b"\xff" * 10 + b"\x00", 0)  # 11 bytes
def test_varint_tag_and_skip_primitives_match_the_twin(data: bytes, wire: int) -> None:
    end = len(data)
    assert _outcome(py_read_varint, data, 0) == _outcome(ref.read_varint, data, 0, end)
    assert _outcome(py_read_tag, data, 0) == _outcome(ref.read_tag, data, 0, end)
    assert _outcome(py_skip_field, data, 0, wire) == _outcome(ref.skip_field, data, 0, end, wire)
    if len(data) <= 10 and data and all(b & 0x80 for b in data[:-1]) and not data[-1] & 0x80:
        value = sum((b & 0x7F) << (7 * i) for i, b in enumerate(data))
        if value < 2**64:
            assert py_read_varint(data, 0) == (value, len(data))


# --- frames: three opinions --------------------------------------------------------------------

_varint, _ld = varint, field_bytes


@st.composite
def _unknown(draw: st.DrawFn, numbers: st.SearchStrategy[int]) -> bytes:
    """One field the message does not define, of any skippable wire type (new MEXC fields)."""
    field, wire = draw(numbers), draw(st.sampled_from([0, 1, 2, 5]))
    if wire == 0:
        return _varint(field << 3) + _varint(draw(st.integers(0, 2**64 - 1)))
    if wire == 1:
        return _varint(field << 3 | 1) + draw(st.binary(min_size=8, max_size=8))
    if wire == 5:
        return _varint(field << 3 | 5) + draw(st.binary(min_size=4, max_size=4))
    return _ld(field, draw(st.binary(max_size=12)))


def _shuffled(draw: st.DrawFn, pieces: list[bytes], unknown_numbers: st.SearchStrategy[int]) -> bytes:
    pieces = pieces + draw(st.lists(_unknown(unknown_numbers), max_size=2))
    return b"".join(draw(st.permutations(pieces)))


_ITEM_UNKNOWN = st.integers(6, 60) | st.just((1 << 29) - 1)
_WRAPPER_UNKNOWN = st.sampled_from([2, 7, 15, 16, 100, 300, 316, 2047, 2048, (1 << 29) - 1])
_maybe_dec = st.none() | _decimal_text()


@st.composite
def _deals_body(draw: st.DrawFn) -> bytes:
    items = []
    for _ in range(draw(st.integers(0, 5))):
        kw = {"price": draw(_maybe_dec), "quantity": draw(_maybe_dec), "tradeType": draw(st.sampled_from([None, 1, 2, -1, 7])),
              "time": draw(st.none() | st.integers(-(2**63), 2**63 - 1)), "tradeId": draw(st.none() | st.just("730292425431437318X0"))}  # fmt: skip
        pieces = [pb.PublicAggreDealsV3ApiItem(**{k: v}).SerializeToString() for k, v in kw.items() if v is not None]
        items.append(_ld(1, _shuffled(draw, pieces, _ITEM_UNKNOWN)))
    if draw(st.booleans()):
        items.append(pb.PublicAggreDealsV3Api(eventType="spot@public.aggre.deals.v3.api.pb@100ms").SerializeToString())
    return _ld(314, _shuffled(draw, items, st.integers(3, 60)))


@st.composite
def _depth_body(draw: st.DrawFn, limit: bool) -> bytes:
    item_cls = pb.PublicLimitDepthV3ApiItem if limit else pb.PublicAggreDepthV3ApiItem
    body_cls = pb.PublicLimitDepthsV3Api if limit else pb.PublicAggreDepthsV3Api
    pieces = []
    for side in (1, 2):
        for _ in range(draw(st.integers(0, 6))):
            kw = {"price": draw(_maybe_dec), "quantity": draw(_maybe_dec)}
            parts = [item_cls(**{k: v}).SerializeToString() for k, v in kw.items() if v is not None]
            pieces.append(_ld(side, _shuffled(draw, parts, _ITEM_UNKNOWN)))
    versions = ["version"] if limit else ["fromVersion", "toVersion"]
    for name in versions:
        if draw(st.integers(0, 4)):
            pieces.append(body_cls(**{name: str(draw(st.integers(0, 2**64 - 1)))}).SerializeToString())
    if draw(st.booleans()):
        pieces.append(body_cls(eventType="spot@public.aggre.depth.v3.api.pb@100ms", lastOrderCreateTime=draw(st.integers(1, 2**45))).SerializeToString())
    return _ld(303 if limit else 313, _shuffled(draw, pieces, st.integers(7, 60)))


@st.composite
def _ticker_body(draw: st.DrawFn) -> bytes:
    names = ["bidPrice", "bidQuantity", "askPrice", "askQuantity"]
    pieces = [pb.PublicAggreBookTickerV3Api(**{n: draw(_decimal_text())}).SerializeToString() for n in names if draw(st.integers(0, 5))]
    if draw(st.booleans()):
        pieces.append(pb.PublicAggreBookTickerV3Api(version=str(draw(st.integers(0, 2**63)))).SerializeToString())
    if draw(st.booleans()):
        pieces.append(pb.PublicAggreBookTickerV3Api(lastOrderCreateTime=draw(st.integers(1, 2**45))).SerializeToString())
    return _ld(315, _shuffled(draw, pieces, st.integers(7, 60)))


@st.composite
def _skipped_body(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        k = pb.PublicSpotKlineV3Api(interval="Min1", windowStart=1_790_000_040, openingPrice=draw(_decimal_text()), volume="12.5")
        return _ld(308, k.SerializeToString())
    m = pb.PublicMiniTickersV3Api()
    m.items.add(symbol="ABCUSDT", price=draw(_decimal_text()), rate="0.0123")
    return _ld(310, m.SerializeToString())


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """A wrapper with optional fields, 0-2 bodies (a repeat merges, another kind replaces), any order."""
    symbol = draw(st.sampled_from(["BTCUSDT", "PEPEUSDT", "X1USDT", "ÄUSDT"]))
    pieces = []
    if draw(st.integers(0, 4)):
        pieces.append(pb.PushDataV3ApiWrapper(channel=f"spot@public.aggre.deals.v3.api.pb@100ms@{symbol}").SerializeToString())
    optional = {"symbol": symbol, "symbolId": "a1b2c3", "createTime": draw(st.integers(-(2**63), 2**63 - 1)),
                "sendTime": draw(st.integers(0, 2**45))}  # fmt: skip
    pieces += [pb.PushDataV3ApiWrapper(**{k: v}).SerializeToString() for k, v in optional.items() if draw(st.booleans())]
    kinds = st.one_of(_deals_body(), _depth_body(False), _depth_body(True), _ticker_body(), _skipped_body())
    bodies = draw(st.lists(kinds, max_size=2))
    if bodies and draw(st.booleans()):
        bodies.append(bodies[0])   # the same body field again: protobuf merges
    # Bodies keep their relative order (it decides which oneof member wins); the rest is shuffled.
    out = list(draw(st.permutations(pieces + draw(st.lists(_unknown(_WRAPPER_UNKNOWN), max_size=3)))))
    slots = sorted(draw(st.lists(st.integers(0, len(out)), min_size=len(bodies), max_size=len(bodies))))
    for slot, body in reversed(list(zip(slots, bodies, strict=True))):
        out.insert(slot, body)
    return b"".join(out)


def _protobuf_view(data: bytes) -> dict[str, Any]:
    """The same frame as the protobuf package sees it, in to_dict()'s terms."""
    w = pb.PushDataV3ApiWrapper()
    w.ParseFromString(data)
    which = w.WhichOneof("body")
    out: dict[str, Any] = {
        "channel": w.channel,
        "symbol": w.symbol if w.HasField("symbol") else None,
        "send_time_ms": w.sendTime if w.HasField("sendTime") else -1,
        "create_time_ms": w.createTime if w.HasField("createTime") else -1,
        "body": {"publicAggreDeals": 314, "publicAggreDepths": 313, "publicLimitDepths": 303, "publicAggreBookTicker": 315}.get(which, 0),
        "bids": [], "asks": [], "deals": [], "from_version": 0, "to_version": 0, "version": 0, "book_ticker": (0.0, 0.0, 0.0, 0.0),
    }  # fmt: skip

    def num(s: str) -> float:
        return float(s) if s else 0.0

    if which == "publicAggreDeals":
        out["deals"] = [(num(d.price), num(d.quantity), d.tradeType, d.time) for d in w.publicAggreDeals.deals]
    elif which in ("publicAggreDepths", "publicLimitDepths"):
        b = getattr(w, which)
        out["bids"] = [(num(x.price), num(x.quantity)) for x in b.bids]
        out["asks"] = [(num(x.price), num(x.quantity)) for x in b.asks]
        if which == "publicAggreDepths":
            out["from_version"], out["to_version"] = int(b.fromVersion or 0), int(b.toVersion or 0)
        else:
            out["version"] = int(b.version or 0)
    elif which == "publicAggreBookTicker":
        t = w.publicAggreBookTicker
        out["book_ticker"] = (num(t.bidPrice), num(t.bidQuantity), num(t.askPrice), num(t.askQuantity))
        out["version"] = int(t.version or 0)
    return out


def _decode(data: bytes | bytearray | memoryview, decoder: FrameDecoder | None = None) -> Any:
    decoder = decoder or FrameDecoder()
    try:
        decoder.decode(data)
    except DecodeError as exc:
        return str(exc)
    return decoder.to_dict()


def _twin(data: bytes) -> Any:
    try:
        return decode_frame(data)
    except DecodeError as exc:
        return str(exc)


@PROPS
@given(frames())
def test_cython_equals_reference_equals_protobuf(data: bytes) -> None:
    got = _decode(data)
    assert got == _twin(data)
    want = _protobuf_view(data)
    assert {**got, "channel": got["channel"] or ""} == want


@settings(PROPS, max_examples=100)
@given(st.lists(frames(), min_size=2, max_size=4))
def test_a_reused_decoder_keeps_nothing_from_earlier_frames(batch: list[bytes]) -> None:
    decoder = FrameDecoder()
    for data in batch:
        assert _decode(data, decoder) == _decode(data)


@pytest.mark.parametrize("body", [308, 310])
def test_skipped_bodies_give_body_none_but_keep_the_wrapper_fields(body: int) -> None:
    w = pb.PushDataV3ApiWrapper(channel="spot@public.kline.v3.api.pb@BTCUSDT@Min1", symbol="BTCUSDT", sendTime=1_790_000_040_123)
    if body == 308:
        w.publicSpotKline.interval = "Min1"
        w.publicSpotKline.closingPrice = "80535.88"
    else:
        w.publicMiniTickers.items.add(symbol="BTCUSDT", price="80535.88")
    d = FrameDecoder()
    assert d.decode(w.SerializeToString()) == 0
    assert (d.symbol(), d.send_time_ms, d.channel()) == ("BTCUSDT", 1_790_000_040_123, w.channel)
    assert (d.n_deals, d.n_bids, d.n_asks) == (0, 0, 0)
    # A skipped body after a deals body replaces it, as protobuf's oneof does.
    deals = pb.PushDataV3ApiWrapper()
    deals.publicAggreDeals.deals.add(price="1", quantity="2", tradeType=1, time=3)
    assert d.decode(deals.SerializeToString() + w.SerializeToString()) == 0 and d.n_deals == 0


@PROPS
@given(frames(), st.data())
def test_truncated_frames_fail_or_decode_identically_in_both(data: bytes, draw: st.DataObject) -> None:
    cut = draw.draw(st.integers(0, max(0, len(data) - 1)))
    assert _decode(data[:cut]) == _twin(data[:cut])


@PROPS
@given(st.binary(max_size=300))
def test_random_bytes_never_crash_and_fail_identically(data: bytes) -> None:
    assert _decode(data) == _twin(data)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"\x0a\x05abc", "length-delimited field runs past its enclosing message at offset 1"),
        (b"\x30\x01\x0b", "group wire type (3/4) is not supported at offset 2"),
        (b"\x0e", "invalid wire type (6/7) at offset 0"),
        (b"\x02\x00", "field number 0 or above 2**29-1 at offset 0"),
        (b"\x30" + b"\xff" * 10 + b"\x01", "varint longer than 10 bytes at offset 1"),
        (b"\x30" + b"\xff" * 9 + b"\x7f", "varint overflows 64 bits at offset 1"),
        (b"\x30\x80", "truncated varint at offset 1"),
        (b"\x39\x00\x00", "truncated fixed64 at offset 1"),
        (b"\x3d\x00", "truncated fixed32 at offset 1"),
        (b"\xd2\x13\x04\x0a\x02\x0a\x05", "runs past its enclosing message at offset 6"),  # price overruns its deal
        (b"\xd2\x13\x07\x0a\x05\x0a\x03\x31\x2c\x35", "malformed decimal string at offset 7"),  # price "1,5"
        (b"\xd2\x13\x04\x0a\x02\x0a\x00", "empty decimal string at offset 7"),
        (b"\xca\x13\x03\x22\x01\x78", "malformed version string at offset 5"),
        (b"\xca\x13\x16\x22\x14" + b"9" * 20, "version overflows 64 bits at offset 5"),
    ],
)
def test_malformed_frames_raise_one_clear_error_with_the_offset(frame: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=re.escape(message)):
        FrameDecoder().decode(frame)
    with pytest.raises(DecodeError, match=re.escape(message)):
        decode_frame(frame)


def test_buffers_grow_without_a_cap_and_are_reused() -> None:
    big = pb.PushDataV3ApiWrapper(symbol="BTCUSDT")
    for i in range(5000):
        big.publicAggreDepths.bids.add(price=f"{i}.5", quantity="1")
        big.publicAggreDepths.asks.add(price=f"{i}.25", quantity="0")
    deals = pb.PushDataV3ApiWrapper(symbol="BTCUSDT")
    for i in range(3000):
        deals.publicAggreDeals.deals.add(price="0.000012", quantity=str(i), tradeType=2, time=i)
    d = FrameDecoder()
    d.decode(big.SerializeToString())
    assert (d.n_bids, d.n_asks) == (5000, 5000) and d.to_dict()["bids"][4999] == (4999.5, 1.0)
    d.decode(deals.SerializeToString())
    assert (d.n_bids, d.n_deals) == (0, 3000) and d.to_dict()["deals"][2999] == (0.000012, 2999.0, 2, 2999)
    d.decode(big.SerializeToString())
    assert d.to_dict() == decode_frame(big.SerializeToString())


def test_decode_takes_any_contiguous_buffer_and_owns_its_text_afterwards() -> None:
    w = pb.PushDataV3ApiWrapper(channel="spot@public.aggre.depth.v3.api.pb@100ms@PEPEUSDT", symbol="PEPEUSDT", sendTime=9)
    w.publicAggreDepths.bids.add(price="0.000012", quantity="1000")
    raw = w.SerializeToString()
    buf = bytearray(raw)
    d = FrameDecoder()
    assert d.decode(memoryview(buf)) == 313
    buf[:] = b"\x00" * len(buf)  # the caller reuses its buffer: what decode() returned must not change
    assert d.symbol() == "PEPEUSDT" and d.channel() == w.channel
    assert d.decode(bytearray(raw)) == 313 and d.to_dict() == decode_frame(raw)
    with pytest.raises(BufferError):
        d.decode(memoryview(raw)[::2])
    with pytest.raises(TypeError):
        d.decode("not bytes")  # type: ignore[arg-type]
    with pytest.raises(DecodeError):
        d.decode(raw[:-3])
    assert d.symbol() is None  # never a pointer into a released buffer
