"""The balancer journals each order before sending it: a process that dies between the journal and the
send, right after the send, or after the order settled but before its fills were stored, places
exactly one order on the emulator across the restart, and the restarted balancer records it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import trading.portfolio as portfolio
from common.config import Config, config_from_mapping
from sim.rest_server import DEFAULT_API_KEY, DEFAULT_API_SECRET
from sim.server import run_emulator
from store.balancer import BALANCER_IN_DOUBT
from store.history import Store
from trading.trader import Trader


class Killed(BaseException):
    """The process dies here: nothing after this point runs (no except clause of the code under test catches it)."""


def _config(url: str, base: str) -> Config:
    return config_from_mapping({"mexc": {"rest_url": url, "api_key": DEFAULT_API_KEY, "api_secret": DEFAULT_API_SECRET},
                                "telegram": {"allowed_ids": [1]},
                                "trading": {"live": True, "portfolio_targets": [f"{base}:0.1"], "reserve_usdt": 850}},
                               environ={})  # fmt: skip


@pytest.mark.parametrize("when", ["before_send", "after_send", "before_fills"])
async def test_a_killed_balancer_run_places_exactly_one_order_and_the_restart_records_it(tmp_path: Path, when: str,
                                                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    async with run_emulator(pairs=40, seed=11) as emu:
        spec = next(s for s in emu.market.symbols if s.status == "1" and s.quote == "USDT" and s.api_tradable)
        config = _config(emu.rest_url, spec.base)
        place, fills_of = portfolio.place_order, portfolio.order_fills

        async def dying_place(*args: Any, **kwargs: Any) -> Any:
            if when == "before_send":
                raise Killed
            await place(*args, **kwargs)
            raise Killed

        async def dying_fills(*args: Any, **kwargs: Any) -> Any:
            raise Killed

        if when == "before_fills":
            monkeypatch.setattr(portfolio, "order_fills", dying_fills)
        else:
            monkeypatch.setattr(portfolio, "place_order", dying_place)
        trader = Trader(config, Store(tmp_path))
        with pytest.raises(Killed):
            await trader.portfolio.rebalance()
        journal_at_kill = trader.portfolio.journal.orders()
        sent_at_kill = len(emu.rest.account.orders)
        monkeypatch.setattr(portfolio, "place_order", place)
        monkeypatch.setattr(portfolio, "order_fills", fills_of)

        again = Trader(config, Store(tmp_path))  # the restart: a new process on the same data dir
        first = await again.portfolio.rebalance()
        second = await again.portfolio.rebalance()
        third = Trader(config, Store(tmp_path))  # and one more restart: nothing is left to do
        after_restarts = await third.portfolio.rebalance()
        await again.close()
        await third.close()
        orders = list(emu.rest.account.orders)
        trades = [t for t in emu.rest.account.spot.trades if orders and t["orderId"] == orders[0]["orderId"]]
        usdt = emu.rest.account.balances["USDT"]
    assert len(journal_at_kill) == 1 and journal_at_kill[0].status in ("PENDING", "NEW")  # journaled before the send
    assert sent_at_kill == (0 if when == "before_send" else 1)
    assert len(orders) == 1, orders  # exactly one order across the kill and the restarts
    journal = again.portfolio.journal.orders()
    assert [j.client_order_id for j in journal if j.status != "UNSENT"] == [orders[0]["clientOrderId"]]
    assert not [j for j in again.portfolio.journal.orders() if j.status in BALANCER_IN_DOUBT]
    stored = again.ledger.positions.fills_of_order(orders[0]["clientOrderId"])
    assert trades and sorted(f.trade_id for f in stored) == sorted(t["id"] for t in trades)  # never forgotten, stored once
    assert usdt[1] < 1e-9  # nothing left resting
    if when == "before_send":
        assert any(line.startswith("balancer: buy") for line in first)
    else:
        assert any("left in doubt by a restart" in line for line in first) and not any(line.startswith("balancer: buy") for line in first)
    assert second == [] and after_restarts == []


async def test_an_order_mexc_does_not_confirm_after_a_restart_is_neither_repeated_nor_told_until_it_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    async with run_emulator(pairs=40, seed=11) as emu:
        spec = next(s for s in emu.market.symbols if s.status == "1" and s.quote == "USDT" and s.api_tradable)
        config = _config(emu.rest_url, spec.base)
        place = portfolio.place_order

        async def dying_place(*args: Any, **kwargs: Any) -> Any:
            await place(*args, **kwargs)
            raise Killed

        monkeypatch.setattr(portfolio, "place_order", dying_place)
        with pytest.raises(Killed):
            await Trader(config, Store(tmp_path)).portfolio.rebalance()
        monkeypatch.setattr(portfolio, "place_order", place)
        emu.rest.inject("status", endpoint="GET /api/v3/order", status=503, count=3)  # one pass's queries all fail
        again = Trader(config, Store(tmp_path))
        quiet = await again.portfolio.rebalance()
        in_doubt = [j.status for j in again.portfolio.journal.orders()]
        told = await again.portfolio.rebalance()
        await again.close()
        orders = list(emu.rest.account.orders)
    assert quiet == [] and in_doubt == ["UNKNOWN"] and len(orders) == 1  # nothing told, nothing sent while MEXC is silent
    assert len(told) == 1 and "left in doubt by a restart" in told[0] and [o["clientOrderId"] for o in orders] == [
        j.client_order_id for j in again.portfolio.journal.orders()]
