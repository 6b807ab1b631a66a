"""MEXC spot V3 WebSocket: channel names, the subscription and ping messages, and the acks MEXC answers with.

Why parse acks ourselves: MEXC answers a refused subscription with "code": 0, and only the msg
text ("Not Subscribed successfully! [...].  Reason： Blocked! ") says it failed. A client that
trusts `code` keeps a dead channel forever (mexc-api.md §1.2, §7).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import Enum

DEALS = "spot@public.aggre.deals.v3.api.pb@{interval}@{symbol}"
DEPTH = "spot@public.aggre.depth.v3.api.pb@{interval}@{symbol}"

_REFUSED = re.compile(r"Not Subscribed successfully!\s*\[([^\]]*)\]")
_SUBSCRIBED_MIXED = re.compile(r"Subscribed successful!\s*\[([^\]]*)\]")


def pair_channels(symbol: str, deals_interval: str = "100ms", depth_interval: str = "100ms") -> tuple[str, str]:
    """The two streams a watched pair needs: aggregated deals and aggregated diff depth."""
    return DEALS.format(interval=deals_interval, symbol=symbol), DEPTH.format(interval=depth_interval, symbol=symbol)


def subscribe_message(channels: list[str]) -> dict[str, object]:
    """One SUBSCRIPTION request; MEXC accepts many params per message (the link batches them)."""
    return {"method": "SUBSCRIPTION", "params": channels}


def unsubscribe_message(channels: list[str]) -> dict[str, object]:
    """One UNSUBSCRIPTION request for channels this connection carries."""
    return {"method": "UNSUBSCRIPTION", "params": channels}


def symbol_of(channel: str) -> str:
    """The symbol of an aggre channel (the last @-separated part)."""
    return channel.rsplit("@", 1)[-1]


class AckKind(Enum):
    PONG = "pong"
    SUBSCRIBED = "subscribed"
    REFUSED = "refused"
    UNSUBSCRIBED_OR_OTHER = "other"
    ERROR = "error"


@dataclass
class Ack:
    """One JSON control reply: which channels it confirms and which it refuses."""

    kind: AckKind
    ok: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    request_id: int = 0
    text: str = ""


def _split_channels(inner: str) -> list[str]:
    return [part.strip() for part in inner.split(",") if part.strip()]


def parse_ack(text: str | bytes) -> Ack:
    """Classify a JSON text frame from MEXC.

    Success echoes the requested params comma-joined in msg; a refusal (code still 0) lists the
    refused channels in brackets; an older mixed form lists both. Anything unparseable is an
    ERROR ack carrying the raw text, never an exception: a bad control frame must not kill a link.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return Ack(AckKind.ERROR, text=text[:200])
    if not isinstance(data, dict):
        return Ack(AckKind.ERROR, text=text[:200])
    msg = data.get("msg")
    code = data.get("code")
    request_id = data.get("id") if isinstance(data.get("id"), int) else 0
    if not isinstance(msg, str):
        return Ack(AckKind.ERROR, request_id=request_id, text=text[:200])
    if msg == "PONG":
        return Ack(AckKind.PONG, request_id=request_id, text=msg)
    refused_match = _REFUSED.search(msg)
    if refused_match:
        ok_match = _SUBSCRIBED_MIXED.search(msg)
        ok = _split_channels(ok_match.group(1)) if ok_match and ok_match.start() < refused_match.start() else []
        return Ack(AckKind.REFUSED, ok=ok, refused=_split_channels(refused_match.group(1)), request_id=request_id, text=msg)
    if code not in (0, None):
        return Ack(AckKind.ERROR, request_id=request_id, text=msg[:200])
    if "@" in msg:
        return Ack(AckKind.SUBSCRIBED, ok=_split_channels(msg), request_id=request_id, text=msg)
    return Ack(AckKind.UNSUBSCRIBED_OR_OTHER, request_id=request_id, text=msg[:200])
