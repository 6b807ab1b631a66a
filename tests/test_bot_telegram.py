"""The bot through the fake Bot API: cards, buttons, commands, authorisation, outages, restarts."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.cards import card_text, escape
from bot.process import Bot
from bot.storage import Store
from common.config import Config, config_from_mapping, set_value
from common.signal import Signal, make_signal_id
from sim.fake_telegram import FakeTelegram, markdown_v2_error, run_fake_telegram
from sim.server import run_emulator

OWNER, STRANGER = 4242, 666


def _config(fake: FakeTelegram, data_dir: Path, rest_url: str = "http://127.0.0.1:9") -> Config:
    return config_from_mapping(
        {"telegram": {"token": fake.token, "base_url": fake.base_url, "allowed_ids": [OWNER]}, "storage": {"data_dir": str(data_dir)},
         "mexc": {"rest_url": rest_url}},
        environ={},
    )  # fmt: skip


def _signal(n: int = 0, symbol: str = "PEPE_1USDT".replace("_", "")) -> Signal:
    t = 1_790_000_000_000 + n * 1000
    return Signal(make_signal_id(symbol, t, 0), symbol, "alpha1", t, time.time_ns(), time.time_ns(), 0.000012 + n * 1e-9, 0.78,
                  {"vsr": 7.4, "pm": 0.031, "obi": 0.4, "vc": 0.3}, ["VSR 7.4>5", "PM 3.10%>2%"], 0)  # fmt: skip


class FakeSupervisor:
    """The supervisor's end of the bot pipe, answering status and /cfg like the real one."""

    def __init__(self, conn: Any, config: Config) -> None:
        self.conn, self.config = conn, config

    def pump(self) -> None:
        while self.conn.poll():
            msg = self.conn.recv()
            if msg["type"] == "status_request":
                self.conn.send({"type": "status_reply", "req_id": msg["req_id"], "status": {
                    "processes": [{"name": "supervisor", "pid": 1, "cpu_percent": 1.5, "rss_bytes": 50 * 2**20, "pss_bytes": 30 * 2**20, "uptime_s": 7200}],
                    "links": 134, "streams": 4000, "frames_per_s": 6000.0, "reconnects": 2, "latency_p95_ms": 12.5, "pairs_watched": 2000,
                    "signals_last_hour": 3}})  # fmt: skip
            elif msg["type"] == "cfg_set":
                try:
                    self.config = set_value(self.config, msg["key"], msg["value"])
                    self.conn.send({"type": "cfg_reply", "req_id": msg["req_id"], "ok": True, "message": f"{msg['key']} = {msg['value']}", "config": {}})
                except ValueError as exc:
                    self.conn.send({"type": "cfg_reply", "req_id": msg["req_id"], "ok": False, "message": str(exc), "config": {}})


@asynccontextmanager
async def running_bot(fake: FakeTelegram, tmp: Path, rest_url: str = "http://127.0.0.1:9") -> AsyncIterator[tuple[Bot, FakeSupervisor]]:
    config = _config(fake, tmp, rest_url)
    ours, theirs = mp.Pipe(duplex=True)
    supervisor = FakeSupervisor(ours, config)
    bot = Bot(config, theirs)
    task = asyncio.create_task(bot.run())

    async def pumping() -> None:
        while True:
            supervisor.pump()
            await asyncio.sleep(0.02)

    pump = asyncio.create_task(pumping())
    try:
        yield bot, supervisor
    finally:
        bot.stop()
        await asyncio.wait_for(task, 20)
        pump.cancel()


async def _until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_markdown_escaping_is_accepted_by_the_strict_validator() -> None:
    for symbol in ("PEPEUSDT", "A_B-C.USDT", "X(1)USDT", "1000*CATUSDT"):
        sig = _signal()
        sig.symbol = symbol
        sig.features = {"vsr": float("nan"), "pm": -0.0123}
        sig.reasons = ["PM -1.23%>2%", "weird [chars] {x} #1 !"]
        assert markdown_v2_error(card_text(sig)) is None, symbol
    assert markdown_v2_error("a.b") is not None and markdown_v2_error(escape("a.b")) is None


