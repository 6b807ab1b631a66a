"""What a market step produces: trades and book changes per pair, the unit every consumer reads.

Why a module of its own: the generated market (sim/market.py), the replayed one (sim/replay.py),
the frame encoder (sim/frames.py) and harnesses outside the emulator (replay/lockstep.py) all
speak these records; none of them should have to import another's machinery to get them.
"""

from __future__ import annotations

from dataclasses import dataclass

STEP_MS = 100  # a market step: one window of trades and book changes, MEXC's aggregation period


@dataclass
class Trade:
    """One taker fill."""

    price: float
    qty: float
    side: int  # 1 taker buy, 2 taker sell (MEXC's tradeType)
    time_ms: int


@dataclass
class DepthChange:
    """One step's level changes; quantities are absolute and 0 deletes the level."""

    from_version: int
    to_version: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]


@dataclass
class PairUpdate:
    """Everything one pair did in one 100 ms window (the window's end is the push's sendTime)."""

    symbol: str
    window_end_ms: int
    trades: list[Trade]
    depth: DepthChange | None
