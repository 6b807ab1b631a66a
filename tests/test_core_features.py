"""Feature rows: Cython equals the reference; both equal the DESIGN.md formulas computed with NumPy
from the raw trades and a plain book; undefined features are NaN with their flag clear."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.book import OrderBook
from core.features import compute_row, fill_rows, precheck
from core.reference import features as rfeatures
from core.reference.book import ReferenceBook
from core.reference.windows import ReferenceWindows
from core.rowspec import (
    FEATURE_NAMES,
    FEATURE_ROW_DTYPE,
    ROW_BASELINE_READY,
    ROW_BOOK_VALID,
    ROW_CANDIDATE,
    ROW_FLASH_READY,
    ROW_LISTING_KNOWN,
)
from core.windows import TradeWindows
from tests.test_core_windows import F32, T0, _attributed, _seed_rows, trade_streams

FAST = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@st.composite
def books(draw: st.DrawFn) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """A plain book around 1.0 with ticks of 1 bp, so the 3 and 10 bps bands cut through it."""
    bid_ticks = draw(st.lists(st.integers(1, 40), min_size=1, max_size=20, unique=True))
    ask_ticks = draw(st.lists(st.integers(0, 40), min_size=1, max_size=20, unique=True))
    size = st.floats(0.01, 1000.0)
    bids = sorted(((1.0 - t * 1e-4, draw(size)) for t in bid_ticks), reverse=True)
    asks = sorted((1.0 + t * 1e-4, draw(size)) for t in ask_ticks)
    return bids, asks


def _band(levels: list[tuple[float, float]], bps: float, bid: bool) -> float:
    """Size within bps of the side's best price, the best level always included (plain NumPy)."""
    p, q = np.array(levels).T
    inside = p >= p[0] * (1 - bps * 1e-4) if bid else p <= p[0] * (1 + bps * 1e-4)
    inside[0] = True
    return float(q[inside].sum())


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _feed_both(c: TradeWindows, r: ReferenceWindows, events: list, depth: list[float]) -> None:
    for n, (kind, args) in enumerate(events):
        for win in (c, r):
            if kind == "trade":
                win.on_trade(*args)
            elif win.advance(*args):
                win.record_bid_depth(args[0], depth[n % len(depth)] if depth else 1.0)


@FAST
@given(trade_streams(), st.lists(st.tuples(st.integers(-80, -1), st.floats(0.0, 1e5)), max_size=80), books(),
       st.lists(st.floats(0.0, 5000.0), max_size=20), st.integers(-1, 10**12), st.booleans())  # fmt: skip
def test_cython_rows_equal_reference(
    events: list, seed: list, book: tuple, depth: list, listing: int, synced: bool
) -> None:
    c, r = TradeWindows(), ReferenceWindows()
    rows = _seed_rows(events, seed)
    c.seed_klines(rows)
    r.seed_klines(rows)
    _feed_both(c, r, events, depth)
    cb, rb = OrderBook(), ReferenceBook()
    if synced:
        assert cb.apply_snapshot(7, *book) == rb.apply_snapshot(7, *book)
    now = max(c.bar_sec, 0) * 1000
    for candidate in (False, True):
        at = now + 999 if candidate else now
        got = compute_row(cb, c, at, listing, 5, 9, candidate)
        want = rfeatures.compute_row(rb, r, at, listing, 5, 9, candidate)
        assert got.keys() == want.keys() == set(FEATURE_ROW_DTYPE.names)
        for key in want:
            assert _same(got[key], want[key]), key
    for pm_min, mult in ((0.0, 0.0), (0.01, 1.0), (-0.5, 3.0), (0.2, 0.5)):
        for vsr_min in (math.inf, 0.0, 3.0, 50.0):
            assert precheck(c, pm_min, mult, vsr_min) == rfeatures.precheck(r, pm_min, mult, vsr_min)


@FAST
@given(trade_streams(), st.lists(st.tuples(st.integers(-80, -1), st.floats(1.0, 1e5)), min_size=1, max_size=80), books(),
       st.lists(st.floats(0.0, 5000.0), min_size=1, max_size=20))  # fmt: skip
