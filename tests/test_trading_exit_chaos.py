"""An exit is placed at most once across kill -9: a child process is killed right before or right
after it sends a sell; a fresh process reconciles and the user presses Sell again."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from common.config import config_from_mapping
from common.signal import Signal, make_signal_id
from sim.rest_server import DEFAULT_API_KEY, DEFAULT_API_SECRET
from sim.server import run_emulator
from store.history import Store
from trading.trader import Trader

REPO = Path(__file__).resolve().parent.parent
CHILD = """
import asyncio, os, signal, sys
import trading.exits as exits
from common.config import config_from_mapping
from store.history import Store
from trading.trader import Trader

url, data_dir, symbol, when = sys.argv[1:5]
original = exits.place_market_sell

async def killed(*args, **kwargs):
    if when == "before_send":
        os.kill(os.getpid(), signal.SIGKILL)
    result = await original(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
    return result

exits.place_market_sell = killed
config = config_from_mapping({"mexc": {"rest_url": url, "api_key": os.environ["K"], "api_secret": os.environ["S"]},
                              "telegram": {"allowed_ids": [1]}, "trading": {"live": True}}, environ={})
asyncio.run(Trader(config, Store(data_dir)).exits.sell(symbol, 1.0, "chaos"))
"""


def _config(url: str) -> object:
    return config_from_mapping({"mexc": {"rest_url": url, "api_key": DEFAULT_API_KEY, "api_secret": DEFAULT_API_SECRET},
                                "telegram": {"allowed_ids": [1]}, "trading": {"live": True}}, environ={})  # fmt: skip


@pytest.mark.parametrize("when", ["before_send", "after_send"])
async def test_an_exit_is_placed_once_across_kill_9(tmp_path: Path, when: str) -> None:
    async with run_emulator(pairs=40, seed=11) as emu:
        symbol = next(s.symbol for s in emu.market.symbols if s.status == "1" and s.quote == "USDT" and s.api_tradable
                      and s.market_order_allowed)  # fmt: skip
        trader = Trader(_config(emu.rest_url), Store(tmp_path))  # type: ignore[arg-type]
        now = time.time_ns()
        sig = Signal(make_signal_id(symbol, 1_790_000_000_000, 0), symbol, "alpha1", 1_790_000_000_000, now, now,
                     emu.market.best_bid_ask(symbol)[2], 0.8, {}, [], 0)  # fmt: skip
        assert (await trader.buy(sig, 1)).ok
        await trader.close()
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHILD, emu.rest_url, str(tmp_path), symbol, when, cwd=REPO,
            env={**os.environ, "K": DEFAULT_API_KEY, "S": DEFAULT_API_SECRET, "PYTHONPATH": str(REPO)})  # fmt: skip
        assert await asyncio.wait_for(child.wait(), 60) == -9
        sells_after_kill = [o for o in emu.rest.account.orders if o["side"] == "SELL"]
        again = Trader(_config(emu.rest_url), Store(tmp_path))  # type: ignore[arg-type]
        settled = await again.exits.reconcile_all()
        pressed = await again.exits.sell(symbol, 1.0, "pressed again")
        await again.close()
        sells = [o for o in emu.rest.account.orders if o["side"] == "SELL"]
    (position,) = again.ledger.positions.positions("live")
    journal = again.ledger.positions.exits(position.position_id)
    assert len(sells) == 1 and position.status == "closed"
    if when == "before_send":
        assert sells_after_kill == [] and not settled[0].ok
        assert [e.status for e in journal] == ["REJECTED", "FILLED"] and pressed.ok and pressed.closed
    else:
        assert len(sells_after_kill) == 1 and settled[0].ok and settled[0].closed
        assert [e.status for e in journal] == ["FILLED"] and not pressed.ok and "no open live position" in pressed.message
