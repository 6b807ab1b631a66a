"""The short watcher's Telegram messages (issue #19): watch start, entry, outcome — as replies to the pump's card.

Why a module of its own: bot/process.py and bot/cards.py are the cards' (and are being reworked);
the short watcher only needs "send this text to every allowed chat, under the pump's card where
that chat has one". The supervisor decides which events are announced (shorts.notify_*); the bot
sends what arrives, in order, and drops them while alerts are paused (/pause).

Threading: the card's message id per chat comes from this process's memory of the copies it sent
(`delivered`), else from the signals table (the first chat that got the card). A chat without the
card gets the text unthreaded; `allow_sending_without_reply` keeps a deleted card from losing it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from telegram.error import BadRequest, Forbidden

from common.messages import ShortNotice
from store.watches import card_message

log = logging.getLogger("scanner.bot.shorts")
MAX_TEXT = 4000


class ShortNotices:
    """A FIFO of ShortNotice; send() empties it (RetryAfter and network errors propagate to the caller's retry)."""

    def __init__(self) -> None:
        self.queue: list[ShortNotice] = []
        self.sent = 0
        self._done_chats: set[int] = set()  # chats the head notice already reached (a retry skips them)

    def add(self, notice: ShortNotice) -> None:
        self.queue.append(notice)

    async def send(self, bot: Any, db: Any, allowed_ids: list[int], paused: bool,
                   delivered: Callable[[str], dict[int, int]]) -> None:  # fmt: skip
        while self.queue:
            notice = self.queue[0]
            if not paused:
                cards = dict(delivered(notice.signal_id)) if notice.signal_id else {}
                stored = card_message(db, notice.signal_id) if notice.signal_id else None
                if stored is not None:
                    cards.setdefault(*stored)
                for chat_id in allowed_ids:
                    if chat_id in self._done_chats:
                        continue
                    try:  # bot: the bot's notifier (bot/notifier.py), so these respect its rate limits too
                        await bot.send_text(chat_id, notice.text[:MAX_TEXT], reply_to=cards.get(chat_id) or None)
                        self.sent += 1
                    except (BadRequest, Forbidden) as exc:
                        log.warning("telegram refused a short watch message for one chat", extra={"chat_id": chat_id, "error": str(exc)[:200]})
                    self._done_chats.add(chat_id)
            self._done_chats.clear()
            self.queue.pop(0)


__all__ = ["ShortNotices"]
