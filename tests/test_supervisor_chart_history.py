"""The chart's candles, folded from feature rows: what a minute's open/high/low/close/VWAP/volume are, whatever the batching."""

from __future__ import annotations

import math
import time

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core.rowspec import FEATURE_ROW_DTYPE
from supervisor.chart_history import ChartHistory

T0 = 1_790_000_000_000 - 1_790_000_000_000 % 60_000


def _rows(items: list[tuple[int, int, float]]) -> np.ndarray:
    rows = np.zeros(len(items), dtype=FEATURE_ROW_DTYPE)
    for i, (pair, t, price) in enumerate(items):
        rows[i]["pair_id"], rows[i]["row_time_ms"], rows[i]["last_price"] = pair, t, price
        rows[i]["pm"], rows[i]["quote_vol_5m"] = 0.25, 1000.0 + i
    return rows


def _expected(items: list[tuple[int, int, float]], pair: int, now_ms: int) -> dict[str, list]:
    """A plain fold: per minute, first/max/min/last price and the last row's VWAP and volume."""
    minutes: dict[int, list] = {}
    for i, (p, t, price) in enumerate(items):
        if p != pair or not (price > 0 and math.isfinite(price)):
            continue
        m = t // 60_000
        if minutes and m < max(minutes) and m not in minutes:
            continue
        c = minutes.setdefault(m, [price, price, price, price, 0.0, 0.0])
        c[1], c[2], c[3], c[4], c[5] = max(c[1], price), min(c[2], price), price, price / 1.25, 1000.0 + i
    keep = range(now_ms // 60_000 - 29, now_ms // 60_000 + 1)
    out: dict[str, list] = {k: [] for k in ("t", "o", "h", "l", "c", "vwap", "qv5")}
    for m in sorted(k for k in minutes if k in keep):
        out["t"].append(m * 60_000)
        for name, value in zip(("o", "h", "l", "c", "vwap", "qv5"), minutes[m], strict=True):
            out[name].append(value)
    return out


def _close(a: dict[str, list], b: dict[str, list]) -> bool:
    return a["t"] == b["t"] and all(np.allclose(a[k], b[k], rtol=1e-6) for k in ("o", "h", "l", "c", "vwap", "qv5"))


def test_a_minute_becomes_one_candle_with_its_vwap_and_volume() -> None:
    history = ChartHistory(pairs=2)
    history.update(_rows([(1, T0 + 1000, 2.0), (1, T0 + 2000, 2.5), (1, T0 + 3000, 1.5), (1, T0 + 4000, 2.2)]))
    history.update(_rows([(1, T0 + 61_000, 3.0), (7, T0 + 1000, 9.0), (1, T0 + 5000, float("nan"))]))  # pair 7: the table grows
    series = history.series(1, T0 + 61_000)
    assert series["t"] == [T0, T0 + 60_000]
    assert [series[k][0] for k in ("o", "h", "l", "c")] == [2.0, 2.5, 1.5, np.float32(2.2)]
    assert math.isclose(series["vwap"][0], 2.2 / 1.25, rel_tol=1e-6) and series["c"][1] == 3.0
    assert history.series(7, T0)["c"] == [9.0] and history.series(99, T0)["t"] == []
    history.update(_rows([(1, T0 + 61_000 - 32 * 60_000, 100.0)]))  # a row older than its slot's minute (a replay): ignored
    assert history.series(1, T0 + 61_000)["h"] == [2.5, 3.0]
    later = history.series(1, T0 + 45 * 60_000)  # 45 minutes on: both candles are out of the 30-minute window
    assert later["t"] == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 40 * 60), st.floats(0.5, 2.0)), min_size=1, max_size=120),
       st.lists(st.integers(1, 30), min_size=1, max_size=10))  # fmt: skip
