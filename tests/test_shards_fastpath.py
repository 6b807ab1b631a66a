"""The compiled per-frame path (shards/fastpath.pyx) does exactly what the Python glue it replaced did.

A frame through FrameListener → FrameSink must leave the engine in the same state as calling
engine.on_frame directly (the plain-Python path), count the frame on its link, ask for a resync
when the engine says so, and schedule one row wake-up per burst. Text and close frames go to the
Python Link untouched.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from picows import WSMsgType
from picows.picows import _make_test_ws_frame

from core.engine import ShardEngine
from core.ring import FeatureRing
from core.statsspec import StatsBlock
from shards.fastpath import FrameListener, FrameSink, LinkCounters
from tests.test_core_engine import _frames

FRAMES, (MARKET, SNAPSHOTS) = _frames(14, 60, gap_symbol=None)


class FakeLink:
    link_id = 3

    def __init__(self) -> None:
        self.texts: list[bytes] = []

    def _on_text(self, payload: bytes) -> None:
        self.texts.append(payload)


def _engine() -> tuple[ShardEngine, FeatureRing, StatsBlock]:
    ring, stats = FeatureRing.create(50_000), StatsBlock.create()
    engine = ShardEngine(ring, stats)
    for pair_id, spec in enumerate(MARKET.symbols, start=1):
        engine.add_pair(pair_id, spec.symbol)
        engine.set_listing(spec.symbol, spec.listing_ms)
        assert engine.apply_snapshot(spec.symbol, *SNAPSHOTS[spec.symbol])
    return engine, ring, stats


def _close(*segments: Any) -> None:
    for seg in segments:
        seg.close()
        seg.unlink()


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, len(FRAMES) - 1), min_size=1, max_size=300), st.integers(0, 10**12))
def test_listener_and_sink_equal_calling_the_engine_directly(picks: list[int], t0: int) -> None:
    fast, fast_ring, fast_stats = _engine()
    plain, plain_ring, plain_stats = _engine()
    try:
        resyncs: list[int] = []
        wakeups: list[int] = []
        sink = FrameSink(fast, lambda: resyncs.append(1), lambda: wakeups.append(1))
        counters = LinkCounters()
        listener = FrameListener(FakeLink(), counters, sink)
        expected_resyncs = 0
        for n, i in enumerate(sorted(picks)):
            listener.on_ws_frame(None, _make_test_ws_frame(WSMsgType.BINARY, FRAMES[i], True, False))
            expected_resyncs += 1 if plain.on_frame(FRAMES[i], t0 + n) else 0
        pending = plain.rows_pending()  # rows written by frames (not by the tick) need a wake-up
        fast.tick(), plain.tick()
        a, b = fast_ring.read_new(), plain_ring.read_new()
        # Receive stamps differ (the listener stamps with the wall clock); everything else is equal.
        assert len(a) == len(b)
        for name in a.dtype.names:
            if name != "recv_ns":
                np.testing.assert_array_equal(a[name], b[name])
        assert counters.frames == len(picks) and counters.last_frame_ns > 0
        assert len(resyncs) == expected_resyncs
        assert len(wakeups) == (1 if pending else 0)  # at most one until notify_done()
        assert fast_stats.view["frames_total"] == plain_stats.view["frames_total"]
        assert fast_stats.view["decode_errors"] == plain_stats.view["decode_errors"]
    finally:
        _close(fast_ring, fast_stats, plain_ring, plain_stats)


def test_text_frames_go_to_the_python_link_and_a_callable_still_works() -> None:
    # (A CLOSE frame needs a real picows transport: tests/test_shards_worker.py drops links for real.)
    link, transport = FakeLink(), None
    got: list[tuple[int, bytes, int]] = []
    listener = FrameListener(link, LinkCounters(), lambda link_id, payload, ns: got.append((link_id, bytes(payload), ns)))
    listener.on_ws_frame(transport, _make_test_ws_frame(WSMsgType.TEXT, b'{"id":0,"code":0,"msg":"PONG"}', True, False))
    listener.on_ws_frame(transport, _make_test_ws_frame(WSMsgType.BINARY, FRAMES[0], True, False))
    assert link.texts == [b'{"id":0,"code":0,"msg":"PONG"}']
    assert got[0][0] == 3 and got[0][1] == FRAMES[0] and got[0][2] > 0
    assert listener.is_user_specific_pong(_make_test_ws_frame(WSMsgType.TEXT, b'{"msg":"PONG"}', True, False))
    assert not listener.is_user_specific_pong(_make_test_ws_frame(WSMsgType.BINARY, b'"PONG"', True, False))
