"""AvgCost (trading/avgcost.py) against a plain exact-fraction reference over random fill sequences:
buys, partial sells, fees in the base asset, the quote asset or MX, oversells (missing history), dust."""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from trading.avgcost import Fill, Position, apply, fold


def reference(fills: list[Fill]) -> dict[str, Fraction]:
    """Average cost the textbook way, in exact fractions: held qty, total cost of what is held, realised."""
    qty, cost, realised = Fraction(0), Fraction(0), Fraction(0)
    for f in fills:
        price, amount = Fraction(f.price), Fraction(f.qty)
        fee = Fraction(f.fee)
        if f.fee_asset == "USDT":
            fee_quote, fee_base = fee, Fraction(0)
        elif f.fee_asset == "KAZO":
            fee_quote, fee_base = Fraction(0), fee
        else:
            fee_quote, fee_base = fee * Fraction(f.fee_quote_rate or 0), Fraction(0)
        if f.side == "BUY":
            qty += amount - fee_base
            cost += amount * price + fee_quote
            continue
        taken = amount + fee_base
        share = min(Fraction(1), qty / taken) if taken else Fraction(0)
        taken = min(taken, qty)
        avg = cost / qty if qty else Fraction(0)
        realised += (amount * price - fee_quote) * share - avg * taken
        cost -= avg * taken
        qty -= taken
    return {"qty": qty, "cost": cost, "realised": realised}


@st.composite
def fill_sequences(draw: st.DrawFn) -> list[Fill]:
    fills: list[Fill] = []
    held = 0.0
    for i in range(draw(st.integers(1, 25))):
        price = draw(st.floats(0.0001, 1000.0))
        asset = draw(st.sampled_from(["USDT", "KAZO", "MX", ""]))
        rate = draw(st.floats(0.5, 5.0)) if asset == "MX" else None
        if held > 0 and draw(st.booleans()):
            part = draw(st.sampled_from([0.1, 0.5, 1.0, 1.2]))  # 1.2: more than held (history missing)
            qty = held * part
            side = "SELL"
        else:
            qty = draw(st.floats(0.001, 10_000.0))
            side = "BUY"
        fee = qty * 0.001 if asset == "KAZO" else qty * price * 0.001 / (rate or 1.0) if asset else 0.0
        fills.append(Fill(f"t{i:03d}", side, price, qty, fee, asset, 1000 + i, rate))
        held = max(0.0, held + (qty - (fee if asset == "KAZO" else 0.0)) * (1 if side == "BUY" else -1))
    return fills


def close(a: float, b: Fraction, scale: float) -> bool:
    return math.isclose(a, float(b), rel_tol=1e-7, abs_tol=1e-7 * max(1.0, scale))


@settings(max_examples=150, deadline=None)
@given(fill_sequences(), st.floats(0.0001, 1000.0))
def test_avgcost_equals_the_plain_reference(fills: list[Fill], mark: float) -> None:
    pos = fold(fills, "KAZO", "USDT")
    ref = reference(fills)
    scale = max(f.qty * f.price for f in fills)
    assert close(pos.qty, ref["qty"], scale) and close(pos.cost, ref["cost"], scale)
    assert close(pos.realised, ref["realised"], scale)
    # The money identity: every quote in and out plus what is held at a mark price is the total PnL.
    if not pos.missing or all("fee" in m for m in pos.missing):
        total = pos.realised + pos.unrealised(mark)
        assert math.isclose(total, pos.proceeds - pos.invested + pos.qty * mark, rel_tol=1e-7, abs_tol=1e-6 * max(1.0, scale))


@settings(max_examples=100, deadline=None)
@given(fill_sequences())
def test_sells_never_move_the_average_entry(fills: list[Fill]) -> None:
    pos = Position("KAZO", "USDT")
    for fill in fills:
        before = pos.avg_price
        apply(pos, fill)
        if fill.side == "SELL" and pos.qty > 0:
            assert math.isclose(pos.avg_price, before, rel_tol=1e-9)
        assert pos.qty >= 0 and pos.cost >= -1e-6 * max(1.0, fill.qty * fill.price)


def test_a_worked_example_with_every_kind_of_fee() -> None:
    fills = [
        Fill("1", "BUY", 10.0, 10.0, 0.1, "USDT", 1),  # cost 100.1 for 10
        Fill("2", "BUY", 20.0, 10.0, 0.1, "KAZO", 2),  # 9.9 received for 200
        Fill("3", "SELL", 30.0, 5.0, 0.05, "MX", 3, fee_quote_rate=2.0),  # fee 0.1 USDT
        Fill("3", "SELL", 30.0, 5.0, 0.05, "MX", 3, fee_quote_rate=2.0),  # the same trade again (overlapping pages)
    ]
    pos = fold(fills, "KAZO", "USDT")
    avg = 300.1 / 19.9
    assert math.isclose(pos.avg_price, avg) and math.isclose(pos.qty, 14.9)
    assert math.isclose(pos.realised, 150 - 0.1 - 5 * avg)
    assert math.isclose(pos.fees_quote, 0.1 + 0.1 * 20 + 0.1)
    assert pos.sells == 1 and not pos.missing


def test_missing_history_and_dust_are_reported_not_hidden() -> None:
    pos = fold([Fill("1", "BUY", 1.0, 10.0), Fill("2", "SELL", 1.5, 15.0)], "KAZO", "USDT")
    assert pos.qty == 0 and pos.missing and "only 10" in pos.missing[0]
    assert math.isclose(pos.realised, 10 * 1.5 - 10)  # the unexplained 5 earn nothing
    pos = fold([Fill("1", "BUY", 1.0, 10.0, 1.0, "XYZ")], "KAZO", "USDT")
    assert "no rate" in pos.missing[0]
    dust = fold([Fill("1", "BUY", 1.0, 10.0), Fill("2", "SELL", 1.0, 9.0)], "KAZO", "USDT")
    assert dust.is_dust(1.0, 5.0) and not fold([Fill("1", "BUY", 1.0, 10.0)], "KAZO", "USDT").is_dust(1.0, 5.0)
