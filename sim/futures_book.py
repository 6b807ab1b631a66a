"""The futures order books: 20 levels a side per contract, held as NumPy arrays and moved in one go.

Why arrays: every contract's book must evolve every 200 ms step whether anyone watches it, so
that `version` counts real changes (push.depth versions step by exactly +1, mexc-api.md §3.4) and
the same seed gives the same versions in every run. Levels sit on consecutive ticks from the best
bid down and the best ask up; when the best moves by m ticks the surviving levels keep their
sizes (the arrays shift) and the uncovered ones get fresh sizes, so a diff after a small move is
small. Each step a per-contract share of the levels is refreshed (thick books churn more).
Quantities are whole contracts; a level's order count is a pure function of its size.
"""

from __future__ import annotations

import math

import numpy as np

LEVELS = 20
_J = np.arange(LEVELS)
Level = list[float]  # [price, contracts, orderCount], as MEXC writes a futures book level


def order_count(size: int) -> int:
    return 1 + math.isqrt(max(0, size)) // 4


class FuturesBooks:
    """All contracts' books; row i is contract i. Prices are in ticks of `unit[i]`."""

    def __init__(self, unit: np.ndarray, scale: np.ndarray, version0: np.ndarray) -> None:
        n = len(unit)
        self.unit = unit
        self.scale = scale
        self.bb = np.zeros(n, dtype=np.int64)
        self.ba = np.zeros(n, dtype=np.int64)
        self.bid = np.zeros((n, LEVELS), dtype=np.int64)
        self.ask = np.zeros((n, LEVELS), dtype=np.int64)
        self.version = version0.astype(np.int64)

    def place(self, mid: np.ndarray, spread: np.ndarray, level_size: np.ndarray, p_change: np.ndarray,
              fresh_u: np.ndarray, change_u: np.ndarray, rebuild: np.ndarray) -> np.ndarray:  # fmt: skip
        """Move each book around its center `mid` (in ticks); returns the mask of books that changed.

        fresh_u and change_u are uniforms of shape (n, 2, LEVELS) drawn by the caller (its step
        RNG, so the draws do not depend on who watches); rebuild forces every level fresh.
        """
        bb = np.maximum(LEVELS + 1, np.floor(mid - spread / 2.0)).astype(np.int64)
        ba = bb + spread.astype(np.int64)
        scale_j = level_size[:, None] * (1.0 + 0.08 * _J)[None, :]
        fresh_bid = np.maximum(1, (scale_j * (0.2 + 1.6 * fresh_u[:, 0])).astype(np.int64))
        fresh_ask = np.maximum(1, (scale_j * (0.2 + 1.6 * fresh_u[:, 1])).astype(np.int64))
        new_bid = self._shift(self.bid, _J[None, :] - (bb - self.bb)[:, None], fresh_bid)
        new_ask = self._shift(self.ask, _J[None, :] + (ba - self.ba)[:, None], fresh_ask)
        churn = change_u < p_change[:, None, None]
        churn |= rebuild[:, None, None]
        new_bid = np.where(churn[:, 0], fresh_bid, new_bid)
        new_ask = np.where(churn[:, 1], fresh_ask, new_ask)
        changed = (bb != self.bb) | (ba != self.ba) | (new_bid != self.bid).any(axis=1) | (new_ask != self.ask).any(axis=1)
        self.bb, self.ba, self.bid, self.ask = bb, ba, new_bid, new_ask
        self.version += changed
        return changed

    @staticmethod
    def _shift(old: np.ndarray, src: np.ndarray, fresh: np.ndarray) -> np.ndarray:
        """Level j takes old level src[j] where that existed, else a fresh size."""
        valid = (src >= 0) & (src < LEVELS)
        kept = np.take_along_axis(old, np.clip(src, 0, LEVELS - 1), axis=1)
        return np.where(valid, kept, fresh)

    def snapshot(self, i: int) -> tuple[int, int, np.ndarray, np.ndarray]:
        """Row i as (best bid ticks, best ask ticks, bid sizes, ask sizes), copied."""
        return int(self.bb[i]), int(self.ba[i]), self.bid[i].copy(), self.ask[i].copy()

    def price(self, i: int, ticks: int) -> float:
        return round(ticks * float(self.unit[i]), int(self.scale[i]))

    def levels(self, i: int, limit: int = LEVELS) -> tuple[list[Level], list[Level]]:
        """(asks ascending, bids descending), top `limit` levels of contract i."""
        n = max(0, min(LEVELS, limit))
        bb, ba = int(self.bb[i]), int(self.ba[i])
        asks = [[self.price(i, ba + j), int(s), order_count(int(s))] for j, s in enumerate(self.ask[i, :n])]
        bids = [[self.price(i, bb - j), int(s), order_count(int(s))] for j, s in enumerate(self.bid[i, :n])]
        return asks, bids

    def diff(self, i: int, before: tuple[int, int, np.ndarray, np.ndarray]) -> tuple[list[Level], list[Level]]:
        """The levels of contract i that changed since `before` (a snapshot); removed ones have 0 contracts."""
        bb0, ba0, bid0, ask0 = before
        out: list[list[Level]] = []
        for sign, best0, sizes0, best1, sizes1 in ((1, ba0, ask0, int(self.ba[i]), self.ask[i]), (-1, bb0, bid0, int(self.bb[i]), self.bid[i])):
            old = {best0 + sign * j: int(s) for j, s in enumerate(sizes0)}
            new = {best1 + sign * j: int(s) for j, s in enumerate(sizes1)}
            ticks = [t for t in new if old.get(t) != new[t]] + [t for t in old if t not in new]
            ticks.sort(reverse=sign < 0)  # asks ascending, bids descending
            out.append([[self.price(i, t), new.get(t, 0), order_count(new[t]) if t in new else 0] for t in ticks])
        return out[0], out[1]
