"""Kline buckets: candle open times on MEXC's grid (UTC minutes .. calendar months).

Why apart: the generated market and the replayed one answer REST klines from different data but
must cut the buckets identically, the way MEXC does (weeks open Monday 00:00 UTC, months on the
1st); both call bucket_opens() and next_open() from here.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

MINUTE_MS = 60_000
DAY_MINUTES = 1440
INTERVAL_MS = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "60m": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
    "1W": 604_800_000,
    "1M": 0,  # calendar months
}
KLINE_INTERVALS = tuple(INTERVAL_MS)  # REST's names
_WEEK_OFFSET_MS = 4 * 86_400_000  # 1970-01-01 was a Thursday; weeks open on Monday 00:00 UTC


def _floor_open(interval: str, t: int) -> int:
    width = INTERVAL_MS[interval]
    if width == 0:
        d = datetime.fromtimestamp(t / 1000, UTC)
        return calendar.timegm((d.year, d.month, 1, 0, 0, 0)) * 1000
    if interval == "1W":
        return t - (t - _WEEK_OFFSET_MS) % width
    return t - t % width


def next_open(interval: str, t: int) -> int:
    width = INTERVAL_MS[interval]
    if width:
        return t + width
    d = datetime.fromtimestamp(t / 1000, UTC)
    y, mo = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return calendar.timegm((y, mo, 1, 0, 0, 0)) * 1000


def _prev_open(interval: str, t: int) -> int:
    width = INTERVAL_MS[interval]
    return t - width if width else _floor_open(interval, t - 1)


def bucket_opens(interval: str, start_ms: int | None, end_ms: int | None, now_ms: int, listing_ms: int, limit: int) -> list[int]:
    """Open times of the candles a REST klines call returns (oldest first), like MEXC."""
    end = now_ms if end_ms is None else min(end_ms, now_ms)
    first_ok = _floor_open(interval, listing_ms)
    opens: list[int] = []
    if start_ms is not None:
        t = max(_floor_open(interval, start_ms), first_ok)
        while t <= end and len(opens) < limit:
            opens.append(t)
            t = next_open(interval, t)
        return opens
    t = _floor_open(interval, end)
    while t >= first_ok and len(opens) < limit:
        opens.append(t)
        t = _prev_open(interval, t)
    return opens[::-1]
