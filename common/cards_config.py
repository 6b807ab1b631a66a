"""The schema of `telegram.cards.…` and the Bot API rate limits: what the bot puts on a card and how fast it may send.

Why a module of its own: common/config.py must stay small, and these keys belong to one concept
(the card a trader reads); common/config.py nests them as `TelegramConfig.cards`, so they load,
range-check and change by `/cfg telegram.cards.chart false` like every other key.

Rate limits (Telegram's published guidance): about 30 messages a second over all chats, about one a
second in one private chat, and at most 20 a minute in one group or channel. The defaults stay a
little under them; bot/notifier.py enforces them for every message the bot sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CardsConfig:
    """What a card carries besides its text, and the notifier's limits."""

    chart: bool = True  # the card is a photo with the last 30 min of the pair (bot/chart.py)
    chart_wait_s: float = field(default=1.5, metadata={"min": 0.05, "max": 30.0})  # then text first, photo as a reply
    track_record_min: int = field(default=3, metadata={"min": 1, "max": 1000})  # the pair's signals in 30 d before the line shows
    followups: bool = True  # edit the card (or reply) when the signal's outcome is decided
    daily_stats: bool = True  # one pinned stats message per chat, edited in place
    listings: bool = True  # a card when a new spot pair starts trading
    top_interval_s: float = field(default=0.0, metadata={"min": 0.0, "max": 86400.0})  # periodic /top post; 0 = off
    rate_global_per_s: float = field(default=25.0, metadata={"min": 0.1, "max": 30.0})
    rate_chat_per_s: float = field(default=1.0, metadata={"min": 0.01, "max": 30.0})  # one private chat
    rate_group_per_min: float = field(default=20.0, metadata={"min": 1.0, "max": 60.0})  # one group or channel (negative id)


__all__ = ["CardsConfig"]
