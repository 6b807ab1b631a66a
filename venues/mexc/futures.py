"""MEXC futures (contract) WebSocket: channel names, the sub/unsub/ping messages and strict push parsers.

Why a module apart from channels.py: the contract API is another protocol on another host
(mexc-api.md §5): JSON text pushes instead of protobuf, `{"method":"sub.x","param":{…}}` instead of
SUBSCRIPTION lists, acks `rs.sub.x` that carry no symbol, a lower-case `ping` answered on the
`pong` channel, and `BASE_QUOTE` symbols. Sharing names with the spot code would only invite mixing.

Why strict: every push is untrusted input feeding a last-vs-fair ratio. A NaN, infinite, zero or
negative price would make the ratio meaningless (or infinite) and open a false episode, and a
400-digit JSON integer raises OverflowError where callers catch ValueError. So each parser returns
small typed records or raises ValueError naming the channel and the field; nothing else escapes.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from dataclasses import dataclass
from typing import Any

WS_URL = "wss://contract.mexc.com/edge"

TICKERS = "push.tickers"
TICKER = "push.ticker"
FAIR_PRICE = "push.fair.price"
INDEX_PRICE = "push.index.price"
DEPTH = "push.depth"
DEPTH_FULL = "push.depth.full"
PONG = "pong"
ERROR = "rs.error"

PING = {"method": "ping"}
DEPTH_FULL_LIMITS = (5, 10, 20)
_MAX_MS = 2**63

Level = tuple[float, float]


# --- client → server messages --------------------------------------------------------------------


def sub_message(topic: str, param: dict[str, Any] | None = None) -> dict[str, Any]:
    """`{"method":"sub.<topic>","param":{…},"gzip":false}`.

    Why gzip false: the docs say it asks for plaintext pushes; a live measurement saw only TEXT
    frames without it, so it costs nothing and the feed still inflates a binary frame if one comes.
    """
    return {"method": f"sub.{topic}", "param": dict(param or {}), "gzip": False}


def unsub_messages(topic: str, param: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The unsubscribe message(s) for a topic.

    depth.full is documented as `usub.depth.full` (sic) and which spelling works is UNCONFIRMED
    (mexc-api.md §5.1, §8); an unknown method gets no answer at all, so both are sent.
    """
    methods = ["unsub", "usub"] if topic == "depth.full" else ["unsub"]
    return [{"method": f"{method}.{topic}", "param": dict(param or {})} for method in methods]


def tickers_sub() -> dict[str, Any]:
    """All perpetuals in one stream (every 2 s): last, fair and index price per contract."""
    return sub_message("tickers")


def ticker_sub(symbol: str) -> dict[str, Any]:
    return sub_message("ticker", {"symbol": symbol})


def fair_price_sub(symbol: str) -> dict[str, Any]:
    return sub_message("fair.price", {"symbol": symbol})


def index_price_sub(symbol: str) -> dict[str, Any]:
    return sub_message("index.price", {"symbol": symbol})


def depth_full_sub(symbol: str, limit: int = 20) -> dict[str, Any]:
    """Top-`limit` book snapshots (limit 5, 10 or 20): no local book to keep in step."""
    if limit not in DEPTH_FULL_LIMITS:
        raise ValueError(f"depth.full limit {limit} is not one of {DEPTH_FULL_LIMITS}")
    return sub_message("depth.full", {"symbol": symbol, "limit": limit})


def depth_sub(symbol: str, compress: bool = False) -> dict[str, Any]:
    """Incremental depth (versions step by +1). compress merges pushes; it defaults to true since 2025-04-09."""
    return sub_message("depth", {"symbol": symbol, "compress": compress})


# --- records -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded frame: channel, data, and the optional top-level symbol and ts (ms)."""

    channel: str
    data: Any
    symbol: str | None
    ts: int | None


@dataclass(frozen=True, slots=True)
class Ticker:
    """Last, fair and index price of one contract at t_ms (exchange time)."""

    symbol: str
    t_ms: int
    last: float
    fair: float
    index: float
    hold_vol: float = math.nan  # open interest in contracts (holdVol); NaN when the row has none


@dataclass(frozen=True, slots=True)
class Price:
    """A fair- or index-price push: one price of one contract at t_ms."""

    symbol: str
    t_ms: int
    price: float


@dataclass(frozen=True, slots=True)
class Depth:
    """A book push or snapshot: [price, contracts] levels (order counts dropped) and the book version.

    full: the levels are the whole top-N (depth.full, REST); otherwise a diff where 0 deletes a level.
    """

    symbol: str
    t_ms: int
    version: int
    bids: list[Level]
    asks: list[Level]
    full: bool


# --- field helpers -------------------------------------------------------------------------------


