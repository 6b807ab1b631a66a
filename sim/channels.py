"""The channel names MEXC accepts for protobuf pushes, parsed once for subscribing and feeding.

Why a module of its own: the grammar decides which subscriptions are refused ("Blocked!") and
what a kline or miniTickers channel asks for; the connection handling (sim/ws_server.py) and the
frame encoding (sim/frames.py) both read it, and neither owns it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WS_KLINE_INTERVALS = {
    "Min1": "1m", "Min5": "5m", "Min15": "15m", "Min30": "30m", "Min60": "60m",
    "Hour4": "4h", "Hour8": "8h", "Day1": "1d", "Week1": "1W", "Month1": "1M",
}  # fmt: skip  # the WebSocket's interval names -> REST's (Hour8 has no REST twin)
MINI_TIMEZONES = frozenset(
    ["24H", "UTC-10", "UTC-8", "UTC-7", "UTC-6", "UTC-5", "UTC-4", "UTC-3", "UTC+0", "UTC+1", "UTC+2", "UTC+3", "UTC+4",
     "UTC+4:30", "UTC+5", "UTC+5:30", "UTC+6", "UTC+7", "UTC+8", "UTC+9", "UTC+10", "UTC+11", "UTC+12", "UTC+12:45", "UTC+13"]
)  # fmt: skip
_CHANNEL = re.compile(
    r"^spot@public\.(?:"
    r"aggre\.(?P<aggre>deals|depth|bookTicker)\.v3\.api\.pb@(?:100ms|10ms)@(?P<sym1>[A-Z0-9]+)"
    r"|limit\.depth\.v3\.api\.pb@(?P<sym2>[A-Z0-9]+)@(?P<levels>5|10|20)"
    r"|kline\.v3\.api\.pb@(?P<sym3>[A-Z0-9]+)@(?P<interval>[A-Za-z0-9]+)"
    r"|miniTickers\.v3\.api\.pb@(?P<tz>[A-Z0-9+:-]+)"
    r")$"
)


@dataclass(frozen=True)
class ParsedChannel:
    kind: str  # deals, depth, bookTicker, limit, kline, minitickers
    symbol: str | None
    levels: int = 0
    interval: str = ""  # kline: the WS name (Min1 ...); minitickers: the timezone


def parse_channel(channel: str) -> ParsedChannel | None:
    """The channel grammar MEXC accepts for protobuf pushes; None for anything else (Blocked!)."""
    m = _CHANNEL.match(channel)
    if not m:
        return None
    if m.group("aggre"):
        return ParsedChannel(m.group("aggre"), m.group("sym1"))
    if m.group("sym2"):
        return ParsedChannel("limit", m.group("sym2"), int(m.group("levels")))
    if m.group("sym3"):
        interval = m.group("interval")
        return ParsedChannel("kline", m.group("sym3"), interval=interval) if interval in WS_KLINE_INTERVALS else None
    tz = m.group("tz")
    return ParsedChannel("minitickers", None, interval=tz) if tz in MINI_TIMEZONES else None
