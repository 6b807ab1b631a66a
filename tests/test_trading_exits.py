"""Automatic exits (take-profit, stop-loss, trailing stop; off by default) and dust handling."""

from __future__ import annotations

import time
from pathlib import Path

from common.config import TradingConfig, config_from_mapping
from common.signal import Signal, make_signal_id
from sim.server import run_emulator
from store.history import Store
from store.positions import PositionRow
from trading.avgcost import Fill, fold
from trading.exits import exit_order_id, exit_reason
from trading.ledger import Figures
from trading.trader import Trader


def _fig(peak: float | None = None) -> Figures:
    row = PositionRow("p", "KAZOUSDT", "KAZO", "USDT", "paper", "open", 0, None, 0, peak, None)
    return Figures(row, fold([Fill("1", "BUY", 1.0, 100.0)], "KAZO", "USDT"))


def test_each_rule_fires_only_past_its_level_and_all_are_off_by_default() -> None:
    off = TradingConfig()
    assert all(exit_reason(_fig(2.0), p, off) is None for p in (0.01, 1.0, 1.5, 100.0))
    tp, sl, trail = TradingConfig(take_profit=0.1), TradingConfig(stop_loss=0.05), TradingConfig(trailing_stop=0.1)
    assert exit_reason(_fig(), 1.099, tp) is None and (exit_reason(_fig(), 1.1, tp) or "").startswith("take-profit")
    assert exit_reason(_fig(), 0.951, sl) is None and (exit_reason(_fig(), 0.95, sl) or "").startswith("stop-loss")
    assert exit_reason(_fig(1.5), 1.36, trail) is None and (exit_reason(_fig(1.5), 1.35, trail) or "").startswith("trailing stop")
    assert exit_reason(_fig(0.9), 0.8, trail) is None  # never above the entry: a trailing stop only protects a gain


def test_exit_ids_are_deterministic_distinct_and_mexc_safe() -> None:
    ids = {exit_order_id("live:KAZOUSDT:1", n) for n in range(100)}
    assert len(ids) == 100 and exit_order_id("live:KAZOUSDT:1", 3) == exit_order_id("live:KAZOUSDT:1", 3)
    assert all(len(i) == 28 and i.startswith("scx_") for i in ids)


async def test_stop_loss_sells_paper_positions_and_dust_is_never_stranded(tmp_path: Path) -> None:
    async with run_emulator(pairs=40, seed=11) as emu:
        a, b = [s.symbol for s in emu.market.symbols if s.status == "1" and s.quote == "USDT" and s.api_tradable][:2]
        config = config_from_mapping({"mexc": {"rest_url": emu.rest_url}, "trading": {"live": False}}, environ={})
        trader = Trader(config, Store(tmp_path))
        for n, symbol in enumerate((a, b)):
            now = time.time_ns()
            sig = Signal(make_signal_id(symbol, 1_790_000_000_000 + n, 0), symbol, "alpha1", 1_790_000_000_000 + n, now, now,
                         emu.market.best_bid_ask(symbol)[2], 0.8, {}, [], 0)  # fmt: skip
            assert (await trader.buy(sig, 1)).ok
        nothing = await trader.exits.check_exits()  # every rule off
        most = await trader.exits.sell(b, 0.97, "test")  # $3 would be left, below the $5 minimum: all is sold
        trader.config.trading.stop_loss = 0.00001  # the bid is under the average entry (spread + fee): fires at once
        fired = await trader.exits.check_exits()
        await trader.close()
    assert nothing == []
    assert most.ok and most.closed
    assert len(fired) == 1 and fired[0].ok and fired[0].closed and fired[0].message.startswith("stop-loss")
    assert trader.ledger.open("paper") == []


async def test_the_supervisors_1s_close_drives_the_automatic_exit_and_the_trailing_high(tmp_path: Path) -> None:
    """With a close from the supervisor (Closes) the exit is judged on it, not on a REST book read; the
    trailing stop's high follows the closes."""
    async with run_emulator(pairs=40, seed=11) as emu:
        symbol = next(s.symbol for s in emu.market.symbols if s.status == "1" and s.quote == "USDT" and s.api_tradable)
        config = config_from_mapping({"mexc": {"rest_url": emu.rest_url}, "trading": {"live": False}}, environ={})
        trader = Trader(config, Store(tmp_path))
        now = time.time_ns()
        price = emu.market.best_bid_ask(symbol)[2]
        sig = Signal(make_signal_id(symbol, 1_790_000_000_000, 0), symbol, "alpha1", 1_790_000_000_000, now, now, price, 0.8, {}, [], 0)
        assert (await trader.buy(sig, 1)).ok
        entry = trader.ledger.open("paper")[0].pos.avg_price
        trader.config.trading.trailing_stop = 0.10
        quiet = await trader.exits.check_exits({symbol: entry * 1.5})  # a new high: no exit, the high moves to it
        high = trader.ledger.open("paper")[0].row.peak_price
        held = await trader.exits.check_exits({symbol: entry * 1.36})  # 9.3 % under the high: holds
        fired = await trader.exits.check_exits({symbol: entry * 1.34})  # 10.7 % under the high: sells
        await trader.close()
    assert quiet == [] and held == [] and high == entry * 1.5
    assert len(fired) == 1 and fired[0].message.startswith("trailing stop") and fired[0].closed
