"""What the bot needs to remember about its cards, beside the signals: chart data, every copy sent, mutes, pins, listings.

Why tables of their own (CREATE TABLE IF NOT EXISTS, same scanner.sqlite3): they only add, so no
schema version moves and older files keep every row. Why in SQLite and not in the bot's memory:
a killed bot must, on restart, still edit every copy of a card when its outcome closes, still
honour a mute and still know which listing it announced (crash-only, like the signal outbox).

- card_series: the pair's last 30 minutes (1 m candles, VWAP, 5-min quote volume) at the signal,
  written by the supervisor BEFORE the signal itself, so the bot never finds a signal without it.
- cards / card_messages: the card's text as first sent plus lines appended since (a decision, a
  follow-up), and every (chat, message) copy with its kind (photo or text).
- mutes, pinned, listings: /mute, the daily stats message per chat, new spot pairs announced.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
from dataclasses import dataclass
from typing import Any

CARDS_SCHEMA = """
CREATE INDEX IF NOT EXISTS outcomes_symbol ON outcomes(symbol, signal_time_ms);
CREATE TABLE IF NOT EXISTS card_series (signal_id TEXT PRIMARY KEY, series TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cards (signal_id TEXT PRIMARY KEY, text TEXT NOT NULL, extra TEXT NOT NULL DEFAULT '', followup_ns INTEGER);
CREATE TABLE IF NOT EXISTS card_messages (
    signal_id TEXT NOT NULL, chat_id INTEGER NOT NULL, message_id INTEGER NOT NULL, kind TEXT NOT NULL, sent_ns INTEGER NOT NULL,
    PRIMARY KEY (signal_id, chat_id)
);
CREATE TABLE IF NOT EXISTS mutes (chat_id INTEGER NOT NULL, symbol TEXT NOT NULL, until_ns INTEGER NOT NULL, PRIMARY KEY (chat_id, symbol));
CREATE TABLE IF NOT EXISTS pinned (chat_id INTEGER PRIMARY KEY, message_id INTEGER NOT NULL, day TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS listings (
    symbol TEXT PRIMARY KEY, seen_ms INTEGER NOT NULL, first_trade_ms INTEGER, quote_volume REAL, low REAL, high REAL,
    summary_ns INTEGER, card_sent_ns INTEGER, summary_sent_ns INTEGER
);
"""
KINDS = ("photo", "text")
DAY_MS = 86_400_000


@dataclass(frozen=True)
class TrackRecord:
    """The pair's earlier signals in 30 days and the profile's 7-day hit rate (None: no decided outcome)."""

    signals: int  # earlier signals of the pair with a decided outcome in 30 days
    hits: int  # of them, how many reached +hit_gain (max_gain >= hit_gain)
    median_max_gain: float | None
    profile_hits: int
    profile_decided: int


class CardStore:
    """The tables above on an open connection to scanner.sqlite3 (the Store's or its own)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.executescript(CARDS_SCHEMA)

    # --- chart data (the supervisor writes, the bot reads) ------------------------------------

    def add_series(self, signal_id: str, series: dict[str, list[Any]]) -> None:
        self.db.execute("INSERT OR IGNORE INTO card_series (signal_id, series) VALUES (?, ?)",
                        (signal_id, json.dumps(series, separators=(",", ":"), allow_nan=False)))  # fmt: skip

    def get_series(self, signal_id: str) -> dict[str, list[Any]] | None:
        row = self.db.execute("SELECT series FROM card_series WHERE signal_id = ?", (signal_id,)).fetchone()
        try:
            data = json.loads(row[0]) if row else None
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    # --- copies of a card ------------------------------------------------------------------------

    def remember_card(self, signal_id: str, text: str) -> None:
        """The card's text as first rendered (its edits append to it; the first rendering wins)."""
        self.db.execute("INSERT OR IGNORE INTO cards (signal_id, text) VALUES (?, ?)", (signal_id, text))

    def card(self, signal_id: str) -> tuple[str, str, int | None] | None:
        """(text, appended lines, follow-up time) or None."""
        row = self.db.execute("SELECT text, extra, followup_ns FROM cards WHERE signal_id = ?", (signal_id,)).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def append_line(self, signal_id: str, line: str) -> None:
        self.db.execute("UPDATE cards SET extra = extra || ? WHERE signal_id = ?", ("\n" + line, signal_id))

    def mark_followup(self, signal_id: str, at_ns: int) -> bool:
        """True the first time only: a follow-up is shown once, also across restarts."""
        cur = self.db.execute("UPDATE cards SET followup_ns = ? WHERE signal_id = ? AND followup_ns IS NULL", (at_ns, signal_id))
        return cur.rowcount == 1

    def add_message(self, signal_id: str, chat_id: int, message_id: int, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"card kind: got {kind!r}, expected one of {', '.join(KINDS)}")
        self.db.execute("INSERT OR REPLACE INTO card_messages (signal_id, chat_id, message_id, kind, sent_ns) VALUES (?,?,?,?,?)",
                        (signal_id, chat_id, message_id, kind, time.time_ns()))  # fmt: skip

    def messages(self, signal_id: str) -> dict[int, tuple[int, str]]:
        """chat_id -> (message_id, kind) of every copy sent."""
        rows = self.db.execute("SELECT chat_id, message_id, kind FROM card_messages WHERE signal_id = ?", (signal_id,))
        return {c: (m, k) for c, m, k in rows}

    def pending_followups(self) -> list[str]:
        """Signals whose outcome is stored and whose card went out but was not followed up (a restart in between)."""
        rows = self.db.execute(
            "SELECT c.signal_id FROM cards c JOIN outcomes o ON o.signal_id = c.signal_id WHERE c.followup_ns IS NULL"
            " AND EXISTS (SELECT 1 FROM card_messages m WHERE m.signal_id = c.signal_id) ORDER BY o.closed_ns")
        return [r[0] for r in rows]

    # --- track record (read from the history's outcomes) ---------------------------------------

    def track_record(self, symbol: str, profile: str, before_ms: int, hit_gain: float = 0.10) -> TrackRecord:
        """The pair's signals in the 30 days before before_ms whose outcome is decided, and the profile's 7-day hit rate."""
        gains = [g for (g,) in self.db.execute(
            "SELECT max_gain FROM outcomes WHERE symbol = ? AND signal_time_ms >= ? AND signal_time_ms < ? AND outcome != 'unknown'",
            (symbol, before_ms - 30 * DAY_MS, before_ms))]  # fmt: skip
        known = [g for g in gains if g is not None]
        decided = dict(self.db.execute(
            "SELECT outcome, COUNT(*) FROM outcomes WHERE profile = ? AND signal_time_ms >= ? AND signal_time_ms < ?"
            " AND outcome IN ('hit', 'miss') GROUP BY outcome", (profile, before_ms - 7 * DAY_MS, before_ms)).fetchall())  # fmt: skip
        return TrackRecord(len(gains), sum(1 for g in known if g >= hit_gain - 1e-12), statistics.median(known) if known else None,
                           decided.get("hit", 0), decided.get("hit", 0) + decided.get("miss", 0))  # fmt: skip

    # --- mutes -----------------------------------------------------------------------------------

    def mute(self, chat_id: int, symbol: str, until_ns: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO mutes (chat_id, symbol, until_ns) VALUES (?,?,?)", (chat_id, symbol, until_ns))

    def unmute(self, chat_id: int, symbol: str) -> bool:
        return self.db.execute("DELETE FROM mutes WHERE chat_id = ? AND symbol = ?", (chat_id, symbol)).rowcount == 1

    def mutes(self, chat_id: int, now_ns: int) -> list[tuple[str, int]]:
        """(symbol, until_ns) of the chat's mutes still running, soonest end first."""
        return self.db.execute("SELECT symbol, until_ns FROM mutes WHERE chat_id = ? AND until_ns > ? ORDER BY until_ns, symbol",
                               (chat_id, now_ns)).fetchall()  # fmt: skip

    def is_muted(self, chat_id: int, symbol: str, now_ns: int) -> bool:
        return self.db.execute("SELECT 1 FROM mutes WHERE chat_id = ? AND symbol = ? AND until_ns > ?", (chat_id, symbol, now_ns)).fetchone() is not None

    # --- the pinned daily stats message ----------------------------------------------------------

    def pinned(self, chat_id: int) -> tuple[int, str] | None:
        row = self.db.execute("SELECT message_id, day FROM pinned WHERE chat_id = ?", (chat_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def set_pinned(self, chat_id: int, message_id: int, day: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO pinned (chat_id, message_id, day) VALUES (?,?,?)", (chat_id, message_id, day))

    # --- listings --------------------------------------------------------------------------------

    def add_listing(self, symbol: str, seen_ms: int, first_trade_ms: int | None) -> bool:
        """A new spot pair; False when it was already known (so it is announced once, across restarts)."""
        cur = self.db.execute("INSERT OR IGNORE INTO listings (symbol, seen_ms, first_trade_ms) VALUES (?,?,?)",
                              (symbol, seen_ms, first_trade_ms))  # fmt: skip
        return cur.rowcount == 1

    def listings_without_summary(self) -> list[tuple[str, int | None]]:
        """(symbol, first trade ms or None) of listings whose first minutes are not stored yet."""
        return self.db.execute("SELECT symbol, first_trade_ms FROM listings WHERE summary_ns IS NULL ORDER BY seen_ms, symbol").fetchall()

    def set_listing_first_trade(self, symbol: str, first_trade_ms: int) -> None:
        self.db.execute("UPDATE listings SET first_trade_ms = ? WHERE symbol = ? AND first_trade_ms IS NULL", (first_trade_ms, symbol))

    def set_listing_summary(self, symbol: str, first_trade_ms: int, quote_volume: float | None, low: float | None, high: float | None) -> None:
        self.db.execute("UPDATE listings SET first_trade_ms = ?, quote_volume = ?, low = ?, high = ?, summary_ns = ? WHERE symbol = ?",
                        (first_trade_ms, quote_volume, low, high, time.time_ns(), symbol))  # fmt: skip

    def listing(self, symbol: str) -> dict[str, Any] | None:
        cur = self.db.execute("SELECT * FROM listings WHERE symbol = ?", (symbol,))
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], row, strict=True)) if row else None

    def unsent_listings(self) -> list[str]:
        """Listings whose card, or whose first-minutes edit, the bot has not sent yet."""
        rows = self.db.execute("SELECT symbol FROM listings WHERE card_sent_ns IS NULL OR (summary_ns IS NOT NULL AND summary_sent_ns IS NULL)"
                               " ORDER BY seen_ms, symbol")  # fmt: skip
        return [r[0] for r in rows]

    def mark_listing_sent(self, symbol: str, at_ns: int, summary: bool) -> None:
        column = "summary_sent_ns" if summary else "card_sent_ns"
        self.db.execute(f"UPDATE listings SET {column} = ? WHERE symbol = ?", (at_ns, symbol))


__all__ = ["CardStore", "TrackRecord", "CARDS_SCHEMA"]
