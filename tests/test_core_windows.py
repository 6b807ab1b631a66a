"""Bars and rolling windows: Cython equals the reference; both equal the definitions computed with
NumPy from the raw trades, whatever the chunking of exchange-time advances."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.reference.windows import ReferenceWindows
from core.windows import TradeWindows

FAST = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
T0 = 1_790_000_100_000  # a multiple of 300 s: bucket-aligned
F32 = 2.0**-23  # float32 relative precision: each one-second bar is stored with this error at most


@st.composite
def trade_streams(draw: st.DrawFn) -> list[tuple[str, tuple]]:
    """Deals and bare clock advances in exchange-time order, with bursts, late deals and long silences."""
    t = T0 + draw(st.integers(-400_000, 400_000))
    events: list[tuple[str, tuple]] = []
    for _ in range(draw(st.integers(1, 120))):
        t += draw(
            st.one_of(st.integers(0, 400), st.integers(0, 5000), st.integers(0, 90_000), st.integers(0, 2_000_000))
        )
        roll = draw(st.integers(0, 9))
        if roll == 0:
            events.append(("advance", (t,)))
        else:
            late = draw(st.integers(0, 2500)) if roll == 1 else 0  # a deal stamped in an earlier second
            price = draw(st.floats(0.5, 2.0))
            events.append(("trade", (price, draw(st.floats(0.001, 500.0)), draw(st.sampled_from([1, 2])), t - late)))
    return events


def _seed_rows(events: list, seed: list[tuple[int, float]]) -> list[tuple[int, float, float]]:
    first_ms = next(args[-1] if kind == "trade" else args[0] for kind, args in events)
    return [((first_ms // 300_000 + k) * 300_000, vol, vol * 2) for k, vol in seed]


def _feed(win: TradeWindows | ReferenceWindows, events: list) -> None:
    for kind, args in events:
        if kind == "trade":
            win.on_trade(*args)
        else:
            win.advance(*args)


def _same_nan(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@FAST
@given(trade_streams(), st.lists(st.tuples(st.integers(-100, 3), st.floats(0.0, 1e6)), max_size=80))
def test_cython_windows_equal_reference(events: list, seed: list) -> None:
    c, r = TradeWindows(), ReferenceWindows()
    rows = _seed_rows(events, seed)
    c.seed_klines(rows)
    r.seed_klines(rows)
    for n, (kind, args) in enumerate(events):
        if kind == "trade":
            c.on_trade(*args)
            r.on_trade(*args)
        else:
            assert c.advance(*args) == r.advance(*args)
            # one depth sample per closed second, as the engine records it
            c.record_bid_depth(args[0], n * 0.5)
            r.record_bid_depth(args[0], n * 0.5)
        assert c.bar_sec == r.bar_sec and _same_nan(c.last_price, r.last_price)
    for include_open in (False, True):
        assert c.sums(include_open) == r.sums(include_open)
        assert all(_same_nan(x, y) for x, y in zip(c.flash(include_open), r.flash(include_open), strict=True))
    assert c.flash_baseline() == r.flash_baseline()
    assert c.bar_rush == r.bar_rush
    mc, nc = c.median_baseline()
    mr, nr = r.median_baseline()
    assert nc == nr and _same_nan(mc, mr)
    for back in (0, 1, 7, 180, 191, 192, 500):
        assert _same_nan(c.depth_at(c.bar_sec - back), r.depth_at(c.bar_sec - back))
    assert (c.bar_vol, c.bar_qvol, c.bar_buy_vol, c.bar_trades) == (r.bar_vol, r.bar_qvol, r.bar_buy_vol, r.bar_trades)


def _attributed(events: list) -> np.ndarray:
    """Deals as rows (price, qty, side, bar second): a late deal joins the bar open when it came."""
    clock = -1
    rows = []
    for kind, args in events:
        sec = (args[-1] if kind == "trade" else args[0]) // 1000
        clock = sec if clock < 0 else max(clock, sec)
        if kind == "trade":
            rows.append((args[0], args[1], args[2], clock))
    return np.array(rows, dtype=float).reshape(-1, 4)


@FAST
@given(trade_streams())
def test_windows_match_the_definitions_on_raw_trades(events: list) -> None:
    win = TradeWindows()
    _feed(win, events)
    trades = _attributed(events)
    price, qty, side, bar = trades.T
    end = win.bar_sec
    for include_open in (False, True):
        lo = end - 300 + include_open  # the 300 seconds [lo, lo + 300)
        v, q, best, t10, b10, v10 = win.sums(include_open)
        in5 = (bar >= lo) & (bar < lo + 300)
        tol = {"rel": 4 * F32, "abs": 1e-9}
        assert v == pytest.approx(qty[in5].sum(), **tol)
        assert q == pytest.approx((qty * price)[in5].sum(), **tol)
        blocks = [qty[(bar >= lo + 60 * k) & (bar < lo + 60 * (k + 1))].sum() for k in range(5)]
        assert best == pytest.approx(max(blocks), **tol)
        in10 = (bar >= lo + 290) & (bar < lo + 300)
        assert t10 == in10.sum()
        assert b10 == pytest.approx(qty[in10 & (side == 1)].sum(), **tol)
        assert v10 == pytest.approx(qty[in10].sum(), **tol)
    deals = [args for kind, args in events if kind == "trade"]
    if deals:
        assert win.last_price == deals[-1][0]


def _rush_bars(events: list) -> list[int]:
    """The bar second of every rush order: a run of >= 2 consecutive deals with one ms and side, in
    the bar open when its second deal came."""
    clock, run, run_len, out = -1, None, 0, []
    for kind, args in events:
        sec = (args[-1] if kind == "trade" else args[0]) // 1000
        clock = sec if clock < 0 else max(clock, sec)
        if kind != "trade":
            continue
        key = (args[3], args[2])
        run_len = run_len + 1 if key == run else 1
        run = key
        if run_len == 2:
            out.append(clock)
    return out


@st.composite
def bursty_streams(draw: st.DrawFn) -> list[tuple[str, tuple]]:
    """Deals that often share a millisecond (market orders sweeping levels), with clock advances."""
    t = T0 + draw(st.integers(0, 100_000))
    events: list[tuple[str, tuple]] = []
    for _ in range(draw(st.integers(1, 150))):
        t += draw(st.sampled_from([0, 0, 0, 1, 300, 1000, 7000, 40_000]))
        if draw(st.integers(0, 9)) == 0:
            events.append(("advance", (t,)))
        else:
            events.append(("trade", (draw(st.floats(0.5, 2.0)), 1.0, draw(st.sampled_from([1, 1, 2])), t)))
    return events


@FAST
@given(bursty_streams())
def test_rush_orders_and_flash_windows_match_the_definitions(events: list) -> None:
    win, ref = TradeWindows(), ReferenceWindows()
    _feed(win, events)
    _feed(ref, events)
    rush = np.array(_rush_bars(events), dtype=float)
    price, qty, side, bar = _attributed(events).T
    end = win.bar_sec
    for include_open in (False, True):
        e = end + include_open
        r5, r25, t25, b25, v25, q25, p25, p60 = win.flash(include_open)
        assert all(_same_nan(x, y) for x, y in zip((r5, r25, t25, b25, v25, q25, p25, p60), ref.flash(include_open), strict=True))
        assert r25 == ((rush >= e - 25) & (rush < e)).sum()
        assert r5 == ((rush >= e - 5) & (rush < e)).sum()
        in25 = (bar >= e - 25) & (bar < e)
        assert t25 == in25.sum()
        assert b25 == pytest.approx(qty[in25 & (side == 1)].sum(), rel=4 * F32)
        for back, got in ((25, p25), (60, p60)):
            before = bar <= e - 1 - back  # the last deal of a second at or before e - 1 - back
            if e - 1 - back >= win.live_from_sec and before.any():
                assert got == pytest.approx(price[before][-1], rel=F32)
            else:
                assert math.isnan(got)


def test_flash_baseline_counts_only_buckets_live_data_saw_whole() -> None:
    win = TradeWindows()
    win.seed_klines([(T0 - 300_000 * k, 50.0, 100.0) for k in range(1, 10)])  # klines: volume only
    win.advance(T0)
    for sec in range(3 * 300):  # three whole buckets: 2 deals a second, one rush order every 10 s
        t = T0 + sec * 1000
        win.on_trade(1.0, 2.0, 1, t)
        win.on_trade(1.0, 2.0, 1, t + (0 if sec % 10 == 0 else 1))
    win.advance(T0 + 900_000)
    trades, rush, qvol, n = win.flash_baseline()
    assert n == 3 and trades == 2.0 and rush == pytest.approx(0.1) and qvol == 4.0


@FAST
@given(trade_streams(), st.lists(st.tuples(st.integers(-100, -1), st.floats(0.0, 1e6)), max_size=80))
def test_baseline_is_the_median_of_known_five_minute_volumes(events: list, seed: list) -> None:
    win = TradeWindows()
    rows = _seed_rows(events, seed)
    win.seed_klines(rows)
    _feed(win, events)
    trades = _attributed(events)
    start = (events[0][1][-1] if events[0][0] == "trade" else events[0][1][0]) // 1000
    cur = win.bar_sec // 300
    known: dict[int, float] = {}
    for open_ms, vol, _ in rows:  # seeds are all before live data: the last one per bucket wins
        known[open_ms // 300_000] = vol
    for b in range(-(-start // 300), cur):  # buckets live data saw from their first second
        known[b] = trades[(trades[:, 3] // 300) == b, 1].sum()
    values = sorted(known[b] for b in range(cur - 72, cur) if b in known)
    median, count = win.median_baseline()
    assert count == len(values)
    if values:
        assert median == pytest.approx(float(np.median(values)), rel=1e-5, abs=1e-6)
    else:
        assert math.isnan(median)


@FAST
@given(trade_streams(), st.lists(st.tuples(st.integers(0, 200), st.floats(0.0, 1.0)), max_size=30))
def test_the_chunking_of_advances_changes_nothing(events: list, extra: list[tuple[int, float]]) -> None:
    """Exchange time drives the bars: extra advances between events, to any time between the clock
    already reached and the next event's time, must give the same windows as none at all."""
    plain, chunked = TradeWindows(), TradeWindows()
    _feed(plain, events)
    times = [args[-1] if kind == "trade" else args[0] for kind, args in events]
    chunky: list = []
    for i, (kind, args) in enumerate(events):
        lo = max(times[:i]) if i else times[0]
        hi = max(lo, times[i])
        chunky += [("advance", (lo + int(frac * (hi - lo)),)) for at, frac in extra if at % len(events) == i]
        chunky.append((kind, args))
    _feed(chunked, chunky)
    assert chunked.bar_sec == plain.bar_sec
    assert chunked.sums() == plain.sums() and chunked.sums(True) == plain.sums(True)
    (m1, n1), (m2, n2) = chunked.median_baseline(), plain.median_baseline()
    assert n1 == n2 and _same_nan(m1, m2)


