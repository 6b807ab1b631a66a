"""Fault injection for the emulator: what tests and the CLI can break on purpose.

WebSocket faults live here (drops, stalls, depth gaps, malformed frames); REST faults are kept by
the REST emulator. Every fault that fires is counted so a test can check it was observable: a
fault nobody can see proves nothing about the client's recovery.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

WS_KINDS = ("drop", "drop_every", "stall", "depth_gap", "malformed")
MALFORMED_MODES = ("truncated", "garbage", "wire_type")


class _Conn(Protocol):
    conn_id: int
    live: list[str]


def select_targets(conns: Iterable[_Conn], *, count: int | None = None, symbol: str | None = None,
                   ids: Sequence[int] | None = None) -> list[_Conn]:  # fmt: skip
    """Connections a drop or stall applies to: all, those with given ids, those carrying a symbol, the first N."""
    targets = list(conns)
    if ids is not None:
        wanted = {int(i) for i in ids}
        targets = [c for c in targets if c.conn_id in wanted]
    if symbol:
        targets = [c for c in targets if any(_channel_symbol(ch) == symbol for ch in c.live)]
    if count is not None:
        if int(count) < 0:
            raise ValueError("count must be >= 0")
        targets = targets[: int(count)]
    return targets


def _channel_symbol(channel: str) -> str | None:
    parts = channel.split("@")
    if len(parts) < 3:
        return None
    if parts[1].startswith(("public.aggre.", "public.bookTicker")):
        return parts[-1]
    return parts[2]  # limit.depth and kline put the symbol right after the channel name


def parse_fault_spec(spec: str) -> dict[str, Any]:
    """A --fault argument: JSON ('{"kind":"drop","count":2}') or 'kind:key=value,key=value'."""
    text = spec.strip()
    if text.startswith("{"):
        try:
            fault = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"--fault {spec!r}: invalid JSON ({exc})") from None
        if not isinstance(fault, dict) or not isinstance(fault.get("kind"), str):
            raise ValueError(f"--fault {spec!r}: needs a string 'kind'")
        return fault
    kind, _, rest = text.partition(":")
    if not kind:
        raise ValueError(f"--fault {spec!r}: empty kind")
    fault: dict[str, Any] = {"kind": kind}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--fault {spec!r}: expected key=value, got {item!r}")
        fault[key] = _scalar(value)
    return fault


def _scalar(value: str) -> Any:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


@dataclass
class Faults:
    """Pending one-shot faults, consumed as frames are produced."""

    depth_gaps: Counter[str] = field(default_factory=Counter)  # symbol -> depth frames to skip
    malformed: Counter[str] = field(default_factory=Counter)  # symbol ("" = any) -> frames to corrupt
    fired: Counter[str] = field(default_factory=Counter)
    rng: random.Random = field(default_factory=lambda: random.Random(1234))

    def add_depth_gap(self, symbol: str, frames: int = 1) -> None:
        if not symbol or frames < 1:
            raise ValueError("depth_gap needs a symbol and frames >= 1")
        self.depth_gaps[symbol] += frames

    def take_depth_gap(self, symbol: str) -> bool:
        """True if this depth update must be swallowed, so the next fromVersion jumps."""
        if self.depth_gaps.get(symbol, 0) > 0:
            self.depth_gaps[symbol] -= 1
            self.fired["depth_gap"] += 1
            return True
        return False

    def add_malformed(self, symbol: str = "", frames: int = 1) -> None:
        if frames < 1:
            raise ValueError("malformed needs frames >= 1")
        self.malformed[symbol] += frames

    def maybe_corrupt(self, symbol: str, frame: bytes) -> bytes:
        """The frame itself, or a broken copy while a malformed fault is pending for it."""
        if self.malformed.get(symbol, 0) > 0:
            key = symbol
        elif self.malformed.get("", 0) > 0:
            key = ""
        else:
            return frame
        self.malformed[key] -= 1
        mode = MALFORMED_MODES[self.fired["malformed"] % 3]
        self.fired["malformed"] += 1
        self.fired["malformed_" + mode] += 1
        if mode == "truncated":
            return frame[: max(1, len(frame) // 2)]  # cut inside a length-delimited field
        if mode == "garbage":
            return bytes(self.rng.randrange(256) for _ in range(max(8, len(frame))))
        return b"\x0b" + frame  # field 1 with wire type 3 (start group): never valid in the wrapper
