"""A live Buy, an exit and a paper Buy survive kill -9 at every store write after the order reached MEXC.

The whole-service chaos test (test_trading_service_chaos.py) kills at a random moment; this one
walks the moments: a child process places the order and SIGKILLs itself right before its k-th
store write after the order was sent (fills, position, journal, order status), for k = 1, 2, …
until a child finishes untouched. Each time a fresh process then runs the start-up path the bot
runs (exits: Exits.reconcile_all; buys: trading/audit.py), and the history must match MEXC:
the order placed once, its fills stored once, the order not left in doubt, and the position open
with what was bought or closed once sold in full. Found this way: a kill between an exit's fills
and the close of the position they emptied left an open position holding nothing, for ever.
Paper reaches nothing outside the store, so its check is the next press: it must finish the Buy.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from common.config import config_from_mapping
from common.signal import Signal, make_signal_id
from sim.rest_server import DEFAULT_API_KEY, DEFAULT_API_SECRET
from sim.server import run_emulator
from store.history import Store
from trading.audit import audit
from trading.trader import Trader

REPO = Path(__file__).resolve().parent.parent
CHILD = """
import asyncio, os, signal, sys, time
import trading.exits as exits
import trading.trader as trader_mod
from common.config import config_from_mapping
from common.signal import Signal, make_signal_id
from store.history import Store
from store.positions import PositionStore
from trading.trader import Trader

url, data_dir, symbol, what, kill_at, price, signal_ms = sys.argv[1:8]
state = {"sent": what == "paper-buy", "writes": 0}  # a paper Buy sends nothing: every write counts

def sent(original):
    async def wrapper(*args, **kwargs):
        result = await original(*args, **kwargs)
        state["sent"] = True
        return result
    return wrapper

def counted(cls, name):
    original = getattr(cls, name)
    def wrapper(*args, **kwargs):
        if state["sent"]:
            state["writes"] += 1
            if state["writes"] == int(kill_at):
                os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)
    setattr(cls, name, wrapper)

exits.place_market_sell = sent(exits.place_market_sell)
trader_mod.place_market_buy = sent(trader_mod.place_market_buy)
for name in ("add_position", "update_position", "add_fills", "add_exit", "update_exit"):
    counted(PositionStore, name)
counted(Store, "upsert_order")
config = config_from_mapping({"mexc": {"rest_url": url, "api_key": os.environ["K"], "api_secret": os.environ["S"]},
                              "telegram": {"allowed_ids": [1]}, "trading": {"live": what != "paper-buy"}}, environ={})
trader = Trader(config, Store(data_dir))
if what == "sell":
    asyncio.run(trader.exits.sell(symbol, 1.0, "chaos"))
else:
    ms = int(signal_ms)
    sig = Signal(make_signal_id(symbol, ms, 0), symbol, "alpha1", ms, ms * 10**6, ms * 10**6, float(price), 0.8, {}, [], 0)
    asyncio.run(trader.buy(sig, 1))
