"""Cards a trader reads, through the fake Bot API: chart photos, text fallbacks, bursts under flood control,
track record, follow-ups and the pinned stats message, mutes, group chats (issue #22)."""

from __future__ import annotations

import asyncio
import struct
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bot.daily
from bot.cards import card_text, escape
from bot.process import Bot
from common.config import Config, config_from_mapping
from common.messages import OutcomeStored, encode
from common.signal import Signal, make_signal_id
from core.rowspec import FEATURE_ROW_DTYPE
from sim.fake_telegram import FakeTelegram, markdown_v2_error, run_fake_telegram
from store.cards import CardStore
from supervisor.chart_history import ChartHistory
from tests.test_bot_telegram import FakeSupervisor, _until, bot_with

OWNER, STRANGER, GROUP = 4242, 666, -100777
T0 = 1_790_000_000_000


def _config(fake: FakeTelegram, data_dir: Path, **cards: Any) -> Config:
    telegram: dict[str, Any] = {"token": fake.token, "base_url": fake.base_url, "allowed_ids": [OWNER], "cards": {"rate_chat_per_s": 30, **cards}}
    if "chat_ids" in cards:
        telegram["chat_ids"] = telegram["cards"].pop("chat_ids")
    return config_from_mapping({"telegram": telegram, "storage": {"data_dir": str(data_dir)}}, environ={})


@asynccontextmanager
async def running(fake: FakeTelegram, tmp: Path, **cards: Any) -> AsyncIterator[tuple[Bot, FakeSupervisor]]:
    async with bot_with(fake, _config(fake, tmp, **cards)) as started:
        yield started


def _signal(n: int = 0, symbol: str = "PEPEUSDT", minutes: int = 30) -> Signal:
    t = T0 + minutes * 60_000 + n
    return Signal(make_signal_id(symbol, t, 0), symbol, "alpha1", t, time.time_ns(), time.time_ns(), 0.0000165, 0.78,
                  {"vsr": 7.4, "pm": 0.031, "obi": 0.4, "vc": 0.3}, ["VSR 7.4>5", "PM 3.10%>2%"], 0)  # fmt: skip


def _series(sig: Signal) -> dict[str, list[Any]]:
    """30 minutes of rows for one pair, the last three pumping, folded as the supervisor does."""
    rows = np.zeros(1800, dtype=FEATURE_ROW_DTYPE)
    price = 0.000012 * np.cumprod(1 + np.where(np.arange(1800) > 1620, 0.0012, 0.0) + 0.0004 * np.sin(np.arange(1800) / 7))
    rows["pair_id"], rows["row_time_ms"], rows["last_price"] = 5, sig.exchange_time_ms - 1800_000 + np.arange(1800) * 1000, price
    rows["pm"], rows["quote_vol_5m"] = 0.01, 40_000 + np.arange(1800) * 50.0
    history = ChartHistory()
    for start in range(0, 1800, 40):
        history.update(rows[start:start + 40])
    return history.series(5, sig.exchange_time_ms)


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def _store_signal(bot_: Bot, sig: Signal, chart: bool = True) -> None:
    if chart:
        CardStore(bot_.store.db).add_series(sig.signal_id, _series(sig))  # as supervisor/pipeline.py does, before the signal
    bot_.store.add_signal(sig)
    bot_.notify()


