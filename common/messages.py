"""Typed messages for everything that crosses a pipe between the supervisor, shards and the bot.

Why one module: the three processes are written apart and run apart; a message whose shape
drifts on one side (a renamed key, a missing field) used to fail silently as an ignored dict.
Every message is a frozen dataclass here; `encode` turns it into plain data for the pipe and
`decode` turns plain data back into the dataclass or raises MessageError naming what is wrong,
so a bad or unknown message is logged and dropped, never half-applied.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any


class MessageError(ValueError):
    """A pipe message is not a known message, or one of its fields has the wrong type."""


# --- supervisor -> shard -------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The pairs a shard must watch: (pair_id, symbol) each; replaces the previous plan."""

    pairs: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class DropLinks:
    """Drop every WebSocket link (tests and fault drills): the shard reconnects as after a fault."""


@dataclass(frozen=True)
class Stop:
    """Finish what is in flight and exit (shards and the bot)."""


# --- shard -> supervisor -------------------------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    """A shard's event loop runs (sent once per start)."""

    shard: int
    pid: int


@dataclass(frozen=True)
class Blocked:
    """Pairs the exchange refused ("Blocked!"): the supervisor stops planning them."""

    symbols: list[str] = field(default_factory=list)


# --- futures child -> supervisor ------------------------------------------------------------------


@dataclass(frozen=True)
class FuturesStats:
    """The futures feed's and detector's counters, every few seconds, for /metrics (name -> value)."""

    values: dict[str, float]


@dataclass(frozen=True)
class ArbStats:
    """The triangle child's counters, duration histogram and /arb summary, every few seconds (supervisor/arb.py)."""

    values: dict[str, Any]


# --- supervisor -> bot ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SignalStored:
    """A signal is in the store's outbox: the bot sends every unsent card."""

    signal_id: str


@dataclass(frozen=True)
class OutcomeStored:
    """A signal's watch closed and its outcome is stored (plain data of supervisor.outcome.Outcome)."""

    outcome: dict[str, Any]


@dataclass(frozen=True)
class ConfigChanged:
    """The running config changed (/cfg, /reload, SIGHUP): the bot takes it whole.

    Why the Config object and not its masked public dict: the bot must keep its secrets, and
    replaying a masked dict key by key through /cfg validation tried to set the (empty) secrets
    too, logging a spurious warning per secret on every change.
    """

    config: Any


@dataclass(frozen=True)
class Notice:
    """Plain text for the owner (every allowed chat): a refused reload, a child that keeps dying.

    key: a notice that will be followed up (a futures episode's start card). A later Notice with
    the same key and edit=True replaces that message's text in every chat where it was sent
    (Telegram editMessageText), instead of adding a second message; when the first is unknown (the
    bot restarted in between) the follow-up is sent as a new message, so nothing is lost.
    """

    text: str
    key: str = ""
    edit: bool = False


@dataclass(frozen=True)
class OpenInterest:
    """futures child -> supervisor: a watched contract's open interest (holdVol) at t_ms, for the short watcher."""

    symbol: str  # the contract, e.g. PEPE_USDT
    t_ms: int
    hold_vol: float


@dataclass(frozen=True)
class WatchPrices:
    """bot -> supervisor: the spot pairs of open positions, whose 1 s closes the automatic exits need (replaces the last list)."""

    symbols: list[str]


@dataclass(frozen=True)
class Closes:
    """supervisor -> bot: the newest 1 s close of each watched pair (WatchPrices), at most once per exchange second."""

    prices: dict[str, float]
    t_ms: int


@dataclass(frozen=True)
class WatchedContracts:
    """supervisor -> futures child: the contracts whose open interest the short watcher wants now (replaces the last list)."""

    symbols: list[str]


@dataclass(frozen=True)
class ShortNotice:
    """A short watcher message (start, entry, outcome); sent as a reply to the pump's card when signal_id names one."""

    text: str
    signal_id: str  # "" when the pump had no card (HTTP intake)


@dataclass(frozen=True)
class ListingStored:
    """A new spot pair, or its first minutes, is in the store's listings table: the bot sends or edits its listing card."""

    symbol: str


@dataclass(frozen=True)
class StatusReply:
    req_id: int
    status: dict[str, Any]


@dataclass(frozen=True)
class CfgReply:
    req_id: int
    ok: bool
    message: str


# --- bot -> supervisor ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusRequest:
    req_id: int


@dataclass(frozen=True)
class TopRequest:
    """/top: the biggest movers over window_s from the scanner's own price history (answered with a StatusReply)."""

    req_id: int
    window_s: int
    n: int


@dataclass(frozen=True)
class CfgSet:
    """/cfg key value: change one key for this run."""

    req_id: int
    key: str
    value: str


@dataclass(frozen=True)
class CfgSave:
    """/cfg save: keep this run's /cfg changes across reloads and restarts (the overrides file)."""

    req_id: int


@dataclass(frozen=True)
class Reload:
    """/reload: re-read config.yaml (+ overrides) and the models."""

    req_id: int


Message = (Plan | DropLinks | Stop | Ready | Blocked | FuturesStats | ArbStats | SignalStored | OutcomeStored | ConfigChanged | Notice
           | ShortNotice | OpenInterest | WatchedContracts | StatusReply | CfgReply | StatusRequest | CfgSet | CfgSave | Reload
           | ListingStored | TopRequest | WatchPrices | Closes)  # fmt: skip
_TYPES: dict[str, type] = {cls.__name__: cls for cls in typing.get_args(Message)}


def encode(message: Message) -> dict[str, Any]:
    """Plain data for Connection.send: the class name as "type" and the fields."""
    if type(message).__name__ not in _TYPES:
        raise MessageError(f"not a pipe message: {type(message).__name__}")
    data = {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}
    data["type"] = type(message).__name__
    return data


def decode(data: Any) -> Message:
    """The message encode() made, checked field by field; MessageError on anything else."""
    if not isinstance(data, dict):
        raise MessageError(f"expected a dict, got {type(data).__name__}")
    kind = data.get("type")
    cls = _TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise MessageError(f"unknown message type {str(kind)[:40]!r}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise MessageError(f"{kind}: missing field {f.name!r}")
            continue
        kwargs[f.name] = _check(kind, f.name, data[f.name], hints[f.name])
    return cls(**kwargs)


def _check(kind: str, name: str, value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if tp is bool or tp is str:
        ok = isinstance(value, tp)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:  # an int is a float here (JSON-like data); NaN and inf pass (pickled pipe)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        ok = False
    elif origin is dict:
        ok = isinstance(value, dict)
    elif origin is list:
        if not isinstance(value, (list, tuple)):
            raise MessageError(f"{kind}.{name}: expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(tp)
        return [_check(kind, name, v, item) for v in value]
    elif origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise MessageError(f"{kind}.{name}: expected a {len(args)}-tuple, got {str(value)[:40]!r}")
        return tuple(_check(kind, name, v, t) for v, t in zip(value, args, strict=True))
    else:  # pragma: no cover - a schema bug, not input
        raise TypeError(f"unsupported message field type {tp!r}")
    if not ok:
        raise MessageError(f"{kind}.{name}: expected {getattr(tp, '__name__', tp)}, got {type(value).__name__}")
    return value


__all__ = ["Message", "MessageError", "encode", "decode", *_TYPES]
