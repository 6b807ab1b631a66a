"""The market generator: deterministic, heavy-tailed, consistent books and klines, scripted episodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.book import LEVELS
from sim.market import build_market
from sim.scenario import ScenarioError, load_scenario, scenario_from_mapping
from sim.server import scenario_path

START = 1_790_000_040_000  # minute-aligned


def _flatten(updates: list) -> list:
    return [(u.symbol, u.window_end_ms, [(t.price, t.qty, t.side, t.time_ms) for t in u.trades],
             None if u.depth is None else (u.depth.from_version, u.depth.to_version, u.depth.bids, u.depth.asks)) for u in updates]  # fmt: skip


def test_same_seed_same_market_whatever_the_chunking() -> None:
    scenario = load_scenario(scenario_path("pumps.yaml"))
    a = build_market(60, 5, START, scenario)
    b = build_market(60, 5, START, load_scenario(scenario_path("pumps.yaml")))
    one = a.advance(START + 15_000)
    many: list = []
    for t in range(START + 70, START + 15_001, 730):  # odd chunks, some shorter than a step
        many.extend(b.advance(t))
    many.extend(b.advance(START + 15_000))
    assert len(one) > 100 and _flatten(one) == _flatten(many)
    assert a.now_ms() == b.now_ms() == START + 15_000
    assert _flatten(build_market(60, 6, START, scenario).advance(START + 15_000)) != _flatten(one)


def test_three_thousand_pairs_look_like_mexc() -> None:
    m = build_market(3000, 2, START)
    specs = m.symbols
    names = [s.symbol for s in specs]
    assert len(set(names)) == 3000 and all(n.isupper() and n == s.base + s.quote for n, s in zip(names, specs, strict=True))
    quotes = [s.quote for s in specs]
    assert 0.88 < quotes.count("USDT") / 3000 < 0.96 and {"USDC", "BTC"} <= set(quotes)
    assert 5 <= sum(s.status in ("2", "3") for s in specs) <= 100
    assert 10 <= sum(not s.api_tradable for s in specs) <= 300
    assert 2 <= sum(not s.market_order_allowed for s in specs) <= 150
    ages = np.array([START - s.listing_ms for s in specs])
    assert np.median(ages) > 30 * 86_400_000 and 3 <= int((ages < 900_000).sum()) <= 100
    activity = np.array([s.activity for s in specs])
    assert activity[0] == activity.max() and np.all(np.diff(activity) <= 0)
    assert m.spec(names[7]) is specs[7] and m.spec("NOPEUSDT") is None


def test_activity_is_heavy_tailed_and_rate_is_met() -> None:
    for pairs, rate in ((2000, 6000.0), (300, None)):
        m = build_market(pairs, 1, START, rate=rate)
        updates = m.advance(START + 10_000)
        frames = sum(1 for u in updates if u.trades) + sum(1 for u in updates if u.depth)
        want = (rate or 3.0 * pairs) * 10
        assert 0.8 * want < frames < 1.2 * want, (pairs, frames, want)
    trades = np.zeros(300)
    index = {s.symbol: i for i, s in enumerate(m.symbols)}
    for u in updates:
        trades[index[u.symbol]] += len(u.trades)
    top = np.sort(trades)[::-1]
    assert top[:3].sum() > 0.2 * top.sum()  # 1 % of the pairs carry over 20x their share of trades
    assert np.median(trades) < top[0] / 50


def test_depth_changes_replayed_on_a_snapshot_give_the_current_book() -> None:
    m = build_market(20, 3, START, rate=200)
    m.advance(START + 1000)
    for symbol in (m.symbols[0].symbol, m.symbols[9].symbol):
        version, bids, asks = m.depth_snapshot(symbol, 1000)
        assert len(bids) >= 50 and len(asks) >= 50
        book_b, book_a = dict(bids), dict(asks)
        for u in m.advance(m.now_ms() + 6000):
            if u.symbol != symbol or u.depth is None:
                continue
            assert u.depth.from_version == version + 1 and u.depth.to_version >= u.depth.from_version
            version = u.depth.to_version
            for side, levels in ((book_b, u.depth.bids), (book_a, u.depth.asks)):
                for p, q in levels:
                    if q == 0:
                        side.pop(p, None)
                    else:
                        side[p] = q
        v2, bids2, asks2 = m.depth_snapshot(symbol, 1000)
        assert v2 == version and book_b == dict(bids2) and book_a == dict(asks2)
        tick = 10.0 ** -m.spec(symbol).price_decimals
        assert 0 < (min(book_a) - max(book_b)) / tick < 12  # a spread of a few ticks
        assert m.best_bid_ask(symbol) == (bids2[0][0], bids2[0][1], asks2[0][0], asks2[0][1])
        near = np.mean([q for _, q in bids2[:10]])
        far = np.mean([q for _, q in bids2[LEVELS - 10 : LEVELS]])
        assert far < near  # depth thins away from the touch


def test_trades_hit_the_side_they_take() -> None:
    m = build_market(10, 9, START, rate=200)
    symbol = m.symbols[0].symbol
    checked = 0
    for _ in range(50):
        _, bid, ask = m.depth_snapshot(symbol, 1)
        bid_p, ask_p = bid[0][0], ask[0][0]
        for u in m.advance(m.now_ms() + 100):
            if u.symbol == symbol and u.trades:
                first = u.trades[0]
                assert first.price == (ask_p if first.side == 1 else bid_p)
                checked += 1
    assert checked > 10


def test_klines_agree_with_the_trades_and_history_with_the_activity() -> None:
    m = build_market(10, 4, START, rate=100)
    updates = m.advance(START + 900_000)
    symbol = m.symbols[0].symbol
    trades = [t for u in updates if u.symbol == symbol for t in u.trades]
    rows = m.klines(symbol, "1m", START, START + 179_999, 10)
    assert [r[0] for r in rows] == [START + i * 60_000 for i in range(3)]
    for r in rows:
        inside = [t for t in trades if r[0] <= t.time_ms <= r[6]]
        assert float(r[5]) == pytest.approx(sum(t.qty for t in inside), rel=1e-6)
        assert float(r[7]) == pytest.approx(sum(t.qty * t.price for t in inside), rel=1e-6)
        assert float(r[2]) == pytest.approx(max(t.price for t in inside)) and float(r[4]) == pytest.approx(inside[-1].price)
    history = m.klines(symbol, "5m", None, START - 1, 72)
    assert len(history) == 72 and history[-1][0] == (START - 1) - (START - 1) % 300_000
    assert float(history[-1][4]) == pytest.approx(float(rows[0][1]), rel=0.01)  # the walk ends at the start price
    live = [float(r[5]) for r in m.klines(symbol, "5m", START, START + 899_999, 3)]
    median = np.median([float(r[5]) for r in history])
    assert 0.5 < np.mean(live) / median < 2.5  # history volumes match the pair's live activity
    t0 = START - 3_600_000 - (START - 3_600_000) % 300_000
    ones = m.klines(symbol, "1m", t0, None, 60)
    fives = m.klines(symbol, "5m", t0, None, 12)
    assert ones[-1][6] == fives[-1][6] < START
    assert sum(float(r[5]) for r in ones) == pytest.approx(sum(float(r[5]) for r in fives), rel=1e-3)
    assert m.klines(symbol, "1m", None, None, 5) == m.klines(symbol, "1m", None, None, 5)
    day = m.klines(symbol, "1d", None, None, 3)
    assert [r[0] % 86_400_000 for r in day] == [0, 0, 0] and all(float(r[5]) > 0 for r in day)


def test_ticker_quote_volume_matches_the_klines_and_override_wins() -> None:
    m = build_market(10, 4, START, rate=100)
    m.advance(START + 120_000)
    symbol = m.symbols[1].symbol
    rows = m.klines(symbol, "5m", None, None, 288)
    ticker = m.ticker_24h(symbol)
    assert float(ticker["quoteVolume"]) == pytest.approx(sum(float(r[7]) for r in rows), rel=0.02)
    assert ticker["lastPrice"] == m.fmt_price(symbol, m.last_price(symbol))
    assert float(ticker["lowPrice"]) <= float(ticker["lastPrice"]) <= float(ticker["highPrice"])
    m.set_ticker_override(symbol, 123456.0)
    assert float(m.ticker_24h(symbol)["quoteVolume"]) == 123456.0
    m.set_ticker_override(symbol, None)
    assert m.ticker_24h(symbol)["quoteVolume"] == ticker["quoteVolume"]


def _alpha1(m: object, symbol: str, trades: list, now: int, baseline: float, depth_3m_ago: float) -> dict:
    """Alpha-1's features computed here from the deal stream and the book (independent of core/)."""
    tr = np.array([(t.time_ms, t.price, t.qty, t.side) for t in trades if t.time_ms > now - 300_000])
    vol5 = tr[:, 2].sum()
    mins = [tr[(tr[:, 0] > now - 60_000 * (k + 1)) & (tr[:, 0] <= now - 60_000 * k), 2].sum() for k in range(5)]
    _, bids, asks = m.depth_snapshot(symbol, 100)  # type: ignore[attr-defined]
    bb, ba = bids[0][0], asks[0][0]
    mid = (bb + ba) / 2
    b10 = sum(q for p, q in bids if p >= mid * (1 - 1e-3))
    a10 = sum(q for p, q in asks if p <= mid * (1 + 1e-3))
    return {
        "vsr": vol5 / baseline,
        "vc": max(mins) / vol5,
        "pm": tr[-1, 1] / ((tr[:, 1] * tr[:, 2]).sum() / vol5) - 1,
        "obi": (b10 - a10) / (b10 + a10),
        "depth3": sum(q for p, q in bids if p >= bb * (1 - 3e-4)) - depth_3m_ago,
        "spread": (ba - bb) / mid,
        "buys": tr[tr[:, 3] == 1, 2].sum() / vol5,
    }