async def test_a_signal_arrives_as_a_photo_with_the_card_as_caption_and_the_same_buttons(tmp_path: Path) -> None:
    async with run_fake_telegram() as fake, running(fake, tmp_path) as (bot_, _):
        sig = _signal()
        _store_signal(bot_, sig)
        (photo,) = await _until(lambda: fake.sent("sendPhoto"))
        await asyncio.sleep(0.3)
        assert fake.sent() == []  # no text copy besides the photo
        message_id = max(m for (_, m) in fake._messages)
        png = fake.png(OWNER, message_id)
        assert _png_size(png) == (800, 450) and 5_000 < len(png) < 200_000  # small enough to send in well under a second
        caption = photo["caption"]
        assert photo["parse_mode"] == "MarkdownV2" and markdown_v2_error(caption) is None and len(caption) <= 1024
        assert caption.split("\n")[0] == card_text(sig).split("\n")[0] and caption.split("\n")[3:] == card_text(sig).split("\n")[3:]
        buttons = photo["reply_markup"]["inline_keyboard"]
        assert [[b["callback_data"] for b in row] for row in buttons] == [[f"buy:{sig.signal_id}", f"skip:{sig.signal_id}"]]
        await fake.inject_callback(OWNER, OWNER, message_id, f"skip:{sig.signal_id}")
        (edit,) = await _until(lambda: fake.sent("editMessageCaption"))  # a photo card is edited by its caption
        assert "Skipped by 4242" in edit["caption"] and "reply_markup" not in edit and bot_.store.unsent_signals() == []


@pytest.mark.parametrize("failure", ["import", "telegram refuses the image"])
async def test_the_card_still_goes_out_as_text_when_the_plotting_library_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                              failure: str) -> None:  # fmt: skip
    if failure == "import":
        monkeypatch.setitem(sys.modules, "PIL", None)  # "import PIL" raises ImportError, as with a broken install
    else:
        import bot.sender

        monkeypatch.setattr(bot.sender, "render_png", lambda *args: b"GIF89a not a png")  # the fake answers IMAGE_PROCESS_FAILED
    async with run_fake_telegram() as fake, running(fake, tmp_path) as (bot_, _):
        sig = _signal()
        _store_signal(bot_, sig)
        (card,) = await _until(lambda: fake.sent())
        assert card["text"].split("\n")[0] == card_text(sig).split("\n")[0] and fake.sent("sendPhoto") == []
        await _until(lambda: bot_.store.unsent_signals() == [])  # marked sent once every chat was tried
        assert bot_.cards.charts_failed == 1


async def test_a_slow_chart_never_delays_the_card_and_follows_as_a_reply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.sender

    real = bot.sender.render_png

    def slow(*args: Any) -> bytes:
        time.sleep(0.8)
        return real(*args)

    monkeypatch.setattr(bot.sender, "render_png", slow)
    async with run_fake_telegram() as fake, running(fake, tmp_path, chart_wait_s=0.1) as (bot_, _):
        sig = _signal()
        started = time.monotonic()
        _store_signal(bot_, sig)
        await _until(lambda: fake.sent())
        assert time.monotonic() - started < 0.75  # the text card did not wait for the render
        (photo,) = await _until(lambda: fake.sent("sendPhoto"))
        card_id = next(c.result["message_id"] for c in fake.calls if c.method == "sendMessage" and c.ok)
        assert photo["reply_parameters"]["message_id"] == card_id and "reply_markup" not in photo


async def test_a_burst_of_50_signals_is_delivered_completely_without_a_429_storm(tmp_path: Path) -> None:
    async with run_fake_telegram() as fake, running(fake, tmp_path, rate_chat_per_s=18, rate_global_per_s=18) as (bot_, _):
        fake.set_flood((20, 1.0), (30, 1.0))  # Telegram's answer to a bot that goes faster than this
        for n in range(50):
            _store_signal(bot_, _signal(n), chart=False)
        cards = await _until(lambda: len(fake.sent()) >= 50 and fake.sent(), timeout=30)
        assert len({c["reply_markup"]["inline_keyboard"][0][0]["callback_data"] for c in cards}) == 50
        assert [c for c in fake.calls if not c.ok] == []  # the notifier kept under the limit: not one 429
        assert "📬 49 more cards queued behind this one \\(Telegram rate limits\\)" in cards[0]["text"]
        assert "queued" not in cards[-1]["text"] and bot_.store.unsent_signals() == []


