"""The one way out: every message the bot sends, edits or pins goes through a Notifier.

Why one notifier: Telegram limits a bot to about 30 messages a second overall, about one a second
in a private chat and 20 a minute in a group or channel, and answers a 429 with `retry_after` when
a bot goes faster. Cards, command answers, follow-ups, listing cards, positions (h3) and the short
watcher (h4) all share those limits, so they share one scheduler: a burst waits its turn (in
order, per chat) instead of being dropped or tripping a storm of 429s.

API (all coroutines; `chat_id` is an int, negative for groups and channels). The running bot
(bot/process.py) holds the one instance as `Bot.notifier`; new bot modules take it from there
and never call `app.bot.send_*` themselves:

    notifier = Notifier(app.bot, config.telegram.cards)
    msg = await notifier.send_text(chat_id, text, markdown=True, buttons=markup, reply_to=message_id, urgent=False)
    msg = await notifier.send_photo(chat_id, png_bytes, caption, markdown=True, buttons=markup, reply_to=None)
    await notifier.edit(chat_id, message_id, text, markdown=True, buttons=None, caption=False, urgent=False)  # caption=True for a photo
    await notifier.pin(chat_id, message_id)
    notifier.queued   # sends waiting for their turn right now

urgent=True (answers to a person: a command's reply, a pressed button's edit) queues apart from the
chat's cards, so it is not stuck behind a burst; both queues share the chat's and the global limits.

send_* return the sent telegram.Message. A 429 pauses that chat for retry_after and the send is
retried (up to max_retries times, then RetryAfter propagates: the caller's outbox keeps the work).
BadRequest/Forbidden (a chat that blocked the bot, bad markup) and network errors propagate at once:
the card sender marks a refusing chat and retries the rest from the SQLite outbox. edit() ignores
Telegram's "message is not modified" and returns None then. Text over 4096 or a caption over 1024
characters is the caller's business (cards keep theirs short; bot/process.py splits long replies).
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from telegram import InlineKeyboardMarkup, LinkPreviewOptions, Message, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, RetryAfter

from common.cards_config import CardsConfig

log = logging.getLogger("scanner.bot.notifier")
T = TypeVar("T")
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)  # a card's MEXC link is text; a preview would bury the card


def retry_after_s(exc: RetryAfter) -> float:
    """Seconds a 429 asks us to wait (PTB gives int or timedelta depending on version)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB warns that the type will become timedelta
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _reply(message_id: int | None) -> ReplyParameters | None:
    """Thread under message_id; still sent if that message was deleted meanwhile."""
    return None if message_id is None else ReplyParameters(message_id, allow_sending_without_reply=True)


class Window:
    """At most `limit` events in any `span_s` seconds (a sliding log): a strict bound, never a burst above it.

    Why not a token bucket: a bucket allows its capacity on top of the rate, and 20 a minute in a
    group is a hard line Telegram enforces over any minute.
    """

    def __init__(self, limit: int, span_s: float) -> None:
        self.limit, self.span_s = max(1, limit), span_s
        self.times: deque[float] = deque()

    def wait_s(self, now: float) -> float:
        """How long until one more event fits (0: now)."""
        while self.times and self.times[0] <= now - self.span_s:
            self.times.popleft()
        return 0.0 if len(self.times) < self.limit else self.times[0] + self.span_s - now

    def take(self, now: float) -> None:
        self.times.append(now)


def _per_second(rate: float) -> tuple[int, float]:
    """(limit, span) for a rate in events per second: 25/s -> 25 per 1 s; 0.5/s -> 1 per 2 s."""
    return (round(rate), 1.0) if rate >= 1 else (1, 1.0 / rate)