def test_any_batching_gives_the_candles_a_plain_fold_gives(raw: list[tuple[int, int, float]], cuts: list[int]) -> None:
    items = sorted(((p, T0 + s * 1000, price) for p, s, price in raw), key=lambda x: x[1])  # rows of a pair arrive in time order
    history = ChartHistory(pairs=1)
    rows = _rows(items)
    start = 0
    for size in cuts * (len(items) // max(1, sum(cuts)) + 1):
        if start >= len(rows):
            break
        history.update(rows[start:start + size])
        start += size
    if start < len(rows):
        history.update(rows[start:])
    now = items[-1][1]
    for pair in range(3):
        assert _close(history.series(pair, now), _expected(items, pair, now))


def test_movers_rank_pairs_by_their_change_over_the_window_and_top_formats_them() -> None:
    from bot.top import format_top, parse

    history = ChartHistory(pairs=4)
    items = []
    for minute in range(70):
        for pair, slope in ((0, 0.002), (1, -0.001), (2, 0.0)):
            items.append((pair, T0 + minute * 60_000 + 5_000, 1.0 + slope * minute))
    history.update(_rows(items))
    now = T0 + 69 * 60_000 + 5_000
    moves = {p: change for p, change, _ in history.movers(now, 60)}
    assert set(moves) == {0, 1, 2} and math.isclose(moves[0], 1.138 / 1.018 - 1, rel_tol=1e-5) and moves[1] < 0 and moves[2] == 0.0
    assert {p for p, _, _ in history.movers(now, 5)} == {0, 1, 2} and history.movers(now + 3600_000, 5) == []  # stale pairs drop out
    top = {"window_s": 3600, "exchange_ms": now, "pairs": 3, "gainers": [["AUSDT", moves[0]]], "losers": [["BUSDT", moves[1]]],
           "surges": [["AUSDT", 1.5]]}  # fmt: skip
    assert format_top(top).splitlines() == ["Top movers over 1h (3 pairs, up to 15:22 UTC):", "Gainers: AUSDT +11.79%",
                                            "Losers: BUSDT -6.05%", "Volume surges (5-min volume vs then): AUSDT x1.5"]  # fmt: skip
    assert parse([]) == (3600, 5) and parse(["5m", "10"]) == (300, 10) and parse(["2d"]).startswith("'2d': not a window")
    assert "no 24 h price history" in format_top({"window_s": 86400, "pairs": 2, "volume_24h": [["AUSDT", 2.5e6]]})


def test_a_listings_first_five_minutes_are_stored_once_they_are_complete(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from store.cards import CardStore
    from store.history import Store
    from supervisor.listings import ListingWatch

    cards = CardStore(Store(tmp_path).db)
    told: list[object] = []
    watch = ListingWatch(cards, lambda m: told.append(m) or True)
    assert cards.add_listing("NEWUSDT", T0, None)
    history = ChartHistory()
    items = [(3, T0 + 2 * 60_000 + s * 1000, 1.0 + 0.001 * s) for s in range(0, 420, 7)]  # first trade two minutes after it was found
    history.update(_rows(items[:30]))
    watch.first_minutes(history, {"NEWUSDT": 3}, items[29][1])
    assert told == [] and cards.listing("NEWUSDT")["first_trade_ms"] == T0 + 120_000  # the first trade minute, the summary not yet
    history.update(_rows(items[30:]))
    watch.first_minutes(history, {"NEWUSDT": 3}, items[-1][1])
    listing = cards.listing("NEWUSDT")
    assert listing["summary_ns"] and listing["low"] == 1.0 and math.isclose(listing["high"], 1.294, rel_tol=1e-6) and len(told) == 1
    watch.first_minutes(history, {"NEWUSDT": 3}, items[-1][1] + 60_000)
    assert len(told) == 1  # once


def test_the_notifier_window_never_lets_more_than_its_limit_through_in_any_span() -> None:
    from bot.notifier import Window

    window, sent, now = Window(20, 60.0), [], 0.0
    while now < 300:
        if window.wait_s(now) == 0:
            window.take(now)
            sent.append(now)
        now += 0.5
    assert max(sum(1 for t in sent if start <= t < start + 60) for start in sent) == 20 and len(sent) == 100


def test_the_pipeline_stores_the_chart_data_before_the_signal_and_keeps_it_to_the_signal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from common.config import config_from_mapping
    from detectors.base import Decision
    from store.cards import CardStore
    from store.history import Store
    from supervisor.detection import Detection
    from supervisor.metrics import Metrics
    from supervisor.pipeline import Pipeline
    from supervisor.planning import Planning

    config = config_from_mapping({"telegram": {"token": "1:x", "allowed_ids": [1]}, "storage": {"data_dir": str(tmp_path)}}, environ={})
    store, told = Store(tmp_path), []
    planning = Planning(config, [])
    pipeline = Pipeline(config, Detection(config, {}), store, planning, Metrics(lambda: [], lambda: {}), lambda m: told.append(m) or True)
    pair = planning.pair_id("PEPEUSDT")
    rows = _rows([(pair, T0 + s * 1000, 1.0 + s / 1000) for s in range(0, 600, 5)])
    pipeline.chart_history.update(rows)
    order: list[str] = []
    add_series, add_signal = pipeline.cards.add_series, store.add_signal  # type: ignore[union-attr]
    pipeline.cards.add_series = lambda *a: order.append("series") or add_series(*a)  # type: ignore[union-attr,method-assign]
    store.add_signal = lambda s, **kw: order.append("signal") or add_signal(s, **kw)  # type: ignore[method-assign]
    row = {name: rows[-1][name] for name in rows.dtype.names}
    pipeline.emit(Decision(pair, row, 0.9, ["test"], 0), time.time_ns())
    (signal_id,) = [r[0] for r in store.db.execute("SELECT signal_id FROM signals")]
    series = CardStore(store.db).get_series(signal_id)
    assert order == ["series", "signal"] and series is not None and len(series["t"]) == 10 and math.isclose(series["c"][-1], rows[-1]["last_price"], rel_tol=1e-6)