async def test_a_stricter_telegram_gets_a_pause_per_429_not_a_storm_and_nothing_is_lost(tmp_path: Path) -> None:
    async with run_fake_telegram() as fake, running(fake, tmp_path, rate_chat_per_s=30) as (bot_, _):
        fake.set_flood((10, 1.0))  # the chat's real limit is a third of what the config believes
        for n in range(30):
            _store_signal(bot_, _signal(n), chart=False)
        await _until(lambda: len(fake.sent()) >= 30, timeout=30)
        refused = [c for c in fake.calls if not c.ok]
        assert 1 <= len(refused) <= 4 and len(fake.sent()) == 30  # each 429 paused the chat for retry_after


async def test_cards_go_to_the_group_and_only_allowed_ids_may_press_there(tmp_path: Path) -> None:
    async with run_fake_telegram() as fake, running(fake, tmp_path, chat_ids=[GROUP], chart=False) as (bot_, _):
        sig = _signal()
        _store_signal(bot_, sig, chart=False)
        (card,) = await _until(lambda: fake.sent())
        assert card["chat_id"] == GROUP
        message_id = max(m for (_, m) in fake._messages)
        await fake.inject_callback(STRANGER, GROUP, message_id, f"buy:{sig.signal_id}")
        await asyncio.sleep(1.0)
        assert fake.sent("answerCallbackQuery") == [] and bot_.store.get_action(sig.signal_id) is None
        await fake.inject_message(OWNER, GROUP, "nice pump")  # talk in the group: no "Unknown command" under it
        await fake.inject_callback(OWNER, GROUP, message_id, f"skip:{sig.signal_id}")
        (edit,) = await _until(lambda: fake.sent("editMessageText"))
        assert len(fake.sent()) == 1
        assert edit["chat_id"] == GROUP and bot_.store.get_action(sig.signal_id) == ("skip", OWNER)


async def test_a_muted_pair_sends_nothing_and_its_signal_is_still_stored(tmp_path: Path) -> None:
    async with run_fake_telegram() as fake, running(fake, tmp_path, chart=False) as (bot_, _):
        await fake.inject_message(OWNER, OWNER, "/mute pepeusdt 2")
        (reply,) = await _until(lambda: fake.sent())
        assert reply["text"].startswith("PEPEUSDT muted here until ") and "(2 h)" in reply["text"]
        muted = _signal(1)
        _store_signal(bot_, muted, chart=False)
        _store_signal(bot_, _signal(2, "DOGEUSDT"), chart=False)
        await _until(lambda: len(fake.sent()) >= 2)
        await asyncio.sleep(0.5)
        assert [m["text"].split("\n")[0] for m in fake.sent()[1:]] == ["🚀 *DOGEUSDT* — VSR 7\\.4  PM 3\\.10%  Score 0\\.78"]
        assert bot_.store.get_signal(muted.signal_id) is not None and bot_.store.unsent_signals() == []
        for text in ("/mutes", "/unmute PEPEUSDT", "/mute", "/mute PEPEUSDT -3"):
            await fake.inject_message(OWNER, OWNER, text)
        answers = [m["text"] for m in (await _until(lambda: len(fake.sent()) >= 6 and fake.sent()))[2:]]
        assert answers[0].startswith("Muted here:\nPEPEUSDT until") and answers[1] == "PEPEUSDT unmuted: its cards come here again."
        assert answers[2].startswith("Usage: /mute SYMBOL") and answers[3].startswith("hours: got '-3'")
        _store_signal(bot_, _signal(3), chart=False)
        await _until(lambda: len(fake.sent()) >= 7)
        assert fake.sent()[6]["text"].startswith("🚀 *PEPEUSDT*")


