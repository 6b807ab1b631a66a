"""Scripted futures anomalies: contract C's last price runs X % away from its fair price for N seconds.

Why the timeline is explicit (approach, hold, decay): a test of a last-vs-fair detector needs to
know exactly when the ratio holds. During the hold window [hold_from, hold_until) every trade,
and so the last price, is at least fair × (1 + X/100) (at most, for a negative X); before it the
price approaches over `approach_s` (a spike: a jump within a few seconds; otherwise a steady
climb), after it it decays back to fair over `decay_s`. `book` puts the contract on a thick or thin
book for the whole episode (None keeps its own).

Written in YAML as a `futures_anomalies:` list, either inside the spot scenario file (the spot
parser passes the section here) or in a file of its own (`--futures-scenario`); a contract is
named by symbol (BASE_USDT) or by activity rank (0 = busiest). Errors name the entry and field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.scenario import ScenarioError, read_yaml

SPIKE_MAX_APPROACH_S = 5.0
_SYMBOL = re.compile(r"[A-Z0-9]{1,20}_[A-Z]{2,8}")
_NUMBERS: dict[str, tuple[float, float]] = {
    "start_s": (-1e9, 1e9),
    "duration_s": (1.0, 1e6),
    "premium_pct": (-90.0, 1000.0),
    "approach_s": (0.0, 3600.0),
    "decay_s": (0.0, 3600.0),
}
_FIELDS = {*_NUMBERS, "symbol", "rank", "spike", "book"}


@dataclass
class FuturesAnomaly:
    """One scripted episode; times are seconds of exchange time from the market's start."""

    symbol: str | None
    rank: int | None
    start_s: float
    duration_s: float  # the hold: how long the ratio is guaranteed
    premium_pct: float  # X: last runs X % above fair (below, if negative)
    spike: bool = False
    approach_s: float | None = None  # default 2 s for a spike, 60 s otherwise
    decay_s: float = 10.0
    book: str | None = None  # "thick" | "thin" | None (the contract's own book)
    index: int = -1  # resolved contract index

    def __post_init__(self) -> None:
        if self.approach_s is None:
            self.approach_s = 2.0 if self.spike else 60.0

    @property
    def ratio(self) -> float:
        return 1.0 + self.premium_pct / 100.0

    def bounds_ms(self, start_ms: int) -> tuple[int, int, int, int]:
        """(begin, hold_from, hold_until, end) in exchange ms for a market that started at start_ms."""
        begin = start_ms + round(self.start_s * 1000)
        hold_from = begin + round((self.approach_s or 0.0) * 1000)
        hold_until = hold_from + round(self.duration_s * 1000)
        return begin, hold_from, hold_until, hold_until + round(self.decay_s * 1000)

    def describe(self, symbol: str, start_ms: int, now_ms: int) -> dict[str, Any]:
        begin, hold_from, hold_until, end = self.bounds_ms(start_ms)
        return {
            "symbol": symbol, "premium_pct": self.premium_pct, "ratio": self.ratio, "spike": self.spike, "book": self.book,
            "start_ms": begin, "hold_from_ms": hold_from, "hold_until_ms": hold_until, "end_ms": end,
            "active": begin <= now_ms < end, "holding": hold_from <= now_ms < hold_until,
        }  # fmt: skip


def anomaly_from_mapping(item: Any, where: str) -> FuturesAnomaly:
    """One entry, validated; `where` names it in errors (e.g. 'futures_anomalies[2]')."""
    if not isinstance(item, dict):
        raise ScenarioError(f"{where}: expected a mapping")
    extra = set(item) - _FIELDS
    if extra:
        raise ScenarioError(f"{where}.{sorted(extra)[0]}: unknown field")
    symbol, rank = item.get("symbol"), item.get("rank")
    if (symbol is None) == (rank is None):
        raise ScenarioError(f"{where}: give exactly one of symbol or rank")
    if symbol is not None and (not isinstance(symbol, str) or not _SYMBOL.fullmatch(symbol)):
        raise ScenarioError(f"{where}.symbol: got {symbol!r}, expected a contract symbol like 'BTC_USDT'")
    if rank is not None and (not isinstance(rank, int) or isinstance(rank, bool) or rank < 0):
        raise ScenarioError(f"{where}.rank: got {rank!r}, expected an integer >= 0")
    values: dict[str, float] = {}
    for name, (lo, hi) in _NUMBERS.items():
        if name not in item:
            if name in ("start_s", "duration_s", "premium_pct"):
                raise ScenarioError(f"{where}.{name}: required")
            continue
        value = item[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise ScenarioError(f"{where}.{name}: got {value!r}, expected a number {lo}..{hi}")
        values[name] = float(value)
    if values["premium_pct"] == 0:
        raise ScenarioError(f"{where}.premium_pct: 0 is no anomaly")
    spike = item.get("spike", False)
    if not isinstance(spike, bool):
        raise ScenarioError(f"{where}.spike: got {spike!r}, expected true or false")
    if spike and values.get("approach_s", 2.0) > SPIKE_MAX_APPROACH_S:
        raise ScenarioError(f"{where}.approach_s: a spike jumps within {SPIKE_MAX_APPROACH_S:g} s")
    book = item.get("book")
    if book not in (None, "thick", "thin"):
        raise ScenarioError(f"{where}.book: got {book!r}, expected thick or thin")
    return FuturesAnomaly(symbol=symbol, rank=rank, spike=spike, book=book, **values)


def parse_futures_anomalies(items: Any, section: str = "futures_anomalies") -> list[FuturesAnomaly]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise ScenarioError(f"{section}: expected a list")
    return [anomaly_from_mapping(item, f"{section}[{n}]") for n, item in enumerate(items)]


def load_futures_scenario(path: str | Path) -> list[FuturesAnomaly]:
    """A file holding a `futures_anomalies:` list (other spot sections are not allowed here)."""
    raw = read_yaml(path)
    if raw is None:
        return []
    if not isinstance(raw, dict) or set(raw) - {"futures_anomalies"}:
        raise ScenarioError(f"{path}: expected a mapping with only a futures_anomalies list")
    return parse_futures_anomalies(raw.get("futures_anomalies"))


def resolve_anomalies(anomalies: list[FuturesAnomaly], symbols: list[str]) -> None:
    """Set each anomaly's contract index; unknown symbols and ranks past the market are errors."""
    index = {s: i for i, s in enumerate(symbols)}
    for n, an in enumerate(anomalies):
        if an.symbol is not None:
            if an.symbol not in index:
                raise ScenarioError(f"futures_anomalies[{n}]: no contract {an.symbol} in the market")
            an.index = index[an.symbol]
        else:
            assert an.rank is not None
            if an.rank >= len(symbols):
                raise ScenarioError(f"futures_anomalies[{n}] rank {an.rank}: the market has only {len(symbols)} contracts")
            an.index = an.rank