def test_row_matches_the_design_formulas(events: list, seed: list, book: tuple, depth: list) -> None:
    win, ob = TradeWindows(), OrderBook()
    rows = _seed_rows(events, seed)
    win.seed_klines(rows)
    samples: dict[int, float] = {}
    for n, (kind, args) in enumerate(events):
        if kind == "trade":
            win.on_trade(*args)
        elif win.advance(*args):
            win.record_bid_depth(args[0], depth[n % len(depth)])
            samples.setdefault(args[0] // 1000, float(np.float32(depth[n % len(depth)])))
    assert ob.apply_snapshot(3, *book) == 4
    end = win.bar_sec
    listing = T0 - 86_400_000
    row = compute_row(ob, win, end * 1000, listing)

    price, qty, side, bar = _attributed(events).T
    in5 = (bar >= end - 300) & (bar < end)
    vol, qvol = qty[in5].sum(), (qty * price)[in5].sum()
    tol = {"rel": 1e-5, "abs": 1e-9}
    assert row["quote_vol_5m"] == pytest.approx(qvol, **tol)
    if vol > 0:
        vwap = qvol / vol
        blocks = [qty[(bar >= end - 300 + 60 * k) & (bar < end - 240 + 60 * k)].sum() for k in range(5)]
        assert row["vc"] == pytest.approx(max(blocks) / vol, **tol)
        assert row["pm"] == pytest.approx((price[-1] - vwap) / vwap, rel=1e-5, abs=8 * F32 * price[-1] / vwap)
    else:
        assert math.isnan(row["vc"]) and math.isnan(row["pm"])
    in10 = (bar >= end - 10) & (bar < end)
    assert row["trades_10s"] == in10.sum()
    if qty[in10].sum() > 0:
        assert row["buy_share_10s"] == pytest.approx(qty[in10 & (side == 1)].sum() / qty[in10].sum(), **tol)
    else:
        assert math.isnan(row["buy_share_10s"])

    # VSR: the median of the known five-minute volumes of the 72 buckets before the current one.
    start = (events[0][1][-1] if events[0][0] == "trade" else events[0][1][0]) // 1000
    cur = end // 300
    known = {open_ms // 300_000: v for open_ms, v, _ in rows}
    known.update({b: qty[(bar // 300) == b].sum() for b in range(-(-start // 300), cur)})
    base = [known[b] for b in range(cur - 72, cur) if b in known]
    if len(base) >= 6 and np.median(base) > 0:
        assert row["flags"] & ROW_BASELINE_READY
        assert row["vsr"] == pytest.approx(vol / np.median(base), rel=1e-5, abs=1e-9)
    else:
        assert not row["flags"] & ROW_BASELINE_READY and math.isnan(row["vsr"])

    bids, asks = book
    b10, a10 = _band(bids, 10, True), _band(asks, 10, False)
    assert row["flags"] & ROW_BOOK_VALID
    assert row["obi"] == pytest.approx((b10 - a10) / (b10 + a10), rel=1e-12)
    mid = (bids[0][0] + asks[0][0]) / 2
    assert row["spread"] == pytest.approx((asks[0][0] - bids[0][0]) / mid, rel=1e-12)
    then = end - 180
    past = [s for s in samples if s <= then]
    if samples and past and then >= min(samples) and then > max(samples) - 192:
        assert row["cum_depth_delta"] == pytest.approx(_band(bids, 3, True) - samples[max(past)], rel=1e-12, abs=1e-9)
    else:
        assert math.isnan(row["cum_depth_delta"])
    assert row["listing_age_s"] == (end * 1000 - listing) / 1000 and row["flags"] & ROW_LISTING_KNOWN
    if len(price):
        assert row["last_price"] == price[-1]


def test_seeding_from_klines_makes_vsr_ready_at_once() -> None:
    win = TradeWindows()
    now = T0 + 1000
    assert T0 % 300_000 == 0
    win.seed_klines([(T0 - k * 300_000, 100.0 + k, 0.0) for k in range(1, 73)])
    row = compute_row(OrderBook(), win, now, T0 - 10**9)
    assert not row["flags"] & ROW_BASELINE_READY  # nothing live yet: no current bucket
    for i in range(300):
        win.on_trade(1.0, 5.0 if i < 100 else 1.0, 1, now + i * 1000)
    win.advance(now + 300_000)
    row = compute_row(OrderBook(), win, now + 300_000, T0 - 10**9)
    assert row["flags"] & ROW_BASELINE_READY  # ready without six hours of uptime
    # Live data started 1 s into T0's bucket, so that bucket stays unknown: the baseline is the 71
    # seeded buckets among the 72 before the current one.
    base = [100.0 + k for k in range(1, 72)]
    assert row["vsr"] == pytest.approx((100 * 5 + 200) / float(np.median(base)))
    assert row["vc"] == pytest.approx(300 / 700)
    assert math.isnan(row["obi"]) and not row["flags"] & ROW_BOOK_VALID  # no snapshot yet


def test_undefined_features_are_nan_and_flags_clear() -> None:
    row = compute_row(OrderBook(), TradeWindows(), T0, -1)
    assert row["flags"] == 0
    for name in FEATURE_NAMES:
        if name in ("quote_vol_5m", "trades_10s", "rush_5s"):
            assert row[name] == 0.0
        else:
            assert math.isnan(row[name]), name
    assert math.isnan(row["last_price"])


def test_candidate_row_before_the_close_equals_the_row_at_the_close() -> None:
    win, book = TradeWindows(), OrderBook()
    book.apply_snapshot(1, [(0.999, 10.0)], [(1.001, 5.0)])
    win.seed_klines([(T0 - k * 300_000, 50.0, 50.0) for k in range(1, 73)])
    for i in range(400):
        win.on_trade(1.0 + i * 1e-4, 1.0 + i % 7, 1 + i % 2, T0 + i * 1000 + 17)
    second = T0 + 399_000  # the open bar, mid-bucket
    candidate = compute_row(book, win, second + 500, 1, candidate=True)
    assert candidate["flags"] & ROW_CANDIDATE
    win.advance(second + 1000)
    closed = compute_row(book, win, second + 1000, 1)
    assert not closed["flags"] & ROW_CANDIDATE
    assert candidate["flags"] == closed["flags"] | ROW_CANDIDATE
    for name in ("vsr", "vc", "pm", "obi", "spread", "quote_vol_5m", "trades_10s", "buy_share_10s", "last_price"):
        assert candidate[name] == closed[name], name


def test_precheck_spots_a_burst_before_the_bar_closes() -> None:
    off = math.inf  # the baseline clause off: the burst clause alone
    win = TradeWindows()
    assert not precheck(win, 0.0, 0.0, off)  # nothing traded
    for i in range(300):
        win.on_trade(1.0, 1.0, 1, T0 + i * 1000)
    win.advance(T0 + 300_000)
    assert not precheck(win, 0.0, 0.0, off)  # the open bar has not traded yet
    win.on_trade(1.01, 4.0, 1, T0 + 300_100)
    assert precheck(win, 0.005, 3.0, off)
    assert not precheck(win, 0.02, 3.0, off)  # price not far enough above the 5-min vwap
    assert not precheck(win, 0.005, 5.0, off)  # volume not a burst yet
    win.on_trade(1.03, 2.0, 1, T0 + 300_600)
    assert precheck(win, 0.02, 5.0, off)
    quiet = TradeWindows()
    quiet.on_trade(1.0, 1.0, 1, T0)
    quiet.advance(T0 + 400_000)
    quiet.on_trade(2.0, 100.0, 1, T0 + 400_100)
    assert not precheck(quiet, 0.0, 0.0, 0.0)  # no 5-min vwap to compare with


def test_precheck_keeps_a_pump_past_its_first_burst_a_candidate_by_its_baseline() -> None:
    """Minutes into a pump no bar is 3x the (pumped) 5-min mean any more, but the 5-min volume is
    still many times the 6 h baseline: the pair stays a candidate, so its cards never wait for a bar."""
    bucket_s = 300
    start = (T0 // (bucket_s * 1000) + 1) * bucket_s * 1000  # a five-minute boundary
    win, ref = TradeWindows(), ReferenceWindows()
    seed = [(start - (72 - i) * bucket_s * 1000, 60.0, 60.0) for i in range(72)]  # 6 h of ~0.2 per second
    win.seed_klines(seed)
    ref.seed_klines(seed)
    price = 1.0
    for s in range(240):  # four minutes of a steady pump: 1.0 per second, price up 0.05 % a second
        price *= 1.0005
        for w in (win, ref):
            w.on_trade(price, 1.0, 1, start + s * 1000 + 100)
    for w in (win, ref):
        w.advance(start + 240_000)
        w.on_trade(price * 1.0005, 1.0, 1, start + 240_100)
    # the open bar (1.0) is no burst against the pumped 5-min mean (~0.8 per second) ...
    assert not precheck(win, 0.01, 3.0, math.inf)
    # ... but 241 against a baseline median of 60 per five minutes is VSR 4.0
    assert precheck(win, 0.01, 3.0, 3.0) and not precheck(win, 0.01, 3.0, 4.5)
    for vsr_min in (3.0, 4.5):
        assert precheck(win, 0.01, 3.0, vsr_min) == rfeatures.precheck(ref, 0.01, 3.0, vsr_min)
    assert not precheck(win, 0.2, 3.0, 3.0)  # the price rule still gates it


def test_fill_rows_writes_the_same_rows_into_a_ring_layout_array() -> None:
    rng = np.random.default_rng(11)
    books, wins = [], []
    for n in range(20):
        book, win = OrderBook(), TradeWindows()
        if n % 3:
            book.apply_snapshot(1, [(0.99, float(n + 1)), (0.98, 2.0)], [(1.01, 3.0)])
        for t in np.sort(rng.integers(0, 400_000, 50)):
            win.on_trade(float(rng.uniform(0.9, 1.1)), float(rng.uniform(0, 3)), int(rng.integers(1, 3)), T0 + int(t))
        win.advance(T0 + 400_000)
        books.append(book)
        wins.append(win)
    listing = np.arange(20, dtype=np.int64) * 1000
    ids = np.arange(100, 120, dtype=np.uint32)
    out = np.zeros(25, dtype=FEATURE_ROW_DTYPE)
    assert fill_rows(books, wins, T0 + 400_000, listing, ids, out) == 20
    for n in range(20):
        want = compute_row(books[n], wins[n], T0 + 400_000, int(listing[n]), 0, int(ids[n]))
        for name in FEATURE_ROW_DTYPE.names:
            assert _same(float(out[n][name]), float(want[name])), name
    assert out[20]["row_time_ms"] == 0  # untouched past n
    with pytest.raises(ValueError):
        fill_rows(books, wins, T0, listing, ids, np.zeros(5, dtype=FEATURE_ROW_DTYPE))
    with pytest.raises(ValueError):
        fill_rows(books, wins, T0, listing, ids, np.zeros(25, dtype=np.float64))
    with pytest.raises(TypeError):
        fill_rows(books[:-1] + [None], wins, T0, listing, ids, out)


def test_flash_fields_of_a_burst_against_its_quiet_baseline() -> None:
    """15 min at one sell a second, then 25 s of buys: 4 deals a second, two rush orders each."""
    win = TradeWindows()
    win.advance(T0)
    for sec in range(900):
        win.on_trade(1.0, 1.0, 2, T0 + sec * 1000)
    win.advance(T0 + 900_000)
    quiet = compute_row(OrderBook(), win, T0 + 900_000, 1)
    start = T0 + 900_000
    for sec in range(25):
        t, p = start + sec * 1000, 1.0 + 0.004 * (sec + 1)
        for ms in (t, t, t + 5, t + 5):  # two market orders, each sweeping two levels
            win.on_trade(p, 1.0, 1, ms)
    win.advance(start + 25_000)
    row = compute_row(OrderBook(), win, start + 25_000, 1)
    assert quiet["flags"] & ROW_FLASH_READY and quiet["rush_5s"] == 0.0
    assert quiet["rush_ratio_25s"] == 0.0 and quiet["trades_ratio_25s"] == pytest.approx(25 / 26)
    assert row["flags"] & ROW_FLASH_READY
    assert row["rush_5s"] == 10.0
    assert row["rush_ratio_25s"] == 50.0  # 50 rush orders against an expected 0 (+1)
    assert row["trades_ratio_25s"] == pytest.approx(100 / 26)
    assert row["qvol_ratio_25s"] == pytest.approx(sum(4 * (1.0 + 0.004 * (k + 1)) for k in range(25)) / 25, rel=1e-6)
    assert row["buy_share_25s"] == 1.0
    assert row["ret_25s"] == pytest.approx(1.1 / 1.0 - 1, rel=1e-6)
    assert row["ret_60s"] == pytest.approx(1.1 / 1.0 - 1, rel=1e-6)
