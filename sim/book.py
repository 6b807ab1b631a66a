"""The book model: each side a contiguous ladder of LEVELS levels on the pair's tick grid.

Why this shape (documented with examples in sim/scenarios/README.md): a ladder indexed from the
touch makes a taker sweep, a maker improving the spread and a pump dragging the asks all O(levels
touched), and every change is a (tick, absolute quantity) pair, which is exactly what a MEXC
depth diff carries. Sizes thin away from the touch. A taker takes from the touch (sweeping on if
larger); an emptied level is deleted and a new one appears at the far end, so a side always has
LEVELS levels. Makers close a spread wider than the pair's target by improving one side, a coin
flip or biased toward a scenario's target path (pumps, decays, spikes held flat). One step's
changes become one DepthChange with contiguous versions; quantity 0 deletes a level.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.episodes import Mod
from sim.updates import STEP_MS, DepthChange, Trade

if TYPE_CHECKING:
    from sim.universe import SymbolSpec

LEVELS = 60


@dataclass
class Pair:
    """One pair's live state: its book as two tick ladders, last trade, history parameters."""

    spec: SymbolSpec
    index: int
    tick: float
    dec: int
    qdec: int
    min_qty: float
    mean_qty: float
    spread: int  # target spread, ticks
    bid_top: int
    ask_top: int
    bids: deque[float]
    asks: deque[float]
    version: int
    last_price: float
    last_qty: float
    p0: float  # price at start: the synthetic history ends here
    sigma: float  # per-minute log-price volatility of the history walk
    key: int
    w_start: float | None = None  # walk value at start, computed when history is first asked for
    noise: float = 0.5  # cheap deterministic noise state for maker sizes
    ticker_cache: tuple | None = None


def level_size(p: Pair, j: int, noise: float) -> float:
    """Size of the j-th level from the touch: thins away from the touch."""
    q = round(p.mean_qty * 4.0 * math.exp(-j / 25.0) * noise, p.qdec)
    return q if q > 0 else p.min_qty


def next_noise(p: Pair) -> float:
    """The pair's cheap deterministic noise, stepped; a size factor in [0.4, 1.6)."""
    p.noise = (p.noise * 997.0 + 0.618034) % 1.0
    return 0.4 + 1.2 * p.noise


def _take(p: Pair, side: int, qty: float, time_ms: int, trades: list[Trade], ch_b: dict[int, float], ch_a: dict[int, float]) -> None:
    """A taker order: fill at the touch of the side it takes, sweeping on while it is larger."""
    for _ in range(LEVELS):
        if side == 1:
            levels, tick_no, changed = p.asks, p.ask_top, ch_a
        else:
            levels, tick_no, changed = p.bids, p.bid_top, ch_b
        avail = levels[0]
        fill = round(min(qty, avail), p.qdec)
        if fill <= 0:
            return
        price = round(tick_no * p.tick, p.dec)
        trades.append(Trade(price, fill, side, time_ms))
        p.last_price, p.last_qty = price, fill
        rest = round(avail - fill, p.qdec)
        if rest > 0:
            levels[0] = rest
            changed[tick_no] = rest
            return
        levels.popleft()
        changed[tick_no] = 0.0
        if side == 1:
            p.ask_top += 1
            far = p.ask_top + len(levels)
        else:
            p.bid_top -= 1
            far = p.bid_top - len(levels)
        if far >= 1:
            q = level_size(p, len(levels), next_noise(p))
            levels.append(q)
            changed[far] = q
        qty -= fill
        if qty < p.min_qty:
            return


def _improve(p: Pair, bid_side: bool, scale: float, ch_b: dict[int, float], ch_a: dict[int, float]) -> None:
    """A maker places a level one tick inside the spread; the far end of that side drops one."""
    if bid_side:
        p.bid_top += 1
        q = level_size(p, 0, next_noise(p) * scale)
        p.bids.appendleft(q)
        ch_b[p.bid_top] = q
        if len(p.bids) > LEVELS:
            p.bids.pop()
            ch_b[p.bid_top - len(p.bids)] = 0.0
    else:
        p.ask_top -= 1
        q = level_size(p, 0, next_noise(p) * scale)
        p.asks.appendleft(q)
        ch_a[p.ask_top] = q
        if len(p.asks) > LEVELS:
            p.asks.pop()
            ch_a[p.ask_top + len(p.asks)] = 0.0


