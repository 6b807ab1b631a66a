"""Plain-Python twin of core/book.pyx (same K-level truncation, same status codes)."""

from __future__ import annotations

APPLIED, BUFFERED, STALE, GAP, SYNCED, SNAPSHOT_TOO_OLD = range(6)
MAX_BUFFERED = 512

Levels = list[tuple[float, float]]


class ReferenceBook:
    def __init__(self, depth_cap: int = 32) -> None:
        self.depth_cap = depth_cap
        self.bids: list[list[float]] = []
        self.asks: list[list[float]] = []
        self.version = 0
        self.synced = False
        self.buffered: list[tuple[int, int, Levels, Levels]] = []
        self.buffer_overflows = 0

    def _set(self, bid: bool, price: float, qty: float) -> None:
        side = self.bids if bid else self.asks
        i = 0
        while i < len(side) and (side[i][0] > price if bid else side[i][0] < price):
            i += 1
        if i < len(side) and side[i][0] == price:
            if qty <= 0:
                del side[i]
            else:
                side[i][1] = qty
        elif qty > 0 and i < self.depth_cap:
            if len(side) == self.depth_cap:
                side.pop()
            side.insert(i, [price, qty])

    def _apply(self, bids: Levels, asks: Levels) -> None:
        for p, q in bids:
            self._set(True, p, q)
        for p, q in asks:
            self._set(False, p, q)

    def _buffer(self, from_v: int, to_v: int, bids: Levels, asks: Levels) -> None:
        if len(self.buffered) >= MAX_BUFFERED:
            self.buffered.clear()
            self.buffer_overflows += 1
        self.buffered.append((from_v, to_v, list(bids), list(asks)))

    def apply_diff(self, from_v: int, to_v: int, bids: Levels, asks: Levels) -> int:
        if not self.synced:
            self._buffer(from_v, to_v, bids, asks)
            return BUFFERED
        if to_v <= self.version:
            return STALE
        if from_v != self.version + 1:
            self.synced = False
            self.bids, self.asks, self.buffered = [], [], []
            self._buffer(from_v, to_v, bids, asks)
            return GAP
        self._apply(bids, asks)
        self.version = to_v
        return APPLIED

    def apply_snapshot(self, last_update_id: int, bids: Levels, asks: Levels) -> int:
        if self.buffered and last_update_id + 1 < self.buffered[0][0]:
            return SNAPSHOT_TOO_OLD
        remaining = [b for b in self.buffered]
        while remaining and remaining[0][1] <= last_update_id:
            remaining.pop(0)
        if remaining and remaining[0][0] > last_update_id + 1:
            return GAP
        self.bids, self.asks = [], []
        self._apply(bids, asks)
        self.version = last_update_id
        for n, (from_v, to_v, b, a) in enumerate(remaining):
            if n > 0 and from_v != self.version + 1:
                self.bids, self.asks, self.buffered = [], [], []
                return GAP
            self._apply(b, a)
            self.version = to_v
        self.buffered = []
        self.synced = True
        return SYNCED

    def reset(self) -> None:
        self.synced = False
        self.bids, self.asks, self.buffered = [], [], []

    def levels(self) -> tuple[Levels, Levels]:
        return [(p, q) for p, q in self.bids], [(p, q) for p, q in self.asks]

    def size_within(self, bid: bool, bps: float) -> float:
        side = self.bids if bid else self.asks
        if not side:
            return 0.0
        best = side[0][0]
        limit = best * (1.0 - bps * 1e-4) if bid else best * (1.0 + bps * 1e-4)
        total = 0.0
        for i, (p, q) in enumerate(side):
            if i > 0 and (p < limit if bid else p > limit):
                break
            total += q
        return total