def test_a_long_silence_keeps_the_volume_of_the_bucket_it_started_in() -> None:
    for win in (TradeWindows(), ReferenceWindows()):
        win.advance(T0)  # live from a bucket boundary
        win.on_trade(1.0, 7.0, 1, T0 + 10_000)
        assert win.advance(T0 + 350_000) == 340  # skips most of the silence inside the same bucket
        assert win.sums()[0] == 0.0
        win.advance(T0 + 301_000 * 2)
        assert win.median_baseline() == (3.5, 2)  # buckets T0 (7.0) and T0 + 300 s (0.0), both known
        assert win.advance(T0 + 86_400_000) == 86_400 - 602
        median, count = win.median_baseline()
        assert (median, count) == (0.0, 72)  # a day of silence: 72 known empty buckets


def test_the_bucket_live_data_started_in_is_not_known() -> None:
    win = TradeWindows()
    win.seed_klines([(T0 - 300_000, 50.0, 50.0), (T0, 9.0, 9.0)])  # T0's kline was still open
    win.on_trade(1.0, 2.0, 1, T0 + 120_000)
    win.advance(T0 + 300_000)
    assert win.median_baseline() == (50.0, 1)  # T0: partial live volume and an open kline: unknown
    win.advance(T0 + 600_000)
    assert win.median_baseline() == (25.0, 2)  # T0 + 300 s was seen whole (empty)


