"""Plain-Python twin of core/book.pyx: the same K-level truncation, buffer bounds and status codes.

Why a twin: the property tests drive both with the same random diff/snapshot sequences and demand
identical books and status codes; this one is short enough to check by eye against mexc-api.md §3.
"""

from __future__ import annotations

import math

APPLIED, BUFFERED, STALE, GAP, SYNCED, SNAPSHOT_TOO_OLD = range(6)
MAX_BUFFERED = 512
DEFAULT_DEPTH = 64
MAX_BUFFERED_LEVELS = 8192

Levels = list[tuple[float, float]]


def _good(price: float, qty: float) -> bool:
    return price > 0.0 and math.isfinite(price) and qty >= 0.0 and math.isfinite(qty)


def _checked(levels: Levels) -> Levels:
    out = []
    for row in levels:
        try:
            price, qty = (float(x) for x in row)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bad book level {row!r}: want (price, qty)") from exc
        if not _good(price, qty):
            raise ValueError(f"bad book level {row!r}: price must be finite and > 0, qty finite and >= 0")
        out.append((price, qty))
    return out


class ReferenceBook:
    """The best depth_cap levels per side plus the diff buffer used before a snapshot."""

    def __init__(self, depth_cap: int = DEFAULT_DEPTH) -> None:
        if not 1 <= depth_cap <= 10_000:
            raise ValueError("depth_cap must be between 1 and 10000")
        self.depth_cap = depth_cap
        self.bids: list[list[float]] = []
        self.asks: list[list[float]] = []
        self.bid_horizon, self.ask_horizon = 0.0, math.inf  # the best forgotten price per side
        self.version = 0
        self.synced = False
        self.buffered: list[tuple[int, int, Levels, Levels]] = []
        self.buffer_overflows = 0

    def _clear(self) -> None:
        self.bids, self.asks = [], []
        self.bid_horizon, self.ask_horizon = 0.0, math.inf

    def _set(self, bid: bool, price: float, qty: float) -> None:
        if not _good(price, qty):
            return
        if (price <= self.bid_horizon) if bid else (price >= self.ask_horizon):
            return
        side = self.bids if bid else self.asks
        i = 0
        while i < len(side) and (side[i][0] > price if bid else side[i][0] < price):
            i += 1
        if i < len(side) and side[i][0] == price:
            if qty == 0:
                del side[i]
            else:
                side[i][1] = qty
            return
        if qty == 0:
            return
        side.insert(i, [price, qty])
        if len(side) > self.depth_cap:
            dropped = side.pop()[0]
            if bid:
                self.bid_horizon = dropped
            else:
                self.ask_horizon = dropped

    def _apply(self, bids: Levels, asks: Levels) -> None:
        for p, q in bids:
            self._set(True, p, q)
        for p, q in asks:
            self._set(False, p, q)

    def _buffer(self, from_v: int, to_v: int, bids: Levels, asks: Levels) -> None:
        pooled = sum(len(b) + len(a) for _, _, b, a in self.buffered)
        if len(self.buffered) >= MAX_BUFFERED or pooled + len(bids) + len(asks) > MAX_BUFFERED_LEVELS:
            self.buffered.clear()
            self.buffer_overflows += 1
            if len(bids) + len(asks) > MAX_BUFFERED_LEVELS:
                return
        self.buffered.append((from_v, to_v, list(bids), list(asks)))

    def apply_diff(self, from_v: int, to_v: int, bids: Levels, asks: Levels) -> int:
        bids, asks = _checked(bids), _checked(asks)
        if not self.synced:
            if self.buffered and to_v <= self.buffered[-1][1]:
                return STALE
            self._buffer(from_v, to_v, bids, asks)
            return BUFFERED
        if to_v <= self.version:
            return STALE
        if from_v != self.version + 1:
            self.synced = False
            self._clear()
            self.buffered = []
            self._buffer(from_v, to_v, bids, asks)
            return GAP
        self._apply(bids, asks)
        self.version = to_v
        if (not self.bids and self.bid_horizon > 0) or (not self.asks and self.ask_horizon < math.inf):
            self.synced = False
            self._clear()
            return GAP
        return APPLIED

    def apply_snapshot(self, last_update_id: int, bids: Levels, asks: Levels) -> int:
        bids, asks = _checked(bids), _checked(asks)
        if self.buffered and last_update_id + 1 < self.buffered[0][0]:
            return SNAPSHOT_TOO_OLD
        remaining = [b for b in self.buffered if b[1] > last_update_id]
        # Buffered diffs have increasing toVersion (repeats are refused), so the filter above drops
        # exactly a prefix, as the compiled book does.
        if remaining and remaining[0][0] > last_update_id + 1:
            return GAP
        for i in range(1, len(remaining)):
            if remaining[i][0] != remaining[i - 1][1] + 1:
                self.buffered = remaining[i:]
                return GAP
        self._clear()
        self._apply(bids, asks)
        self.version = last_update_id
        for _, to_v, b, a in remaining:
            self._apply(b, a)
            self.version = to_v
        self.buffered = []
        self.synced = True
        return SYNCED

    def reset(self) -> None:
        self.synced = False
        self._clear()
        self.buffered = []

    @property
    def valid(self) -> bool:
        return self.synced and bool(self.bids) and bool(self.asks)

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
