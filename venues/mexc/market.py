"""MEXC public market-data REST: the endpoints we call, their weights, and strict parsers of their bodies.

Why here and strict: every body MEXC (or something pretending to be MEXC) sends is untrusted input.
A NaN, infinite or negative number would sit in a book or a baseline and poison every feature of
the pair; a 400-digit JSON integer raised OverflowError where only ValueError was caught. So each
parser turns any malformed body into one exception type naming the field (ValueError for the
shards' depth/kline bodies, RestError for the scout's lists), and callers never read a raw body.
The fetch helpers pair each endpoint with its MEXC weight (mexc-api.md §2) so callers cannot
under-count it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from venues.mexc.rest import BULK, URGENT, PacedRest, RestError


@dataclass(frozen=True)
class Endpoint:
    """A public GET path and the weight MEXC charges for it."""

    path: str
    weight: int


DEPTH = Endpoint("/api/v3/depth", 1)
KLINES = Endpoint("/api/v3/klines", 1)
EXCHANGE_INFO = Endpoint("/api/v3/exchangeInfo", 10)
DEFAULT_SYMBOLS = Endpoint("/api/v3/defaultSymbols", 1)
TICKER_24H = Endpoint("/api/v3/ticker/24hr", 40)


@dataclass(frozen=True)
class SymbolInfo:
    """What the scout knows about one listed symbol."""

    symbol: str
    quote: str
    online: bool
    api_tradable: bool


@dataclass(frozen=True)
class DepthSnapshot:
    """A parsed depth snapshot: the version it is valid at and its [price, qty] levels."""

    last_update_id: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]


# --- parsers (pure: fuzzed by tests/test_fuzz_rest_parsers.py and perf/fuzz_parsers.py) -------------


def parse_levels(data: Any, key: str) -> list[tuple[float, float]]:
    """[[price, qty], ...] from a depth snapshot; anything else is a ValueError naming the key.

    Why strict: a NaN, infinite or negative level would sit in the book and poison every feature of
    the pair until the next snapshot, and a 400-digit JSON integer raised OverflowError, which the
    resync loop did not catch (the task died and the pair was never resynced).
    """
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise ValueError(f"depth snapshot: no {key} list")
    out: list[tuple[float, float]] = []
    for level in data[key]:
        if not isinstance(level, (list, tuple)) or len(level) < 2:
            raise ValueError(f"depth snapshot: {key} level {str(level)[:40]!r} is not [price, qty]")
        try:
            price, qty = float(level[0]), float(level[1])
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"depth snapshot: {key} level {str(level)[:40]!r} is not numeric") from None
        if not (math.isfinite(price) and math.isfinite(qty)) or price <= 0 or qty < 0:
            raise ValueError(f"depth snapshot: {key} level {str(level)[:40]!r} out of range")
        out.append((price, qty))
    return out


def parse_seed(rows: Any, first: Any) -> tuple[list[tuple[int, float, float]], int]:
    """(open time ms, volume, quote volume) per 5 m kline and the listing time from the first 1 m
    kline (-1 when unknown); any malformed row is a ValueError (NaN, inf, huge or missing fields
    used to escape as OverflowError or reach the baselines)."""
    if not isinstance(rows, list) or not isinstance(first, list):
        raise ValueError("klines: expected a list of rows")
    try:
        seed = [(int(r[0]), float(r[5]), float(r[7])) for r in rows]
        listing_ms = int(first[0][0]) if first else -1
    except (TypeError, ValueError, OverflowError, IndexError, KeyError) as exc:
        raise ValueError(f"klines: malformed row ({str(exc)[:80]})") from None
    for t, v, qv in seed:
        if not (0 <= t < 2**63 and math.isfinite(v) and math.isfinite(qv) and v >= 0 and qv >= 0):
            raise ValueError(f"klines: row ({t}, {v}, {qv}) out of range")
    if not -1 <= listing_ms < 2**63:
        raise ValueError(f"klines: listing time {listing_ms} out of range")
    return seed, listing_ms


def parse_update_id(data: Any) -> int:
    """lastUpdateId as a non-negative int; bool, float, NaN or huge values are a ValueError."""
    value = data.get("lastUpdateId") if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"depth snapshot: lastUpdateId {str(value)[:40]!r} is not an integer")
    try:
        out = int(value)
    except ValueError:
        raise ValueError(f"depth snapshot: lastUpdateId {str(value)[:40]!r} is not an integer") from None
    if not 0 <= out < 2**63:
        raise ValueError(f"depth snapshot: lastUpdateId {str(value)[:40]!r} out of range")
    return out


def parse_depth(data: Any) -> DepthSnapshot:
    """A whole depth snapshot body; ValueError naming the bad field otherwise."""
    bids, asks = parse_levels(data, "bids"), parse_levels(data, "asks")
    return DepthSnapshot(parse_update_id(data), bids, asks)


def parse_exchange_info(data: Any, default_symbols: Any, host: str = "") -> dict[str, SymbolInfo]:
    """Turn exchangeInfo + defaultSymbols JSON into SymbolInfo; malformed rows are skipped.

    host (of the answering server) goes into the RestError, so a log line says who sent garbage.
    """
    if not isinstance(data, dict) or not isinstance(data.get("symbols"), list):
        raise RestError(200, None, "exchangeInfo: no symbols list in response", host=host)
    tradable: set[str] = set()
    if isinstance(default_symbols, dict) and isinstance(default_symbols.get("data"), list):
        tradable = {s for s in default_symbols["data"] if isinstance(s, str)}
    out: dict[str, SymbolInfo] = {}
    for row in data["symbols"]:
        if not isinstance(row, dict) or not isinstance(row.get("symbol"), str):
            continue
        symbol = row["symbol"]
        status = str(row.get("status", ""))
        out[symbol] = SymbolInfo(
            symbol=symbol,
            quote=str(row.get("quoteAsset", "")),
            online=status in ("1", "ENABLED"),
            api_tradable=symbol in tradable and bool(row.get("isSpotTradingAllowed", True)),
        )
    return out


def parse_tickers(data: Any, host: str = "") -> dict[str, float]:
    """symbol → 24 h quote volume; null or garbage volumes count as 0 (MEXC sends nulls)."""
    if not isinstance(data, list):
        raise RestError(200, None, "ticker/24hr: expected a list", host=host)
    out: dict[str, float] = {}
    for row in data:
        if not isinstance(row, dict) or not isinstance(row.get("symbol"), str):
            continue
        try:
            qv = float(row.get("quoteVolume") or 0.0)
        except (TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit JSON integer
            qv = 0.0
        out[row["symbol"]] = qv if math.isfinite(qv) and qv > 0 else 0.0
    return out


# --- fetches (one endpoint, its weight, its parser) ---------------------------------------------


async def fetch_depth(rest: PacedRest, symbol: str, limit: int = 100, priority: int = URGENT) -> DepthSnapshot:
    """The book snapshot a resync needs; RestError or ValueError on failure."""
    data = await rest.get(DEPTH.path, {"symbol": symbol, "limit": limit}, weight=DEPTH.weight, priority=priority)
    return parse_depth(data)


async def fetch_kline_seed(rest: PacedRest, symbol: str, rows: int, priority: int = BULK) -> tuple[list[tuple[int, float, float]], int]:
    """rows 5 m klines (the volume baseline) and the listing time from the first 1 m kline."""
    recent = await rest.get(KLINES.path, {"symbol": symbol, "interval": "5m", "limit": rows}, weight=KLINES.weight, priority=priority)
    first = await rest.get(KLINES.path, {"symbol": symbol, "interval": "1m", "startTime": 0, "limit": 1}, weight=KLINES.weight,
                           priority=priority)  # fmt: skip
    return parse_seed(recent, first)


async def fetch_universe(rest: PacedRest, priority: int = URGENT) -> dict[str, SymbolInfo]:
    """exchangeInfo + defaultSymbols: every listed symbol, its quote asset, status and API tradability."""
    info = await rest.get(EXCHANGE_INFO.path, weight=EXCHANGE_INFO.weight, priority=priority)
    default = await rest.get(DEFAULT_SYMBOLS.path, weight=DEFAULT_SYMBOLS.weight, priority=priority)
    return parse_exchange_info(info, default, host=rest.host)


async def fetch_volumes(rest: PacedRest, priority: int = URGENT) -> dict[str, float]:
    """ticker/24hr: symbol → 24 h quote volume."""
    return parse_tickers(await rest.get(TICKER_24H.path, weight=TICKER_24H.weight, priority=priority), host=rest.host)
