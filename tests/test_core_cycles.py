"""Cycle pricing: the compiled CycleBook equals its plain-Python twin on random books, and both
price what a trader would get: asks when buying, bids when selling, fees, lot rounding, L10 depth,
unpriceable legs never profitable, only the cycles through an updated pair re-priced."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.cycles import BELOW, CROSSED, ONE_SIDED, PROFITABLE, STALE, UNSEEN, CycleBook
from core.reference.cycles import ReferenceCycleBook
from sim.proto import mexc_push_pb2 as pb

FAST = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def _same(a: object, b: object) -> bool:
    """Equality with NaN equal to NaN, through tuples."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@st.composite
def side(draw: st.DrawFn, bids: bool, mid: float) -> list[tuple[float, float]]:
    """Up to 12 levels around mid (some out of order or bad, which both must drop alike)."""
    n = draw(st.integers(0, 12))
    ticks = draw(st.lists(st.integers(0, 60), min_size=n, max_size=n))
    sizes = draw(st.lists(st.sampled_from([0.0, 0.001, 0.5, 3.0, 17.0, 250.0, 4000.0]), min_size=n, max_size=n))
    sign = -1.0 if bids else 1.0
    return [(mid * (1.0 + sign * t * 1e-4), q) for t, q in zip(sorted(ticks), sizes, strict=True)]


@st.composite
def scenarios(draw: st.DrawFn) -> dict:
    n_pairs = draw(st.integers(3, 6))
    leg = st.tuples(st.integers(0, n_pairs - 1), st.booleans())
    cycles = draw(st.lists(st.tuples(leg, leg, leg), min_size=1, max_size=8))
    rules = [(draw(st.sampled_from([0.0, 0.0005, 0.001, 0.002])), draw(st.sampled_from([0.0, 1e-6, 0.01, 1.0])))
             for _ in range(n_pairs)]  # fmt: skip
    mids = [draw(st.sampled_from([0.5, 0.98, 1.0, 1.02, 2.0, 60000.0, 3e-5])) for _ in range(n_pairs)]
    updates = []
    t = 1_000
    for _ in range(draw(st.integers(1, 14))):
        p = draw(st.integers(0, n_pairs - 1))
        t += draw(st.sampled_from([0, 5, 300, 4000]))
        shift = draw(st.sampled_from([1.0, 0.997, 1.004, 1.03]))
        updates.append((p, t, draw(side(True, mids[p] * shift)), draw(side(False, mids[p] * shift))))
    params = (draw(st.sampled_from([-80.0, -5.0, 0.0, 10.0])), draw(st.sampled_from([0.01, 1.0, 25.0])),
              draw(st.sampled_from([0, 1000, 5000])))  # fmt: skip
    return {"n": n_pairs, "cycles": cycles, "rules": rules, "updates": updates, "params": params}


def _both(s: dict) -> tuple[CycleBook, ReferenceCycleBook]:
    fast = CycleBook(s["n"], s["cycles"], *s["params"])
    ref = ReferenceCycleBook(s["n"], s["cycles"], *s["params"])
    for p, (fee, step) in enumerate(s["rules"]):
        fast.set_rules(p, fee, step)
        ref.set_rules(p, fee, step)
    return fast, ref


@FAST
@given(scenarios(), st.sampled_from([0.05, 1.0, 30.0, 900.0]))
def test_compiled_pricing_equals_the_reference(s: dict, amount: float) -> None:
    fast, ref = _both(s)
    for p, t, bids, asks in s["updates"]:
        assert fast.update(p, t, bids, asks) == ref.update(p, t, bids, asks)
        for c in range(len(s["cycles"])):
            assert _same(fast.result(c), ref.result(c)), (c, fast.result(c), ref.result(c))
            assert _same(fast.profit(c, amount), ref.profit(c, amount))
        assert fast.take_touched() == ref.take_touched()
    now = s["updates"][-1][1] + 2000
    assert fast.reprice_profitable(now) == ref.reprice_profitable(now)
    assert fast.take_touched() == ref.take_touched()
    fast.reprice_all(now)
    ref.reprice_all(now)
    assert all(_same(fast.result(c), ref.result(c)) for c in range(len(s["cycles"])))


