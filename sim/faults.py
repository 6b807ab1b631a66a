"""Fault injection for the emulator: what tests and the CLI can break on purpose.

WebSocket faults live here (drops, stalls, depth gaps, malformed frames); REST faults are kept by
the REST emulator. Every fault that fires is counted so a test can check it was observable.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Faults:
    """Pending one-shot faults, consumed as frames are produced."""

    depth_gaps: Counter[str] = field(default_factory=Counter)  # symbol -> frames to skip
    malformed: Counter[str] = field(default_factory=Counter)  # symbol ("" = any) -> frames to corrupt
    fired: Counter[str] = field(default_factory=Counter)
    rng: random.Random = field(default_factory=lambda: random.Random(1234))

    def add_depth_gap(self, symbol: str, frames: int = 1) -> None:
        self.depth_gaps[symbol] += frames

    def take_depth_gap(self, symbol: str) -> bool:
        if self.depth_gaps.get(symbol, 0) > 0:
            self.depth_gaps[symbol] -= 1
            self.fired["depth_gap"] += 1
            return True
        return False

    def add_malformed(self, symbol: str = "", frames: int = 1) -> None:
        self.malformed[symbol] += frames

    def maybe_corrupt(self, symbol: str, frame: bytes) -> bytes:
        key = symbol if self.malformed.get(symbol, 0) > 0 else ("" if self.malformed.get("", 0) > 0 else None)
        if key is None:
            return frame
        self.malformed[key] -= 1
        self.fired["malformed"] += 1
        mode = self.fired["malformed"] % 3
        if mode == 0:
            return frame[: max(1, len(frame) // 2)]  # truncated mid-field
        if mode == 1:
            return bytes(self.rng.randrange(256) for _ in range(len(frame)))  # garbage
        return b"\x0b" + frame  # wire type 3 (start group): never valid here
