"""Average-cost (AvgCost) accounting of one position from its fills: pure, no I/O.

Why from fills and not from orders: a market order fills in pieces at several prices, each with
its own fee, and the fee may be paid in the base asset, in the quote asset or in MX (MEXC's
discount). Only the fills say what was really paid and received, so a position is a fold over
its fills, and rebuilding it after a restart is the same fold over myTrades.

The rules (FIELD-NOTES "Positions"):
- a buy adds its quantity and its cost (price x qty, plus a quote fee) to the position; a fee in
  the base asset reduces the quantity received; a fee in another asset (MX) is converted to quote
  at the fill's time with the rate given with the fill, and counts as cost (a rate flagged
  approximate is counted the same and the position says how many such fills it has);
- a sell does not move the average entry: it removes avg x qty from the cost and realises
  proceeds (price x qty, less its fee) minus that amount;
- a sell of more than the fills explain (history that starts mid-position) is capped at what is
  held and reported as missing history, never turned into a negative position;
- what is left below the pair's minimum order value is dust: reported, not sold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

EPS = 1e-12


@dataclass(frozen=True)
class Fill:
    """One execution: side BUY/SELL, base qty at price, and its fee (amount, asset, value in quote)."""

    trade_id: str
    side: str
    price: float
    qty: float
    fee: float = 0.0
    fee_asset: str = ""
    time_ms: int = 0
    fee_quote_rate: float | None = None  # quote per unit of fee_asset at the fill's time (for MX and the like)
    fee_rate_approx: bool = False  # fee_quote_rate is not the fill's time's but a later one (trading/fills.py)


@dataclass
class Position:
    """The AvgCost figures after a sequence of fills (all money in the quote asset)."""

    base: str
    quote: str
    qty: float = 0.0
    cost: float = 0.0  # cost basis of what is held, fees included
    realised: float = 0.0
    invested: float = 0.0  # every buy's cost, fees included
    proceeds: float = 0.0  # every sell's proceeds, fees deducted
    fees_quote: float = 0.0  # all fees, in quote
    sold_cost: float = 0.0  # the cost basis removed by sells (what realised is measured against)
    buys: int = 0
    sells: int = 0
    first_ms: int = 0
    last_ms: int = 0
    approx_fees: int = 0  # fills whose third-asset fee was converted at a later price than the fill's
    missing: list[str] = field(default_factory=list)

    @property
    def avg_price(self) -> float:
        """Average entry: cost per unit held (0 when nothing is held)."""
        return self.cost / self.qty if self.qty > EPS else 0.0

    def unrealised(self, price: float) -> float:
        return self.qty * price - self.cost if self.qty > EPS else 0.0

    def realised_pct(self) -> float | None:
        """Realised PnL against the cost of what was sold (None before any sell)."""
        return self.realised / self.sold_cost if self.sold_cost > EPS else None

    def is_dust(self, price: float, min_value: float) -> bool:
        """Held but worth less than the pair's minimum order: unsellable, reported as dust."""
        return self.qty > EPS and self.qty * price < min_value


def _fee_in_quote(fill: Fill, base: str, quote: str) -> tuple[float, float]:
    """(fee in quote, fee in base) for one fill; an unconvertible fee gives (0, 0) and the caller notes it."""
    if fill.fee <= 0:
        return 0.0, 0.0
    if fill.fee_asset == quote:
        return fill.fee, 0.0
    if fill.fee_asset == base:
        return fill.fee * fill.price, fill.fee
    if fill.fee_quote_rate is not None and math.isfinite(fill.fee_quote_rate) and fill.fee_quote_rate >= 0:
        return fill.fee * fill.fee_quote_rate, 0.0
    return math.nan, 0.0


def apply(pos: Position, fill: Fill) -> None:
    """Fold one fill into the position (see the module docstring for the rules)."""
    fee_quote, fee_base = _fee_in_quote(fill, pos.base, pos.quote)
    if math.isnan(fee_quote):
        pos.missing.append(f"fill {fill.trade_id}: fee {fill.fee:g} {fill.fee_asset} has no rate to {pos.quote}; counted as 0")
        fee_quote = 0.0
    elif fill.fee_rate_approx and fill.fee_asset not in (pos.base, pos.quote) and fill.fee > 0:
        pos.approx_fees += 1
    pos.fees_quote += fee_quote
    pos.first_ms = fill.time_ms if pos.buys + pos.sells == 0 else min(pos.first_ms, fill.time_ms)
    pos.last_ms = max(pos.last_ms, fill.time_ms)
    if fill.side == "BUY":
        pos.buys += 1
        received = fill.qty - fee_base
        spent = fill.qty * fill.price + (fee_quote if fee_base == 0 else 0.0)
        pos.qty += received
        pos.cost += spent
        pos.invested += spent
        return
    pos.sells += 1
    sold = fill.qty + fee_base  # a base fee on a sell takes more coins from what is held
    if sold > pos.qty + EPS * max(1.0, sold):
        pos.missing.append(f"fill {fill.trade_id}: sold {sold:g} {pos.base} but only {pos.qty:g} is explained by earlier buys")
        scale = pos.qty / sold if sold > 0 else 0.0
    else:
        scale = 1.0
    sold = min(sold, pos.qty)
    basis = pos.avg_price * sold
    gross = fill.qty * fill.price * scale
    net = gross - (fee_quote * scale if fee_base == 0 else 0.0)
    pos.proceeds += net
    pos.realised += net - basis
    pos.sold_cost += basis
    pos.cost -= basis
    pos.qty -= sold
    if pos.qty <= EPS * max(1.0, fill.qty):
        pos.qty, pos.cost = 0.0, 0.0


def fold(fills: Iterable[Fill], base: str, quote: str) -> Position:
    """The position after fills in time order; a trade id seen twice counts once (myTrades pages overlap)."""
    pos = Position(base, quote)
    seen: set[str] = set()
    for fill in sorted(fills, key=lambda f: f.time_ms):  # stable: fills of one millisecond keep their order
        if fill.trade_id in seen:
            continue
        seen.add(fill.trade_id)
        apply(pos, fill)
    return pos


__all__ = ["Fill", "Position", "apply", "fold"]
