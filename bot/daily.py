"""One pinned stats message per chat and UTC day, edited in place as outcomes come in.

Why edited and not posted: a stats message per outcome buries the cards (traders complain most
about alert spam); one pinned message a day, rewritten when a followed-up card's outcome changes
the figures, keeps them one tap away. The message id is in the store (store/cards.py), so a
restarted bot edits the same message instead of pinning a second one.
"""

from __future__ import annotations

import logging
import time

from telegram.error import BadRequest, Forbidden

from bot.commands import format_outcomes, format_stats
from bot.notifier import Notifier
from common.config import Config
from store.cards import CardStore
from store.history import Store

log = logging.getLogger("scanner.bot.daily")
MIN_INTERVAL_S = 60.0  # at most one edit a minute per chat, however many outcomes close


def stats_text(store: Store, now_ns: int) -> str:
    """The pinned message: today's counts (since 00:00 UTC) and the outcomes of the last 24 h."""
    day_start_ns = (now_ns // (86400 * 10**9)) * 86400 * 10**9
    day = time.strftime("%Y-%m-%d", time.gmtime(now_ns / 1e9))
    counts = format_stats(store.stats(day_start_ns)).replace("Last 24 h", f"Today ({day} UTC)")
    outcomes = format_outcomes([("24 h", store.outcome_stats(now_ns - 86400 * 10**9))])
    return f"📌 {counts}\n{outcomes}\nUpdated {time.strftime('%H:%M', time.gmtime(now_ns / 1e9))} UTC"


class DailyStats:
    """Keeps each target chat's pinned stats message current (see the module docstring)."""

    def __init__(self, config: Config, store: Store, cards: CardStore, notifier: Notifier) -> None:
        self.config, self.store, self.cards, self.notifier = config, store, cards, notifier
        self._last: dict[int, tuple[float, str]] = {}  # chat -> (monotonic time, text) of the last edit
        self._due = False

    async def update(self, changed: bool, targets: list[int]) -> None:
        """Post or edit the message in every target chat when the figures changed (at most once a minute per chat).

        Network errors and RetryAfter propagate (the caller's loop retries); a chat that refuses is logged.
        """
        self._due = self._due or changed
        if not self.config.telegram.cards.daily_stats or not self._due:
            return
        now_ns = time.time_ns()
        day = time.strftime("%Y-%m-%d", time.gmtime(now_ns / 1e9))
        text = stats_text(self.store, now_ns)
        waiting = False
        for chat in targets:
            last = self._last.get(chat)
            if last is not None and time.monotonic() - last[0] < MIN_INTERVAL_S:
                waiting = True
                continue
            pinned = self.cards.pinned(chat)
            try:
                if pinned is not None and pinned[1] == day:
                    await self.notifier.edit(chat, pinned[0], text)
                else:
                    message = await self.notifier.send_text(chat, text)
                    self.cards.set_pinned(chat, message.message_id, day)
                    try:
                        await self.notifier.pin(chat, message.message_id)
                    except (BadRequest, Forbidden) as exc:  # no pin right in a group: the message still stands
                        log.warning("could not pin the daily stats message", extra={"chat_id": chat, "error": str(exc)[:200]})
            except (BadRequest, Forbidden) as exc:
                log.warning("telegram refused the daily stats message", extra={"chat_id": chat, "error": str(exc)[:200]})
            self._last[chat] = (time.monotonic(), text)
        self._due = waiting


__all__ = ["DailyStats", "stats_text"]
