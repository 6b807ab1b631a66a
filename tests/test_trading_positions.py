"""Positions on the emulator: a Buy opens a position from its fills (paper: walked through the book;
live: myTrades with MEXC's commission), sells realise PnL by average cost, the rebuild from myTrades
gives the same figures or says what is missing, and the reserve and limits refuse with reasons."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

from common.config import Config, config_from_mapping
from common.signal import Signal, make_signal_id
from sim.rest_server import DEFAULT_API_KEY, DEFAULT_API_SECRET
from sim.server import run_emulator
from store.history import Store
from trading.audit import audit
from trading.fills import rebuild
from trading.trader import Trader


def _config(rest_url: str, live: bool, **trading: object) -> Config:
    mexc = {"rest_url": rest_url, "api_key": DEFAULT_API_KEY, "api_secret": DEFAULT_API_SECRET} if live else {"rest_url": rest_url}
    return config_from_mapping({"mexc": mexc, "telegram": {"allowed_ids": [1]},
                                "trading": {"live": live, "stake_usd": 100, **trading}}, environ={})  # fmt: skip


def _signal(emu: Any, symbol: str, n: int = 0) -> Signal:
    now = time.time_ns()
    t = 1_790_000_000_000 + n
    return Signal(make_signal_id(symbol, t, 0), symbol, "alpha1", t, now, now, emu.market.best_bid_ask(symbol)[2], 0.8, {}, [], 0)


def _pairs(emu: Any, n: int) -> list[str]:
    out = [s.symbol for s in emu.market.symbols if s.status == "1" and s.quote == "USDT" and s.api_tradable and s.market_order_allowed]
    assert len(out) >= n
    return out[:n]


async def test_paper_buy_walks_the_book_and_a_sell_realises_pnl_by_average_cost(tmp_path: Path) -> None:
    async with run_emulator(pairs=40, seed=11) as emu:
        (symbol,) = _pairs(emu, 1)
        trader = Trader(_config(emu.rest_url, live=False), Store(tmp_path))
        ask = emu.market.best_bid_ask(symbol)[2]
        result = await trader.buy(_signal(emu, symbol), 1)
        (fig,) = trader.ledger.open("paper")
        half = await trader.exits.sell(symbol, 0.5, "test")
        rest = await trader.exits.sell(symbol, 1.0, "test")
        again = await trader.exits.sell(symbol, 1.0, "test")
        await trader.close()
        state = emu.rest.state()
    assert result.ok and math.isclose(result.fee, 0.05, rel_tol=1e-9)  # 0.05 % of $100, in USDT
    assert fig.row.symbol == symbol and fig.pos.avg_price >= ask and math.isclose(fig.pos.invested, 100.05, rel_tol=1e-9)
    assert half.ok and "realised" in half.message and " left" in half.message and not half.closed
    assert rest.ok and rest.closed and "position closed" in rest.message
    assert not again.ok and "no open paper position" in again.message
    closed = trader.ledger.figures(fig.row.position_id)
    assert closed is not None and closed.row.status == "closed" and closed.pos.qty == 0
    assert math.isclose(closed.pos.realised, closed.pos.proceeds - closed.pos.invested, abs_tol=1e-9)
    pnl = trader.ledger.pnl("paper", 0, {})
    assert pnl["trades"] == 1 and math.isclose(pnl["realised"], closed.pos.realised)  # type: ignore[arg-type]
    assert state["orders"] == []  # paper never sends an order


async def test_live_fills_come_from_my_trades_and_match_the_account(tmp_path: Path) -> None:
    async with run_emulator(pairs=40, seed=11) as emu:
        (symbol,) = _pairs(emu, 1)
        base = emu.market.spec(symbol).base
        trader = Trader(_config(emu.rest_url, live=True), Store(tmp_path))
        bought = await trader.buy(_signal(emu, symbol), 1)
        (fig,) = trader.ledger.open("live")
        held = emu.rest.account.balances[base][0]
        trades = [t for t in emu.rest.account.spot.trades if t["isBuyer"]]
        part = await trader.exits.sell(symbol, 0.4, "test")
        after_part = trader.ledger.figures(fig.row.position_id)
        rebuilt = await rebuild(trader.rest, symbol, base, "USDT")
        emu.rest.account.balances[base][0] += 5.0  # a deposit the fills cannot explain
        rebuilt_more = await rebuild(trader.rest, symbol, base, "USDT")
        done = await trader.exits.sell(symbol, 1.0, "test")
        usdt = emu.rest.account.balances["USDT"][0]
        await trader.close()
    assert bought.ok and math.isclose(fig.pos.qty, held, rel_tol=1e-9)
    assert math.isclose(bought.fee, sum(float(t["commission"]) for t in trades), rel_tol=1e-6)
    assert part.ok and not part.closed and after_part is not None
    assert math.isclose(after_part.pos.avg_price, fig.pos.avg_price, rel_tol=1e-12)  # a sell never moves the average
    assert not rebuilt.missing and math.isclose(rebuilt.pos.qty, after_part.pos.qty, rel_tol=1e-6)
    assert math.isclose(rebuilt.pos.avg_price, after_part.pos.avg_price, rel_tol=1e-6)
    assert math.isclose(rebuilt.pos.realised, after_part.pos.realised, rel_tol=1e-6, abs_tol=1e-9)
    assert any("holds" in m and "explain" in m for m in rebuilt_more.missing)
    assert done.ok and done.closed
    final = trader.ledger.figures(fig.row.position_id)
    assert final is not None and math.isclose(usdt - 1000.0, final.pos.proceeds - final.pos.invested, abs_tol=1e-6)


async def test_reserve_and_limits_refuse_with_their_reason(tmp_path: Path) -> None:
    async with run_emulator(pairs=60, seed=11) as emu:
        a, b, c = _pairs(emu, 3)
        paper = Trader(_config(emu.rest_url, live=False, paper_balance_usdt=350, reserve_usdt=60, max_open_positions=1,
                               buy_cooldown_s=3600), Store(tmp_path / "p"))  # fmt: skip
        first = await paper.buy(_signal(emu, a, 1), 1)
        other = await paper.buy(_signal(emu, b, 2), 1)
        same = await paper.buy(_signal(emu, a, 3), 1)
        paper.config.trading.max_open_positions = 0
        paper.config.trading.buy_cooldown_s = 0
        second = await paper.buy(_signal(emu, c, 4), 1)
        third = await paper.buy(_signal(emu, b, 5), 1)
        await paper.close()
        live = Trader(_config(emu.rest_url, live=True, max_exposure_usdt=150), Store(tmp_path / "l"))
        ok = await live.buy(_signal(emu, a, 6), 1)
        over = await live.buy(_signal(emu, b, 7), 1)
        await live.close()
    assert first.ok and not other.ok and "trading.max_open_positions" in other.message
    assert not same.ok and "trading.buy_cooldown_s" in same.message
    assert second.ok and not third.ok and "reserve" in third.message and "never spent" in third.message
    assert ok.ok and not over.ok and "trading.max_exposure_usdt" in over.message


async def test_concurrent_live_buys_never_cross_the_reserve(tmp_path: Path) -> None:
    async with run_emulator(pairs=80, seed=11, usdt_balance=1000.0) as emu:
        symbols = _pairs(emu, 8)
        trader = Trader(_config(emu.rest_url, live=True, reserve_usdt=500), Store(tmp_path))
        results = await asyncio.gather(*(trader.buy(_signal(emu, s, i), 1) for i, s in enumerate(symbols)))
        await trader.close()
        usdt = emu.rest.account.balances["USDT"][0]
    assert sum(r.ok for r in results) == 4 and usdt >= 500
    assert all("reserve" in r.message for r in results if not r.ok)


async def test_the_start_up_audit_restores_a_buy_killed_before_its_fills_were_stored(tmp_path: Path) -> None:
    async with run_emulator(pairs=40, seed=11) as emu:
        a, b = _pairs(emu, 2)
        trader = Trader(_config(emu.rest_url, live=True), Store(tmp_path))
        assert (await trader.buy(_signal(emu, a, 1), 1)).ok and (await trader.buy(_signal(emu, b, 2), 1)).ok
        await trader.close()
        # As if killed right after sending a's Buy: the order still PENDING, none of its fills stored.
        (cid,) = trader.store.db.execute("SELECT client_order_id FROM orders WHERE symbol = ?", (a,)).fetchone()
        trader.store.db.execute("UPDATE orders SET status = 'PENDING', exchange_order_id = NULL, qty = NULL WHERE client_order_id = ?", (cid,))
        trader.store.db.execute("DELETE FROM fills WHERE client_order_id = ?", (cid,))
        trader.store.db.execute("DELETE FROM positions WHERE symbol = ?", (a,))
        emu.rest.account.balances[emu.market.spec(b).base][0] += 3.0  # and b's coin arrived by a deposit too
        again = Trader(_config(emu.rest_url, live=True), Store(tmp_path))
        lines = await audit(again)
        quiet = await audit(again)
        held_a = emu.rest.account.balances[emu.market.spec(a).base][0]
        await again.close()
    restored = again.ledger.positions.open_position("live", a)
    assert restored is not None, lines
    fig = again.ledger.figures(restored.position_id)
    assert fig is not None and math.isclose(fig.pos.qty, held_a, rel_tol=1e-9)
    assert any(line.startswith(f"A Buy of {a} was left in doubt") and "bought" in line for line in lines)
    assert any(line.startswith(f"{b}: ") and "holds" in line for line in lines)
    assert not any(line.startswith("A Buy") for line in quiet)  # settled once, never bought again
