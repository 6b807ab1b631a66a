"""Order book: Cython equals the reference on random diff/snapshot sequences; the reference equals a
naive full book above its horizon; MEXC's snapshot procedure and version rules hold."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import book as cbook
from core.book import OrderBook
from core.reference import book as rbook
from core.reference.book import ReferenceBook

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

prices = st.integers(90, 110).map(lambda t: t / 10)
qtys = st.one_of(st.just(0.0), st.integers(1, 50).map(float))
levels = st.lists(st.tuples(prices, qtys), max_size=6)


@st.composite
def operations(draw: st.DrawFn) -> list[tuple]:
    """Diffs in order, with gaps, stale and repeated pushes, overlaps, snapshots old and new, resets."""
    ops: list[tuple] = []
    version = draw(st.integers(0, 50))
    last_diff: tuple | None = None
    kinds = [
        "diff",
        "diff",
        "diff",
        "diff",
        "gap",
        "stale",
        "repeat",
        "overlap",
        "snapshot",
        "old_snapshot",
        "new_snapshot",
        "reset",
    ]
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(kinds))
        if kind == "repeat" and last_diff is not None:
            ops.append(last_diff)
        elif kind in ("diff", "gap", "stale", "overlap"):
            step = draw(st.integers(1, 3))
            if kind == "diff":
                from_v, to_v = version + 1, version + step
            elif kind == "gap":
                from_v, to_v = version + 3, version + 3 + step
            elif kind == "overlap":
                from_v, to_v = max(1, version), version + step
            else:
                from_v, to_v = max(0, version - 5), max(0, version - 1)
            last_diff = ("diff", from_v, to_v, draw(levels), draw(levels))
            ops.append(last_diff)
            version = max(version, to_v)
        elif kind in ("snapshot", "old_snapshot", "new_snapshot"):
            shift = {"snapshot": 0, "old_snapshot": -draw(st.integers(1, 10)), "new_snapshot": draw(st.integers(1, 4))}[
                kind
            ]
            last = max(0, version + shift)
            bids = sorted({p: q for p, q in draw(levels) if q > 0 and p < 10.0}.items(), reverse=True)
            asks = sorted({p: q for p, q in draw(levels) if q > 0 and p >= 10.0}.items())
            ops.append(("snapshot", last, bids, asks))
        else:
            ops.append(("reset",))
    return ops


def _same(c: OrderBook, r: ReferenceBook) -> None:
    assert c.levels() == r.levels()
    assert (c.version, c.synced, c.valid) == (r.version, r.synced, r.valid)
    assert (c.bid_horizon, c.ask_horizon) == (r.bid_horizon, r.ask_horizon)
    assert c.n_buffered_diffs == len(r.buffered)
    for bid in (True, False):
        for bps in (3.0, 10.0, 500.0):
            assert c.size_within(bid, bps) == r.size_within(bid, bps)


@FAST
@given(operations(), st.integers(1, 8))
def test_cython_book_equals_reference(ops: list[tuple], cap: int) -> None:
    c, r = OrderBook(cap), ReferenceBook(cap)
    for op in ops:
        if op[0] == "diff":
            assert c.apply_diff(*op[1:]) == r.apply_diff(*op[1:])
        elif op[0] == "snapshot":
            assert c.apply_snapshot(*op[1:]) == r.apply_snapshot(*op[1:])
        else:
            c.reset()
            r.reset()
        _same(c, r)


@FAST
@given(operations())
def test_replaying_diffs_from_arrays_equals_one_by_one(ops: list[tuple]) -> None:
    diffs = [op for op in ops if op[0] == "diff"]
    one, batch = OrderBook(4), OrderBook(4)
    for book in (one, batch):
        book.apply_snapshot(0, [(9.5, 1.0)], [(10.5, 1.0)])
    applied = sum(one.apply_diff(*d[1:]) == cbook.APPLIED for d in diffs)
    rows = [lv for d in diffs for lv in d[3] + d[4]]
    got = batch.replay_diffs(
        np.array([d[1] for d in diffs], dtype=np.uint64),
        np.array([d[2] for d in diffs], dtype=np.uint64),
        np.array([len(d[3]) for d in diffs], dtype=np.int32),
        np.array([len(d[4]) for d in diffs], dtype=np.int32),
        np.array(rows, dtype=np.float64).reshape(-1, 2),
    )
    assert got == applied
    assert batch.levels() == one.levels() and batch.version == one.version and batch.synced == one.synced


@FAST
@given(st.lists(st.tuples(levels, levels), min_size=1, max_size=40), st.integers(1, 6))
def test_reference_is_exactly_the_full_book_above_its_horizon(diffs: list, cap: int) -> None:
    """The K-level book never has holes: it is the full book's levels better than the horizon."""
    book = ReferenceBook(depth_cap=cap)
    assert book.apply_snapshot(0, [], []) == rbook.SYNCED
    full_b: dict[float, float] = {}
    full_a: dict[float, float] = {}
    for n, (b, a) in enumerate(diffs):
        status = book.apply_diff(n + 1, n + 1, b, a)
        for side, lv in ((full_b, b), (full_a, a)):
            for p, q in lv:
                if q == 0:
                    side.pop(p, None)
                else:
                    side[p] = q
        full_bids, full_asks = sorted(full_b.items(), reverse=True), sorted(full_a.items())
        if status == rbook.GAP:
            # A side swept past its horizon: the book asks for a snapshot, which restores it.
            assert not book.valid
            assert book.apply_snapshot(n + 1, full_bids, full_asks) == rbook.SYNCED
        else:
            assert status == rbook.APPLIED
        bids, asks = book.levels()
        assert bids == [lv for lv in full_bids if lv[0] > book.bid_horizon][:cap]
        assert asks == [lv for lv in full_asks if lv[0] < book.ask_horizon][:cap]
        assert len(bids) <= cap and len(asks) <= cap
        if book.bid_horizon == 0.0:
            assert bids == full_bids  # nothing forgotten: the whole side
        if full_bids:
            assert bids[0] == full_bids[0]  # the best level is always right
        if full_asks:
            assert asks[0] == full_asks[0]


