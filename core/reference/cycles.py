"""Plain-Python twin of core/cycles.pyx: the same cycle pricing, step by step, for the property tests.

Why a twin: the compiled pricer works on flat C arrays with an incremental index; this one keeps
dicts and lists and re-prices the same cycles with the same arithmetic in the same order, so any
difference in a test is a bug in one of them (see core/cycles.pyx for the rules).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

DEPTH, BISECTIONS, STEP_EPS = 10, 48, 1e-9
BELOW, PROFITABLE, UNSEEN, ONE_SIDED, CROSSED, STALE = range(6)

_Levels = list[tuple[float, float]]


def _clean(levels: Sequence[tuple[float, float]], bids: bool) -> _Levels:
    """Good levels strictly improving away from the touch, at most DEPTH (the pyx's filter)."""
    out: _Levels = []
    last = math.inf if bids else 0.0
    for price, qty in levels:
        if (
            len(out) < DEPTH
            and 0.0 < price < math.inf
            and 0.0 < qty < math.inf
            and (price < last if bids else price > last)
        ):
            out.append((price, qty))
            last = price
    return out


class ReferenceCycleBook:
    """The same API as core.cycles.CycleBook for the paths the tests drive."""

    def __init__(self, n_pairs: int, cycles: Iterable[Sequence[tuple[int, bool]]], min_profit_bps: float = 0.0,
                 min_start: float = 10.0, max_leg_age_ms: int = 5000) -> None:  # fmt: skip
        self.n_pairs = n_pairs
        self.legs = [[(int(p), bool(b)) for p, b in c] for c in cycles]
        self.n_cycles = len(self.legs)
        self.bids: list[_Levels] = [[] for _ in range(n_pairs)]
        self.asks: list[_Levels] = [[] for _ in range(n_pairs)]
        self.t_ms = [-1] * n_pairs
        self.fee = [0.0005] * n_pairs
        self.step = [0.0] * n_pairs
        self.index: list[list[int]] = [[] for _ in range(n_pairs)]
        for c, legs in enumerate(self.legs):
            for p in dict.fromkeys(p for p, _ in legs):
                self.index[p].append(c)
        self.results: list[tuple] = [(UNSEEN, math.nan, math.nan, 0.0, math.nan, (-1, -1, -1), -1)] * self.n_cycles
        self.touched: list[int] = []
        self.min_profit_bps, self.min_start, self.max_leg_age_ms = min_profit_bps, min_start, max_leg_age_ms

    def set_params(self, min_profit_bps: float, min_start: float, max_leg_age_ms: int) -> None:
        self.min_profit_bps, self.min_start, self.max_leg_age_ms = min_profit_bps, min_start, max_leg_age_ms

    def set_rules(self, pair: int, fee: float, step: float) -> None:
        self.fee[pair], self.step[pair] = fee, step

    def update(self, pair: int, t_ms: int, bids: _Levels, asks: _Levels) -> int:
        self.bids[pair] = _clean(bids[:DEPTH], True)
        self.asks[pair] = _clean(asks[:DEPTH], False)
        self.t_ms[pair] = max(self.t_ms[pair], t_ms)
        for c in self.index[pair]:
            self.reprice(c, t_ms)
        return len(self.index[pair])

    def leg(self, pair: int, buy: bool, amount: float) -> float:
        rem, out, step = amount, 0.0, self.step[pair]
        if buy:
            for price, qty in self.asks[pair]:
                cost = price * qty
                if rem <= cost:
                    out += rem / price
                    rem = 0.0
                    break
                out += qty
                rem -= cost
            if rem > 0.0:
                return -1.0
            return math.floor(out / step + STEP_EPS) * step if step > 0.0 else out
        if step > 0.0:
            rem = math.floor(rem / step + STEP_EPS) * step
        for price, qty in self.bids[pair]:
            if rem <= qty:
                out += rem * price
                rem = 0.0
                break
            out += qty * price
            rem -= qty
        return -1.0 if rem > 0.0 else out

    def profit(self, cycle: int, amount: float) -> float:
        a = amount
        for p, buy in self.legs[cycle]:
            a = self.leg(p, buy, a)
            if a < 0.0:
                return -math.inf
            a = a * (1.0 - self.fee[p])
        return (a / amount - 1.0) * 1e4

    def reprice(self, c: int, now_ms: int) -> None:
        was = self.results[c][0] == PROFITABLE
        code, r, ages = BELOW, 1.0, []
        for p, buy in self.legs[c]:
            age = -1 if self.t_ms[p] < 0 else max(0, now_ms - self.t_ms[p])
            ages.append(age)
            if code != BELOW:
                continue
            bids, asks = self.bids[p], self.asks[p]
            if self.t_ms[p] < 0:
                code = UNSEEN
            elif not bids or not asks:
                code = ONE_SIDED
            elif bids[0][0] >= asks[0][0]:
                code = CROSSED
            elif age > self.max_leg_age_ms:
                code = STALE
            else:
                r = r / asks[0][0] if buy else r * bids[0][0]
                r = r * (1.0 - self.fee[p])
        top = edge = size_bps = math.nan
        size = 0.0
        if code == BELOW:
            top = (r - 1.0) * 1e4
            if top >= self.min_profit_bps:
                lo = self.min_start
                edge = self.profit(c, lo)
                if edge >= self.min_profit_bps:
                    code = PROFITABLE
                    p, buy = self.legs[c][0]
                    hi = 0.0
                    if buy:
                        for price, qty in self.asks[p]:
                            hi += price * qty
                    else:
                        for _, qty in self.bids[p]:
                            hi += qty
                    if hi <= lo:
                        hi = lo
                    elif self.profit(c, hi) >= self.min_profit_bps:
                        lo = hi
                    else:
                        for _ in range(BISECTIONS):
                            mid = 0.5 * (lo + hi)
                            if self.profit(c, mid) >= self.min_profit_bps:
                                lo = mid
                            else:
                                hi = mid
                    size = lo
                    size_bps = self.profit(c, lo)
        self.results[c] = (code, top, edge, size, size_bps, tuple(ages), now_ms)
        if (was or code == PROFITABLE) and c not in self.touched:
            self.touched.append(c)

    def reprice_all(self, now_ms: int) -> int:
        for c in range(self.n_cycles):
            self.reprice(c, now_ms)
        return self.n_cycles

    def reprice_profitable(self, now_ms: int) -> int:
        open_ = [c for c in range(self.n_cycles) if self.results[c][0] == PROFITABLE]
        for c in open_:
            self.reprice(c, now_ms)
        return len(open_)

    def take_touched(self) -> list[int]:
        out, self.touched = self.touched, []
        return out

    def result(self, cycle: int) -> tuple:
        return self.results[cycle]
