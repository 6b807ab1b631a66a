"""Sending a card and everything that later changes it: chart, mutes, decisions, follow-ups.

Why apart from process.py: the process routes updates and pipe messages; this module decides what
one card looks like in each chat and keeps every copy in the store (store/cards.py), so a bot
killed half-way through a chat list resumes with the chats it had not reached, and a decision or an
outcome edits every copy, also after a restart.

Chart (bot/chart.py): rendered in a worker thread, never on the event loop; the card waits for it
at most telegram.cards.chart_wait_s, then goes out as text and the chart follows as a reply (the
Bot API cannot turn a text message into a photo by an edit). A chart that fails is logged and the
card goes out as text. A card whose text is longer than a photo caption (1024) also goes as text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, TelegramError

from bot.cards import card_text, escape, followup_line, keyboard, queued_line, track_record_line
from bot.chart import in_child, render_png
from bot.notifier import Notifier
from common.config import Config
from common.signal import Signal
from store.cards import CardStore
from store.history import Store

log = logging.getLogger("scanner.bot.sender")
MAX_CAPTION = 1024  # Telegram's photo caption limit (escaped text is at least as long as what it shows)


def markup(signal_id: str, stake_usd: float) -> InlineKeyboardMarkup:
    rows = keyboard(signal_id, stake_usd)["inline_keyboard"]
    return InlineKeyboardMarkup([[InlineKeyboardButton(b["text"], callback_data=b["callback_data"]) for b in row] for row in rows])


def _render(*args: Any) -> bytes:
    """render_png in a child forked for the chart (bot/chart.py in_child: the bot never loads Pillow), from the worker thread."""
    return in_child(render_png, *args)


class CardSender:
    """One card to every target chat, and its later edits; see the module docstring."""

    def __init__(self, config: Config, store: Store, notifier: Notifier) -> None:
        self.config = config
        self.store = store
        self.cards = CardStore(store.db)
        self.notifier = notifier
        self.charts_sent = 0
        self.charts_failed = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chart")
        self._refused: dict[str, set[int]] = {}  # chats that refused a card in this process: not retried
        self._tasks: set[asyncio.Task[Any]] = set()

    def targets(self) -> list[int]:
        """Where cards go: telegram.chat_ids (a channel or group) when set, else each allowed user's private chat."""
        return list(self.config.telegram.chat_ids or self.config.telegram.allowed_ids)

    # --- the card ---------------------------------------------------------------------------------

    def _text(self, sig: Signal, behind: int) -> str:
        extra = []
        cfg = self.config.telegram.cards
        record = self.cards.track_record(sig.symbol, sig.profile, sig.exchange_time_ms, self.config.outcome.hit_gain)
        line = track_record_line(sig.symbol, sig.profile, record, cfg.track_record_min, self.config.outcome.hit_gain)
        if line:
            extra.append(line)
        line = queued_line(behind)
        if line:
            extra.append(line)
        return card_text(sig, extra=extra)

    async def _chart(self, sig: Signal) -> tuple[bytes | None, asyncio.Future[bytes] | None]:
        """(png, None) when ready in time; (None, pending render) when late; (None, None) without a chart."""
        if not self.config.telegram.cards.chart:
            return None, None
        series = self.cards.get_series(sig.signal_id)
        if not series:
            return None, None
        loop = asyncio.get_running_loop()
        render = loop.run_in_executor(self._pool, _render, sig.symbol, series, sig.exchange_time_ms, sig.price, sig.profile)
        try:
            return await asyncio.wait_for(asyncio.shield(render), self.config.telegram.cards.chart_wait_s), None
        except TimeoutError:
            log.info("chart not ready in time: text first, chart as a reply", extra={"signal_id": sig.signal_id})
            return None, render
        except Exception as exc:  # noqa: BLE001 - any drawing failure: the card goes out as text
            self.charts_failed += 1
            log.warning("chart failed; the card goes out as text", extra={"signal_id": sig.signal_id, "error": f"{type(exc).__name__}: {str(exc)[:150]}"})
            return None, None

    async def send(self, sig: Signal, behind: int = 0) -> bool:
        """Send the card to every target chat not yet reached and not muting the pair; True when a chat has it.

        RetryAfter (beyond the notifier's retries) and network errors propagate: the outbox retries.
        """
        text = self._text(sig, behind)
        self.cards.remember_card(sig.signal_id, text)
        buttons = markup(sig.signal_id, self.config.trading.stake_usd)
        reached = self.cards.messages(sig.signal_id)
        refused = self._refused.setdefault(sig.signal_id, set())
        now = time.time_ns()
        todo = [c for c in self.targets() if c not in reached and c not in refused]
        muted = [c for c in todo if self.cards.is_muted(c, sig.symbol, now)]
        todo = [c for c in todo if c not in muted]
        png, late = await self._chart(sig) if todo else (None, None)
        if png is not None and len(text) > MAX_CAPTION:  # too long for a caption: the text card, the chart as a reply
            late = asyncio.get_running_loop().create_future()
            late.set_result(png)
            png = None
        for chat in todo:
            kind = "text"
            try:
                if png is not None:
                    try:
                        message, kind = await self.notifier.send_photo(chat, png, text, markdown=True, buttons=buttons), "photo"
                        self.charts_sent += 1
                    except BadRequest as exc:  # Telegram refused the photo itself: the card still goes, as text
                        self.charts_failed += 1
                        log.warning("telegram refused the chart; sending the card as text", extra={"signal_id": sig.signal_id, "error": str(exc)[:200]})
                        message = await self.notifier.send_text(chat, text, markdown=True, buttons=buttons)
                else:
                    message = await self.notifier.send_text(chat, text, markdown=True, buttons=buttons)
            except (BadRequest, Forbidden) as exc:
                log.error("telegram refused a card for one chat", extra={"signal_id": sig.signal_id, "chat_id": chat, "error": str(exc)[:200]})
                refused.add(chat)
                continue
            self.cards.add_message(sig.signal_id, chat, message.message_id, kind)
        reached = self.cards.messages(sig.signal_id)
        if late is not None and reached:
            self._spawn(self._chart_reply(sig, late, {c: m for c, (m, kind) in reached.items() if kind == "text" and c in todo}))
        if not reached:
            why = "muted in every chat" if muted and not refused else "every chat refused the card"
            self.store.mark_suppressed(sig.signal_id, why)
            self._refused.pop(sig.signal_id, None)
            return False
        first = min(reached.items(), key=lambda kv: kv[1][0])
        self.store.mark_card_sent(sig.signal_id, first[0], first[1][0], time.time_ns())
        self._refused.pop(sig.signal_id, None)
        return True

    async def _chart_reply(self, sig: Signal, render: asyncio.Future[bytes], copies: dict[int, int]) -> None:
        """A late chart, threaded under each text copy of its card."""
        try:
            png = await render
        except Exception as exc:  # noqa: BLE001
            self.charts_failed += 1
            log.warning("late chart failed", extra={"signal_id": sig.signal_id, "error": type(exc).__name__})
            return
        for chat, message_id in copies.items():
            try:
                await self.notifier.send_photo(chat, png, f"{sig.symbol} chart", reply_to=message_id)
                self.charts_sent += 1
            except TelegramError as exc:
                log.warning("could not send a late chart", extra={"signal_id": sig.signal_id, "error": type(exc).__name__})

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- edits ------------------------------------------------------------------------------------

    async def edit_all(self, sig: Signal, line: str, keep_buttons: bool, extra_copy: tuple[int, int, str] | None = None,
                       urgent: bool = False, buttons: InlineKeyboardMarkup | None = None) -> None:  # fmt: skip
        """Append an (escaped) line to the card and edit every copy; a copy that cannot hold it gets the line as a reply.

        A chat that refuses is logged; network errors and RetryAfter propagate, and a retry does not repeat the line.
        """
        stored = self.cards.card(sig.signal_id)
        if stored is None:  # a card sent before cards were stored: re-render it as it was
            self.cards.remember_card(sig.signal_id, card_text(sig, self.store.card_sent_ns(sig.signal_id) or time.time_ns()))
            stored = self.cards.card(sig.signal_id)
        assert stored is not None
        if "\n" + line not in stored[1]:  # a retried edit (network trouble) must not add the line twice
            self.cards.append_line(sig.signal_id, line)
            stored = self.cards.card(sig.signal_id)
            assert stored is not None
        text = stored[0] + stored[1]
        copies = self.cards.messages(sig.signal_id)
        if extra_copy is not None and extra_copy[0] not in copies:
            copies[extra_copy[0]] = (extra_copy[1], extra_copy[2])
        if buttons is None and keep_buttons:  # buttons: the caller's own keyboard (a Sell button once a Buy filled)
            buttons = markup(sig.signal_id, self.config.trading.stake_usd)
        for chat, (message_id, kind) in copies.items():
            try:
                if kind == "photo" and len(text) > MAX_CAPTION:
                    await self.notifier.send_text(chat, line, markdown=True, reply_to=message_id, urgent=urgent)
                    if not keep_buttons:  # drops the Buy/Skip buttons (a Sell button replaces them once a Buy filled)
                        await self.notifier.edit(chat, message_id, stored[0], markdown=True, buttons=buttons, caption=True, urgent=urgent)
                else:
                    await self.notifier.edit(chat, message_id, text, markdown=True, buttons=buttons, caption=kind == "photo", urgent=urgent)
            except (BadRequest, Forbidden) as exc:  # network errors propagate: the caller retries the whole edit
                log.warning("could not edit a card", extra={"signal_id": sig.signal_id, "error": f"{type(exc).__name__}: {str(exc)[:120]}"})

    async def follow_up(self, signal_id: str) -> bool:
        """The outcome under every copy of the card, once (also across restarts); False when there is nothing to do."""
        if not self.config.telegram.cards.followups:
            return False
        stored, outcome, sig = self.cards.card(signal_id), self.store.get_outcome(signal_id), self.store.get_signal(signal_id)
        if stored is None or stored[2] is not None or outcome is None or sig is None or not self.cards.messages(signal_id):
            return False
        await self.edit_all(sig, escape(followup_line(outcome)), keep_buttons=self.store.get_action(signal_id) is None)
        return self.cards.mark_followup(signal_id, time.time_ns())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["CardSender", "markup", "MAX_CAPTION"]
