"""The synthetic feed's frames are valid MEXC pushes: the protobuf classes and our engine read them as meant."""

from __future__ import annotations

from core.book import APPLIED, OrderBook
from perf.blast_feed import BlastPair, ws_binary_header
from sim.encode import varint
from sim.proto import mexc_push_pb2 as pb

BIDS = [("1.0990", "10.00"), ("1.0980", "20.00"), ("1.0970", "5.00")]
ASKS = [("1.1000", "7.00"), ("1.1010", "9.00"), ("1.1020", "11.00")]


def _payload(frame: bytes) -> bytes:
    """The protobuf payload of one server WebSocket frame, checking its header says exactly its length."""
    assert frame[0] == 0x82  # FIN + binary, unmasked
    n, start = frame[1], 2
    if n == 126:
        n, start = int.from_bytes(frame[2:4], "big"), 4
    elif n == 127:
        n, start = int.from_bytes(frame[2:10], "big"), 10
    assert len(frame) - start == n
    return frame[start:]


def _pair() -> BlastPair:
    return BlastPair.build("ABCUSDT", BIDS, ASKS, lambda v: f"{v:.2f}", seed=3)


def test_deals_frames_decode_with_the_official_proto_and_never_repeat_a_send_time() -> None:
    pair = _pair()
    now = 1_790_000_000_123
    frame = pair.deals_frame(now, varint(now))
    assert frame is not None
    w = pb.PushDataV3ApiWrapper.FromString(_payload(frame))
    assert (w.channel, w.symbol, w.sendTime) == ("spot@public.aggre.deals.v3.api.pb@100ms@ABCUSDT", "ABCUSDT", now)
    assert w.WhichOneof("body") == "publicAggreDeals"
    deals = w.publicAggreDeals.deals
    assert 1 <= len(deals) <= 3
    for d in deals:
        assert d.time == now and d.tradeType in (1, 2)
        assert d.price == ("1.1000" if d.tradeType == 1 else "1.0990")  # buys lift the ask, sells hit the bid
        assert float(d.quantity) > 0
    assert pair.deals_frame(now, varint(now)) is None  # same ms: the shard would drop it as a repeat
    seen = set()
    for k in range(1, 200):  # every pre-built push decodes, whatever the time
        t = now + k * 37_000_123
        w = pb.PushDataV3ApiWrapper.FromString(_payload(pair.deals_frame(t, varint(t)) or b""))
        assert w.sendTime == t and all(d.time == t for d in w.publicAggreDeals.deals)
        seen.add(len(w.publicAggreDeals.deals))
    assert seen == {1, 2, 3}


def test_depth_diffs_have_contiguous_versions_and_the_snapshot_follows_them() -> None:
    pair = _pair()
    book = OrderBook()
    snap = pair.snapshot()
    book.apply_snapshot(snap["lastUpdateId"], [(float(p), float(q)) for p, q in snap["bids"]],
                        [(float(p), float(q)) for p, q in snap["asks"]])  # fmt: skip
    last = snap["lastUpdateId"]
    for _ in range(200):
        w = pb.PushDataV3ApiWrapper.FromString(_payload(pair.depth_frame(varint(1_790_000_000_000))))
        d = w.publicAggreDepths
        assert int(d.fromVersion) == last + 1 and int(d.toVersion) >= int(d.fromVersion)
        last = int(d.toVersion)
        status = book.apply_diff(int(d.fromVersion), int(d.toVersion), [(float(x.price), float(x.quantity)) for x in d.bids],
                                 [(float(x.price), float(x.quantity)) for x in d.asks])  # fmt: skip
        assert status == APPLIED  # never a gap, never stale
    snap = pair.snapshot()  # a resync now lines up with the diffs sent so far
    assert snap["lastUpdateId"] == last
    bids, asks = book.levels()
    assert [(float(p), float(q)) for p, q in snap["bids"]] == bids
    assert [(float(p), float(q)) for p, q in snap["asks"]] == asks


def test_ws_header_lengths() -> None:
    assert ws_binary_header(5) == b"\x82\x05"
    assert ws_binary_header(300) == b"\x82\x7e\x01\x2c"
    assert ws_binary_header(70_000)[:2] == b"\x82\x7f" and int.from_bytes(ws_binary_header(70_000)[2:], "big") == 70_000