def _depth3(m: object, symbol: str) -> float:
    _, bids, _ = m.depth_snapshot(symbol, 100)  # type: ignore[attr-defined]
    return sum(q for p, q in bids if p >= bids[0][0] * (1 - 3e-4))


def test_scripted_pump_has_the_alpha1_profile_spike_does_not_rise_quiet_is_silent() -> None:
    scenario = scenario_from_mapping({
        "pumps": [{"rank": 3, "start_s": 20, "duration_s": 240, "rise_pct": 15, "volume_mult": 12, "book_imbalance": 0.75}],
        "spikes": [{"rank": 4, "start_s": 20, "duration_s": 60, "volume_mult": 15}],
        "quiet": [{"rank": 6, "start_s": 0, "duration_s": 1000}],
    })  # fmt: skip
    m = build_market(30, 7, START, scenario)
    pump, spike, quiet, calm = (m.symbols[r].symbol for r in (3, 4, 6, 5))
    baseline = float(np.median([float(r[5]) for r in m.klines(pump, "5m", None, START - 1, 72)]))
    p0, s0 = m.last_price(pump), m.last_price(spike)
    trades: dict[str, list] = {pump: [], spike: [], calm: []}
    seen_quiet = 0
    depth3: dict[int, float] = {}
    features = {}
    for sec in range(1, 561):
        for u in m.advance(START + sec * 1000):
            if u.symbol in trades:
                trades[u.symbol].extend(u.trades)
            seen_quiet += u.symbol == quiet
        depth3[sec] = _depth3(m, pump)
        if sec == 230:  # 210 s into the pump
            features = _alpha1(m, pump, trades[pump], START + sec * 1000, baseline, depth3[sec - 180])
        if sec == 260:
            at_end = m.last_price(pump) / p0 - 1
        if sec == 80:
            spike_vol = sum(t.qty for t in trades[spike] if t.time_ms > START + 20_000)
            spike_rise = m.last_price(spike) / s0 - 1
            spike_buys = sum(t.qty for t in trades[spike] if t.time_ms > START + 20_000 and t.side == 1) / spike_vol
    assert features["vsr"] > 5 and features["vc"] < 0.5 and features["pm"] > 0.02, features
    assert features["obi"] > 0.25 and features["depth3"] > 0 and features["spread"] < 0.015 and features["buys"] > 0.6, features
    assert 0.12 < at_end < 0.18
    after = m.last_price(pump) / p0 - 1
    assert 0.08 < after <= at_end + 0.01  # after the pump the price stays up, decaying slowly
    late = [t for t in trades[pump] if t.time_ms > START + 500_000]
    assert len(late) < 3 * 60 * m.spec(pump).activity  # activity back to normal
    calm_vol = sum(t.qty for t in trades[spike] if START + 100_000 < t.time_ms <= START + 160_000)
    assert spike_vol > 5 * calm_vol and abs(spike_rise) < 0.01 and 0.35 < spike_buys < 0.65
    assert seen_quiet == 0