def _number(row: dict[str, Any], key: str, where: str) -> float:
    value = row.get(key)
    if value is None:
        raise ValueError(f"{where}: missing {key}")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{where}: {key} {str(value)[:40]!r} is not a number")
    try:
        out = float(value)
    except (ValueError, OverflowError):
        raise ValueError(f"{where}: {key} {str(value)[:40]!r} is not a number") from None
    if not math.isfinite(out):
        raise ValueError(f"{where}: {key} {str(value)[:40]!r} is not finite")
    return out


def _price(row: dict[str, Any], key: str, where: str) -> float:
    out = _number(row, key, where)
    if out <= 0:
        raise ValueError(f"{where}: {key} {out!r} is not a positive price")
    return out


def _int(value: Any, key: str, where: str) -> int:
    """A non-negative int below 2**63 (times, versions); floats only when integral, bools never."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{where}: {key} {str(value)[:40]!r} is not an integer")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{where}: {key} {str(value)[:40]!r} is not an integer")
    try:
        out = int(value)
    except (ValueError, OverflowError):
        raise ValueError(f"{where}: {key} {str(value)[:40]!r} is not an integer") from None
    if not 0 <= out < _MAX_MS:
        raise ValueError(f"{where}: {key} {str(value)[:40]!r} out of range")
    return out


def _symbol(row: dict[str, Any], where: str, fallback: str | None = None) -> str:
    value = row.get("symbol", fallback)
    if not isinstance(value, str) or not value or len(value) > 64:
        raise ValueError(f"{where}: symbol {str(value)[:40]!r} is missing or not a name")
    return value


def _time(row: dict[str, Any], key: str, where: str, fallback: int | None) -> int:
    value = row.get(key)
    if value is None:
        if fallback is None:
            raise ValueError(f"{where}: missing {key}")
        return fallback
    return _int(value, key, where)


def parse_levels(rows: Any, key: str, where: str) -> list[Level]:
    """[[price, contracts, orderCount?], …] → [(price, contracts)]; price > 0, contracts ≥ 0, finite."""
    if not isinstance(rows, list):
        raise ValueError(f"{where}: {key} is not a list")
    out: list[Level] = []
    for level in rows:
        if not isinstance(level, list) or len(level) < 2:
            raise ValueError(f"{where}: {key} level {str(level)[:40]!r} is not [price, contracts, count]")
        pair = {"price": level[0], "qty": level[1]}
        out.append((_price(pair, "price", f"{where} {key}"), _number(pair, "qty", f"{where} {key}")))
        if out[-1][1] < 0:
            raise ValueError(f"{where}: {key} level {str(level)[:40]!r} has a negative quantity")
    return out


# --- parsers -------------------------------------------------------------------------------------


def decode_frame(raw: str | bytes) -> str:
    """The JSON text of a frame: TEXT as is; BINARY inflated (gzip or zlib) or read as UTF-8."""
    if isinstance(raw, str):
        return raw
    for inflate in (gzip.decompress, zlib.decompress):
        try:
            raw = inflate(raw)
            break
        except (OSError, EOFError, zlib.error):
            continue
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("frame: binary frame is neither gzip nor UTF-8") from None


def parse_message(raw: str | bytes) -> Message:
    """A frame's envelope `{"channel":…, "data":…, "symbol"?, "ts"?}`; ValueError when it is not one."""
    try:
        obj = json.loads(decode_frame(raw))
    except (ValueError, RecursionError):
        raise ValueError(f"frame: not JSON ({str(raw)[:60]!r})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("channel"), str):
        raise ValueError(f"frame: no channel ({str(raw)[:60]!r})")
    symbol = obj.get("symbol")
    ts = obj.get("ts")
    return Message(
        channel=obj["channel"],
        data=obj.get("data"),
        symbol=symbol if isinstance(symbol, str) and symbol else None,
        ts=_int(ts, "ts", obj["channel"]) if ts is not None else None,
    )


_PLAIN_NUMBER = (float, int)  # exact types: bool (an int subclass) and strings take the checked path
_BIG = 1e300  # above it (and NaN, inf, a huge JSON int float() refuses) the checked path decides


def parse_ticker_row(row: Any, where: str = TICKERS, fallback_ts: int | None = None) -> Ticker:
    """One contract of push.tickers / push.ticker / REST ticker: symbol, timestamp, last/fair/index price.

    Why a fast path: push.tickers carries ~1,200 rows every 2 s and nearly all are well formed
    (JSON numbers, an int timestamp); checking those with plain type and range tests and no error
    text costs a third of the checked path. Anything else (strings, bools, missing or bad fields)
    goes through parse_ticker_row_checked, which gives the same result or the error naming the
    field; tests/test_venues_mexc_futures.py proves the two equal on random rows.
    """
    if type(row) is dict:
        symbol, ts = row.get("symbol"), row.get("timestamp", fallback_ts)
        last, fair, index = row.get("lastPrice"), row.get("fairPrice"), row.get("indexPrice")
        hold = row.get("holdVol")
        if (type(symbol) is str and 0 < len(symbol) <= 64 and type(ts) is int and 0 <= ts < _MAX_MS
                and type(last) in _PLAIN_NUMBER and type(fair) in _PLAIN_NUMBER and type(index) in _PLAIN_NUMBER
                and 0 < last < _BIG and 0 < fair < _BIG and 0 < index < _BIG
                and (hold is None or (type(hold) in _PLAIN_NUMBER and 0 <= hold < _BIG))):  # fmt: skip
            return Ticker(symbol=symbol, t_ms=ts, last=float(last), fair=float(fair), index=float(index),
                          hold_vol=math.nan if hold is None else float(hold))  # fmt: skip
    return parse_ticker_row_checked(row, where, fallback_ts)


def parse_ticker_row_checked(row: Any, where: str = TICKERS, fallback_ts: int | None = None) -> Ticker:
    """parse_ticker_row with every field checked and a ValueError naming the first bad one."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: row {str(row)[:40]!r} is not an object")
    symbol = _symbol(row, where)
    return Ticker(
        symbol=symbol,
        t_ms=_time(row, "timestamp", f"{where} {symbol}", fallback_ts),
        last=_price(row, "lastPrice", f"{where} {symbol}"),
        fair=_price(row, "fairPrice", f"{where} {symbol}"),
        index=_price(row, "indexPrice", f"{where} {symbol}"),
        hold_vol=_optional_amount(row.get("holdVol")),
    )


def _optional_amount(value: Any) -> float:
    """An optional non-negative number (holdVol): the value, or NaN when absent or not one (never an error:
    the prices are what the detector needs; open interest only feeds the short watcher's context)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return math.nan
    try:
        number = float(value)
    except ValueError:
        return math.nan
    return number if math.isfinite(number) and number >= 0 else math.nan


def parse_tickers(message: Message) -> tuple[list[Ticker], list[str]]:
    """push.tickers: the good rows and one error text per bad row.

    Why not all-or-nothing: the push carries ~1,200 contracts; one fresh contract with no trade yet
    (lastPrice 0) must not blank the other 1,199 for 2 s. A frame that is not a list is a ValueError.
    """
    if not isinstance(message.data, list):
        raise ValueError(f"{TICKERS}: data is not a list")
    tickers: list[Ticker] = []
    errors: list[str] = []
    for row in message.data:
        try:
            tickers.append(parse_ticker_row(row, TICKERS, message.ts))
        except ValueError as exc:
            errors.append(str(exc))
    return tickers, errors


def parse_ticker(message: Message) -> Ticker:
    """push.ticker (one contract, every ~1 s while it trades)."""
    return parse_ticker_row(message.data, TICKER, message.ts)


def parse_price(message: Message) -> Price:
    """push.fair.price / push.index.price: data `{symbol, price}`; the time is the frame's ts."""
    where = message.channel
    if not isinstance(message.data, dict):
        raise ValueError(f"{where}: data is not an object")
    symbol = _symbol(message.data, where, message.symbol)
    t_ms = _time(message.data, "timestamp", f"{where} {symbol}", message.ts)
    return Price(symbol, t_ms, _price(message.data, "price", f"{where} {symbol}"))


def parse_depth(message: Message) -> Depth:
    """push.depth (diff) or push.depth.full (top-N): asks/bids `[price, contracts, orderCount]`, version."""
    where = message.channel
    data = message.data
    if not isinstance(data, dict):
        raise ValueError(f"{where}: data is not an object")
    symbol = _symbol(data, where, message.symbol)
    key = next((k for k in ("ct", "timestamp") if k in data), "ct")  # push: frame ts; REST: timestamp
    t_ms = _time(data, key, f"{where} {symbol}", message.ts)
    if "version" not in data:
        raise ValueError(f"{where} {symbol}: missing version")
    version = _int(data["version"], "version", f"{where} {symbol}")
    return Depth(symbol, t_ms, version, parse_levels(data.get("bids"), "bids", f"{where} {symbol}"),
                 parse_levels(data.get("asks"), "asks", f"{where} {symbol}"), full=where != DEPTH)  # fmt: skip


def parse_pong(message: Message) -> int:
    """pong: data is the server time in ms."""
    return _int(message.data, "data", PONG)


def ack_ok(message: Message) -> bool:
    """rs.sub.x / rs.unsub.x: data "success" is an ack; anything else is a refusal."""
    return message.data == "success"


def error_text(message: Message) -> str:
    """rs.error's data ("Contract [NOPE_USDT] not exists", "more than 60 seconds no response, …"), bounded."""
    data = message.data
    return (data if isinstance(data, str) else json.dumps(data, default=str))[:200]
