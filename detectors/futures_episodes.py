"""Episodes of the futures last-vs-fair detector: the record, its events, the book summary, the log line.

Why apart from detectors/futures.py: these are the values other parts read (the feed's log writer,
a future card, a store table, the tests' reference), while detectors/futures.py is the per-update
state machine. Nothing here does I/O or reads a clock: every time is exchange time in ms, passed in.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

ENDED_BY = ("condition", "shutdown", "gap")
STRATEGIES = (1, 2, 3, 4)
_INF = math.inf


@dataclass(slots=True)
class Episode:
    """One stretch of time during which one strategy's condition held for one contract.

    While open (end_ms is None) the detector updates the peak in place; an ended episode is never
    changed again. Prices are the feed's floats as received; ratios are last / fair.
    """

    strategy: int  # 1 spread ratio, 2 + spike, 3 + baseline stability, 4 + thick book
    symbol: str  # futures symbol, BTC_USDT
    start_ms: int  # the update at which the condition first held
    start_last: float
    start_fair: float
    start_index: float  # informational: any float the feed passed (NaN when unknown)
    start_spread_pct: float | None  # the book at the start ((ask-bid)/mid in percent), None without a usable book
    start_depth_usdt: float | None  # USDT within ±strategy4.depth_band_pct of mid, both sides
    peak_ratio: float  # the highest last / fair while it held (the first update wins a tie)
    peak_last: float
    peak_fair: float
    peak_ms: int
    end_ms: int | None = None  # see ended_by for which moment this is
    ended_by: str | None = None  # "condition" | "shutdown" | "gap" (ENDED_BY)

    @property
    def duration_ms(self) -> int | None:
        return None if self.end_ms is None else self.end_ms - self.start_ms

    @property
    def duration(self) -> float | None:
        """Seconds from start to end; None while open."""
        return None if self.end_ms is None else (self.end_ms - self.start_ms) / 1000.0


@dataclass(frozen=True, slots=True)
class EpisodeEvent:
    """An episode started or ended.

    t_ms is when the detector decided: the ticker update's time, or for a gap the time the gap was
    noticed (the episode's end_ms is then the last update before it). A started event carries a
    copy of the episode as it began; an ended event carries the final episode.
    """

    kind: str  # "started" | "ended"
    t_ms: int
    episode: Episode


@dataclass(frozen=True, slots=True)
class BookSummary:
    """What strategy 4 reads of a book: is it tight, and is there money near the mid."""

    spread_pct: float  # (best ask - best bid) / mid * 100
    depth_usdt: float  # sum of price * qty * contract_size of the levels within the band, both sides


def _positive(x: float) -> bool:
    return 0.0 < x < _INF  # False for NaN, 0, negatives and inf


def summarize_book(
    bids: Sequence[Sequence[float]], asks: Sequence[Sequence[float]], contract_size: float, band_pct: float
) -> BookSummary | None:
    """The book's spread and depth near the mid, or None when it is not a usable book.

    Levels are (price, qty, ...) in any order (MEXC's [price, contracts, orderCount] works as is);
    qty times contract_size is the base amount. A level whose price or qty is not a positive
    finite number is skipped; a book without a valid bid and ask, or crossed or locked
    (bid >= ask), is None: unknown is never evidence of a thick book. The band is inclusive.
    math.fsum makes the depth independent of level order.
    """
    if not _positive(contract_size):
        return None
    best_bid = 0.0
    for level in bids:
        p, q = level[0], level[1]
        if _positive(p) and _positive(q) and p > best_bid:
            best_bid = p
    best_ask = _INF
    for level in asks:
        p, q = level[0], level[1]
        if _positive(p) and _positive(q) and p < best_ask:
            best_ask = p
    if best_bid <= 0.0 or best_ask == _INF or best_bid >= best_ask:
        return None
    mid = (best_bid + best_ask) / 2.0
    lo = mid * (1.0 - band_pct / 100.0)
    hi = mid * (1.0 + band_pct / 100.0)
    amounts = []
    for level in bids:
        p, q = level[0], level[1]
        if _positive(p) and _positive(q) and p >= lo:
            amounts.append(p * q * contract_size)
    for level in asks:
        p, q = level[0], level[1]
        if _positive(p) and _positive(q) and p <= hi:
            amounts.append(p * q * contract_size)
    return BookSummary((best_ask - best_bid) / mid * 100.0, math.fsum(amounts))


def price_text(x: float) -> str:
    """A price as the shortest decimal that reads back to the same float, never in e-notation.

    43500.0 -> "43500.0", 23513.5 -> "23513.5", 1.234e-05 -> "0.00001234": Python's repr digits
    (exactly reproducible from the float) written positionally.
    """
    if not math.isfinite(x):
        return repr(x)
    return format(Decimal(repr(x)), "f")


def ratio_text(ratio: float) -> str:
    """PEAK_RATIO: two decimals (1.85) as in the original log; four below 1.1 (1.0031), where the
    basis-point preset's episodes would otherwise all read 1.00. Rounded to nearest."""
    return f"{ratio:.2f}" if ratio >= 1.1 else f"{ratio:.4f}"


def _hms(ms: int) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ms // 1000))


def format_log_line(ep: Episode) -> str:
    """The original system's episode line, for an ended episode:

    `2025-11-20T12:34:56Z | BTC_USDT | START=12:34:50 | END=12:34:56 | DURATION=6s | PEAK_RATIO=1.85 | PEAK_LAST=43500.0 | PEAK_MARK=23513.5`

    The first stamp is end_ms in UTC (ISO, whole seconds, Z); START/END are UTC HH:MM:SS, the
    milliseconds cut off; DURATION is whole seconds elapsed, (end_ms - start_ms) // 1000;
    PEAK_RATIO by ratio_text, PEAK_LAST/PEAK_MARK (the fair price at the peak) by price_text.
    """
    if ep.end_ms is None:
        raise ValueError(f"{ep.symbol} strategy {ep.strategy}: the episode is still open")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ep.end_ms // 1000))
    return (
        f"{stamp} | {ep.symbol} | START={_hms(ep.start_ms)} | END={_hms(ep.end_ms)}"
        f" | DURATION={(ep.end_ms - ep.start_ms) // 1000}s | PEAK_RATIO={ratio_text(ep.peak_ratio)}"
        f" | PEAK_LAST={price_text(ep.peak_last)} | PEAK_MARK={price_text(ep.peak_fair)}"
    )
