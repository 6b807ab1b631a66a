"""Bars, windows and features: Cython equals the reference; the reference equals the DESIGN.md formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.book import OrderBook
from core.features import compute_row
from core.reference.book import ReferenceBook
from core.reference.features import compute_row as ref_compute_row
from core.reference.windows import ReferenceWindows
from core.windows import TradeWindows

FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
T0 = 1_790_000_000_000


@st.composite
def trade_streams(draw: st.DrawFn) -> list[tuple[str, tuple]]:
    """Trades and bare clock advances in exchange-time order, with bursts and long silences."""
    t = T0 + draw(st.integers(0, 999))
    events: list[tuple[str, tuple]] = []
    for _ in range(draw(st.integers(1, 150))):
        t += draw(st.one_of(st.integers(0, 400), st.integers(0, 5000), st.integers(0, 400_000)))
        if draw(st.integers(0, 5)) == 0:
            events.append(("advance", (t,)))
        else:
            price = draw(st.floats(0.5, 2.0))
            events.append(("trade", (price, draw(st.floats(0.001, 500.0)), draw(st.sampled_from([1, 2])), t)))
    return events


def _feed(win: TradeWindows | ReferenceWindows, events: list, record_depth: bool = True) -> None:
    for kind, args in events:
        if kind == "trade":
            win.on_trade(*args)
        else:
            closed = win.advance(*args)
            if record_depth and closed:
                win.record_bid_depth(args[0], (args[0] // 1000) % 97 + 0.5)


@FAST
@given(trade_streams(), st.lists(st.tuples(st.integers(-100, -1), st.floats(0.0, 1e6)), max_size=80))
def test_cython_windows_equal_reference(events: list, seed: list) -> None:
    c, r = TradeWindows(), ReferenceWindows()
    first_ms = next(args[-1] if kind == "trade" else args[0] for kind, args in events)
    rows = [((first_ms // 300_000 + k) * 300_000, vol, vol * 2) for k, vol in seed]
    c.seed_klines(rows)
    r.seed_klines(rows)
    _feed(c, events)
    _feed(r, events)
    assert c.sums() == r.sums()
    mc, nc = c.median_baseline()
    mr, nr = r.median_baseline()
    assert nc == nr and (mc == mr or (math.isnan(mc) and math.isnan(mr)))
    book, ref_book = OrderBook(), ReferenceBook()
    book.apply_snapshot(1, [(0.99, 5.0), (0.98, 7.0)], [(1.01, 3.0)])
    ref_book.apply_snapshot(1, [(0.99, 5.0), (0.98, 7.0)], [(1.01, 3.0)])
    now = c.bar_sec * 1000
    got = compute_row(book, c, now, T0 - 86_400_000)
    want = ref_compute_row(ref_book, r, now, T0 - 86_400_000)
    for key, value in want.items():
        assert got[key] == value or (math.isnan(got[key]) and math.isnan(value)), key


@FAST
@given(trade_streams())
def test_windows_match_the_design_formulas_on_raw_trades(events: list) -> None:
    r = ReferenceWindows()
    _feed(r, events, record_depth=False)
    trades = np.array([args for kind, args in events if kind == "trade"], dtype=float).reshape(-1, 4)
    end = r.bar_sec  # windows cover the closed seconds [end - 300, end)
    sec = np.floor(trades[:, 3] / 1000).astype(np.int64)
    # A late trade joins the open bar, so attribute each trade to the bar that was open when it came.
    bar = np.maximum.accumulate(sec)
    in5 = (bar >= end - 300) & (bar < end)
    vol = trades[in5, 1].sum()
    qvol = (trades[in5, 1] * trades[in5, 0]).sum()
    v, q, best, t10, b10, v10 = r.sums()
    assert v == pytest.approx(vol, rel=1e-5, abs=1e-9)
    assert q == pytest.approx(qvol, rel=1e-5, abs=1e-9)
    blocks = [trades[(bar >= end - 300 + 60 * k) & (bar < end - 240 + 60 * k), 1].sum() for k in range(5)]
    assert best == pytest.approx(max(blocks), rel=1e-5, abs=1e-9)
    in10 = (bar >= end - 10) & (bar < end)
    assert t10 == in10.sum()
    assert b10 == pytest.approx(trades[in10 & (trades[:, 2] == 1), 1].sum(), rel=1e-5, abs=1e-9)
    if vol > 0:
        row = ref_compute_row(ReferenceBook(), r, end * 1000, -1)
        vwap = qvol / vol
        assert row["pm"] == pytest.approx((r.last_price - vwap) / vwap, rel=1e-4, abs=1e-9)
        assert row["vc"] == pytest.approx(max(blocks) / vol, rel=1e-4)


def test_seeding_from_klines_makes_vsr_ready_at_once() -> None:
    win = TradeWindows()
    now = T0 - T0 % 300_000 + 1000
    win.seed_klines([((now // 300_000 - k) * 300_000, 100.0, 100.0) for k in range(1, 73)])
    for i in range(300):
        win.on_trade(1.0, 5.0 if i < 100 else 1.0, 1, now + i * 1000)
    win.advance(now + 300_000)
    book = OrderBook()
    row = compute_row(book, win, now + 300_000, T0 - 10**9)
    assert row["flags"] & 2  # baseline ready without six hours of uptime
    v = win.sums()[0]
    assert row["vsr"] == pytest.approx(v / 100.0)
    assert math.isnan(row["obi"]) and not row["flags"] & 1  # no snapshot yet: book features undefined
