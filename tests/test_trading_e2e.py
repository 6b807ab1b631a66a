"""End to end on the emulator through the fake Bot API: Buy on a card -> the card shows the fill ->
/positions shows it with PnL -> Sell (confirmed) -> the card shows the realised PnL -> /pnl counts it."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.process import Bot
from common.config import config_from_mapping
from common.signal import Signal, make_signal_id
from sim.fake_telegram import markdown_v2_error, run_fake_telegram
from sim.rest_server import DEFAULT_API_KEY, DEFAULT_API_SECRET
from sim.server import run_emulator

OWNER = 4242


async def _until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


@pytest.mark.parametrize("live", [True, False], ids=["live", "paper"])
async def test_buy_fill_positions_sell_pnl_through_telegram(tmp_path: Path, live: bool) -> None:
    async with run_emulator(pairs=30, seed=11) as emu, run_fake_telegram() as fake:
        fake.long_poll_cap_s = 0.5
        symbol = next(s.symbol for s in emu.market.symbols if s.status == "1" and s.quote == "USDT" and s.api_tradable
                      and s.market_order_allowed)  # fmt: skip
        mexc = {"rest_url": emu.rest_url, **({"api_key": DEFAULT_API_KEY, "api_secret": DEFAULT_API_SECRET} if live else {})}
        config = config_from_mapping({"telegram": {"token": fake.token, "base_url": fake.base_url, "allowed_ids": [OWNER]},
                                      "storage": {"data_dir": str(tmp_path)}, "mexc": mexc, "trading": {"live": live}},
                                     environ={})  # fmt: skip
        _, theirs = mp.Pipe(duplex=True)
        bot = Bot(config, theirs, request_timeout_s=1.0)
        task = asyncio.create_task(bot.run())
        try:
            now = time.time_ns()
            t = 1_790_000_000_000
            sig = Signal(make_signal_id(symbol, t, 0), symbol, "alpha1", t, now, now, emu.market.best_bid_ask(symbol)[2], 0.8,
                         {"vsr": 7.0, "pm": 0.03}, ["VSR 7>5"], 0)  # fmt: skip
            bot.store.add_signal(sig)
            bot.notify()
            card = await _until(lambda: fake.sent())
            card_id = max(m for (_, m) in fake._messages)
            await fake.press(OWNER, "Buy", message_id=card_id)
            filled = await _until(lambda: [e for e in fake.sent("editMessageText") if "Filled" in e["text"]])
            await fake.inject_message(OWNER, OWNER, "/positions")
            listing = await _until(lambda: [m for m in fake.sent() if m["text"].startswith("Open ")])
            await fake.inject_message(OWNER, OWNER, "/sell")
            await fake.inject_message(OWNER, OWNER, "/sell NOPEUSDT")
            await fake.inject_message(OWNER, OWNER, f"/sell {symbol} 50")
            half = await _until(lambda: [m for m in fake.sent() if m["text"].startswith("Sell 50% of")])
            await fake.press(OWNER, "Cancel")
            await _until(lambda: [e for e in fake.sent("editMessageText") if "nothing was sold" in e["text"]])
            await fake.press(OWNER, "Sell", message_id=card_id)
            ask = await _until(lambda: [m for m in fake.sent() if m["text"].startswith("Sell 100% of")])
            await fake.press(OWNER, "Confirm sell")
            closed = await _until(lambda: [e for e in fake.sent("editMessageText") if "Position closed" in e["text"]])
            await fake.inject_message(OWNER, OWNER, "/pnl all")
            pnl = await _until(lambda: [m for m in fake.sent() if m["text"].startswith("PnL all")])
        finally:
            bot.stop()
            await asyncio.wait_for(task, 20)
        sells = [o for o in emu.rest.account.orders if o["side"] == "SELL"]
    mode = "live" if live else "paper"
    assert card and filled[-1]["message_id"] == card_id and markdown_v2_error(filled[-1]["text"]) is None
    assert filled[-1]["reply_markup"]["inline_keyboard"][0][0]["text"] == "Sell"
    assert symbol in listing[-1]["text"] and "USDT (" in listing[-1]["text"] and f"Open {mode} positions" in listing[-1]["text"]
    assert symbol in ask[-1]["text"] and symbol in half[-1]["text"]
    texts = [m["text"] for m in fake.sent()]
    assert any(t.startswith("Usage: /sell SYMBOL [pct]") for t in texts) and "No open position in NOPEUSDT. /positions lists them." in texts
    edit = closed[-1]
    assert edit["message_id"] == card_id and "PnL" in edit["text"] and "held for" in edit["text"] and "reply_markup" not in edit
    assert markdown_v2_error(edit["text"]) is None
    assert f"PnL all ({mode}): realised" in pnl[-1]["text"] and "over 1 closed trades" in pnl[-1]["text"]
    assert len(sells) == (1 if live else 0)
