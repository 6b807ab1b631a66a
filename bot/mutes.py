"""/mute, /unmute, /mutes: a chat stops getting cards for a pair for a while (its signals are still stored).

Why per chat: a mute typed in a private chat is that user's; typed in a group or channel it is the
group's, since the card there is shared. Mutes live in the store (store/cards.py), so a restart
keeps them; an expired mute simply stops matching.
"""

from __future__ import annotations

import math
import re
import time

from store.cards import CardStore

DEFAULT_HOURS = 24.0
MAX_HOURS = 24.0 * 90
SYMBOL = re.compile(r"^[A-Z0-9]{2,24}$")
USAGE = "Usage: /mute SYMBOL [hours] (default 24, at most 2160); /unmute SYMBOL; /mutes"


def _until(until_ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(until_ns / 1e9))


def answer(cards: CardStore, chat_id: int, name: str, args: list[str], now_ns: int | None = None) -> str:
    """The reply to /mute, /unmute or /mutes typed in chat_id."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    if name == "mutes":
        running = cards.mutes(chat_id, now_ns)
        if not running:
            return "No pair is muted here."
        return "Muted here:\n" + "\n".join(f"{symbol} until {_until(until)}" for symbol, until in running)
    if not args or len(args) > (2 if name == "mute" else 1):
        return USAGE
    symbol = args[0].upper()
    if not SYMBOL.match(symbol):
        return f"{args[0][:30]!r} is not a pair symbol (e.g. PEPEUSDT). {USAGE}"
    if name == "unmute":
        return f"{symbol} unmuted: its cards come here again." if cards.unmute(chat_id, symbol) else f"{symbol} was not muted here."
    hours = DEFAULT_HOURS
    if len(args) == 2:
        try:
            hours = float(args[1])
        except ValueError:
            hours = math.nan
        if not 0 < hours <= MAX_HOURS:
            return f"hours: got {args[1][:20]!r}, expected a number above 0 and at most {MAX_HOURS:g}. {USAGE}"
    until = now_ns + int(hours * 3600 * 10**9)
    cards.mute(chat_id, symbol, until)
    return f"{symbol} muted here until {_until(until)} ({hours:g} h): no cards, signals still stored. /unmute {symbol} to undo."


__all__ = ["answer", "USAGE"]
