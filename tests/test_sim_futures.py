"""The futures market model (issue #17), offline: determinism, scripted anomalies, noise, books, scenario files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.futures_market import STEP_MS, FuturesMarket
from sim.futures_scenario import FuturesAnomaly, load_futures_scenario, parse_futures_anomalies
from sim.scenario import ScenarioError, load_scenario, scenario_from_mapping

START = 1_700_000_000_000


def _run(market: FuturesMarket, seconds: float) -> list:
    return market.advance(market.now_ms() + int(seconds * 1000))


def _fingerprint(m: FuturesMarket) -> list:
    return [(m.ticker(i), m.depth(i)) for i in range(m.n)]


def test_the_universe_and_the_market_are_deterministic_from_the_seed() -> None:
    a, b, c = FuturesMarket(30, 5, START), FuturesMarket(30, 5, START), FuturesMarket(30, 6, START)
    assert [x.detail() for x in a.contracts] == [x.detail() for x in b.contracts]
    assert [x.symbol for x in a.contracts] != [x.symbol for x in c.contracts]
    b.watched = {0, 3, 7}  # who watches must not change the market
    for _ in range(20):
        _run(b, 1.0)
    _run(a, 20.0)
    _run(c, 20.0)
    assert _fingerprint(a) == _fingerprint(b)
    assert _fingerprint(a) != _fingerprint(c)


def test_contract_detail_fields() -> None:
    m = FuturesMarket(40, 1, START)
    symbols = [c.symbol for c in m.contracts]
    assert len(set(symbols)) == 40 and all(s.endswith("_USDT") for s in symbols)
    for c in m.contracts:
        d = c.detail()
        assert d["symbol"] == f"{d['baseCoin']}_{d['quoteCoin']}" and d["settleCoin"] == "USDT"
        assert d["state"] in (0, 4) and d["futureType"] == 1 and d["apiAllowed"] is False
        assert d["priceUnit"] == pytest.approx(10.0 ** -d["priceScale"]) and d["contractSize"] > 0
        assert d["displayNameEn"] == f"{d['symbol']} PERPETUAL"
    assert sum(c.state == 0 for c in m.contracts) >= 35
    assert any(c.thick for c in m.contracts) and any(not c.thick for c in m.contracts)


def test_fair_is_index_times_one_plus_the_funding_basis() -> None:
    m = FuturesMarket(10, 2, START)
    _run(m, 30.0)
    now = m.now_ms()
    for i in range(m.n):
        cycle = int(m.cycle_ms[i])
        basis = float(m.funding[i]) * (cycle - now % cycle) / cycle
        assert m.fair[i] == pytest.approx(m.index[i] * (1 + basis), rel=1e-12)
        assert abs(basis) <= 0.003
        assert abs(float(m.fair_r[i]) - m.fair[i]) <= m.unit[i]


def _ratios(market: FuturesMarket, i: int, until_ms: int) -> list[tuple[int, float]]:
    out = []
    while market.now_ms() < until_ms:
        _run(market, STEP_MS / 1000)
        out.append((market.now_ms(), float(market.last[i]) / float(market.fair_r[i])))
    return out


@pytest.mark.parametrize(("spike", "book", "pct"), [(True, "thin", 25.0), (False, "thick", 30.0), (True, None, 40.0), (False, "thin", -35.0)])
def test_a_scripted_anomaly_holds_its_ratio_for_the_whole_window(spike: bool, book: str | None, pct: float) -> None:
    an = FuturesAnomaly(symbol=None, rank=4, start_s=20, duration_s=30, premium_pct=pct, spike=spike, book=book,
                        approach_s=2.0 if spike else 20.0)  # fmt: skip
    m = FuturesMarket(40, 9, START, [an])
    begin, hold_from, hold_until, end = an.bounds_ms(m.start_ms)
    ratios = _ratios(m, 4, end + 20_000)
    hold = [r for t, r in ratios if hold_from <= t < hold_until]
    assert len(hold) == 30 * 1000 // STEP_MS
    if pct > 0:
        assert min(hold) >= an.ratio  # exactly, in the published prices
    else:
        assert max(hold) <= an.ratio
    before = [r for t, r in ratios if t < begin]
    assert max(abs(r - 1) for r in before) < 0.05
    reached = next(t for t, r in ratios if (r >= an.ratio if pct > 0 else r <= an.ratio))
    if spike:
        assert reached - begin <= 3000  # a jump within a few seconds
    else:
        half = [r for t, r in ratios if begin + 9000 <= t < begin + 11000]
        assert all(abs(r - 1) < abs(an.ratio - 1) * 0.75 for r in half)  # a climb, not a jump
    assert abs(ratios[-1][1] - 1) < 0.05  # back to fair after the decay
    state = m.state()["anomalies"][0]
    assert state["hold_from_ms"] == hold_from and state["hold_until_ms"] == hold_until and not state["active"]


def test_a_thin_book_episode_is_thin_and_a_thick_one_thick() -> None:
    thin = FuturesAnomaly(symbol=None, rank=0, start_s=5, duration_s=10, premium_pct=25, spike=True, book="thin")
    m = FuturesMarket(20, 4, START, [thin])
    assert m.contracts[0].thick
    before = m.depth(0)
    _run(m, 10.0)
    during = m.depth(0)
    size = lambda d: sum(q for _, q, _ in d["asks"] + d["bids"])  # noqa: E731
    spread = lambda d: (d["asks"][0][0] - d["bids"][0][0]) / float(m.unit[0])  # noqa: E731
    assert size(during) < size(before) / 20 and spread(during) > spread(before)


def test_ordinary_noise_never_looks_like_a_twenty_percent_anomaly() -> None:
    m = FuturesMarket(120, 11, START)
    worst = 0.0
    for _ in range(300):
        _run(m, 1.0)
        worst = max(worst, float(np.max(np.abs(m.last / m.fair_r - 1.0))))
    assert worst < 0.06  # far from 1.2
    assert worst > 0.001  # but it is noise, not a copy of fair


@pytest.mark.parametrize("rank", [0, 25])
def test_depth_diffs_rebuild_the_book_version_by_version(rank: int) -> None:
    an = FuturesAnomaly(symbol=None, rank=rank, start_s=3, duration_s=3, premium_pct=50, spike=True)
    m = FuturesMarket(30, 3, START, [an])
    m.watched = {rank}
    snap = m.depth(rank)
    asks = {p: q for p, q, _ in snap["asks"]}
    bids = {p: q for p, q, _ in snap["bids"]}
    version = snap["version"]
    for step in _run(m, 15.0):
        if rank not in step.depth:
            continue
        new_version, d_asks, d_bids = step.depth[rank]
        assert new_version == version + 1
        version = new_version
        for book, levels in ((asks, d_asks), (bids, d_bids)):
            for p, q, n in levels:
                assert (q == 0) == (n == 0)
                if q == 0:
                    book.pop(p, None)
                else:
                    book[p] = q
        full = step.full[rank]
        assert full[0] == version and [tuple(lv[:2]) for lv in full[1]] == sorted(asks.items())
    now = m.depth(rank)
    assert now["version"] == version
    assert sorted(asks.items()) == [(p, q) for p, q, _ in now["asks"]]
    assert sorted(bids.items(), reverse=True) == [(p, q) for p, q, _ in now["bids"]]


def test_deals_are_at_the_touch_with_increasing_ids() -> None:
    m = FuturesMarket(10, 8, START)
    last_id: dict[int, int] = {}
    for step in _run(m, 20.0):
        for i, deals in step.trades.items():
            for d in deals:
                assert set(d) == {"p", "v", "T", "O", "M", "t", "i"} and d["T"] in (1, 2) and d["v"] >= 1
                assert step.ts_ms - STEP_MS < d["t"] <= step.ts_ms
                assert d["i"] > last_id.get(i, 0)
                last_id[i] = d["i"]
    assert len(last_id) >= 5


# --- scenario files ----------------------------------------------------------------------------------


def test_the_spot_scenario_file_may_carry_futures_anomalies(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("pumps:\n  - {rank: 1, start_s: 5, duration_s: 60, rise_pct: 10}\n"
                    "futures_anomalies:\n  - {rank: 2, start_s: 5, duration_s: 30, premium_pct: 25, spike: true, book: thin}\n")  # fmt: skip
    scenario = load_scenario(path)
    assert [e.kind for e in scenario.episodes] == ["pump"]
    (an,) = scenario.futures_anomalies
    assert (an.rank, an.premium_pct, an.spike, an.book, an.approach_s, an.ratio) == (2, 25.0, True, "thin", 2.0, 1.25)
    assert scenario_from_mapping({"pumps": []}).futures_anomalies == []
    with pytest.raises(ScenarioError, match="unknown section 'futures'"):
        scenario_from_mapping({"futures": []})


@pytest.mark.parametrize(("item", "message"), [
    ({"rank": 1, "start_s": 0, "duration_s": 10}, r"\[0\].premium_pct: required"),
    ({"rank": 1, "start_s": 0, "duration_s": 10, "premium_pct": 20, "book": "medium"}, r"\[0\].book"),
    ({"rank": 1, "start_s": 0, "duration_s": 10, "premium_pct": 20, "spike": True, "approach_s": 30}, "a spike jumps within"),
    ({"symbol": "BTCUSDT", "start_s": 0, "duration_s": 10, "premium_pct": 20}, r"\[0\].symbol"),
    ({"rank": 1, "symbol": "BTC_USDT", "start_s": 0, "duration_s": 10, "premium_pct": 20}, "exactly one of symbol or rank"),
    ({"rank": 1, "start_s": 0, "duration_s": 10, "premium_pct": 20, "ratio": 2}, r"\[0\].ratio: unknown field"),
    ({"rank": 1, "start_s": 0, "duration_s": 10, "premium_pct": 0}, "0 is no anomaly"),
])  # fmt: skip
def test_bad_anomalies_name_the_entry_and_field(item: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_futures_anomalies([item])


def test_a_futures_scenario_file_and_resolution(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("futures_anomalies:\n  - {symbol: NOPE_USDT, start_s: 1, duration_s: 5, premium_pct: 22}\n")
    (an,) = load_futures_scenario(path)
    with pytest.raises(ScenarioError, match="no contract NOPE_USDT"):
        FuturesMarket(5, 1, START, [an])
    with pytest.raises(ScenarioError, match="only 5 contracts"):
        FuturesMarket(5, 1, START, parse_futures_anomalies([{"rank": 5, "start_s": 1, "duration_s": 5, "premium_pct": 22}]))
    (tmp_path / "g.yaml").write_text("pumps: []\n")
    with pytest.raises(ScenarioError, match="only a futures_anomalies list"):
        load_futures_scenario(tmp_path / "g.yaml")


def test_script_anomaly_starts_relative_to_now() -> None:
    m = FuturesMarket(10, 1, START)
    _run(m, 7.0)
    info = m.script_anomaly(m.contracts[3].symbol, in_s=2, duration_s=5, premium_pct=30, spike=True, approach_s=1)
    assert info["start_ms"] == m.now_ms() + 2000 and info["hold_from_ms"] == m.now_ms() + 3000
    assert info["hold_until_ms"] == m.now_ms() + 8000 and info["symbol"] == m.contracts[3].symbol
    ratios = _ratios(m, 3, info["hold_until_ms"])
    assert min(r for t, r in ratios if t >= info["hold_from_ms"]) >= 1.3
