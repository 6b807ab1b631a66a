"""/top [5m|15m|30m|1h|24h] [n]: the biggest movers, from the scanner's own state (no exchange call).

The supervisor answers from what it already holds (supervisor/pipeline.py top()): for windows up
to an hour the chart history's one-minute candles (price change, and the 5-min quote volume now
against the window's start as the volume surge); for 24 h the scout's last ticker/24hr volumes
(the scanner keeps no 24 h price history, so 24 h lists the busiest pairs and says so).
"""

from __future__ import annotations

import time
from typing import Any

from bot.cards import format_usd

WINDOWS = {"5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "24h": 86400}
USAGE = "Usage: /top [5m|15m|30m|1h|24h] [n] (default 1h, 5; n at most 25)"


def parse(args: list[str]) -> tuple[int, int] | str:
    """(window_s, n) or the usage text for bad arguments."""
    window, n = "1h", 5
    for arg in args[:2]:
        if arg.lower() in WINDOWS:
            window = arg.lower()
        elif arg.isdigit() and 1 <= int(arg) <= 25:
            n = int(arg)
        else:
            return f"{arg[:20]!r}: not a window or a count. {USAGE}"
    return (USAGE if len(args) > 2 else (WINDOWS[window], n))


def _name(window_s: int) -> str:
    return next((k for k, v in WINDOWS.items() if v == window_s), f"{window_s} s")


def format_top(top: dict[str, Any]) -> str:
    """The /top answer (plain text)."""
    window = _name(int(top.get("window_s", 0)))
    if "volume_24h" in top:
        rows = [f"{s} {format_usd(v)}" for s, v in top["volume_24h"]]
        return (f"Top 24 h by quote volume ({top.get('pairs', 0)} pairs; the scanner holds no 24 h price history):\n"
                + ("\n".join(rows) if rows else "no ticker yet"))  # fmt: skip
    if not top.get("pairs"):
        return f"Top {window}: no pair has a price {window} ago in the scanner's history yet (it keeps the last hour)."
    when = time.strftime("%H:%M", time.gmtime(int(top.get("exchange_ms", 0)) / 1000))
    lines = [f"Top movers over {window} ({top['pairs']} pairs, up to {when} UTC):"]
    for title, key, fmt in (("Gainers", "gainers", "{:+.2%}"), ("Losers", "losers", "{:+.2%}"), ("Volume surges (5-min volume vs then)", "surges", "x{:.1f}")):
        items = top.get(key) or []
        lines.append(f"{title}: " + (", ".join(f"{s} {fmt.format(v)}" for s, v in items) if items else "none"))
    return "\n".join(lines)


__all__ = ["parse", "format_top", "USAGE", "WINDOWS"]
