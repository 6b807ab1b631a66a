"""Cycle enumeration from exchangeInfo: every quote asset the exchange lists, each ring once per
direction, only online pairs; the parser keeps lot steps and fees and refuses garbage."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.arb_cycles import Leg, enumerate_cycles, universe_of
from venues.mexc.arb_market import ArbMarket, parse_arb_markets
from venues.mexc.rest import RestError


def _row(symbol: str, base: str, quote: str, status: str = "1", **extra: object) -> dict:
    return {"symbol": symbol, "baseAsset": base, "quoteAsset": quote, "status": status, "baseAssetPrecision": 2,
            "takerCommission": "0.0005", **extra}  # fmt: skip


INFO = {"symbols": [
    _row("BTCUSDT", "BTC", "USDT", baseAssetPrecision=6), _row("ETHUSDT", "ETH", "USDT"), _row("ETHBTC", "ETH", "BTC"),
    _row("XYZUSDT", "XYZ", "USDT"), _row("XYZBTC", "XYZ", "BTC", takerCommission="0.001"), _row("XYZEUR", "XYZ", "EUR"),
    _row("USDCUSDT", "USDC", "USDT"), _row("XYZUSDC", "XYZ", "USDC"), _row("ABCUSDT", "ABC", "USDT", status="3"),
    _row("ABCBTC", "ABC", "BTC"), {"symbol": "BAD"}, "junk", _row("SELFSELF", "SELF", "SELF"),
]}  # fmt: skip


def test_exchange_info_gives_assets_steps_and_fees_of_online_pairs() -> None:
    markets = {m.symbol: m for m in parse_arb_markets(INFO)}
    assert "ABCUSDT" not in markets and "BAD" not in markets and "SELFSELF" not in markets
    assert markets["BTCUSDT"] == ArbMarket("BTCUSDT", "BTC", "USDT", 1e-6, 0.0005)
    assert markets["XYZBTC"].taker_fee == 0.001 and markets["XYZBTC"].step == 0.01
    odd = parse_arb_markets({"symbols": [_row("QQUSDT", "QQ", "USDT", takerCommission="nan", baseAssetPrecision="x")]})
    assert odd == [ArbMarket("QQUSDT", "QQ", "USDT", 0.0, None)]
    with pytest.raises(RestError, match="no symbols list"):
        parse_arb_markets({"symbols": None}, host="127.0.0.1:1")


def test_cycles_over_every_listed_quote_asset_each_ring_once_per_direction() -> None:
    cycles = enumerate_cycles(parse_arb_markets(INFO), ["USDT", "USDC"])
    texts = {c.text for c in cycles}
    assert "USDT→BTC→ETH→USDT (buy BTCUSDT, buy ETHBTC, sell ETHUSDT)" in texts
    assert "USDT→ETH→BTC→USDT (buy ETHUSDT, sell ETHBTC, sell BTCUSDT)" in texts
    assert "USDT→USDC→XYZ→USDT (buy USDCUSDT, buy XYZUSDC, sell XYZUSDT)" in texts
    # USDC -> XYZ -> USDT -> USDC is the same ring and direction as a USDT cycle: kept once, from USDT.
    assert not any(c.start == "USDC" for c in cycles)
    assert len(cycles) == 6  # rings USDT-BTC-ETH, USDT-BTC-XYZ, USDT-USDC-XYZ, two directions each
    assert all("ABC" not in c.text and "EUR" not in c.text for c in cycles)
    assert universe_of(cycles) == ["BTCUSDT", "ETHBTC", "ETHUSDT", "USDCUSDT", "XYZBTC", "XYZUSDC", "XYZUSDT"]
    only_usdc = enumerate_cycles(parse_arb_markets(INFO), ["USDC"])
    assert {c.start for c in only_usdc} == {"USDC"} and len(only_usdc) == 2


def _brute(markets: list[ArbMarket], starts: list[str]) -> set[frozenset[Leg]]:
    """Every ordered triple of distinct pairs whose asset flow returns to a start asset."""
    out = set()
    for start in starts:
        for trio in itertools.permutations(markets, 3):
            hold, legs, assets = start, [], [start]
            for m in trio:
                if hold == m.quote:
                    hold, buy = m.base, True
                elif hold == m.base:
                    hold, buy = m.quote, False
                else:
                    break
                legs.append(Leg(m.symbol, buy))
                assets.append(hold)
            if len(legs) == 3 and hold == start and len(set(assets[:3])) == 3:
                out.add(frozenset(legs))
    return out


@settings(max_examples=60, deadline=None)
@given(st.sets(st.tuples(st.sampled_from("ABCDEFG"), st.sampled_from("ABCDEFG")).filter(lambda t: t[0] != t[1]), max_size=14))
def test_enumeration_finds_exactly_the_brute_force_cycles(edges: set[tuple[str, str]]) -> None:
    unique = {frozenset(e): e for e in sorted(edges)}  # one listing per asset pair
    markets = [ArbMarket(f"{b}{q}", b, q, 0.0, None) for b, q in unique.values()]
    cycles = enumerate_cycles(markets, ["A", "B"])
    keys = [frozenset(c.legs) for c in cycles]
    assert len(keys) == len(set(keys)) and set(keys) == _brute(markets, ["A", "B"])
    for c in cycles:
        assert c.start in ("A", "B") and len(set(c.assets)) == 3