async def test_a_signal_produces_exactly_the_expected_card_and_buttons(tmp_path: Path) -> None:
    async with run_fake_telegram() as fake, running_bot(fake, tmp_path) as (bot, _):
        sig = _signal()
        bot.store.add_signal(sig)
        bot._send_event.set()
        sent = await _until(lambda: fake.sent())
        assert len(sent) == 1
        card = sent[0]
        assert card["chat_id"] == OWNER and card["parse_mode"] == "MarkdownV2"
        assert card["text"].startswith("🚀 *PEPE1USDT* — VSR 7\\.4  PM 3\\.10%  Prob 0\\.78\nPrice: `0.000012` ⏱ 2026\\-09\\-21")
        assert "Reasons: VSR 7\\.4\\>5" in card["text"]
        buttons = card["reply_markup"]["inline_keyboard"][0]
        assert [b["text"] for b in buttons] == ["Buy $100", "Skip"]
        assert [b["callback_data"] for b in buttons] == [f"buy:{sig.signal_id}", f"skip:{sig.signal_id}"]
        assert bot.store.unsent_signals() == []


async def test_skip_answers_ignored_and_edits_the_card_once(tmp_path: Path) -> None:
    async with run_fake_telegram() as fake, running_bot(fake, tmp_path) as (bot, _):
        sig = _signal()
        bot.store.add_signal(sig)
        bot._send_event.set()
        card = (await _until(lambda: fake.sent()))[0]
        message_id = next(c for c in fake.calls if c.method == "sendMessage") and max(m for (_, m) in fake._messages)
        await fake.inject_callback(OWNER, message_id, f"skip:{sig.signal_id}")
        answers = await _until(lambda: fake.sent("answerCallbackQuery"))
        assert answers[0]["text"] == "Ignored"
        edits = await _until(lambda: fake.sent("editMessageText"))
        assert "Skipped by 4242" in edits[0]["text"] and "reply_markup" not in edits[0]
        await fake.inject_callback(OWNER, message_id, f"buy:{sig.signal_id}")
        answers = await _until(lambda: len(fake.sent("answerCallbackQuery")) >= 2 and fake.sent("answerCallbackQuery"))
        assert answers[1]["text"].startswith("Already decided: skip")
        assert bot.store.get_action(sig.signal_id) == ("skip", OWNER)
        assert card["text"]


async def test_paper_buy_records_an_order_and_double_press_buys_once(tmp_path: Path) -> None:
    async with run_emulator(pairs=5) as emu, run_fake_telegram() as fake, running_bot(fake, tmp_path, emu.rest_url) as (bot, _):
        symbol = emu.market.symbols[0].symbol
        sig = _signal(symbol=symbol)
        bot.store.add_signal(sig)
        bot._send_event.set()
        await _until(lambda: fake.sent())
        message_id = max(m for (_, m) in fake._messages)
        await fake.inject_callback(OWNER, message_id, f"buy:{sig.signal_id}")
        await fake.inject_callback(OWNER, message_id, f"buy:{sig.signal_id}")
        answers = await _until(lambda: len(fake.sent("answerCallbackQuery")) >= 2 and fake.sent("answerCallbackQuery"))
        assert answers[0]["text"].startswith("paper buy: $100 of " + symbol)
        assert answers[1]["text"].startswith("Already decided")
        stats = bot.store.stats(0)
        assert stats["paper_orders"] == 1 and stats["buys"] == 1
        assert emu.rest.state()["orders"] == []  # paper mode never touches the exchange's order endpoint