def test_depth_history_is_per_second_and_carries_gaps() -> None:
    win = TradeWindows()
    assert math.isnan(win.depth_at(100))
    win.record_bid_depth(100_400, 5.0)
    win.record_bid_depth(100_900, 6.0)  # the first sample of a second wins
    win.record_bid_depth(103_000, 8.0)
    assert math.isnan(win.depth_at(99))
    assert [win.depth_at(s) for s in (100, 101, 102, 103, 104)] == [5.0, 5.0, 5.0, 8.0, 8.0]
    win.record_bid_depth(102_000, 1.0)  # late: ignored
    assert win.depth_at(102) == 5.0
    win.record_bid_depth(400_000, 9.0)  # 297 s later: everything before 400 - 192 is forgotten
    assert math.isnan(win.depth_at(208)) and win.depth_at(209) == 8.0 and win.depth_at(400) == 9.0


def test_replaying_arrays_equals_feeding_deals_one_by_one() -> None:
    rng = np.random.default_rng(4)
    n = 5000
    times = T0 + np.cumsum(rng.integers(0, 300, n)).astype(np.int64)
    price, qty = rng.uniform(1, 2, n), rng.uniform(0, 5, n)
    side = rng.integers(1, 3, n).astype(np.int32)
    one, batch = TradeWindows(), TradeWindows()
    for i in range(n):
        one.on_trade(float(price[i]), float(qty[i]), int(side[i]), int(times[i]))
    batch.replay_trades(price, qty, side, times)
    assert batch.sums() == one.sums() and batch.bar_sec == one.bar_sec and batch.last_price == one.last_price


def test_bad_input_is_refused_with_a_clear_error() -> None:
    for win in (TradeWindows(), ReferenceWindows()):
        for price, qty in ((math.nan, 1.0), (1.0, -1.0), (0.0, 1.0), (1.0, math.inf)):
            with pytest.raises(ValueError, match="bad deal"):
                win.on_trade(price, qty, 1, T0)
        for row in ((T0, math.nan, 0.0), (T0, -1.0, 0.0), ("x", 1.0, 1.0), (T0, 1.0)):
            with pytest.raises(ValueError, match="bad kline row"):
                win.seed_klines([(T0 - 300_000, 5.0, 5.0), row])
        assert win.bar_sec == -1
        win.advance(T0)
        median, count = win.median_baseline()
        assert math.isnan(median) and count == 0  # the good row before the bad one was not stored