class Notifier:
    """Per-chat and global send windows, 429 backoff, ordered waiting; see the module docstring."""

    def __init__(self, bot: Any, limits: CardsConfig, max_retries: int = 5, clock: Callable[[], float] = time.monotonic) -> None:
        self.bot = bot
        self.max_retries = max_retries
        self.clock = clock
        self.queued = 0
        self.sent = 0
        self.retries_429 = 0
        self._global = Window(*_per_second(limits.rate_global_per_s))
        self._limits = limits
        self._chats: dict[int, Window] = {}
        self._locks: dict[tuple[int, bool], asyncio.Lock] = {}
        self._paused_until: dict[int, float] = {}
        self._urgent_waiting: dict[int, int] = {}  # chat -> urgent sends waiting for a slot (cards let them go first)
        self._global_lock = asyncio.Lock()

    def update_limits(self, limits: CardsConfig) -> None:
        """A /cfg or /reload changed the rates: new windows from the next send on."""
        if limits != self._limits:
            self._limits = limits
            self._global = Window(*_per_second(limits.rate_global_per_s))
            self._chats.clear()

    def _window(self, chat_id: int) -> Window:
        window = self._chats.get(chat_id)
        if window is None:
            if chat_id < 0:  # a group or channel
                window = Window(round(self._limits.rate_group_per_min), 60.0)
            else:  # the same average over ~5 s: a short exchange (a command, its answer, a card) is not spaced a second apart
                limit = max(1, round(self._limits.rate_chat_per_s * 5))
                window = Window(limit, limit / self._limits.rate_chat_per_s)
            self._chats[chat_id] = window
        return window

    async def _turn(self, chat_id: int, urgent: bool = False) -> None:
        """Wait until this chat and the whole bot may send one more message, then count it.

        Slots are taken only under the global lock, and the chat's window is checked again there,
        so two waiters for one chat (a card and a command answer) never both take its last slot;
        a chat that must wait releases the lock, so other chats keep going meanwhile.
        """
        while True:
            now = self.clock()
            wait = max(self._window(chat_id).wait_s(now), self._paused_until.get(chat_id, 0.0) - now)
            if not urgent and self._urgent_waiting.get(chat_id):
                wait = max(wait, 0.05)  # an answer to a person is waiting for this chat: it takes the next slot
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            async with self._global_lock:
                if self._window(chat_id).wait_s(self.clock()) > 0:
                    continue  # another sender to this chat took the slot first
                while (wait := self._global.wait_s(self.clock())) > 0:
                    await asyncio.sleep(wait)
                now = self.clock()
                self._global.take(now)
                self._window(chat_id).take(now)
                return

    async def _call(self, chat_id: int, call: Callable[[], Awaitable[T]], urgent: bool = False) -> T:
        """One API call in its turn; a 429 pauses the chat and retries, other errors propagate.

        urgent (a command's answer, a button's edit) queues apart from the chat's cards: a person
        waiting for /status must not wait behind a burst of cards; both share the chat's limits.
        """
        lock = self._locks.setdefault((chat_id, urgent), asyncio.Lock())  # FIFO: each queue keeps its order
        self.queued += 1
        try:
            async with lock:
                attempt = 0
                while True:
                    if urgent:
                        self._urgent_waiting[chat_id] = self._urgent_waiting.get(chat_id, 0) + 1
                    try:
                        await self._turn(chat_id, urgent)
                    finally:
                        if urgent:
                            self._urgent_waiting[chat_id] -= 1
                    try:
                        result = await call()
                        self.sent += 1
                        return result
                    except RetryAfter as exc:
                        attempt += 1
                        self.retries_429 += 1
                        pause = retry_after_s(exc)
                        self._paused_until[chat_id] = self.clock() + pause
                        log.warning("telegram flood control, pausing the chat", extra={"chat_id": chat_id, "retry_after_s": pause,
                                                                                       "attempt": attempt})  # fmt: skip
                        if attempt > self.max_retries:
                            raise
        finally:
            self.queued -= 1

    @staticmethod
    def _mode(markdown: bool) -> str | None:
        return ParseMode.MARKDOWN_V2 if markdown else None

    async def send_text(self, chat_id: int, text: str, *, markdown: bool = False, buttons: InlineKeyboardMarkup | None = None,
                        reply_to: int | None = None, urgent: bool = False) -> Message:  # fmt: skip
        """Send a text message (link previews off); reply_to threads it under that message; urgent: see _call."""
        return await self._call(chat_id, lambda: self.bot.send_message(
            chat_id, text, parse_mode=self._mode(markdown), reply_markup=buttons, link_preview_options=NO_PREVIEW,
            reply_parameters=_reply(reply_to)), urgent)  # fmt: skip

    async def send_photo(self, chat_id: int, png: bytes, caption: str, *, markdown: bool = False,
                         buttons: InlineKeyboardMarkup | None = None, reply_to: int | None = None) -> Message:  # fmt: skip
        """Send a PNG with a caption (at most 1024 characters)."""
        return await self._call(chat_id, lambda: self.bot.send_photo(
            chat_id, png, caption=caption, parse_mode=self._mode(markdown), reply_markup=buttons, reply_parameters=_reply(reply_to),
            filename="chart.png"))  # fmt: skip

    async def edit(self, chat_id: int, message_id: int, text: str, *, markdown: bool = False,
                   buttons: InlineKeyboardMarkup | None = None, caption: bool = False, urgent: bool = False) -> Message | None:  # fmt: skip
        """Replace a message's text (caption=True: a photo's caption) and buttons; None when Telegram says nothing changed."""
        if caption:
            def call() -> Awaitable[Any]:
                return self.bot.edit_message_caption(chat_id=chat_id, message_id=message_id, caption=text, parse_mode=self._mode(markdown),
                                                     reply_markup=buttons)  # fmt: skip
        else:
            def call() -> Awaitable[Any]:
                return self.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id, parse_mode=self._mode(markdown),
                                                  reply_markup=buttons, link_preview_options=NO_PREVIEW)  # fmt: skip
        try:
            result = await self._call(chat_id, call, urgent)
        except BadRequest as exc:
            if "not modified" in str(exc):
                return None
            raise
        return result if isinstance(result, Message) else None

    async def pin(self, chat_id: int, message_id: int) -> None:
        """Pin a message without a notification (the daily stats message)."""
        await self._call(chat_id, lambda: self.bot.pin_chat_message(chat_id, message_id, disable_notification=True))


__all__ = ["Notifier", "Window", "retry_after_s", "NO_PREVIEW"]
