"""The market generator: deterministic, heavy-tailed, consistent books and klines, scripted episodes."""

from __future__ import annotations

import numpy as np
import pytest

from sim.market import build_market
from sim.scenario import ScenarioError, load_scenario, scenario_from_mapping
from sim.server import scenario_path

START = 1_790_000_040_000  # minute-aligned


def _flatten(updates: list) -> list:
    return [(u.symbol, u.window_end_ms, [(t.price, t.qty, t.side, t.time_ms) for t in u.trades],
             None if u.depth is None else (u.depth.from_version, u.depth.to_version, u.depth.bids, u.depth.asks)) for u in updates]  # fmt: skip


def test_same_seed_same_market_whatever_the_chunking() -> None:
    a = build_market(100, 5, START)
    b = build_market(100, 5, START)
    one = a.advance(START + 5000)
    many: list = []
    for t in range(START + 700, START + 5001, 700):
        many.extend(b.advance(t))
    many.extend(b.advance(START + 5000))
    assert _flatten(one) == _flatten(many)
    assert _flatten(build_market(100, 6, START).advance(START + 5000)) != _flatten(one)


def test_activity_is_heavy_tailed_and_rate_is_met() -> None:
    m = build_market(2000, 1, START, rate=6000)
    updates = m.advance(START + 10_000)
    frames = sum(1 for u in updates if u.trades) + sum(1 for u in updates if u.depth)
    assert 0.7 * 60_000 < frames < 1.3 * 60_000
    trades = np.zeros(2000)
    index = {s.symbol: i for i, s in enumerate(m.symbols)}
    for u in updates:
        trades[index[u.symbol]] += len(u.trades)
    top = np.sort(trades)[::-1]
    assert top[:20].sum() > 0.15 * top.sum()  # 1 % of pairs carry > 15x their share
    assert np.median(trades) < top[0] / 50


def test_depth_changes_replayed_on_a_snapshot_give_the_current_book() -> None:
    m = build_market(20, 3, START, rate=200)
    m.advance(START + 1000)
    symbol = m.symbols[0].symbol
    version, bids, asks = m.depth_snapshot(symbol, 1000)
    book_b, book_a = dict(bids), dict(asks)
    for u in m.advance(START + 6000):
        if u.symbol != symbol or u.depth is None:
            continue
        assert u.depth.from_version == version + 1
        version = u.depth.to_version
        for side, levels in ((book_b, u.depth.bids), (book_a, u.depth.asks)):
            for p, q in levels:
                if q == 0:
                    side.pop(p, None)
                else:
                    side[p] = q
    v2, bids2, asks2 = m.depth_snapshot(symbol, 1000)
    assert v2 == version and book_b == dict(bids2) and book_a == dict(asks2)
    assert max(book_b) < min(book_a)


def test_klines_agree_with_the_trades() -> None:
    m = build_market(10, 4, START, rate=100)
    updates = m.advance(START + 180_000)
    symbol = m.symbols[0].symbol
    vol = sum(t.qty for u in updates if u.symbol == symbol for t in u.trades)
    rows = m.klines(symbol, "1m", START, START + 179_999, 10)
    assert [r[0] for r in rows] == [START + i * 60_000 for i in range(3)]
    assert sum(float(r[5]) for r in rows) == pytest.approx(vol, rel=1e-3)
    history = m.klines(symbol, "5m", None, START - 1, 72)
    assert len(history) == 72 and all(float(r[5]) > 0 for r in history)


def test_scripted_pump_rises_spike_does_not_quiet_is_silent() -> None:
    scenario = load_scenario(scenario_path("pumps.yaml"))
    m = build_market(30, 8, START, scenario, rate=300)
    pump, spike, quiet = m.symbols[2].symbol, m.symbols[4].symbol, m.symbols[12].symbol
    p0, s0 = m.last_price(pump), m.last_price(spike)
    vols = {pump: 0.0, spike: 0.0}
    seen_quiet = 0
    for u in m.advance(START + 310_000):
        if u.symbol in vols and START + 10_000 <= u.window_end_ms <= START + 70_000:
            vols[u.symbol] += sum(t.qty * t.price for t in u.trades)
        seen_quiet += u.symbol == quiet
    assert m.last_price(pump) / p0 - 1 > 0.12
    assert abs(m.last_price(spike) / s0 - 1) < 0.05
    assert seen_quiet == 0
    bids = m.depth_snapshot(pump, 10)[1]
    asks = m.depth_snapshot(pump, 10)[2]
    assert sum(q for _, q in bids) > sum(q for _, q in asks)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"pumps": [{"rank": 1}]}, r"pumps\[0\]\.start_s: required"),
        ({"pumps": [{"rank": 1, "symbol": "X", "start_s": 1, "duration_s": 5}]}, "exactly one of symbol or rank"),
        ({"spikes": [{"rank": 1, "start_s": 1, "duration_s": 5, "volume_mult": "lots"}]}, r"volume_mult: got 'lots'"),
        ({"pumps": [{"rank": 1, "start_s": 1, "duration_s": 5, "book_imbalance": 2}]}, "book_imbalance"),
        ({"storms": []}, "unknown section"),
    ],
)
def test_scenario_errors_name_the_entry(raw: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        scenario_from_mapping(raw)