def _fill_spread(p: Pair, target: float | None, bscale: float, ascale: float, ch_b: dict[int, float], ch_a: dict[int, float]) -> None:
    """Makers close a spread wider than the target, a tick at a time: a coin flip, or 85/15 toward target."""
    for _ in range(64):
        if p.ask_top - p.bid_top <= p.spread:
            return
        next_noise(p)
        r = p.noise
        if target is None:
            up = r < 0.5
        else:
            up = (r < 0.85) == ((p.bid_top + p.ask_top) / 2.0 < target)
        _improve(p, up, bscale if up else ascale, ch_b, ch_a)


def _drag(p: Pair, target: float, bscale: float, ascale: float, ch_b: dict[int, float], ch_a: dict[int, float]) -> None:
    """A pump's buyers lift the asks up to the target path; bids follow them up."""
    for _ in range(200):
        if p.ask_top - p.spread / 2.0 >= target or len(p.asks) < 2:
            break
        p.asks.popleft()
        ch_a[p.ask_top] = 0.0
        p.ask_top += 1
        far = p.ask_top + len(p.asks)
        q = level_size(p, len(p.asks), next_noise(p))
        p.asks.append(q)
        ch_a[far] = q
    for _ in range(200):
        if p.ask_top - p.bid_top <= p.spread:
            break
        _improve(p, True, bscale, ch_b, ch_a)


def _shape(p: Pair, bscale: float, ascale: float, ch_b: dict[int, float], ch_a: dict[int, float]) -> None:
    """During a pump: near-touch bids grow, near-touch asks thin (OBI and bid depth rise)."""
    near = max(3, min(30, int(math.ceil(12e-4 * p.last_price / p.tick))))
    for j in range(min(near, len(p.bids))):
        want = level_size(p, j, bscale)
        if p.bids[j] < 0.9 * want:
            p.bids[j] = want
            ch_b[p.bid_top - j] = want
    for j in range(min(near, len(p.asks))):
        want = level_size(p, j, ascale)
        if p.asks[j] > 1.1 * want:
            p.asks[j] = want
            ch_a[p.ask_top + j] = want


def pair_step(p: Pair, k: int, u: list[float], maker: bool, mod: Mod | None, t0: int) -> tuple[list[Trade], DepthChange | None]:
    """One 100 ms step of one pair: k taker trades, maybe a maker update, the scenario's pull.

    u holds the step's uniforms for this pair (3k + 4 of them); returns the trades and the level
    changes, None if the book held still.
    """
    ch_b: dict[int, float] = {}
    ch_a: dict[int, float] = {}
    bscale = mod.bid_scale if mod else 1.0
    ascale = mod.ask_scale if mod else 1.0
    target = mod.target if mod else None
    p.noise = (p.noise + u[k * 3]) % 1.0
    if mod is not None and mod.force and target is not None:
        _drag(p, target, bscale, ascale, ch_b, ch_a)
    trades: list[Trade] = []
    if k:
        buy_p = mod.buy_p if mod else 0.5
        times = sorted(t0 + int(x * STEP_MS) for x in u[2 * k : 3 * k])
        for j in range(k):
            side = 1 if u[j] < buy_p else 2
            qty = -math.log(u[k + j]) * p.mean_qty + p.min_qty
            _take(p, side, qty, times[j], trades, ch_b, ch_a)
            if p.ask_top - p.bid_top > p.spread:
                _fill_spread(p, target, bscale, ascale, ch_b, ch_a)
    if maker:
        side_u, lvl_u, size_u = u[3 * k + 1], u[3 * k + 2], u[3 * k + 3]
        j = int(lvl_u * lvl_u * 15)
        if side_u < 0.5:
            q = level_size(p, j, (0.4 + 1.2 * size_u) * bscale)
            p.bids[j] = q
            ch_b[p.bid_top - j] = q
        else:
            q = level_size(p, j, (0.4 + 1.2 * size_u) * ascale)
            p.asks[j] = q
            ch_a[p.ask_top + j] = q
    if p.ask_top - p.bid_top > p.spread:
        _fill_spread(p, target, bscale, ascale, ch_b, ch_a)
    if mod is not None and mod.force:
        _shape(p, bscale, ascale, ch_b, ch_a)
    if not ch_b and not ch_a:
        return trades, None
    tick, dec = p.tick, p.dec
    bids = [(round(t * tick, dec), q) for t, q in sorted(ch_b.items(), reverse=True)]
    asks = [(round(t * tick, dec), q) for t, q in sorted(ch_a.items())]
    first = p.version + 1
    p.version += len(bids) + len(asks)
    return trades, DepthChange(first, p.version, bids, asks)