"""


def _config(url: str, live: bool = True) -> Any:
    return config_from_mapping({"mexc": {"rest_url": url, "api_key": DEFAULT_API_KEY, "api_secret": DEFAULT_API_SECRET},
                                "telegram": {"allowed_ids": [1]}, "trading": {"live": live}}, environ={})  # fmt: skip


async def _child(emu: Any, data: Path, symbol: str, what: str, kill_at: int, signal_ms: int) -> int:
    price = emu.market.best_bid_ask(symbol)[2]
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, emu.rest_url, str(data), symbol, what, str(kill_at), str(price), str(signal_ms), cwd=REPO,
        env={**os.environ, "K": DEFAULT_API_KEY, "S": DEFAULT_API_SECRET, "PYTHONPATH": str(REPO)})  # fmt: skip
    return await asyncio.wait_for(child.wait(), 60)


Step = Callable[[Any, Path, str, int, int, int], Awaitable[None]]  # emu, data dir, symbol, orders before, exit code, signal ms


async def _walk(tmp_path: Path, what: str, before: Callable[[Any, Path, str], Awaitable[None]], after: Step) -> int:
    """Kill the child before its 1st, 2nd, … store write after the order until one finishes; after() checks each restart."""
    async with run_emulator(pairs=40, seed=11) as emu:
        symbol = next(s.symbol for s in emu.market.symbols if s.status == "1" and s.quote == "USDT" and s.api_tradable
                      and s.market_order_allowed)  # fmt: skip
        kill_at, killed = 0, -9
        while killed == -9:
            kill_at += 1
            assert kill_at < 20, f"the {what} never finished untouched"
            data = tmp_path / f"k{kill_at}"
            await before(emu, data, symbol)
            mark = len(emu.rest.account.orders)
            signal_ms = time.time_ns() // 1_000_000  # fresh for each child: a live Buy refuses a stale signal
            killed = await _child(emu, data, symbol, what, kill_at, signal_ms)
            try:
                await after(emu, data, symbol, mark, killed, signal_ms)
            except AssertionError as exc:
                raise AssertionError(f"killed before store write {kill_at} after the {what}: {exc}") from exc
    return kill_at


async def test_an_exit_killed_at_every_store_write_is_settled_once_at_start_up(tmp_path: Path) -> None:
    async def bought(emu: Any, data: Path, symbol: str) -> None:
        trader = Trader(_config(emu.rest_url), Store(data))
        now = time.time_ns()
        sig = Signal(make_signal_id(symbol, now // 1_000_000, 0), symbol, "alpha1", now // 1_000_000, now, now,
                     emu.market.best_bid_ask(symbol)[2], 0.8, {}, [], 0)  # fmt: skip
        assert (await trader.buy(sig, 1)).ok
        await trader.close()

    async def restarted(emu: Any, data: Path, symbol: str, mark: int, killed: int, _signal_ms: int) -> None:
        again = Trader(_config(emu.rest_url), Store(data))
        told = await again.exits.reconcile_all()  # what the bot runs first after a restart
        await again.close()
        sells = [o for o in emu.rest.account.orders[mark:] if o["side"] == "SELL"]
        (position,) = again.ledger.positions.positions("live")
        journal = again.ledger.positions.exits(position.position_id)
        stored = again.ledger.positions.fills_of_order(sells[0]["clientOrderId"]) if sells else []
        trades = [t for t in emu.rest.account.spot.trades if sells and t["orderId"] == sells[0]["orderId"]]
        where = f"exit code {killed}; the restart said {told}"
        assert len(sells) == 1, where
        assert [e.status for e in journal] == ["FILLED"], (where, journal)
        assert sorted(f.trade_id for f in stored) == sorted(t["id"] for t in trades), where  # every fill, once
        assert position.status == "closed", where
        if killed == -9:
            assert told and all(r.ok and r.closed for r in told), where  # the owner is told what the restart found

    assert await _walk(tmp_path, "sell", bought, restarted) >= 2  # at least one kill landed after the sell, before its last write


async def test_a_buy_killed_at_every_store_write_is_recorded_once_at_start_up(tmp_path: Path) -> None:
    async def nothing(emu: Any, data: Path, symbol: str) -> None:
        return None

    async def restarted(emu: Any, data: Path, symbol: str, mark: int, killed: int, _signal_ms: int) -> None:
        again = Trader(_config(emu.rest_url), Store(data))
        lines = await audit(again)  # what the bot runs after a restart
        await again.close()
        buys = [o for o in emu.rest.account.orders[mark:] if o["side"] == "BUY"]
        where = f"exit code {killed}; audit said {lines}"
        assert len(buys) == 1, where
        (order,) = again.store.db.execute("SELECT client_order_id, status FROM orders").fetchall()
        assert order == (buys[0]["clientOrderId"], "FILLED"), where
        trades = [t for t in emu.rest.account.spot.trades if t["orderId"] == buys[0]["orderId"]]
        stored = again.ledger.positions.fills_of_order(order[0])
        assert sorted(f.trade_id for f in stored) == sorted(t["id"] for t in trades), where  # every fill, once
        (position,) = again.ledger.open("live")
        assert abs(position.pos.qty - sum(float(t["qty"]) for t in trades)) < 1e-9, where

    assert await _walk(tmp_path, "buy", nothing, restarted) >= 2


async def test_a_paper_buy_killed_at_every_store_write_is_finished_by_the_next_press(tmp_path: Path) -> None:
    """Paper has nothing outside the store: a kill must leave no FILLED order without its position, and the next press completes it."""

    async def nothing(emu: Any, data: Path, symbol: str) -> None:
        return None

    async def pressed_again(emu: Any, data: Path, symbol: str, mark: int, killed: int, ms: int) -> None:
        again = Trader(_config(emu.rest_url, live=False), Store(data))
        sig = Signal(make_signal_id(symbol, ms, 0), symbol, "alpha1", ms, ms * 10**6, ms * 10**6, emu.market.best_bid_ask(symbol)[2], 0.8,
                     {}, [], 0)  # fmt: skip
        result = await again.buy(sig, 1)
        await again.close()
        where = f"exit code {killed}; the press after it said {result.message!r}"
        assert result.ok and emu.rest.account.orders[mark:] == [], where  # paper: nothing reached the exchange
        (order,) = again.store.db.execute("SELECT client_order_id, status, qty FROM orders").fetchall()
        assert order[1] == "FILLED", where
        positions = again.ledger.open("paper")
        assert len(positions) == 1, where  # a FILLED paper order without its position was the bug
        position = positions[0]
        fills = again.ledger.positions.fills_of_order(order[0])
        assert [f.trade_id for f in fills] == [f.trade_id for f in again.ledger.positions.fills(position.row.position_id)], where
        assert abs(position.pos.qty - order[2]) < 1e-9 * max(1.0, order[2]), where  # the order says what the position holds

    assert await _walk(tmp_path, "paper-buy", nothing, pressed_again) >= 2
