"""Fuzzing the REST response parsers with garbage: wrong types, missing keys, huge numbers, NaN
strings, HTML. Each parser either returns clean values or raises its one documented error."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from venues.mexc.market import parse_exchange_info, parse_levels, parse_seed, parse_tickers, parse_update_id
from venues.mexc.rest import RestError

_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["NaN", "inf", "-1", "1e400", "0.5", "<html><body>502 Bad Gateway</body></html>", "BTCUSDT"]),
)
_json = st.recursive(
    _scalar,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                [
                    "bids",
                    "asks",
                    "lastUpdateId",
                    "symbols",
                    "symbol",
                    "status",
                    "quoteAsset",
                    "quoteVolume",
                    "data",
                    "x",
                ]
            )
            | st.text(max_size=5),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=1500, deadline=None)
@given(data=_json)
def test_depth_snapshot_parsing_is_clean_or_a_value_error(data: Any) -> None:
    try:
        levels = parse_levels(data, "bids")
    except ValueError as exc:
        assert "depth snapshot" in str(exc)
    else:
        assert all(math.isfinite(p) and p > 0 and math.isfinite(q) and q >= 0 for p, q in levels)
    try:
        uid = parse_update_id(data)
    except ValueError as exc:
        assert "lastUpdateId" in str(exc)
    else:
        assert 0 <= uid < 2**63


@settings(max_examples=1500, deadline=None)
@given(rows=_json | st.lists(st.lists(_scalar, min_size=8, max_size=8), max_size=3), first=_json)
def test_kline_seed_parsing_is_clean_or_a_value_error(rows: Any, first: Any) -> None:
    try:
        seed, listing = parse_seed(rows, first)
    except ValueError as exc:
        assert "klines" in str(exc)
    else:
        assert all(math.isfinite(v) and math.isfinite(qv) for _, v, qv in seed)
        assert listing >= -1


def test_huge_and_nan_levels_are_refused_not_crashing() -> None:
    for bad in ({"bids": [[10**400, 1]]}, {"bids": [["NaN", "1"]]}, {"bids": [["1", "inf"]]}, {"bids": "<html>"}):
        try:
            parse_levels(bad, "bids")
        except ValueError:
            pass
        else:  # pragma: no cover
            raise AssertionError(f"accepted {bad!r}")
    try:
        parse_seed([[float("inf"), 0, 0, 0, 0, 1, 0, 1]], [])
    except ValueError:
        pass
    else:  # pragma: no cover
        raise AssertionError("accepted an infinite open time")


def test_huge_ticker_volume_counts_as_zero() -> None:
    assert parse_tickers([{"symbol": "AUSDT", "quoteVolume": 10**400}, {"symbol": "BUSDT", "quoteVolume": "NaN"}]) == {
        "AUSDT": 0.0,
        "BUSDT": 0.0,
    }


@settings(max_examples=1500, deadline=None)
@given(data=_json, default=_json)
def test_scout_parsers_are_clean_or_a_rest_error(data: Any, default: Any) -> None:
    try:
        info = parse_exchange_info(data, default)
    except RestError as exc:
        assert "exchangeInfo" in str(exc)
    else:
        assert all(isinstance(k, str) for k in info)
    try:
        volumes = parse_tickers(data)
    except RestError as exc:
        assert "ticker/24hr" in str(exc)
    else:
        assert all(math.isfinite(v) and v >= 0 for v in volumes.values())
