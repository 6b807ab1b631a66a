"""The Signal: what the scorer hands to storage, stdout and the Telegram bot.

Why a deterministic id: the id is derived from the pair, the exchange time of the row that fired
and the escalation number, so a replay of the same data gives the same ids, and the trading
client can derive an idempotent newClientOrderId from it (a double press never buys twice).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

# ASCII digits only and fullmatch: `\d` also matched non-ASCII digits such as "١" and `$` let a
# trailing newline through, so "X-1234567890-1\n" reached the store lookup.
_ID_PATTERN = re.compile(r"[A-Z0-9]{1,24}-[0-9]{10,14}-[0-9]{1,2}", re.ASCII)


# Card context that may be unknown (None): a missing key, null, NaN or garbage all read as None.
_OPTIONAL_NUMBERS = ("change_1m", "change_5m", "change_15m", "quote_volume_24h")


def _optional_float(value: Any) -> float | None:
    """A finite float, or None for a missing/undefined value (never raises: stored data may be old or odd)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return result if math.isfinite(result) else None


def context_fields(data: Any) -> dict[str, Any]:
    """The card-context fields (model_trained, price changes, 24 h volume) read leniently from stored data.

    Why lenient: they are display context, written by newer code than some readers and absent in
    older rows; a missing or odd value must read as "unknown", never fail the whole signal.
    """
    data = data if isinstance(data, dict) else {}
    return {"model_trained": data.get("model_trained") is True, **{n: _optional_float(data.get(n)) for n in _OPTIONAL_NUMBERS}}


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
    model_trained: whether the model that gave `prob` was fitted to data (its file's `trained` is
        set). Why the card needs it: a hand-set model's output is a score, not a probability, and
        calling it "Prob 0.99" would promise a calibration nobody measured.
    change_1m, change_5m, change_15m: last price / the price at least N minutes earlier - 1
        (supervisor/price_history.py), None when the service has not watched the pair that long.
    quote_volume_24h: the pair's 24 h quote volume from the scout's last ticker/24hr poll, None
        when unknown.
    All five default so that stored rows and JSON written before they existed stay readable.
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
    model_trained: bool = False
    change_1m: float | None = None
    change_5m: float | None = None
    change_15m: float | None = None
    quote_volume_24h: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data; NaN features (undefined, e.g. no book yet) become None so JSON stays valid."""
        data = asdict(self)
        data["features"] = {k: (None if v != v else v) for k, v in self.features.items()}
        for name in _OPTIONAL_NUMBERS:
            value = data[name]
            data[name] = None if value is None or not math.isfinite(value) else float(value)
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
            **context_fields(data),
        )

    @classmethod
    def from_json(cls, text: str) -> Signal:
        return cls.from_dict(json.loads(text))