def test_new_listings_join_the_market_with_a_short_history() -> None:
    scenario = scenario_from_mapping({"listings": [{"symbol": "FRESHUSDT", "listed_s_before_start": 240}]})
    m = build_market(20, 3, START, scenario)
    spec = m.spec("FRESHUSDT")
    assert spec is not None and spec.listing_ms == START - 240_000 and m.symbols[-1] is spec
    assert [r[0] for r in m.klines("FRESHUSDT", "1m", None, START - 1, 100)] == [START - 240_000 + i * 60_000 for i in range(4)]
    assert any(u.symbol == "FRESHUSDT" for u in m.advance(START + 20_000))
    with pytest.raises(ScenarioError, match="already exists"):
        build_market(20, 3, START, scenario_from_mapping({"listings": [{"symbol": m.symbols[0].symbol, "listed_s_before_start": 1}]}))


def test_shipped_scenarios_load_and_resolve() -> None:
    for name in ("demo.yaml", "pumps.yaml"):
        scenario = load_scenario(scenario_path(name))
        assert any(ep.kind == "pump" for ep in scenario.episodes)
        build_market(200, 1, START, scenario)
    with pytest.raises(ScenarioError, match="rank 11: the market has only 5 ranked pairs"):
        build_market(5, 1, START, load_scenario(scenario_path("pumps.yaml")))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"pumps": [{"rank": 1}]}, r"pumps\[0\]\.start_s: required"),
        ({"pumps": [{"rank": 1, "symbol": "X", "start_s": 1, "duration_s": 5}]}, "exactly one of symbol or rank"),
        ({"spikes": [{"rank": 1, "start_s": 1, "duration_s": 5, "volume_mult": "lots"}]}, r"volume_mult: got 'lots'"),
        ({"pumps": [{"rank": 1, "start_s": 1, "duration_s": 5, "book_imbalance": 2}]}, "book_imbalance"),
        ({"quiet": [{"rank": -1, "start_s": 1, "duration_s": 5}]}, r"quiet\[0\]\.rank"),
        ({"pumps": [{"symbol": "pepeusdt", "start_s": 1, "duration_s": 5}]}, "uppercase"),
        ({"storms": []}, "unknown section"),
        ({"listings": [{"symbol": "NEWXYZ", "listed_s_before_start": 60}]}, "must end with a quote"),
        ({"listings": [{"symbol": "NEWUSDT"}]}, r"listings\[0\]\.listed_s_before_start"),
        ([1, 2], "expected a mapping"),
    ],
)
def test_scenario_errors_name_the_entry(raw: object, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        scenario_from_mapping(raw)


def test_unreadable_scenario_files_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("pumps: [rank: 1\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="no such symbol"):
        build_market(5, 1, START, scenario_from_mapping({"quiet": [{"symbol": "NOPEUSDT", "start_s": 0, "duration_s": 5}]}))


def test_bad_arguments_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="pairs must be"):
        build_market(0, 1, START)
    with pytest.raises(ValueError, match="rate must be"):
        build_market(5, 1, START, rate=-1)
    m = build_market(5, 1, START)
    with pytest.raises(ValueError, match="invalid interval"):
        m.klines(m.symbols[0].symbol, "1h", None, None, 5)
    with pytest.raises(KeyError):
        m.last_price("NOPEUSDT")