def _outcome(sig: Signal, outcome: str, max_gain: float | None, trade: str | None) -> dict[str, Any]:
    return {"signal_id": sig.signal_id, "symbol": sig.symbol, "profile": sig.profile, "signal_time_ms": sig.exchange_time_ms,
            "price": sig.price, "horizon_s": 1200.0, "hit_gain": 0.10, "take_profit": 0.10, "stop_loss": 0.05, "outcome": outcome,
            "trade": trade, "max_gain": max_gain, "max_drawdown": -0.01 if max_gain is not None else None,
            "time_to_max_s": 210.0 if max_gain is not None else None, "tp_time_s": None, "sl_time_s": None, "rows": 100,
            "observed_from_ms": sig.exchange_time_ms, "resumed": False, "reason": None}  # fmt: skip


async def test_track_record_followups_and_one_pinned_stats_message_edited_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bot.daily, "MIN_INTERVAL_S", 0.0)
    async with run_fake_telegram() as fake, running(fake, tmp_path, chart=False, track_record_min=3) as (bot_, supervisor):
        for n, gain in enumerate((0.15, 0.02, 0.12)):  # three earlier PEPEUSDT signals: two reached +10 %
            earlier = _signal(n, minutes=n)
            bot_.store.add_signal(earlier)
            bot_.store.mark_suppressed(earlier.signal_id, "test: no card")
            bot_.store.add_outcome(_outcome(earlier, "hit" if gain >= 0.1 else "miss", gain, "TP" if gain >= 0.1 else "TIMEOUT"))
        sig = _signal(9, minutes=300)
        _store_signal(bot_, sig, chart=False)
        (card,) = await _until(lambda: fake.sent())
        record = escape("📊 Record on PEPEUSDT: 3 signals in 30 d, 2 reached +10%, median max +12.0% · alpha1 7 d hit rate 67% (3)")
        assert record in card["text"].split("\n") and markdown_v2_error(card["text"]) is None
        assert record not in card_text(_signal(0, "NEWUSDT"))  # below the minimum sample: no line at all
        for n, (gain, trade) in enumerate(((0.142, "TP"), (0.03, "TIMEOUT"))):
            followed = sig if n == 0 else _signal(20, minutes=310)
            if n:
                _store_signal(bot_, followed, chart=False)
                await _until(lambda: len(fake.sent()) >= 3)
            bot_.store.add_outcome(_outcome(followed, "hit" if n == 0 else "miss", gain, trade))
            supervisor.conn.send(encode(OutcomeStored(_outcome(followed, "hit", gain, trade))))
            await _until(lambda n=n: len(fake.sent("editMessageText")) >= n + 1)
        edits = fake.sent("editMessageText")
        assert escape("📈 Outcome: hit · max +14.2% after 3.5 min · worst -1.0% · TP") in edits[0]["text"].split("\n")
        assert edits[0]["reply_markup"]["inline_keyboard"]  # undecided: the buttons stay
        stats = [m for m in fake.sent() if m["text"].startswith("📌 Today")]
        assert len(stats) == 1 and fake.pinned[OWNER] == next(c.result["message_id"] for c in fake.calls if c.params.get("text", "").startswith("📌"))
        await _until(lambda: any(e["text"].startswith("📌 Today") for e in fake.sent("editMessageText")))  # the second outcome edits it
        assert len([m for m in fake.sent() if m["text"].startswith("📌")]) == 1
        assert sum(1 for c in fake.calls if c.method == "editMessageText" and "Outcome:" in str(c.params.get("text"))) == 2  # once each