async def test_outsiders_get_no_reply_and_change_nothing(tmp_path: Path) -> None:
    async with run_fake_telegram() as fake, running_bot(fake, tmp_path) as (bot, _):
        sig = _signal()
        bot.store.add_signal(sig)
        bot._send_event.set()
        await _until(lambda: fake.sent())
        message_id = max(m for (_, m) in fake._messages)
        before = len(fake.calls)
        for text in ("/status", "/cfg scanner.vsr_min 1", "/pause", "hello"):
            await fake.inject_message(STRANGER, text)
        await fake.inject_callback(STRANGER, message_id, f"buy:{sig.signal_id}")
        await asyncio.sleep(2.5)
        replies = [c for c in fake.calls[before:] if c.method not in ("getUpdates",)]
        assert replies == []
        assert bot.store.get_action(sig.signal_id) is None and not bot.paused


async def test_commands_status_cfg_and_pause(tmp_path: Path) -> None:
    async with run_fake_telegram() as fake, running_bot(fake, tmp_path) as (bot, supervisor):
        await fake.inject_message(OWNER, "/status")
        status = await _until(lambda: fake.sent())
        assert "supervisor: CPU 1.5%" in status[0]["text"] and "latency p95 12.5 ms" in status[0]["text"]
        await fake.inject_message(OWNER, "/cfg scanner.nope 5")
        await _until(lambda: len(fake.sent()) >= 2)
        assert fake.sent()[1]["text"].startswith("Refused, nothing changed: scanner.nope: unknown key")
        await fake.inject_message(OWNER, "/cfg scanner.vsr_min 6")
        await _until(lambda: len(fake.sent()) >= 3)
        assert fake.sent()[2]["text"] == "Changed: scanner.vsr_min = 6" and supervisor.config.scanner.vsr_min == 6.0
        await fake.inject_message(OWNER, "/cfg")
        await _until(lambda: len(fake.sent()) >= 4)
        assert "telegram.token = ***" in fake.sent()[3]["text"] and fake.token not in fake.sent()[3]["text"]
        await fake.inject_message(OWNER, "/pause")
        await _until(lambda: bot.paused)
        bot.store.add_signal(_signal(1))
        bot._send_event.set()
        await asyncio.sleep(1.0)
        assert all("🚀" not in m["text"] for m in fake.sent())


async def test_telegram_429_and_outage_lose_nothing_and_burst_is_delivered(tmp_path: Path) -> None:
    async with run_fake_telegram() as fake, running_bot(fake, tmp_path) as (bot, _):
        fake.fail_next("sendMessage", 429, retry_after=1)
        fake.outage = True
        for n in range(100):
            bot.store.add_signal(_signal(n))
        bot._send_event.set()
        await asyncio.sleep(1.5)
        fake.outage = False
        await _until(lambda: len(fake.sent()) >= 100, timeout=60)
        texts = [m["text"] for m in fake.sent()]
        assert len(texts) == len(set(texts)) == 100  # every card exactly once
        assert any(c.method == "sendMessage" and not c.ok for c in fake.calls)  # the 429 was really hit
        assert bot.store.unsent_signals() == []


async def test_cards_unsent_before_a_crash_are_sent_exactly_once_after_restart(tmp_path: Path) -> None:
    store = Store(tmp_path)
    sent_before = _signal(0)
    store.add_signal(sent_before)
    store.mark_card_sent(sent_before.signal_id, OWNER, 1, time.time_ns())
    for n in range(1, 4):
        store.add_signal(_signal(n))
    store.close()
    async with run_fake_telegram() as fake, running_bot(fake, tmp_path) as (bot, _):
        await _until(lambda: len(fake.sent()) >= 3)
        await asyncio.sleep(0.5)
        assert len(fake.sent()) == 3
        assert bot.store.unsent_signals() == []


@pytest.mark.parametrize("data", ["buy:../../etc", "buy:" + "A" * 70, "nope:X-1-0", "buy:", ""])
async def test_garbage_callback_data_is_refused_before_any_lookup(tmp_path: Path, data: str) -> None:
    async with run_fake_telegram() as fake, running_bot(fake, tmp_path) as (bot, _):
        await fake.inject_callback(OWNER, 1, data)
        answers = await _until(lambda: fake.sent("answerCallbackQuery"))
        assert answers[0]["text"] == "Unknown button."
