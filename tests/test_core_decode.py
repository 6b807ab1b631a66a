"""The Cython decoder equals the plain-Python reference and the protobuf package, and fails cleanly."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.decode import DecodeError, FrameDecoder, py_parse_decimal
from core.reference.decode import decode_frame
from sim.proto import mexc_push_pb2 as pb

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decimal_text() -> st.SearchStrategy[str]:
    ints = st.integers(0, 10**18).map(str)
    fracs = st.integers(0, 10**14).map(str)
    return st.one_of(
        st.builds(lambda i, f: f"{i}.{f}", ints, fracs),
        st.builds(lambda i: i, ints),
        st.floats(1e-12, 1e12, allow_nan=False).map(lambda x: f"{x:.{12}f}"),
        st.decimals(min_value=0, max_value=10**9, places=8, allow_nan=False, allow_infinity=False).map(lambda d: f"{d:f}"),
    )


@FAST
@given(_decimal_text(), st.booleans())
def test_decimal_parse_equals_python_float_bit_for_bit(text: str, negative: bool) -> None:
    if negative:
        text = "-" + text
    raw = text.encode()
    if len(raw) > 64 or "E" in text:
        with pytest.raises(DecodeError):
            py_parse_decimal(raw)
        return
    expected = float(text)
    got = py_parse_decimal(raw)
    assert struct.pack("<d", got) == struct.pack("<d", expected)


@pytest.mark.parametrize("bad", [b"", b"-", b".", b"1.2.3", b"1e5", b"abc", b" 1", b"+1", b"1" * 65])
def test_bad_decimals_raise(bad: bytes) -> None:
    with pytest.raises(DecodeError):
        py_parse_decimal(bad)


def _deals_frame(draw: st.DrawFn) -> pb.PushDataV3ApiWrapper:
    w = pb.PushDataV3ApiWrapper(channel="spot@public.aggre.deals.v3.api.pb@100ms@" + draw(st.sampled_from(["BTCUSDT", "PEPEUSDT", "X1USDT"])))
    if draw(st.booleans()):
        w.symbol = w.channel.rsplit("@", 1)[1]
    if draw(st.booleans()):
        w.sendTime = draw(st.integers(0, 2**62))
    body = w.publicAggreDeals
    for _ in range(draw(st.integers(0, 6))):
        body.deals.add(price=draw(_decimal_text()), quantity=draw(_decimal_text()), tradeType=draw(st.sampled_from([0, 1, 2])),
                       time=draw(st.integers(0, 2**50)), tradeId=draw(st.text(max_size=8)))  # fmt: skip
    if draw(st.booleans()):
        body.eventType = "spot@public.aggre.deals.v3.api.pb@100ms"
    return w


def _depth_frame(draw: st.DrawFn) -> pb.PushDataV3ApiWrapper:
    w = pb.PushDataV3ApiWrapper(channel="spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT", symbol="BTCUSDT", sendTime=draw(st.integers(0, 2**45)))
    body = w.publicAggreDepths
    for side in (body.asks, body.bids):
        for _ in range(draw(st.integers(0, 8))):
            item = side.add(price=draw(_decimal_text()))
            if draw(st.booleans()):
                item.quantity = draw(_decimal_text())
    a = draw(st.integers(0, 2**63))
    body.fromVersion, body.toVersion = str(a), str(a + draw(st.integers(0, 1000)))
    if draw(st.booleans()):
        body.lastOrderCreateTime = draw(st.integers(0, 2**45))
    return w


def _other_frame(draw: st.DrawFn) -> pb.PushDataV3ApiWrapper:
    kind = draw(st.sampled_from(["ticker", "limit", "kline", "mini"]))
    w = pb.PushDataV3ApiWrapper(channel="c", symbol="ETHUSDT", sendTime=5, createTime=draw(st.integers(0, 2**40)))
    if kind == "ticker":
        t = w.publicAggreBookTicker
        t.bidPrice, t.bidQuantity, t.askPrice, t.askQuantity = (draw(_decimal_text()) for _ in range(4))
        t.version = str(draw(st.integers(0, 2**60)))
    elif kind == "limit":
        w.publicLimitDepths.asks.add(price=draw(_decimal_text()), quantity="1")
        w.publicLimitDepths.version = str(draw(st.integers(0, 2**60)))
    elif kind == "kline":
        w.publicSpotKline.interval = "Min1"
        w.publicSpotKline.windowStart = 1_700_000_000
    else:
        w.publicMiniTickers.items.add(symbol="ABCUSDT", price="1.5")
    return w


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    w = draw(st.sampled_from([_deals_frame, _depth_frame, _other_frame]))(draw)
    data = w.SerializeToString()
    # Unknown fields anywhere at the top level must be skipped (new MEXC fields, 2026-06 style).
    extra = b""
    if draw(st.booleans()):
        extra += b"\x22" + bytes([3]) + b"abc"  # field 4 symbolId, string
    if draw(st.booleans()):
        extra += b"\xf8\x07" + b"\x96\x01"  # field 127 varint
    if draw(st.booleans()):
        extra += b"\x3d" + b"\x00\x00\x80\x3f"  # field 7 fixed32
    return extra + data if draw(st.booleans()) else data + extra


def _from_protobuf(data: bytes) -> dict:
    w = pb.PushDataV3ApiWrapper()
    w.ParseFromString(data)
    which = w.WhichOneof("body")
    out = {"symbol": w.symbol if w.HasField("symbol") else None, "send_time_ms": w.sendTime if w.HasField("sendTime") else -1}
    if which == "publicAggreDeals":
        out["deals"] = [(float(d.price), float(d.quantity), d.tradeType, d.time) for d in w.publicAggreDeals.deals]
    elif which == "publicAggreDepths":
        b = w.publicAggreDepths
        out["bids"] = [(float(x.price), float(x.quantity or 0)) for x in b.bids]
        out["asks"] = [(float(x.price), float(x.quantity or 0)) for x in b.asks]
        out["from_version"], out["to_version"] = int(b.fromVersion), int(b.toVersion)
    elif which == "publicAggreBookTicker":
        t = w.publicAggreBookTicker
        out["book_ticker"] = (float(t.bidPrice), float(t.bidQuantity), float(t.askPrice), float(t.askQuantity))
    return out


@FAST
@given(frames())
def test_cython_equals_reference_equals_protobuf(data: bytes) -> None:
    decoder = FrameDecoder()
    decoder.decode(data)
    got = decoder.to_dict()
    assert got == decode_frame(data)
    for key, value in _from_protobuf(data).items():
        assert got[key] == value, key


def test_skipped_bodies_still_give_symbol_and_send_time() -> None:
    w = pb.PushDataV3ApiWrapper(channel="spot@public.kline.v3.api.pb@BTCUSDT@Min1", symbol="BTCUSDT", sendTime=42)
    w.publicSpotKline.interval = "Min1"
    d = FrameDecoder()
    assert d.decode(w.SerializeToString()) == 0
    assert d.symbol() == "BTCUSDT" and d.send_time_ms == 42 and d.channel().endswith("Min1")


@FAST
@given(frames(), st.data())
def test_truncated_frames_fail_the_same_way_in_both(data: bytes, draw: st.DataObject) -> None:
    cut = draw.draw(st.integers(0, max(0, len(data) - 1)))
    _same_outcome(data[:cut])


@FAST
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(data: bytes) -> None:
    _same_outcome(data)


def _same_outcome(data: bytes) -> None:
    decoder = FrameDecoder()
    try:
        decoder.decode(data)
        mine = decoder.to_dict()
    except DecodeError:
        mine = "error"
    try:
        ref = decode_frame(data)
    except DecodeError:
        ref = "error"
    assert mine == ref


def test_malformed_examples_raise_one_clear_error() -> None:
    d = FrameDecoder()
    for bad, message in [
        (b"\x0a\x05abc", "runs past"),
        (b"\x0b", "wire type 3"),
        (b"\x30" + b"\xff" * 11, "varint"),
        (b"\xd2\x13\x04\x0a\x02\x0a\x05", "runs past"),
    ]:
        with pytest.raises(DecodeError, match=message):
            d.decode(bad)
