"""The portfolio balancer: plan() never spends the reserve nor sells more than is held, and on the
emulator (paper) one pass brings the target assets to their weights, a second pass waits."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from common.config import config_from_mapping
from sim.rest_server import DEFAULT_API_KEY, DEFAULT_API_SECRET
from sim.server import run_emulator
from store.history import Store
from trading.portfolio import plan, weigh
from trading.trader import Trader

FEE = 0.002


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["A", "B", "C", "D"]), st.floats(0, 1000), max_size=4),
       st.dictionaries(st.sampled_from(["A", "B", "C", "D"]), st.floats(0.01, 100), min_size=4, max_size=4),
       st.dictionaries(st.sampled_from(["A", "B", "C"]), st.floats(0.01, 0.33), max_size=3),
       st.floats(0, 10_000), st.floats(0, 5000), st.floats(0.001, 0.3))  # fmt: skip
def test_a_plan_never_spends_the_reserve_nor_sells_what_is_not_held(qtys: dict[str, float], prices: dict[str, float],
                                                                      targets: dict[str, float], usdt: float, reserve: float,
                                                                      band: float) -> None:  # fmt: skip
    held, total = weigh(qtys, prices, usdt, targets)
    trades = plan(held, total, usdt, band, reserve, FEE, 5.0)
    by_asset = {h.asset: h for h in held}
    cash = usdt
    for t in trades:
        h = by_asset[t.asset]
        assert t.quote_amount >= 5.0 and h.target > 0 and abs(h.weight - h.target) > band
        assert (t.side == "SELL") == (h.weight > h.target)
        if t.side == "SELL":
            assert t.quote_amount <= h.value + 1e-9
            cash += t.quote_amount * (1 - FEE)
        else:
            cash -= t.quote_amount * (1 + FEE)
    assert not any(t.side == "BUY" for t in trades) or cash >= min(reserve, usdt) - 1e-6
    assert len({t.asset for t in trades}) == len(trades)


async def test_one_pass_reaches_the_targets_and_the_cooldown_holds_the_next(tmp_path: Path) -> None:
    async with run_emulator(pairs=40, seed=11) as emu:
        a, b = [s.base for s in emu.market.symbols if s.status == "1" and s.quote == "USDT" and s.api_tradable][:2]
        config = config_from_mapping({"mexc": {"rest_url": emu.rest_url},
                                      "trading": {"portfolio_targets": [f"{a}:0.3", f"{b}:0.2"], "reserve_usdt": 100}},
                                     environ={})  # fmt: skip
        trader = Trader(config, Store(tmp_path))
        before = await trader.portfolio.view()
        done = await trader.portfolio.rebalance()
        again = await trader.portfolio.rebalance()
        held, total, usdt = await trader.portfolio.holdings()
        after = await trader.portfolio.view()
        await trader.close()
    assert "⚠ outside the band" in before and len(done) == 2 and all(line.startswith("balancer (paper): buy") for line in done)
    assert again == []
    weights = {h.asset: h.weight for h in held}
    assert abs(weights[a] - 0.3) < 0.05 and abs(weights[b] - 0.2) < 0.05 and usdt >= 100
    assert "⚠" not in after and f"{a}:" in after and "AvgCost PnL" in after


async def test_live_rebalancing_uses_limit_orders_at_the_touch_and_leaves_none_open(tmp_path: Path) -> None:
    async with run_emulator(pairs=40, seed=11) as emu:
        spec = next(s for s in emu.market.symbols if s.status == "1" and s.quote == "USDT" and s.api_tradable)
        config = config_from_mapping({"mexc": {"rest_url": emu.rest_url, "api_key": DEFAULT_API_KEY, "api_secret": DEFAULT_API_SECRET},
                                      "telegram": {"allowed_ids": [1]},
                                      "trading": {"live": True, "portfolio_targets": [f"{spec.base}:0.1"], "reserve_usdt": 850}},
                                     environ={})  # fmt: skip
        trader = Trader(config, Store(tmp_path))
        done = await trader.portfolio.rebalance()
        await trader.close()
        orders = emu.rest.account.orders
        usdt = emu.rest.account.balances["USDT"]
    assert len(done) == 1 and done[0].startswith("balancer: buy") and len(orders) == 1 and orders[0]["type"] == "LIMIT"
    assert orders[0]["status"] in ("FILLED", "PARTIALLY_CANCELED", "CANCELED") and usdt[1] < 1e-9  # nothing left resting or locked
    assert usdt[0] >= 850