def test_snapshot_procedure_of_mexc() -> None:
    book = OrderBook()
    assert book.apply_diff(101, 103, [(9.9, 5.0)], []) == cbook.BUFFERED
    assert book.apply_diff(101, 103, [(9.9, 5.0)], []) == cbook.STALE  # the same push from a second link
    assert book.apply_diff(104, 104, [], [(10.1, 2.0)]) == cbook.BUFFERED
    assert not book.valid
    assert book.apply_snapshot(50, [(9.8, 1.0)], [(10.2, 1.0)]) == cbook.SNAPSHOT_TOO_OLD
    assert not book.valid and book.levels() == ([], [])  # a refused snapshot changes nothing
    assert book.apply_snapshot(102, [(9.8, 1.0), (9.9, 1.0)], [(10.2, 1.0)]) == cbook.SYNCED
    assert book.version == 104 and book.valid
    assert book.levels() == ([(9.9, 5.0), (9.8, 1.0)], [(10.1, 2.0), (10.2, 1.0)])
    assert book.apply_diff(100, 104, [(9.9, 0.0)], []) == cbook.STALE
    assert book.apply_diff(105, 105, [(9.8, 0.0)], []) == cbook.APPLIED
    assert book.levels()[0] == [(9.9, 5.0)]
    assert book.apply_diff(107, 108, [], []) == cbook.GAP  # 106 lost
    assert not book.valid and book.levels() == ([], [])
    assert book.apply_snapshot(110, [(9.0, 1.0)], [(11.0, 1.0)]) == cbook.SYNCED  # covers the buffered 107-108
    assert book.version == 110 and abs(book.spread_frac - 2.0 / 10.0) < 1e-12
    book.reset()
    assert not book.valid
    book.apply_diff(120, 121, [], [])
    book.apply_diff(125, 125, [(9.5, 1.0)], [])
    book.apply_diff(126, 127, [(9.6, 1.0)], [])
    assert book.apply_snapshot(115, [(9.0, 1.0)], [(11.0, 1.0)]) == cbook.SNAPSHOT_TOO_OLD
    assert book.apply_snapshot(121, [(9.0, 1.0)], [(11.0, 1.0)]) == cbook.GAP  # 122..124 never arrived
    assert book.apply_snapshot(119, [(9.0, 1.0)], [(11.0, 1.0)]) == cbook.GAP  # the same break, later in the chain
    assert book.n_buffered_diffs == 2  # the diffs after the break are kept for a newer snapshot
    assert book.apply_snapshot(124, [(9.0, 1.0)], [(11.0, 1.0)]) == cbook.SYNCED
    assert book.version == 127 and book.levels()[0] == [(9.6, 1.0), (9.5, 1.0), (9.0, 1.0)]


