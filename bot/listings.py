"""Listing cards: one per new spot pair (supervisor/listings.py found it), edited once its first minutes are known.

Why through the store: the supervisor writes the listing (and later its first minutes) to the
listings table before telling the bot, the bot marks each step sent after Telegram accepted it;
a bot killed in between sends what is still unsent when it comes back, and never twice. Copies are
kept like a signal card's (card_messages under the key "listing:SYMBOL"), so the edit reaches each.
A chat that muted the symbol gets no listing card either.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from telegram.error import BadRequest, Forbidden

from bot.cards import escape, exchange_url, format_price, format_usd
from bot.sender import CardSender

log = logging.getLogger("scanner.bot.listings")
KEY = "listing:{symbol}"


def listing_text(symbol: str, listing: dict[str, Any]) -> str:
    """The listing card (MarkdownV2): the symbol, when it was found, its page."""
    found = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(listing["seen_ms"] / 1000))
    lines = [f"🆕 *{escape(symbol)}* — new spot pair on MEXC",
             escape(f"In exchangeInfo since {found} UTC · watched from its first trade; its first minutes follow here")]  # fmt: skip
    url = exchange_url(symbol)
    if url:
        lines.append(escape(f"On MEXC: {url}"))
    return "\n".join(lines)


def first_minutes_line(listing: dict[str, Any]) -> str | None:
    """"First trade 09:31 UTC · first 5 min: quote volume $120k, range 0.0012 – 0.0019 (+58.3%)"; None before it is known."""
    if listing.get("summary_ns") is None or listing.get("first_trade_ms") is None:
        return None
    first = time.strftime("%H:%M", time.gmtime(listing["first_trade_ms"] / 1000))
    low, high = listing.get("low"), listing.get("high")
    span = "range n/a"
    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low > 0 and math.isfinite(high):
        span = f"range {format_price(low)} – {format_price(high)} ({(high / low - 1) * 100:+.1f}%)"
    return f"First trade {first} UTC · first 5 min: quote volume {format_usd(listing.get('quote_volume'))}, {span}"


async def send_listings(sender: CardSender) -> int:
    """Send every unsent listing card and first-minutes edit; returns how many steps were sent.

    RetryAfter and network errors propagate (the bot's send loop retries); a refusing chat is logged.
    """
    store = sender.cards
    done = 0
    for symbol in store.unsent_listings():
        listing = store.listing(symbol)
        if listing is None:
            continue
        key = KEY.format(symbol=symbol)
        text = listing_text(symbol, listing)
        if listing["card_sent_ns"] is None:
            store.remember_card(key, text)
            now = time.time_ns()
            for chat in sender.targets():
                if chat in store.messages(key) or store.is_muted(chat, symbol, now):
                    continue
                try:
                    message = await sender.notifier.send_text(chat, text, markdown=True)
                except (BadRequest, Forbidden) as exc:
                    log.warning("telegram refused a listing card", extra={"symbol": symbol, "chat_id": chat, "error": str(exc)[:200]})
                    continue
                store.add_message(key, chat, message.message_id, "text")
            store.mark_listing_sent(symbol, time.time_ns(), summary=False)
            done += 1
        line = first_minutes_line(listing)
        if line is not None and listing["summary_sent_ns"] is None:
            stored = store.card(key)
            if stored is not None and "\n" + escape(line) not in stored[1]:  # a retried edit adds the line once
                store.append_line(key, escape(line))
                stored = store.card(key)
            full = (stored[0] + stored[1]) if stored else text + "\n" + escape(line)
            for chat, (message_id, _) in store.messages(key).items():
                try:
                    await sender.notifier.edit(chat, message_id, full, markdown=True)
                except (BadRequest, Forbidden) as exc:
                    log.warning("could not edit a listing card", extra={"symbol": symbol, "error": str(exc)[:200]})
            store.mark_listing_sent(symbol, time.time_ns(), summary=True)
            done += 1
    return done


__all__ = ["send_listings", "listing_text", "first_minutes_line"]