@FAST
@given(scenarios())
def test_size_is_the_largest_amount_above_the_threshold(s: dict) -> None:
    """Without lot steps profit falls as the amount grows (deeper levels, worse prices), so every
    amount past the reported size, up to what the first leg's L10 holds, is below the threshold."""
    s = {**s, "rules": [(fee, 0.0) for fee, _ in s["rules"]]}
    fast, _ = _both(s)
    for p, t, bids, asks in s["updates"]:
        fast.update(p, t, bids, asks)
    floor = fast.min_profit_bps
    for c in range(len(s["cycles"])):
        status, top, edge, size, size_bps, _, _ = fast.result(c)
        if status != PROFITABLE:
            assert size == 0.0
            continue
        assert edge >= floor and size_bps >= floor and size >= fast.min_start
        assert top >= edge - 1e-6  # depth only takes away from the top-of-book edge
        p0, buy0 = s["cycles"][c][0]
        bids, asks, _ = fast.top(p0)
        cap = sum(px * q for px, q in asks) if buy0 else sum(q for _, q in bids)
        for k in range(1, 12):
            x = size * (1.0 + 1e-6) + (cap - size) * k / 12.0
            if x < cap * (1.0 - 1e-9):
                assert fast.profit(c, x) < floor + 1e-7, (c, size, x, cap)


def _cycle_book(fee: float = 0.0005, **params: float) -> CycleBook:
    """USDT -> BTC (buy BTCUSDT) -> XYZ (buy XYZBTC) -> USDT (sell XYZUSDT); pairs 0, 1, 2."""
    book = CycleBook(3, [((0, True), (1, True), (2, False))], **params)
    for p in range(3):
        book.set_rules(p, fee, 0.0)
    return book


def _feed(book: CycleBook, xyz_bid: float = 0.0616, t: int = 1000, ages: tuple[int, int, int] = (0, 0, 0)) -> None:
    book.update(0, t - ages[0], [(59_990.0, 5.0)], [(60_000.0, 5.0)])
    book.update(1, t - ages[1], [(0.9999e-6, 1e9)], [(1e-6, 1e9)])
    book.update(2, t - ages[2], [(xyz_bid, 1e8)], [(xyz_bid * 1.001, 1e8)])
    book.reprice(0, t)


def test_a_leg_buys_at_the_ask_and_sells_at_the_bid_after_three_fees() -> None:
    book = _cycle_book(min_profit_bps=0.0, min_start=10.0)
    _feed(book)
    status, top, edge, size, size_bps, ages, _ = book.result(0)
    want = (1.0 / 60_000.0 * 0.9995 / 1e-6 * 0.9995 * 0.0616 * 0.9995 - 1.0) * 1e4
    assert status == PROFITABLE and top == pytest.approx(want, abs=1e-9) and ages == (0, 0, 0)
    assert edge == pytest.approx(want, abs=1e-6)  # deep books: 10 USDT gets the top-of-book rate
    # Capacity: BTCUSDT's 5 BTC at 60,000 is the first leg's whole L10.
    assert size == pytest.approx(300_000.0) and size_bps == pytest.approx(want, abs=1e-6)


def test_three_taker_fees_cost_about_15_bps() -> None:
    with_fees, free = _cycle_book(min_profit_bps=-999.0), _cycle_book(fee=0.0, min_profit_bps=-999.0)
    _feed(with_fees)
    _feed(free)
    gross, net = 1.0 + free.result(0)[1] / 1e4, 1.0 + with_fees.result(0)[1] / 1e4
    assert net == pytest.approx(gross * 0.9995**3, rel=1e-12) and (gross - net) * 1e4 == pytest.approx(15.4, abs=0.05)


def test_lot_rounding_loses_the_dust() -> None:
    book = _cycle_book(min_profit_bps=-9999.0, min_start=10.0)
    _feed(book)
    fine = book.profit(0, 10.0)
    book.set_rules(2, 0.0005, 1000.0)  # XYZ sells only in lots of 1,000: 10 USDT buys ~166 XYZ, floored to 0
    assert book.profit(0, 10.0) == pytest.approx(-1e4) and fine > -100.0


def test_depth_limits_the_size_to_what_keeps_the_edge() -> None:
    book = _cycle_book(min_profit_bps=5.0, min_start=10.0)
    book.update(0, 1000, [(59_990.0, 5.0)], [(60_000.0, 0.001), (61_800.0, 5.0)])  # 60 USDT at the top, then +3 %
    book.update(1, 1000, [(0.9999e-6, 1e9)], [(1e-6, 1e9)])
    book.update(2, 1000, [(0.0616, 1e6)], [(0.0617, 1e6)])
    status, top, edge, size, size_bps, _, _ = book.result(0)
    r1, r2 = (0.0616 / 60_000.0 / 1e-6) * 0.9995**3, (0.0616 / 61_800.0 / 1e-6) * 0.9995**3
    want = 60.0 * (r1 - r2) / (1.0005 - r2)  # the amount whose blend of the two levels nets exactly 5 bps
    assert status == PROFITABLE and top == pytest.approx((r1 - 1.0) * 1e4, rel=1e-6) and r2 < 1.0
    assert size == pytest.approx(want, rel=1e-6) and size_bps == pytest.approx(5.0, abs=1e-6)


