"""Exchange rules (venues/mexc/rules.py): rounding never produces an order the rules refuse, dust
is refused with its reason, and a rule refusal gets exactly one retry with fresh rules."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.rest_server import DEFAULT_API_KEY, DEFAULT_API_SECRET
from sim.server import run_emulator
from venues.mexc.client import MexcError, MexcRest
from venues.mexc.rules import (
    RuleError,
    RulesCache,
    parse_rules,
    send_shaped,
    shape_limit,
    shape_market_buy,
    shape_market_sell,
    violations,
)


def _info(**over: Any) -> dict[str, Any]:
    info = {"symbol": "KAZOUSDT", "status": "1", "baseAsset": "KAZO", "quoteAsset": "USDT", "baseAssetPrecision": 2,
            "quotePrecision": 6, "quoteAssetPrecision": 4, "baseSizePrecision": "0.5", "quoteAmountPrecision": "5",
            "quoteAmountPrecisionMarket": "5", "maxQuoteAmount": "2000000", "maxQuoteAmountMarket": "100000",
            "orderTypes": ["LIMIT", "MARKET"], "isSpotTradingAllowed": True, "tradeSideType": "1"}  # fmt: skip
    info.update(over)
    return info


rules_st = st.builds(
    lambda qd, pd, qa, min_qty, min_notional, min_market: parse_rules(_info(
        baseAssetPrecision=qd, quotePrecision=pd, quoteAssetPrecision=qa, baseSizePrecision=min_qty,
        quoteAmountPrecision=min_notional, quoteAmountPrecisionMarket=min_market)),  # fmt: skip
    st.integers(0, 10), st.integers(0, 12), st.integers(0, 8), st.sampled_from(["0", "0.001", "1", "0.5", "100"]),
    st.sampled_from(["0", "1", "5", "10.5"]), st.sampled_from(["0", "1", "5", "10"]),
)
amounts = st.floats(min_value=0, max_value=1e7, allow_nan=False, allow_infinity=False)
prices = st.floats(min_value=1e-10, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=400, deadline=None)
@given(rules_st, amounts, prices, st.sampled_from(["buy", "sell", "limit_buy", "limit_sell"]))
def test_rounding_never_produces_an_order_the_rules_refuse(rules: Any, amount: float, price: float, kind: str) -> None:
    try:
        if kind == "buy":
            shape = shape_market_buy(rules, amount)
        elif kind == "sell":
            shape = shape_market_sell(rules, amount, price)
        else:
            shape = shape_limit(rules, "BUY" if kind == "limit_buy" else "SELL", amount, price)
    except RuleError as exc:
        assert str(exc)  # a refusal always says why
        return
    assert violations(rules, shape) == []
    # Never more than asked: a buy spends at most the amount, a sell sells at most the quantity.
    if shape.quote_order_qty is not None:
        assert Decimal(shape.quote_order_qty) <= Decimal(str(amount))
    if shape.quantity is not None:
        assert Decimal(shape.quantity) <= Decimal(str(amount))
        assert "E" not in shape.quantity and "e" not in shape.quantity


def test_dust_and_closed_pairs_are_refused_with_the_reason() -> None:
    rules = parse_rules(_info())
    with pytest.raises(RuleError, match="dust"):
        shape_market_sell(rules, 0.49, 100.0)  # below the 0.5 minimum quantity
    with pytest.raises(RuleError, match="dust"):
        shape_market_sell(rules, 3, 1.0)  # $3 is below the $5 minimum value
    assert shape_market_sell(rules, 7.239, 1.0).quantity == "7.23"
    assert shape_market_buy(rules, 100.123456).quote_order_qty == "100.1234"
    with pytest.raises(RuleError, match="not trading"):
        shape_market_buy(parse_rules(_info(status="2")), 100)
    with pytest.raises(RuleError, match="does not take MARKET"):
        shape_market_buy(parse_rules(_info(orderTypes=["LIMIT"])), 100)
    with pytest.raises(RuleError, match="does not take MARKET BUY"):
        shape_market_buy(parse_rules(_info(tradeSideType="3")), 100)


class _Rest:
    """A scripted MEXC: exchangeInfo answers from a list, order POSTs answer from a list of errors/bodies."""

    def __init__(self, infos: list[dict[str, Any]], answers: list[Any]) -> None:
        self.infos, self.answers, self.posts, self.info_reads = infos, answers, [], 0

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        info = self.infos[min(self.info_reads, len(self.infos) - 1)]
        self.info_reads += 1
        return {"symbols": [info]}

    async def signed(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        self.posts.append(dict(params or {}))
        answer = self.answers.pop(0)
        if isinstance(answer, MexcError):
            raise answer
        return answer


def _refusal() -> MexcError:
    return MexcError(400, 30002, "the stake is below the pair's minimum order")


async def test_a_rule_refusal_is_retried_once_with_fresh_rules() -> None:
    # The cached rules allow 4 decimals of quote; MEXC changed it to 2 and refuses the first order.
    rest = _Rest([_info(), _info(quoteAssetPrecision=2)], [_refusal(), {"orderId": "X1"}])
    cache = RulesCache(rest)  # type: ignore[arg-type]
    body = await send_shaped(rest, cache, "KAZOUSDT", lambda r: shape_market_buy(r, 100.123456), {"newClientOrderId": "c1"})  # type: ignore[arg-type]
    assert body == {"orderId": "X1"}
    assert [p["quoteOrderQty"] for p in rest.posts] == ["100.1234", "100.12"]
    assert all(p["newClientOrderId"] == "c1" for p in rest.posts) and rest.info_reads == 2


async def test_a_second_refusal_is_reported_plainly_and_not_retried_again() -> None:
    rest = _Rest([_info(), _info(quoteAssetPrecision=2)], [_refusal(), _refusal(), {"orderId": "never"}])
    cache = RulesCache(rest)  # type: ignore[arg-type]
    with pytest.raises(MexcError, match="refused again after re-reading KAZOUSDT's rules") as err:
        await send_shaped(rest, cache, "KAZOUSDT", lambda r: shape_market_buy(r, 100.123456), {})  # type: ignore[arg-type]
    assert err.value.code == 30002 and not err.value.outcome_unknown and len(rest.posts) == 2


async def test_unchanged_rules_mean_no_pointless_retry() -> None:
    rest = _Rest([_info()], [_refusal(), {"orderId": "never"}])
    cache = RulesCache(rest)  # type: ignore[arg-type]
    with pytest.raises(MexcError, match="already followed KAZOUSDT's current rules"):
        await send_shaped(rest, cache, "KAZOUSDT", lambda r: shape_market_buy(r, 100), {})  # type: ignore[arg-type]
    assert len(rest.posts) == 1


async def test_rules_are_cached_then_refreshed_after_their_ttl() -> None:
    now = [0.0]
    rest = _Rest([_info(), _info(quoteAmountPrecisionMarket="7")], [])
    cache = RulesCache(rest, ttl_s=60, clock=lambda: now[0])  # type: ignore[arg-type]
    first = await cache.get("KAZOUSDT")
    again = await cache.get("KAZOUSDT")
    now[0] = 61.0
    later = await cache.get("KAZOUSDT")
    assert first is again and rest.info_reads == 2
    assert first is not None and later is not None and first.min_market_quote == 5 and later.min_market_quote == 7


async def test_the_emulator_accepts_every_order_the_rules_shape() -> None:
    """The same property against an independent implementation of the rules: the emulator's own checks."""
    rng = random.Random(7)
    async with run_emulator(pairs=60, seed=5, usdt_balance=1e9) as emu:
        rest = MexcRest(emu.rest_url, DEFAULT_API_KEY, DEFAULT_API_SECRET)
        cache = RulesCache(rest)
        specs = [s for s in emu.market.symbols if s.status == "1" and s.api_tradable and s.market_order_allowed and s.quote == "USDT"][:8]
        shaped = refused = 0
        for n in range(40):
            spec = specs[n % len(specs)]
            price = emu.market.best_bid_ask(spec.symbol)[0]
            kind = rng.choice(["buy", "sell"])
            try:
                if kind == "buy":
                    amount = rng.choice([rng.uniform(0, 10), rng.uniform(5, 500), 5.0 + 10 ** -rng.randint(0, 9)])
                    body = await send_shaped(rest, cache, spec.symbol, lambda r, a=amount: shape_market_buy(r, a), {})  # type: ignore[misc]
                else:
                    held = emu.rest.account.balances.get(spec.base, [0.0])[0]
                    amount = held * rng.choice([0.01, 0.3, 0.999999, 1.0])
                    body = await send_shaped(rest, cache, spec.symbol, lambda r, a=amount, p=price: shape_market_sell(r, a, p), {})  # type: ignore[misc]
                shaped += 1
                assert body["orderId"], body  # a MexcError (a refusal) would have failed the test above
            except RuleError as exc:
                refused += 1
                assert str(exc)
        await rest.close()
    assert shaped >= 20 and refused >= 1  # both paths were exercised, and no shaped order was refused by the emulator
