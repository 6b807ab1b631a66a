"""The per-pair minute price table behind the card's 1/5/15-min change (supervisor/price_history.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.rowspec import FEATURE_ROW_DTYPE
from supervisor.price_history import MINUTE_MS, SLOTS, PriceHistory

T0 = 1_790_000_040_000 // MINUTE_MS * MINUTE_MS  # a minute boundary


def _rows(spec: list[tuple[int, int, float]]) -> np.ndarray:
    """(pair_id, row_time_ms, last_price) -> feature rows."""
    rows = np.zeros(len(spec), dtype=FEATURE_ROW_DTYPE)
    for i, (pair, t, price) in enumerate(spec):
        rows[i]["pair_id"], rows[i]["row_time_ms"], rows[i]["last_price"] = pair, t, price
    return rows


def test_a_steady_climb_gives_the_change_since_the_start_of_the_minute_n_minutes_back() -> None:
    hist = PriceHistory(pairs=2)
    # one row a second for 20 minutes, price = 1 + seconds / 1000
    for minute in range(20):
        hist.update(_rows([(1, T0 + (minute * 60 + s) * 1000, 1 + (minute * 60 + s) / 1000) for s in range(60)]))
    now = T0 + (19 * 60 + 30) * 1000  # 19:30 into the run, price 2.17
    price = 1 + (19 * 60 + 30) / 1000
    changes = hist.changes(1, now, price)
    # start of minute 18, 14, 4: the last price seen before it is second 18*60-1 etc.
    assert changes[1] == pytest.approx(price / (1 + (18 * 60 - 1) / 1000) - 1)
    assert changes[5] == pytest.approx(price / (1 + (14 * 60 - 1) / 1000) - 1)
    assert changes[15] == pytest.approx(price / (1 + (4 * 60 - 1) / 1000) - 1)
    assert hist.changes(0, now, price) == {1: None, 5: None, 15: None}  # a pair never seen
    assert hist.change(1, now, price, 16) is None  # beyond the table


def test_unknown_until_watched_long_enough_and_a_long_silent_pair_is_not_recent() -> None:
    hist = PriceHistory(pairs=1)
    hist.update(_rows([(0, T0 + 10_000, 1.0), (0, T0 + 70_000, 1.1), (0, T0 + 130_000, 1.2)]))  # minutes 0, 1, 2
    now = T0 + 150_000
    assert hist.changes(0, now, 1.2) == {1: pytest.approx(1.2 / 1.0 - 1), 5: None, 15: None}
    # A quiet minute (no trades, no row) keeps the older close: nothing traded, the price did not move.
    hist.update(_rows([(0, T0 + 5 * MINUTE_MS + 1000, 1.5)]))
    assert hist.change(0, T0 + 5 * MINUTE_MS + 2000, 1.5, 1) == pytest.approx(1.5 / 1.2 - 1)
    # 40 minutes of silence: the old closes are out of the table's span, so unknown rather than stale.
    assert hist.changes(0, T0 + 45 * MINUTE_MS, 2.0) == {1: None, 5: None, 15: None}


def test_bad_prices_are_ignored_and_the_table_grows_with_pair_ids() -> None:
    hist = PriceHistory(pairs=2)
    hist.update(_rows([(0, T0, 1.0), (0, T0 + 1000, float("nan")), (0, T0 + 2000, 0.0), (5000, T0, 3.0)]))
    assert hist.change(0, T0 + 2 * MINUTE_MS + 5, 2.0, 1) == pytest.approx(1.0)
    assert hist.change(5000, T0 + 2 * MINUTE_MS + 5, 1.5, 1) == pytest.approx(-0.5)
    hist.update(_rows([(1, T0, float("inf"))]))
    assert hist.change(1, T0 + 2 * MINUTE_MS, 1.0, 1) is None
    assert hist.change(0, T0 + 2 * MINUTE_MS, float("nan"), 1) is None and hist.change(0, T0 + 2 * MINUTE_MS, 1.0, 0) is None


_STREAM = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 30 * MINUTE_MS), st.sampled_from([1.0, 2.0, 0.5, 3.25, float("nan"), 0.0])),
    min_size=1, max_size=120,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(_STREAM, st.lists(st.integers(1, 40), min_size=1, max_size=10), st.integers(0, 5 * MINUTE_MS))
def test_any_batching_and_order_gives_the_plain_reference(stream: list, cuts: list[int], after: int) -> None:
    """Vectorised batches equal a plain reading of the whole stream: the price of the newest row
    (by time, then arrival) in the newest minute before the target minute, within the table's span."""
    hist = PriceHistory(pairs=1)  # also exercises growth
    i = 0
    for cut in cuts * 10:
        if i >= len(stream):
            break
        hist.update(_rows([(p, T0 + t, price) for p, t, price in stream[i:i + cut]]))
        i += cut
    if i < len(stream):
        hist.update(_rows([(p, T0 + t, price) for p, t, price in stream[i:]]))
    now = T0 + max(t for _, t, _ in stream) + after
    now_minute = now // MINUTE_MS
    for pair in range(4):
        for n in (1, 5, 15):
            target = now_minute - n
            valid = [(T0 + t, k, price) for k, (p, t, price) in enumerate(stream)
                     if p == pair and price == price and price > 0 and now_minute - SLOTS < (T0 + t) // MINUTE_MS < target]  # fmt: skip
            if not valid:
                assert hist.change(pair, now, 4.0, n) is None
                continue
            newest_minute = max(t // MINUTE_MS for t, _, _ in valid)
            ref = max((t, k, price) for t, k, price in valid if t // MINUTE_MS == newest_minute)[2]
            assert hist.change(pair, now, 4.0, n) == pytest.approx(4.0 / ref - 1)