async def test_a_listing_on_the_emulator_gives_exactly_one_listing_card_then_its_first_minutes(tmp_path: Path) -> None:
    from common.messages import decode
    from sim.server import run_emulator
    from supervisor.listings import ListingWatch
    from supervisor.scout import Scout
    from venues.mexc.rest import PacedRest

    scenario = tmp_path / "listing.yaml"
    scenario.write_text("listings:\n  - {symbol: NEWLISTUSDT, listed_s_before_start: -2}\n")  # opens 2 s after the emulator starts
    async with run_emulator(pairs=5, scenario=str(scenario)) as emu, run_fake_telegram() as fake, \
            running(fake, tmp_path / "data", chart=False) as (bot_, _):  # fmt: skip
        rest = PacedRest(emu.rest_url, budget_per_10s=100)
        scout = Scout(rest)
        watch = ListingWatch(CardStore(bot_.store.db), lambda m: bot_._on_message(encode(m)) or True)  # the pipe, in-process
        try:
            await scout.refresh_universe()
            assert "NEWLISTUSDT" not in scout.universe and watch.on_universe(scout.universe) == []  # the first pass only learns
            await asyncio.sleep(2.5)
            for _ in range(3):  # the pair appears, then stays: announced once
                await scout.refresh_universe()
                watch.on_universe(scout.universe)
            assert "NEWLISTUSDT" in watch.watched()
        finally:
            await rest.close()
        (card,) = await _until(lambda: fake.sent())
        assert card["text"].startswith("🆕 *NEWLISTUSDT* — new spot pair on MEXC") and markdown_v2_error(card["text"]) is None
        restarted = ListingWatch(CardStore(bot_.store.db), lambda m: decode(encode(m)) is None)
        restarted.known = set(scout.universe) - {"NEWLISTUSDT"}  # a restart that missed the listing: the store announces it once
        assert restarted.on_universe(scout.universe) == []
        CardStore(bot_.store.db).set_listing_summary("NEWLISTUSDT", T0, 123_000.0, 0.0012, 0.0019)
        bot_.notify()
        (edit,) = await _until(lambda: fake.sent("editMessageText"))
        assert escape("First trade 14:13 UTC · first 5 min: quote volume $123k, range 0.0012 – 0.0019 (+58.3%)") in edit["text"]
        await asyncio.sleep(0.5)
        assert len(fake.sent()) == 1 and len(fake.sent("editMessageText")) == 1


async def test_top_asks_the_supervisor_and_answers_only_allowed_ids(tmp_path: Path) -> None:
    from common.messages import StatusReply, TopRequest, decode

    async with run_fake_telegram() as fake, running(fake, tmp_path, chart=False) as (bot_, supervisor):
        asked: list[TopRequest] = []

        def pump() -> None:  # the supervisor's side: a TopRequest answered from its movers
            while supervisor.conn.poll():
                msg = decode(supervisor.conn.recv())
                if isinstance(msg, TopRequest):
                    asked.append(msg)
                    supervisor.conn.send(encode(StatusReply(msg.req_id, {"window_s": msg.window_s, "exchange_ms": T0, "pairs": 2,
                                                                         "gainers": [["PEPEUSDT", 0.142]], "losers": [], "surges": []})))  # fmt: skip

        supervisor.pump = pump  # type: ignore[method-assign]
        await fake.inject_message(STRANGER, STRANGER, "/top")
        await fake.inject_message(OWNER, OWNER, "/top 5m 3")
        (reply,) = await _until(lambda: fake.sent())
        assert reply["chat_id"] == OWNER and reply["text"].splitlines()[:2] == ["Top movers over 5m (2 pairs, up to 14:13 UTC):", "Gainers: PEPEUSDT +14.20%"]
        assert [(m.window_s, m.n) for m in asked] == [(300, 3)]


async def test_a_command_answer_is_not_stuck_behind_a_burst_of_cards(tmp_path: Path) -> None:
    async with run_fake_telegram() as fake, running(fake, tmp_path, chart=False, rate_chat_per_s=1) as (bot_, _):
        for n in range(20):  # fifteen seconds of cards at one a second (five at once, then five every five seconds)
            _store_signal(bot_, _signal(n), chart=False)
        await _until(lambda: fake.sent())
        await fake.inject_message(OWNER, OWNER, "/status")
        await _until(lambda: any("frames/s" in m["text"] for m in fake.sent()), timeout=8)
        assert len([m for m in fake.sent() if m["text"].startswith("🚀")]) <= 10  # answered at the next free slot, cards still queued
        await _until(lambda: len(fake.sent()) >= 21, timeout=40)
