"""The bot through the fake Bot API: cards, buttons, commands, authorisation, outages, restarts."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.cards import card_text, escape, exchange_url, fill_text, format_price
from bot.process import Bot, run_bot
from common.config import Config, config_from_mapping, set_value
from common.logs import MASKER, JsonFormatter
from common.messages import (
    CfgReply,
    CfgSet,
    ConfigChanged,
    Notice,
    OutcomeStored,
    SignalStored,
    StatusReply,
    StatusRequest,
    Stop,
    decode,
    encode,
)
from common.signal import Signal, make_signal_id
from core.rowspec import FEATURE_ROW_DTYPE
from sim.fake_telegram import FakeTelegram, markdown_v2_error, run_fake_telegram
from sim.server import run_emulator
from store.history import Store

OWNER, STRANGER = 4242, 666


def _config(fake: FakeTelegram, data_dir: Path, rest_url: str = "http://127.0.0.1:9") -> Config:
    return config_from_mapping(
        {"telegram": {"token": fake.token, "base_url": fake.base_url, "allowed_ids": [OWNER],
                      "cards": {"rate_chat_per_s": 30}},  # the fake has no flood control here: bursts go at the global pace
         "storage": {"data_dir": str(data_dir)},
         "mexc": {"rest_url": rest_url}},
        environ={},
    )  # fmt: skip


def _signal(n: int = 0, symbol: str = "PEPEUSDT") -> Signal:
    t = 1_790_000_000_000 + n * 1000
    return Signal(make_signal_id(symbol, t, 0), symbol, "alpha1", t, time.time_ns(), time.time_ns(), 0.000012 + n * 1e-9, 0.78,
                  {"vsr": 7.4, "pm": 0.031, "obi": 0.4, "vc": 0.3}, ["VSR 7.4>5", "PM 3.10%>2%"], 0)  # fmt: skip


class FakeSupervisor:
    """The supervisor's end of the bot pipe, answering status and /cfg like the real one."""

    def __init__(self, conn: Any, config: Config) -> None:
        self.conn, self.config = conn, config
        self.mute = False  # a hung supervisor: requests are read and never answered
        self.received: list[Any] = []

    def pump(self) -> None:
        while self.conn.poll():
            msg = decode(self.conn.recv())
            self.received.append(msg)
            if self.mute:
                continue
            if isinstance(msg, StatusRequest):
                self.conn.send(encode(StatusReply(msg.req_id, {
                    "processes": [{"name": "supervisor", "pid": 1, "cpu_percent": 1.5, "rss_bytes": 50 * 2**20, "pss_bytes": 30 * 2**20, "uptime_s": 7200}],
                    "links": 134, "streams": 4000, "frames_per_s": 6000.0, "reconnects": 2, "latency_p95_ms": 12.5, "pairs_watched": 2000,
                    "signals_last_hour": 3})))  # fmt: skip
            elif isinstance(msg, CfgSet):
                try:
                    self.config = set_value(self.config, msg.key, msg.value)
                    self.conn.send(encode(CfgReply(msg.req_id, True, f"{msg.key} = {msg.value}")))
                except ValueError as exc:
                    self.conn.send(encode(CfgReply(msg.req_id, False, str(exc))))


@asynccontextmanager
async def running_bot(fake: FakeTelegram, tmp: Path, rest_url: str = "http://127.0.0.1:9") -> AsyncIterator[tuple[Bot, FakeSupervisor]]:
    async with bot_with(fake, _config(fake, tmp, rest_url)) as running:
        yield running


