"""The /arb answer: the best triangle cycles now and the last 24 h's opportunities, as plain text.

Why a module apart from bot/commands.py: the command only routes; this formats what the triangle
child reported (through the supervisor's status), so it is tested without Telegram. Nothing here
knows of books or cycles beyond their printed names and figures.
"""

from __future__ import annotations

import math
from typing import Any

NOT_RUNNING = "Triangular arbitrage: no figures yet (arb.enabled is false, or the arb child has not reported)."


def _bps(x: Any) -> str:
    return f"{x:+.1f} bps" if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) else "n/a"


def format_arb(arb: Any) -> str:
    """Best cycles now (edge after three taker fees at the top of the book) and the day's episodes."""
    if not isinstance(arb, dict) or not arb:
        return NOT_RUNNING
    gauges = arb.get("gauges") if isinstance(arb.get("gauges"), dict) else {}
    lines = [f"Triangles: {int(gauges.get('arb_cycles', 0))} cycles over {int(gauges.get('arb_pairs', 0))} pairs, "
             f"{int(gauges.get('arb_opportunities_open', 0))} open now. Detection only: nothing is traded."]  # fmt: skip
    best = [b for b in arb.get("best") or [] if isinstance(b, dict)]
    lines.append("Best now (top of book, after fees):" if best else "Best now: no cycle priced yet.")
    lines += [f"  {_bps(b.get('top_bps'))}  {b.get('cycle', '?')}" for b in best]
    day = arb.get("last_24h") if isinstance(arb.get("last_24h"), dict) else {}
    count = day.get("count", 0)
    median = day.get("median_duration_ms")
    lines.append(f"Last 24 h: {count} opportunities" + (f", median {median / 1000:.1f} s" if isinstance(median, int | float) else "") + ".")
    for o in day.get("best") or []:
        if isinstance(o, dict):
            size, dur = o.get("size_usdt", 0.0), o.get("duration_ms", 0)
            lines.append(f"  peak {_bps(o.get('peak_bps'))} on {size:,.0f}, {dur / 1000:.1f} s  {o.get('cycle', '?')}")
    return "\n".join(lines)