@pytest.mark.parametrize(
    ("bad", "want"), [("one_sided", ONE_SIDED), ("crossed", CROSSED), ("stale", STALE), ("unseen", UNSEEN)]
)
def test_unpriceable_legs_are_never_profitable(bad: str, want: int) -> None:
    book = _cycle_book(min_profit_bps=0.0, max_leg_age_ms=500)
    _feed(book, xyz_bid=0.09)  # a 45 % edge on paper
    assert book.result(0)[0] == PROFITABLE
    book.take_touched()
    if bad == "one_sided":
        book.update(1, 1000, [], [(1e-6, 1e9)])
    elif bad == "crossed":
        book.update(1, 1000, [(1.1e-6, 1e9)], [(1e-6, 1e9)])
    elif bad == "stale":
        book.reprice(0, 1501)
    else:
        book = _cycle_book(min_profit_bps=0.0)
        book.update(0, 1000, [(59_990.0, 5.0)], [(60_000.0, 5.0)])
        book.update(2, 1000, [(0.09, 1e6)], [(0.0901, 1e6)])
        book.take_touched()
    status, top, _, size, _, _, _ = book.result(0)
    assert status == want and math.isnan(top) and size == 0.0
    # The cycle that was profitable is reported once more, so its episode can end.
    assert book.take_touched() == ([] if bad == "unseen" else [0])


def test_an_update_reprices_only_the_cycles_through_its_pair() -> None:
    cycles = [
        ((0, True), (1, True), (2, False)),
        ((3, True), (1, False), (0, False)),
        ((3, True), (4, True), (5, False)),
    ]
    book = CycleBook(6, cycles, min_profit_bps=0.0)
    assert book.cycles_of(1) == [0, 1] and book.cycles_of(4) == [2] and book.cycles_of(0) == [0, 1]
    assert book.update(4, 7, [(1.0, 1.0)], [(1.1, 1.0)]) == 1
    assert [book.result(c)[6] for c in range(3)] == [-1, -1, 7]
    assert book.update(1, 9, [(1.0, 1.0)], [(1.1, 1.0)]) == 2
    assert [book.result(c)[6] for c in range(3)] == [9, 9, 7] and book.repriced_total == 3


def test_a_limit_depth_frame_updates_its_pair_at_the_push_time() -> None:
    book = _cycle_book(min_profit_bps=0.0)
    book.set_symbols(["BTCUSDT", "XYZBTC", "XYZUSDT"])
    w = pb.PushDataV3ApiWrapper(channel="spot@public.limit.depth.v3.api.pb@XYZUSDT@10", symbol="XYZUSDT", sendTime=4242)
    w.publicLimitDepths.bids.add(price="0.0616", quantity="100")
    w.publicLimitDepths.bids.add(price="0.0615", quantity="200")
    w.publicLimitDepths.asks.add(price="0.0617", quantity="50")
    w.publicLimitDepths.version = "77"
    assert book.on_frame(w.SerializeToString()) == 1
    assert book.top(2) == ([(0.0616, 100.0), (0.0615, 200.0)], [(0.0617, 50.0)], 4242)
    t = pb.PushDataV3ApiWrapper(
        channel="spot@public.aggre.bookTicker.v3.api.pb@100ms@XYZBTC", symbol="XYZBTC", sendTime=4243
    )
    t.publicAggreBookTicker.bidPrice, t.publicAggreBookTicker.bidQuantity = "0.000001", "5"
    t.publicAggreBookTicker.askPrice, t.publicAggreBookTicker.askQuantity = "0.0000011", "6"
    assert book.on_frame(t.SerializeToString()) == 1 and book.top(1) == ([(1e-6, 5.0)], [(1.1e-6, 6.0)], 4243)
    other = pb.PushDataV3ApiWrapper(channel="x", symbol="NOPEUSDT", sendTime=1)
    other.publicLimitDepths.version = "1"
    assert book.on_frame(other.SerializeToString()) == 0


def test_bad_set_up_is_refused() -> None:
    with pytest.raises(ValueError, match="pair id 3"):
        CycleBook(3, [((0, True), (1, True), (3, False))])
    with pytest.raises(ValueError, match="three"):
        CycleBook(3, [((0, True), (1, True))])
    book = _cycle_book()
    with pytest.raises(ValueError):
        book.set_rules(0, 0.7, 0.0)
    with pytest.raises(ValueError):
        book.set_params(0.0, 0.0, 100)
    assert book.result(0)[0] == UNSEEN and BELOW == 0