@asynccontextmanager
async def bot_with(fake: FakeTelegram, config: Config) -> AsyncIterator[tuple[Bot, FakeSupervisor]]:
    """The real Bot on config, in this event loop, its pipe answered by a FakeSupervisor; stopped after."""
    fake.long_poll_cap_s = 0.5  # the bot's shutdown waits for the current long poll
    ours, theirs = mp.Pipe(duplex=True)
    supervisor = FakeSupervisor(ours, config)
    bot = Bot(config, theirs, request_timeout_s=1.0)
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
    async with run_fake_telegram() as fake, running_bot(fake, tmp_path) as (bot, supervisor):
        sig = _signal()
        bot.store.add_signal(sig)
        supervisor.conn.send(encode(SignalStored(sig.signal_id)))  # as the supervisor does
        await _until(lambda: fake.sent())
        await asyncio.sleep(0.3)
        sent = fake.sent()
        assert len(sent) == 1
        card = sent[0]
        assert card["chat_id"] == OWNER and card["parse_mode"] == "MarkdownV2"
        lines = card["text"].split("\n")
        assert lines[0] == "🚀 *PEPEUSDT* — VSR 7\\.4  PM 3\\.10%  Score 0\\.78"  # model.json is hand-set: a score, not a prob
        assert lines[1] == "Price: `0.000012` ⏱ 2026\\-09\\-21 14:13:20 UTC"
        assert re.fullmatch(r"Sent 0\\\.\d s after the market data that fired it · profile alpha1 · "
                            r"score from hand\\-set weights, not a measured probability", lines[2]), lines[2]  # fmt: skip
        assert lines[3:] == ["Why:", "• VSR 7\\.4\\>5", "• PM 3\\.10%\\>2%", "On MEXC: https://www\\.mexc\\.com/exchange/PEPE\\_USDT"]
        assert card["link_preview_options"]["is_disabled"] is True  # the link is text; Telegram must not fetch it
        buttons = card["reply_markup"]["inline_keyboard"]
        assert [[b["text"] for b in row] for row in buttons] == [["Buy $100", "Skip"]]
        assert [b["callback_data"] for b in buttons[0]] == [f"buy:{sig.signal_id}", f"skip:{sig.signal_id}"]
        assert bot.store.unsent_signals() == []


def test_re_alert_cards_carry_the_escalation_marker() -> None:
    sig = _signal()
    sig.escalation = 2
    text = card_text(sig)
    assert "🔺 re\\-alert \\#2" in text and markdown_v2_error(text) is None
    assert "re\\-alert" not in card_text(_signal())


def test_a_trained_model_says_pump_prob_and_a_hand_set_one_says_score() -> None:
    """Issue #24: "Prob 0.99" from a hand-set model (trained: null) promised a calibration nobody measured."""
    sig = _signal()
    sig.prob = 0.999  # rounded down: never a certain-looking 1.00
    assert "Score 0\\.99" in card_text(sig) and "hand\\-set weights" in card_text(sig) and "Prob" not in card_text(sig)
    sig.model_trained = True
    assert "Pump prob 0\\.99" in card_text(sig) and "hand\\-set" not in card_text(sig)


def test_the_latency_line_is_fixed_at_send_time_and_replaces_the_frozen_age() -> None:
    """Issue #24: "Age" was computed once at render and never changed; the card now states its own latency,
    which is true forever: market data received -> card sent (the decided card passes the stored send time)."""
    sig = _signal()
    sig.recv_ns = 1_000_000_000_000
    assert "Sent 0\\.4 s after the market data that fired it" in card_text(sig, now_ns=sig.recv_ns + 400_000_000)
    assert "Sent 5\\.0 min after" in card_text(sig, now_ns=sig.recv_ns + 300 * 10**9)  # a card resent after an outage says so
    assert "Age" not in card_text(sig, now_ns=sig.recv_ns)


