"""Order book: Cython equals the reference on random diff/snapshot sequences; versions enforced."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import book as cbook
from core.book import OrderBook
from core.reference import book as rbook
from core.reference.book import ReferenceBook

FAST = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

prices = st.integers(90, 110).map(lambda t: t / 10)
qtys = st.one_of(st.just(0.0), st.integers(1, 50).map(float))
levels = st.lists(st.tuples(prices, qtys), max_size=6)


@st.composite
def operations(draw: st.DrawFn) -> list[tuple]:
    ops: list[tuple] = []
    version = draw(st.integers(0, 50))
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["diff", "diff", "diff", "gap", "stale", "snapshot", "reset", "old_snapshot"]))
        if kind in ("diff", "gap", "stale"):
            step = draw(st.integers(1, 3))
            if kind == "diff":
                from_v, to_v = version + 1, version + step
            elif kind == "gap":
                from_v, to_v = version + 3, version + 3 + step
            else:
                from_v, to_v = max(0, version - 5), max(0, version - 1)
            ops.append(("diff", from_v, to_v, draw(levels), draw(levels)))
            version = max(version, to_v)
        elif kind in ("snapshot", "old_snapshot"):
            last = version if kind == "snapshot" else max(0, version - draw(st.integers(1, 10)))
            bids = sorted({p: q for p, q in draw(levels) if q > 0 and p < 10.0}.items(), reverse=True)
            asks = sorted({p: q for p, q in draw(levels) if q > 0 and p >= 10.0}.items())
            ops.append(("snapshot", last, bids, asks))
        else:
            ops.append(("reset",))
    return ops


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
        assert c.levels() == r.levels()
        assert c.version == r.version and c.synced == r.synced
        for bid in (True, False):
            for bps in (3.0, 10.0, 500.0):
                assert c.size_within(bid, bps) == r.size_within(bid, bps)


@FAST
@given(st.lists(st.tuples(levels, levels), min_size=1, max_size=30))
def test_reference_top_k_matches_a_naive_full_book(diffs: list) -> None:
    book = ReferenceBook(depth_cap=1000)
    assert book.apply_snapshot(0, [], []) == rbook.SYNCED
    full_b: dict[float, float] = {}
    full_a: dict[float, float] = {}
    for n, (b, a) in enumerate(diffs):
        assert book.apply_diff(n + 1, n + 1, b, a) == rbook.APPLIED
        for side, lv in ((full_b, b), (full_a, a)):
            for p, q in lv:
                if q == 0:
                    side.pop(p, None)
                else:
                    side[p] = q
    bids, asks = book.levels()
    assert bids == sorted(full_b.items(), reverse=True) and asks == sorted(full_a.items())


def test_snapshot_procedure_of_mexc() -> None:
    book = OrderBook()
    assert book.apply_diff(101, 103, [(9.9, 5.0)], []) == cbook.BUFFERED
    assert book.apply_diff(104, 104, [], [(10.1, 2.0)]) == cbook.BUFFERED
    assert not book.valid
    assert book.apply_snapshot(50, [(9.8, 1.0)], [(10.2, 1.0)]) == cbook.SNAPSHOT_TOO_OLD
    assert book.apply_snapshot(102, [(9.8, 1.0), (9.9, 1.0)], [(10.2, 1.0)]) == cbook.SYNCED
    assert book.version == 104 and book.valid
    assert book.levels() == ([(9.9, 5.0), (9.8, 1.0)], [(10.1, 2.0), (10.2, 1.0)])
    assert book.apply_diff(100, 104, [(9.9, 0.0)], []) == cbook.STALE
    assert book.apply_diff(107, 108, [], []) == cbook.GAP
    assert not book.valid and book.levels() == ([], [])
    assert book.apply_snapshot(110, [(9.0, 1.0)], [(11.0, 1.0)]) == cbook.SYNCED  # covers the buffered 107-108
    assert book.version == 110 and abs(book.spread_frac - 2.0 / 10.0) < 1e-12
    book.reset()
    book.apply_diff(120, 121, [], [])
    book.apply_diff(125, 125, [], [])
    assert book.apply_snapshot(115, [(9.0, 1.0)], [(11.0, 1.0)]) == cbook.SNAPSHOT_TOO_OLD
    assert book.apply_snapshot(121, [(9.0, 1.0)], [(11.0, 1.0)]) == cbook.GAP  # 122..124 never arrived
    assert not book.valid


def test_queries_measure_bands_from_the_best_price() -> None:
    book = OrderBook()
    book.apply_snapshot(1, [(100.0, 1.0), (99.98, 2.0), (99.5, 4.0)], [(100.1, 3.0), (100.2, 5.0)])
    assert book.best_bid == 100.0 and book.best_ask == 100.1
    assert book.size_within(True, 3.0) == 3.0  # 99.98 is 2 bps below the best bid
    assert book.size_within(False, 3.0) == 3.0  # only the best ask within 3 bps
    assert abs(book.spread_frac - 0.1 / 100.05) < 1e-12