def test_a_sweep_past_the_kept_levels_asks_for_a_snapshot() -> None:
    book = OrderBook(depth_cap=2)
    assert book.apply_snapshot(1, [(9.9, 1.0)], [(10.1, 1.0), (10.2, 1.0), (10.3, 1.0)]) == cbook.SYNCED
    assert book.levels()[1] == [(10.1, 1.0), (10.2, 1.0)] and book.ask_horizon == 10.3
    assert book.apply_diff(2, 2, [], [(10.5, 4.0)]) == cbook.APPLIED  # beyond the horizon: ignored
    assert book.apply_diff(3, 3, [], [(10.1, 0.0)]) == cbook.APPLIED
    assert book.best_ask == 10.2
    # 10.3 may still be there: with 10.2 gone the best ask is unknown, not 10.5.
    assert book.apply_diff(4, 4, [], [(10.2, 0.0)]) == cbook.GAP
    assert not book.valid
    assert book.apply_snapshot(4, [(9.9, 1.0)], [(10.3, 1.0), (10.5, 4.0)]) == cbook.SYNCED
    assert book.best_ask == 10.3 and book.valid


def test_bad_levels_are_refused_and_change_nothing() -> None:
    for make in (OrderBook, ReferenceBook):
        book = make()
        assert book.apply_snapshot(1, [(9.9, 1.0)], [(10.1, 1.0)]) == cbook.SYNCED
        for bad in ([(math.nan, 1.0)], [(9.8, -1.0)], [(0.0, 1.0)], [(9.8, math.inf)], [("x", 1.0)], [(9.8,)]):
            with pytest.raises((ValueError, TypeError)):
                book.apply_diff(2, 2, bad, [])
            with pytest.raises((ValueError, TypeError)):
                book.apply_snapshot(5, bad, [])
        assert book.levels() == ([(9.9, 1.0)], [(10.1, 1.0)]) and book.version == 1 and book.synced


def test_the_diff_buffer_is_bounded_and_released() -> None:
    book = OrderBook()
    empty = book.nbytes()
    for v in range(1, 601):
        assert book.apply_diff(v, v, [(9.0 + v * 1e-3, 1.0)], [(20.0, 1.0)]) == cbook.BUFFERED
    assert book.buffer_overflows == 1 and book.n_buffered_diffs == 600 - 512
    assert book.nbytes() > empty
    assert book.apply_snapshot(100, [], []) == cbook.SNAPSHOT_TOO_OLD  # its diffs were dropped
    assert book.apply_snapshot(599, [(9.0, 1.0)], [(20.0, 1.0)]) == cbook.SYNCED
    assert book.version == 600 and book.nbytes() == empty
    big = [(1.0 + i * 1e-3, 1.0) for i in range(9000)]
    book.reset()
    assert book.apply_diff(601, 601, big, []) == cbook.BUFFERED  # larger than the whole buffer: dropped
    assert book.n_buffered_diffs == 0 and book.buffer_overflows == 2


def test_queries_measure_bands_from_the_best_price() -> None:
    book = OrderBook()
    assert math.isnan(book.best_bid) and math.isnan(book.mid) and math.isnan(book.spread_frac)
    book.apply_snapshot(1, [(100.0, 1.0), (99.98, 2.0), (99.5, 4.0)], [(100.1, 3.0), (100.2, 5.0)])
    assert (book.best_bid, book.best_ask, book.best_bid_qty, book.best_ask_qty) == (100.0, 100.1, 1.0, 3.0)
    assert book.mid == pytest.approx(100.05)
    assert book.size_within(True, 3.0) == 3.0  # 99.98 is 2 bps below the best bid
    assert book.size_within(False, 3.0) == 3.0  # only the best ask within 3 bps
    assert book.size_within(False, 0.0) == 3.0  # the best level always counts
    assert book.size_within(True, 100.0) == 7.0
    assert abs(book.spread_frac - 0.1 / 100.05) < 1e-12