def test_price_changes_volume_and_exchange_link_are_on_the_card_and_valid_markdown() -> None:
    sig = _signal()
    sig.change_1m, sig.change_5m, sig.change_15m, sig.quote_volume_24h = 0.012, -0.0034, None, 1_234_567.0
    text = card_text(sig)
    assert "Change: 1m \\+1\\.20% · 5m \\-0\\.34% · 15m n/a · 24h volume $1\\.23M" in text.split("\n")
    assert text.split("\n")[-1] == "On MEXC: https://www\\.mexc\\.com/exchange/PEPE\\_USDT" and markdown_v2_error(text) is None
    assert "Change:" not in card_text(_signal())  # a signal stored before the context existed: no line of n/a
    for symbol, url in (("ETHBTC", "https://www.mexc.com/exchange/ETH_BTC"), ("X(1)USDT", "https://www.mexc.com/exchange/X%281%29_USDT")):
        sig.symbol = symbol
        assert exchange_url(symbol) == url and escape(url) in card_text(sig) and markdown_v2_error(card_text(sig)) is None
    assert exchange_url("WEIRD") is None and exchange_url("USDT") is None


def test_the_fill_line_states_price_and_slippage_against_the_signal() -> None:
    assert fill_text(0.000012, 0.00001211, "paper") == "Paper fill at 0.00001211: +0.92% vs the signal price 0.000012 (slippage)"
    assert fill_text(2.0, 1.99, "live") == "Filled at 1.99: -0.50% vs the signal price 2 (slippage)"
    assert fill_text(2.0, None, "live") is None and fill_text(0.0, 1.5, "live") == "Filled at 1.5"


async def test_skip_answers_ignored_and_edits_the_card_once(tmp_path: Path) -> None:
    async with run_fake_telegram() as fake, running_bot(fake, tmp_path) as (bot, _):
        sig = _signal()
        bot.store.add_signal(sig)
        bot._send_event.set()
        card = (await _until(lambda: fake.sent()))[0]
        message_id = next(c for c in fake.calls if c.method == "sendMessage") and max(m for (_, m) in fake._messages)
        await fake.inject_callback(OWNER, OWNER, message_id, f"skip:{sig.signal_id}")
        answers = await _until(lambda: fake.sent("answerCallbackQuery"))
        assert answers[0]["text"] == "Ignored"
        edits = await _until(lambda: fake.sent("editMessageText"))
        assert "Skipped by 4242" in edits[0]["text"] and "reply_markup" not in edits[0]
        await fake.inject_callback(OWNER, OWNER, message_id, f"buy:{sig.signal_id}")
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
        await fake.inject_callback(OWNER, OWNER, message_id, f"buy:{sig.signal_id}")
        await fake.inject_callback(OWNER, OWNER, message_id, f"buy:{sig.signal_id}")
        answers = await _until(lambda: len(fake.sent("answerCallbackQuery")) >= 2 and fake.sent("answerCallbackQuery"))
        assert answers[0]["text"].startswith("paper buy: $100 of " + symbol)
        assert answers[1]["text"].startswith("Already decided")
        edits = await _until(lambda: fake.sent("editMessageText"))
        assert len(edits) == 1 and "🛒 Buy by 4242 \\(paper\\): paper buy: $100 of" in edits[0]["text"]
        assert edits[0]["reply_markup"] == {"inline_keyboard": [[{"text": "Sell", "callback_data": f"sell:{sig.signal_id}"}]]}
        order = bot.trader.store.get_order(bot.trader.store.db.execute("SELECT client_order_id FROM orders").fetchone()[0])
        assert order is not None and order.price
        slippage = f"{(order.price / sig.price - 1) * 100:+.2f}%"
        assert escape(f"Paper fill at {format_price(order.price)}: {slippage} vs the signal price {format_price(sig.price)} (slippage)") in edits[0]["text"]
        assert markdown_v2_error(edits[0]["text"]) is None
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
        for text in ("/status", "/cfg detectors.pump.profiles.alpha1.vsr_min 1", "/pause", "hello"):
            await fake.inject_message(STRANGER, STRANGER, text)
        await fake.inject_callback(STRANGER, STRANGER, message_id, f"buy:{sig.signal_id}")
        await asyncio.sleep(2.5)
        replies = [c for c in fake.calls[before:] if c.method not in ("getUpdates",)]
        assert replies == []
        assert bot.store.get_action(sig.signal_id) is None and not bot.paused


