"""Bars, context and trade settlement for the post-pump short watcher (detectors/short_watch.py).

Why its own module: the watcher's state machine reads like the issue's stages only if the
arithmetic (bars from 1 s closes, volume z-score, ATR, CVD, the TP/SL settlement) lives apart;
both are pure (no I/O, no clock) so a replay and the live service compute the same numbers.

Inputs are the service's feature rows of one pair (core/rowspec.py): `last_price` of each closed
1 s bar, `quote_vol_5m` (the quote volume of the 5 minutes ending at the row) and
`buy_share_10s` (taker-buy share of the base volume of the last 10 s). A bar's high and low are
those of the 1 s closes it holds (intra-second wicks are not in the rows). The taker imbalance
of a bar is the mean of 2·buy_share − 1 over 10 s windows that do not overlap; the bar's CVD is
its quote volume times that imbalance (an approximation: the rows carry shares, not signed sums).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

MINUTE_MS = 60_000
IMBALANCE_SAMPLE_MS = 10_000  # buy_share_10s covers 10 s: sample it at most once per 10 s
TP, SL, TIMEOUT = "TP", "SL", "TIMEOUT"
ATR_BARS = 14
ZSCORE_BARS = 12


@dataclass
class Bar:
    """One bar of 1 s closes; quote_vol is the last row's quote_vol_5m (exact for a 5-minute bar)."""

    start_ms: int
    period_ms: int
    open: float
    high: float
    low: float
    close: float
    quote_vol: float = math.nan
    imbalance_sum: float = 0.0
    imbalance_n: int = 0

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.period_ms

    @property
    def imbalance(self) -> float:
        """Mean taker imbalance (-1 all sells … +1 all buys); NaN when no sample fell in the bar."""
        return self.imbalance_sum / self.imbalance_n if self.imbalance_n else math.nan


class BarBuilder:
    """Bars of a fixed period (aligned to exchange time), built point by point; keeps the last `keep`."""

    def __init__(self, period_ms: int, keep: int) -> None:
        self.period_ms = period_ms
        self.closed: deque[Bar] = deque(maxlen=keep)
        self.open_bar: Bar | None = None
        self._next_sample_ms = 0

    def add(self, t_ms: int, price: float, quote_vol_5m: float, buy_share: float) -> Bar | None:
        """Fold one 1 s close; returns the bar this point closed (it fell in a later period), if any."""
        done = self.close_due(t_ms)
        start = t_ms - t_ms % self.period_ms
        b = self.open_bar
        if b is None:
            b = self.open_bar = Bar(start, self.period_ms, price, price, price, price)
        b.high, b.low, b.close = max(b.high, price), min(b.low, price), price
        if math.isfinite(quote_vol_5m):
            b.quote_vol = quote_vol_5m
        if math.isfinite(buy_share) and t_ms >= self._next_sample_ms:
            b.imbalance_sum += 2.0 * buy_share - 1.0
            b.imbalance_n += 1
            self._next_sample_ms = t_ms + IMBALANCE_SAMPLE_MS
        return done

    def close_due(self, now_ms: int) -> Bar | None:
        """Close the open bar once the exchange clock reached its end (a quiet pair's bar closes too)."""
        b = self.open_bar
        if b is None or now_ms < b.end_ms:
            return None
        self.closed.append(b)
        self.open_bar = None
        return b


def volume_zscore(bars: list[Bar]) -> float:
    """z-score of the newest bar's quote volume against up to ZSCORE_BARS bars before it; NaN under 3."""
    if len(bars) < 4:
        return math.nan
    prior = [b.quote_vol for b in bars[-1 - ZSCORE_BARS : -1] if math.isfinite(b.quote_vol)]
    v = bars[-1].quote_vol
    if len(prior) < 3 or not math.isfinite(v):
        return math.nan
    mean = sum(prior) / len(prior)
    sd = math.sqrt(sum((x - mean) ** 2 for x in prior) / (len(prior) - 1))
    return (v - mean) / sd if sd > 0 else math.nan


def atr(bars: list[Bar]) -> float:
    """Average true range of up to ATR_BARS newest bars (price units); NaN without a bar."""
    if not bars:
        return math.nan
    recent = bars[-ATR_BARS - 1 :]
    ranges = [recent[0].high - recent[0].low] if len(recent) <= ATR_BARS else []
    for prev, b in zip(recent, recent[1:], strict=False):
        ranges.append(max(b.high - b.low, abs(b.high - prev.close), abs(b.low - prev.close)))
    return sum(ranges) / len(ranges)


class Trade:
    """A short from `entry` settled on bars: TP below, SL above; a bar that crosses both is SL.

    Why SL on a tie: inside one bar the order of its high and low is unknown, and the
    conservative reading is the one a trader would have lived with (FIELD-NOTES, "After a pump").
    Excursions are fractions of the entry: favourable = (entry − low)/entry, adverse = (high − entry)/entry.
    """

    def __init__(self, entry_price: float, entry_ms: int, tp_frac: float, sl_frac: float, timeout_ms: int) -> None:
        self.entry_price, self.entry_ms = entry_price, entry_ms
        self.tp_price = entry_price * (1.0 - tp_frac)
        self.sl_price = entry_price * (1.0 + sl_frac)
        self.tp_frac, self.sl_frac = tp_frac, sl_frac
        self.end_ms = entry_ms + timeout_ms
        self.mfe = 0.0
        self.mae = 0.0
        self.last_price = entry_price
        self.label: str | None = None
        self.exit_ms: int | None = None

    def fold(self, t_ms: int, high: float, low: float, close: float) -> str | None:
        """One bar after the entry; returns the label once the trade is settled."""
        if self.label is not None or t_ms <= self.entry_ms:
            return self.label
        if t_ms > self.end_ms:
            return self.expire(self.end_ms)
        self.mfe = max(self.mfe, (self.entry_price - low) / self.entry_price)
        self.mae = max(self.mae, (high - self.entry_price) / self.entry_price)
        self.last_price = close
        hit_sl = high >= self.sl_price * (1.0 - 1e-12)
        hit_tp = low <= self.tp_price * (1.0 + 1e-12)
        if hit_sl or hit_tp:
            self.label, self.exit_ms = (SL if hit_sl else TP), t_ms
        return self.label

    def expire(self, now_ms: int) -> str | None:
        """The exchange clock passed the timeout: TIMEOUT at the last close seen."""
        if self.label is None and now_ms >= self.end_ms:
            self.label, self.exit_ms = TIMEOUT, self.end_ms
        return self.label

    @property
    def exit_price(self) -> float:
        return {TP: self.tp_price, SL: self.sl_price}.get(self.label or "", self.last_price)

    def gross_return(self) -> float:
        """The short's return before fees: (entry − exit)/entry."""
        return (self.entry_price - self.exit_price) / self.entry_price


__all__ = ["ATR_BARS", "Bar", "BarBuilder", "MINUTE_MS", "SL", "TIMEOUT", "TP", "Trade", "atr", "volume_zscore"]
