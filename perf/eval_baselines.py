"""What popular scanners do, on the same trades: price-rise rules with no model.

  naive_10pct_20m   a trade >= 10 % above the lowest trade of the trailing 20 min (the target
                    definition itself, used as a signal)
  rise_2pct_5s_or_5pct_1m   >= 2 % above the trailing 5 s low, or >= 5 % above the 1 min low

Why here and not as profiles: they read trades, not feature rows, and exist only so the report
can say what the scanner adds over them. Each signal is made at the end of the 100 ms push that
carried its trade (the cadence the scanner itself is scored at) and one card per 20 min per pair
(the shipped cooldown period, no re-alerts).
"""

from __future__ import annotations

import numpy as np

from perf.eval_cards import Card
from perf.eval_replay import PUSH_MS

COOLDOWN_MS = 20 * 60_000
BASELINES: dict[str, tuple[tuple[int, float], ...]] = {
    "naive_10pct_20m": ((20 * 60_000, 0.10),),
    "rise_2pct_5s_or_5pct_1m": ((5_000, 0.02), (60_000, 0.05)),
}


def trailing_min(ts: np.ndarray, price: np.ndarray, window_ms: int) -> np.ndarray:
    """Per trade i: the lowest price of the trades in [ts[i] - window_ms, ts[i]] (a sparse table)."""
    n = len(price)
    if n == 0:
        return price.copy()
    table = [price]
    span = 1
    while span * 2 <= n:
        prev = table[-1]
        table.append(np.minimum(prev[:-span], prev[span:]))
        span *= 2
    lo = np.searchsorted(ts, ts - window_ms, side="left")
    hi = np.arange(n)
    length = hi - lo + 1
    level = np.floor(np.log2(length)).astype(np.int64)
    out = np.empty(n)
    for k in np.unique(level).tolist():
        idx = np.flatnonzero(level == k)
        t = table[k]
        out[idx] = np.minimum(t[lo[idx]], t[hi[idx] - (1 << k) + 1])
    return out


def baseline_cards(name: str, trades: dict[str, np.ndarray]) -> list[Card]:
    """The baseline's cards on one file's trades (time order, one per COOLDOWN_MS)."""
    ts, price = trades["ts_ms"], trades["price"]
    hit = np.zeros(len(ts), dtype=bool)
    for window_ms, rise in BASELINES[name]:
        hit |= price >= (1.0 + rise) * trailing_min(ts, price, window_ms)
    cards, last = [], None
    for i in np.flatnonzero(hit).tolist():
        t = int(ts[i])
        if last is not None and t - last < COOLDOWN_MS:
            continue
        last = t
        push_end = -(-t // PUSH_MS) * PUSH_MS  # seen at the end of its 100 ms push
        cards.append(Card(push_end, name, float(price[i])))
    return cards