async def test_commands_status_cfg_and_pause(tmp_path: Path) -> None:
    async with run_fake_telegram() as fake, running_bot(fake, tmp_path) as (bot, supervisor):
        await fake.inject_message(OWNER, OWNER, "/status")
        status = await _until(lambda: fake.sent())
        assert status[0]["text"] == (
            "supervisor (pid 1): CPU 1.5%  RSS 50 MB  PSS 30 MB  up 2h 00m\n"
            "links 134, streams 4000, 6000 frames/s, reconnects 2\n"
            "latency p95 12.5 ms, pairs 2000, signals last hour 3"
        )
        await fake.inject_message(OWNER, OWNER, "/cfg scanner.nope 5")
        await _until(lambda: len(fake.sent()) >= 2)
        assert fake.sent()[1]["text"].startswith("Refused, nothing changed: scanner.nope: unknown key")
        await fake.inject_message(OWNER, OWNER, "/cfg detectors.pump.profiles.alpha1.vsr_min 6")
        await _until(lambda: len(fake.sent()) >= 3)
        assert fake.sent()[2]["text"] == "Changed: detectors.pump.profiles.alpha1.vsr_min = 6" and supervisor.config.detectors.pump.profiles.alpha1.vsr_min == 6.0
        await fake.inject_message(OWNER, OWNER, "/cfg")
        await _until(lambda: len(fake.sent()) >= 4)
        assert "telegram.token = ***" in fake.sent()[3]["text"] and fake.token not in fake.sent()[3]["text"]
        await fake.inject_message(OWNER, OWNER, "/pause")
        await _until(lambda: bot.paused)
        bot.store.add_signal(_signal(1))
        bot._send_event.set()
        await asyncio.sleep(1.0)
        assert all("🚀" not in m["text"] for m in fake.sent())
        assert bot.store.unsent_signals() == []  # stored and suppressed, never to be sent later
        await fake.inject_message(OWNER, OWNER, "/resume")
        await _until(lambda: not bot.paused)
        bot.store.add_signal(_signal(2))
        bot.notify()
        cards = await _until(lambda: [m for m in fake.sent() if m["text"].startswith("🚀")])
        assert len(cards) == 1 and _signal(2).signal_id in cards[0]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]


async def test_stats_shows_outcomes_per_window_only_to_allowed_ids(tmp_path: Path) -> None:
    from supervisor.outcome import OutcomeTracker

    async with run_fake_telegram() as fake, running_bot(fake, tmp_path) as (bot, supervisor):
        # What the supervisor does when watches close: store them, then tell the bot over the pipe.
        tracker = OutcomeTracker(bot.config.outcome)
        for n, peak in enumerate((1.12, 1.03, 0.90)):  # a hit (TP), a miss that times out, a miss with stop-loss
            sig = _signal(n, f"P{n}USDT")
            bot.store.add_signal(sig)
            bot.store.mark_suppressed(sig.signal_id, "test: no card")
            tracker.open(sig.signal_id, sig.symbol, sig.profile, n + 1, sig.exchange_time_ms, 1.0)
            rows = np.zeros(1, dtype=FEATURE_ROW_DTYPE)
            rows[0]["pair_id"], rows[0]["row_time_ms"], rows[0]["last_price"] = n + 1, sig.exchange_time_ms + 60_000, peak
            tracker.update(rows)
        rows["pair_id"], rows["row_time_ms"] = 99, rows["row_time_ms"] + 1300 * 1000
        for outcome in tracker.update(rows):
            assert bot.store.add_outcome(outcome.to_dict())
            supervisor.conn.send(encode(OutcomeStored(outcome.to_dict())))
        await _until(lambda: bot.outcomes_seen == 3)
        bot.store.db.execute("UPDATE outcomes SET closed_ns = ? WHERE signal_id = ?", (time.time_ns() - 3 * 86400 * 10**9, _signal(2, "P2USDT").signal_id))
        await fake.inject_message(STRANGER, STRANGER, "/stats")
        await fake.inject_message(OWNER, OWNER, "/stats")
        (reply,) = await _until(lambda: fake.sent())
        assert reply["chat_id"] == OWNER and reply["text"].splitlines()[1:] == [
            "Outcomes 24 h: hit rate 50 % (1 hit / 1 miss); TP 1, SL 0, TIMEOUT 1",
            "Outcomes 7 d: hit rate 33 % (1 hit / 2 miss); TP 1, SL 1, TIMEOUT 1",
            "Outcomes all: hit rate 33 % (1 hit / 2 miss); TP 1, SL 1, TIMEOUT 1",
        ]
        await asyncio.sleep(1.0)
        assert len(fake.sent()) == 1  # the stranger got nothing


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
        await _until(lambda: bot.store.unsent_signals() == [])  # the last card is marked sent right after Telegram took it


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
        await fake.inject_callback(OWNER, OWNER, 1, data)
        answers = await _until(lambda: fake.sent("answerCallbackQuery"))
        assert answers[0]["text"] == "Unknown button."


