"""The Signal: what the scorer hands to storage, stdout and the Telegram bot.

Why a deterministic id: the id is derived from the pair, the exchange time of the row that fired
and the escalation number, so a replay of the same data gives the same ids, and the trading
client can derive an idempotent newClientOrderId from it (a double press never buys twice).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

# ASCII digits only and fullmatch: `\d` also matched non-ASCII digits such as "١" and `$` let a
# trailing newline through, so "X-1234567890-1\n" reached the store lookup.
_ID_PATTERN = re.compile(r"[A-Z0-9]{1,24}-[0-9]{10,14}-[0-9]{1,2}", re.ASCII)


def make_signal_id(symbol: str, exchange_time_ms: int, escalation: int) -> str:
    """Build the signal id: SYMBOL-exchangeTimeMs-escalation (at most 42 chars, so "skip:" + id fits callback_data's 64 bytes)."""
    return f"{symbol}-{exchange_time_ms}-{escalation}"


def is_valid_signal_id(text: str) -> bool:
    """True when text has the shape make_signal_id produces (callback_data is untrusted input)."""
    return isinstance(text, str) and _ID_PATTERN.fullmatch(text) is not None


@dataclass
class Signal:
    """One alert for one pair.

    exchange_time_ms: exchange time of the feature row that fired.
    recv_ns: wall-clock time.time_ns() at which the newest frame feeding that row was received,
        so card-sent minus recv_ns is the pipeline latency.
    created_ns: wall-clock time.time_ns() when the scorer decided.
    """

    signal_id: str
    symbol: str
    profile: str
    exchange_time_ms: int
    recv_ns: int
    created_ns: int
    price: float
    prob: float
    features: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    escalation: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data; NaN features (undefined, e.g. no book yet) become None so JSON stays valid."""
        data = asdict(self)
        data["features"] = {k: (None if v != v else v) for k, v in self.features.items()}
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signal:
        return cls(
            signal_id=str(data["signal_id"]),
            symbol=str(data["symbol"]),
            profile=str(data["profile"]),
            exchange_time_ms=int(data["exchange_time_ms"]),
            recv_ns=int(data["recv_ns"]),
            created_ns=int(data["created_ns"]),
            price=float(data["price"]),
            prob=float(data["prob"]),
            features={str(k): (float("nan") if v is None else float(v)) for k, v in data.get("features", {}).items()},
            reasons=[str(r) for r in data.get("reasons", [])],
            escalation=int(data.get("escalation", 0)),
        )

    @classmethod
    def from_json(cls, text: str) -> Signal:
        return cls.from_dict(json.loads(text))

