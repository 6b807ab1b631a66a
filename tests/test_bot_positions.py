"""The bot's position watcher (bot/positions.py): an automatic exit it fires is told to the owner,
and the daily summary goes out once at the configured UTC hour."""

from __future__ import annotations

import asyncio
import calendar
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bot import positions
from common.config import config_from_mapping
from common.signal import Signal, make_signal_id
from sim.server import run_emulator
from store.history import Store
from trading.trader import Trader


class _Telegram:
    def __init__(self, stop: asyncio.Event, after: int) -> None:
        self.sent: list[tuple[int, str]] = []
        self.stop, self.after = stop, after

    async def send_text(self, chat_id: int, text: str, **_: Any) -> None:  # the bot's notifier (bot/notifier.py)
        self.sent.append((chat_id, text))
        if len(self.sent) >= self.after:
            self.stop.set()


class _Cards:
    """The bot's card sender (bot/sender.py): the position's card edits, recorded."""

    def __init__(self) -> None:
        self.edits: list[tuple[str, str]] = []

    async def edit_all(self, sig: Signal, line: str, **_: Any) -> None:
        self.edits.append((sig.signal_id, line))


async def test_the_watcher_tells_automatic_exits_and_sends_one_daily_summary(tmp_path: Path) -> None:
    async with run_emulator(pairs=40, seed=11) as emu:
        symbol = next(s.symbol for s in emu.market.symbols if s.status == "1" and s.quote == "USDT" and s.api_tradable)
        config = config_from_mapping({"mexc": {"rest_url": emu.rest_url}, "telegram": {"allowed_ids": [7]},
                                      "trading": {"stop_loss": 0.00001, "exit_check_s": 0.5,
                                                  "daily_summary_hour_utc": time.gmtime().tm_hour}}, environ={})  # fmt: skip
        store = Store(tmp_path)
        trader = Trader(config, store)
        now = time.time_ns()
        sig = Signal(make_signal_id(symbol, 1_790_000_000_000, 0), symbol, "alpha1", 1_790_000_000_000, now, now,
                     emu.market.best_bid_ask(symbol)[2], 0.8, {}, [], 0)  # fmt: skip
        assert (await trader.buy(sig, 7)).ok
        stop = asyncio.Event()
        telegram = _Telegram(stop, after=2)
        cards = _Cards()
        watched: list[list[str]] = []
        bot = SimpleNamespace(config=config, trader=trader, store=store, notifier=telegram, cards=cards,
                              watch_prices=watched.append, fresh_closes=dict)  # no supervisor closes: the exits read REST
        await asyncio.wait_for(positions.watch(bot, stop), 20)
        assert watched[0] == [symbol]  # the held pair's closes are asked of the supervisor
        stop.clear()
        telegram.after = 99
        second = asyncio.create_task(positions.watch(bot, stop))  # same hour, the watcher again: no second summary
        await asyncio.sleep(1.2)
        stop.set()
        await second
        await trader.close()
    texts = [t for _, t in telegram.sent]
    assert texts[0].startswith("stop-loss:") and "position closed" in texts[0]
    assert texts[1].startswith("Daily summary — PnL 24h (paper): realised") and "over 1 closed trades" in texts[1]
    assert [c for c, _ in telegram.sent] == [7] * len(texts)
    assert sum(t.startswith("Daily summary") for t in texts) == 1  # once a day


async def test_the_daily_summary_is_sent_once_a_day_across_bot_restarts(tmp_path: Path) -> None:
    config = config_from_mapping({"mexc": {"rest_url": "http://127.0.0.1:9"}, "telegram": {"allowed_ids": [7]},
                                  "trading": {"daily_summary_hour_utc": 9}}, environ={})  # fmt: skip
    telegram = _Telegram(asyncio.Event(), after=99)
    day1, day2 = calendar.timegm((2026, 12, 6, 9, 0, 5, 0, 0, 0)), calendar.timegm((2026, 12, 7, 9, 0, 1, 0, 0, 0))
    moments = [day1, day1 + 1800, day1 + 3540, day1 + 3600, day2 - 60, day2, day2 + 3000]
    sent = []
    for now_s in moments:  # every moment a freshly started bot on the same data dir
        store = Store(tmp_path)
        trader = Trader(config, store)
        bot = SimpleNamespace(config=config, trader=trader, store=store, notifier=telegram, cards=_Cards())
        sent.append(await positions.daily_summary(bot, now_s))
        await trader.close()
        store.close()
    assert sent == [True, False, False, False, False, True, False]  # at 09:xx UTC, once per UTC day, restarts or not
    texts = [t for _, t in telegram.sent]
    assert len(texts) == 2 and all(t.startswith("Daily summary — PnL 24h (paper)") for t in texts)