async def test_supervisor_silence_gives_a_clear_timeout_message(tmp_path: Path) -> None:
    async with run_fake_telegram() as fake, running_bot(fake, tmp_path) as (_, supervisor):
        supervisor.mute = True
        await fake.inject_message(OWNER, OWNER, "/status")
        await fake.inject_message(OWNER, OWNER, "/cfg detectors.pump.profiles.alpha1.vsr_min 6")
        replies = await _until(lambda: len(fake.sent()) >= 2 and fake.sent(), timeout=5)
        assert replies[0]["text"].startswith("The supervisor did not answer within 1 s")
        assert "nothing changed" in replies[1]["text"]
        assert [type(m) for m in supervisor.received] == [StatusRequest, CfgSet]


async def test_429_retry_after_is_honoured(tmp_path: Path) -> None:
    async with run_fake_telegram() as fake, running_bot(fake, tmp_path) as (bot, _):
        fake.fail_next("sendMessage", 429, retry_after=1)
        bot.store.add_signal(_signal())
        bot.notify()
        await _until(lambda: fake.sent())
        attempts = [c for c in fake.calls if c.method == "sendMessage"]
        assert [c.ok for c in attempts] == [False, True]
        assert attempts[1].at_ns - attempts[0].at_ns >= 0.95e9  # waited retry_after before trying again


@pytest.mark.parametrize("mode", ["502", "refused"])
async def test_outage_from_the_start_then_recovery_delivers_every_card_once(tmp_path: Path, mode: str) -> None:
    async with run_fake_telegram() as fake:
        await fake.set_outage(True, mode)
        for n in range(5):
            Store(tmp_path).add_signal(_signal(n))
        async with running_bot(fake, tmp_path) as (bot, supervisor):
            await asyncio.sleep(1.5)
            assert fake.sent() == []
            await fake.inject_message(OWNER, OWNER, "/status")  # queued in Telegram while the bot cannot reach it
            await fake.set_outage(False)
            await _until(lambda: len(fake.sent()) >= 6, timeout=20)
            await asyncio.sleep(0.5)
            cards = [m["text"] for m in fake.sent() if m["text"].startswith("🚀")]
            assert len(cards) == len(set(cards)) == 5
            assert bot.store.unsent_signals() == []


