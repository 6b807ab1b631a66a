"""Pair selection and shard planning."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.config import ScoutConfig
from supervisor.planner import plan_shards
from supervisor.scout import select_pairs
from venues.mexc.market import parse_exchange_info, parse_tickers
from venues.mexc.rest import RestError


def _info() -> tuple[dict, dict]:
    symbols = [
        {"symbol": "AAAUSDT", "status": "1", "quoteAsset": "USDT", "isSpotTradingAllowed": True},
        {"symbol": "BBBUSDT", "status": "1", "quoteAsset": "USDT", "isSpotTradingAllowed": True},
        {"symbol": "CCCUSDT", "status": "2", "quoteAsset": "USDT"},
        {"symbol": "DDDUSDC", "status": "1", "quoteAsset": "USDC"},
        {"symbol": "EEEUSDT", "status": "1", "quoteAsset": "USDT"},
        "garbage",
    ]
    return {"symbols": symbols}, {"code": 200, "data": ["AAAUSDT"], "msg": None}


def test_selection_keeps_online_quote_pairs_above_floor_busiest_first() -> None:
    universe = parse_exchange_info(*_info())
    volumes = parse_tickers(
        [
            {"symbol": "AAAUSDT", "quoteVolume": "500000"},
            {"symbol": "BBBUSDT", "quoteVolume": "900000"},
            {"symbol": "CCCUSDT", "quoteVolume": "9000000"},
            {"symbol": "DDDUSDC", "quoteVolume": "9000000"},
            {"symbol": "EEEUSDT", "quoteVolume": None},
        ]
    )
    config = ScoutConfig(min_quote_vol_usd=100_000)
    assert [c.symbol for c in select_pairs(universe, volumes, config)] == ["BBBUSDT", "AAAUSDT"]
    assert [c.symbol for c in select_pairs(universe, volumes, ScoutConfig(min_quote_vol_usd=0, top_n=1))] == ["BBBUSDT"]
    assert [c.symbol for c in select_pairs(universe, volumes, config, excluded={"BBBUSDT"})] == ["AAAUSDT"]
    assert universe["AAAUSDT"].api_tradable and not universe["BBBUSDT"].api_tradable


def test_garbage_responses_raise_clear_errors() -> None:
    with pytest.raises(RestError, match="exchangeInfo"):
        parse_exchange_info({"nope": 1}, None)
    with pytest.raises(RestError, match="ticker/24hr"):
        parse_tickers({"symbol": "X"})


@given(
    st.dictionaries(st.text("ABCDEFGH", min_size=1, max_size=4), st.floats(0.0, 1e6), max_size=60),
    st.integers(1, 6),
)
def test_plan_covers_every_pair_once_and_balances(activity: dict[str, float], n: int) -> None:
    plan = plan_shards(activity, n)
    assert set(plan) == set(activity)
    assert all(0 <= k < n for k in plan.values())
    again = plan_shards(activity, n, previous=plan)
    assert again == plan  # a stable input moves nothing


def test_plan_is_sticky_and_moves_only_on_overload() -> None:
    activity = {f"P{i}": 1.0 for i in range(10)}
    first = plan_shards(activity, 2)
    activity["NEW"] = 1.0
    second = plan_shards(activity, 2, previous=first)
    assert all(second[s] == first[s] for s in first)
    lopsided = {s: 0 for s in activity}
    third = plan_shards(activity, 2, previous=lopsided)
    counts = [list(third.values()).count(k) for k in (0, 1)]
    assert max(counts) <= 7