async def test_token_never_reaches_a_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for chatty in ("httpx", "httpcore", "telegram"):  # a test that ran setup_logging before quieted them (common/logs.py)
        caplog.set_level(logging.DEBUG, logger=chatty)
    async with run_fake_telegram() as fake, running_bot(fake, tmp_path) as (bot, _):
        bot.store.add_signal(_signal())
        bot.notify()
        await _until(lambda: fake.sent())
        await fake.set_outage(True, "refused")
        bot.store.add_signal(_signal(1))
        bot.notify()
        await fake.inject_message(STRANGER, STRANGER, f"secret words {fake.token}")
        await asyncio.sleep(1.5)
        await fake.set_outage(False)
        await _until(lambda: len(fake.sent()) >= 2, timeout=20)
        await asyncio.sleep(0.5)
    formatter = JsonFormatter("bot")
    MASKER.set_secrets([fake.token])
    try:
        lines = [formatter.format(r) for r in caplog.records]
    finally:
        MASKER.set_secrets([])
    assert any("127.0.0.1" in line for line in lines)  # libraries did log request URLs ...
    assert not [line for line in lines if fake.token in line or fake.token.split(":")[1] in line]  # ... never the token
    refused = [r for r in caplog.records if r.name == "scanner.bot.auth"]
    assert refused and all(getattr(r, "user_id", None) == STRANGER and "secret words" not in formatter.format(r) for r in refused)


async def test_a_card_in_flight_when_the_bot_stops_is_recorded_and_not_sent_again(tmp_path: Path) -> None:
    """Stop while Telegram is still answering a card: the bot waits for the answer and records the card,
    so the next start does not send it a second time (a stop right after a send used to cancel the record)."""
    async with run_fake_telegram() as fake:
        fake.answer_delay_s = 0.6  # under the bot's 1 s request timeout here: the send succeeds, slowly
        sig = _signal()
        async with running_bot(fake, tmp_path) as (bot, supervisor):
            bot.store.add_signal(sig)
            supervisor.conn.send(encode(SignalStored(sig.signal_id)))
            await _until(lambda: fake.sent())  # in the chat; the answer is still on its way when the bot stops
        fake.answer_delay_s = 0.0
        async with running_bot(fake, tmp_path) as (bot, _):
            await asyncio.sleep(1.0)
            assert bot.store.unsent_signals() == []
        assert len([m for m in fake.sent() if sig.signal_id in str(m.get("reply_markup"))]) == 1


async def test_run_bot_process_sends_cards_and_stops_on_request_or_sigterm(tmp_path: Path) -> None:
    async with run_fake_telegram() as fake:
        fake.long_poll_cap_s = 0.5
        config = _config(fake, tmp_path)
        store = Store(tmp_path)
        ctx = mp.get_context("fork")
        for how in ("stop", "sigterm"):
            ours, theirs = ctx.Pipe(duplex=True)
            proc = ctx.Process(target=run_bot, args=(config, theirs), daemon=True)
            proc.start()
            sig = _signal(0 if how == "stop" else 1)
            store.add_signal(sig)
            ours.send(encode(SignalStored(sig.signal_id)))
            await _until(lambda sid=sig.signal_id: any(sid in str(m["reply_markup"]) for m in fake.sent()), timeout=20)
            if how == "stop":
                ours.send(encode(Stop()))
            else:
                proc.terminate()
            await _until(lambda p=proc: not p.is_alive(), timeout=15)
            assert proc.exitcode == 0
        assert len(fake.sent()) == 2 and store.unsent_signals() == []
        store.close()


async def test_a_config_change_reaches_the_bot_whole_and_owner_notices_are_sent(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Issue #24: every /cfg change logged two spurious "secrets are set only from the environment"
    warnings (the bot replayed the masked public dict key by key); a refused SIGHUP reload was never
    told to the owner."""
    caplog.set_level(logging.INFO)
    async with run_fake_telegram() as fake, running_bot(fake, tmp_path) as (bot, supervisor):
        changed = set_value(bot.config, "trading.stake_usd", "250")
        supervisor.conn.send(encode(ConfigChanged(changed)))
        await _until(lambda: bot.config.trading.stake_usd == 250.0)
        assert bot.config.telegram.token == fake.token  # the bot's secrets are intact
        supervisor.conn.send(encode(Notice("⚠️ Reload (SIGHUP) refused, the running config is unchanged: bad key")))
        notices = await _until(lambda: [m for m in fake.sent() if "Reload (SIGHUP) refused" in m["text"]])
        assert [int(m["chat_id"]) for m in notices] == [OWNER]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("scanner")]
