"""The ledger: fills into positions (store/positions.py), AvgCost figures out (trading/avgcost.py).

Why one place between the orders and the store: a Buy opens or adds to the pair's open position,
a Sell reduces it, and a position whose remainder is below the pair's minimum order value is
closed with its dust noted; paper and live go through the same steps, so paper PnL is computed
exactly like live PnL. The rebuild from myTrades (live) is the same fold over the same fills.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from store.history import Store
from store.positions import FillRow, PositionRow, PositionStore
from store.transaction import write_transaction
from trading.avgcost import EPS, Fill, Position, fold
from trading.limits import Book


@dataclass(frozen=True)
class Figures:
    """A position row with its AvgCost figures."""

    row: PositionRow
    pos: Position


class Ledger:
    """Positions of one history file; safe to use from one event loop (the bot's)."""

    def __init__(self, store: Store, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.store = store
        self.positions = PositionStore(store.db)
        self.clock_ns = clock_ns

    def record(self, mode: str, symbol: str, base: str, quote: str, client_order_id: str, fills: list[Fill],
               position_id: str | None = None) -> PositionRow | None:  # fmt: skip
        """Store an order's fills in the pair's open position (a Buy opens one if none is open); None without fills.

        position_id: the position an exit sold from (its fills belong there even when it is already
        closed: a reconcile after a restart records them again, and a fill already stored is skipped).
        A sell that leaves nothing is closed in the same transaction as its fills: a process killed in
        between must not leave an open position holding nothing, which no exit pass would ever close.
        """
        if not fills:
            return None
        now = self.clock_ns()
        with write_transaction(self.positions.db):
            row = self.positions.get_position(position_id) if position_id else self.positions.open_position(mode, symbol)
            if row is None:
                if fills[0].side != "BUY":
                    raise ValueError(f"{symbol}: a sell with no open {mode} position")
                row = self.positions.add_position(PositionRow(f"{mode}:{symbol}:{now}", symbol, base, quote, mode, "open", now, None,
                                                              now, max(f.price for f in fills), None))  # fmt: skip
            if fills[0].side == "BUY":
                self.positions.update_position(row.position_id, last_buy_ns=now)
            self.positions.add_fills([FillRow(mode, f.trade_id, row.position_id, client_order_id, f.side, f.price, f.qty, f.fee,
                                              f.fee_asset, f.fee_quote_rate, f.time_ms, f.fee_rate_approx) for f in fills])  # fmt: skip
            if fills[0].side == "SELL":
                self.settle(row.position_id, 0.0, 0.0)  # no minimum order: only a position that holds nothing closes here
        return row

    def figures(self, position_id: str) -> Figures | None:
        row = self.positions.get_position(position_id)
        if row is None:
            return None
        fills = [Fill(f.trade_id, f.side, f.price, f.qty, f.fee, f.fee_asset, f.time_ms, f.fee_quote_rate, f.fee_rate_approx)
                 for f in self.positions.fills(position_id)]  # fmt: skip
        return Figures(row, fold(fills, row.base, row.quote))

    def order_fee(self, client_order_id: str) -> float:
        """An order's fees in the quote asset (a base fee at its fill's price, a third asset at its rate or 0)."""
        total = 0.0
        for f in self.positions.fills_of_order(client_order_id):
            row = self.positions.get_position(f.position_id)
            if row is None or f.fee_asset == row.quote:
                total += f.fee
            elif f.fee_asset == row.base:
                total += f.fee * f.price
            else:
                total += f.fee * (f.fee_quote_rate or 0.0)
        return total

    def order_fee_approx(self, client_order_id: str) -> bool:
        """True when a fill of the order had its third-asset fee converted at a later price (trading/fills.py)."""
        return any(f.fee_rate_approx for f in self.positions.fills_of_order(client_order_id))

    def settle(self, position_id: str, price: float, min_value: float) -> Figures | None:
        """Close the position when nothing sellable is left (dust below min_value is noted); its figures."""
        fig = self.figures(position_id)
        if fig is None or fig.row.status != "open":
            return fig
        if fig.pos.qty <= EPS or fig.pos.is_dust(price, min_value):
            note = f"dust left: {fig.pos.qty:.10g} {fig.row.base} (below the ${min_value:g} minimum order)" if fig.pos.qty > EPS else None
            self.positions.update_position(position_id, status="closed", closed_ns=self.clock_ns(), note=note)
            fig = self.figures(position_id)
        return fig

    def open(self, mode: str) -> list[Figures]:
        out = []
        for row in self.positions.positions(mode, "open"):
            fig = self.figures(row.position_id)
            if fig is not None:
                out.append(fig)
        return out

    def book(self, mode: str, symbol: str, free_quote: float) -> Book:
        """What the limits see for a Buy of symbol (trading/limits.py)."""
        open_now = self.open(mode)
        return Book(free_quote, len(open_now), sum(f.pos.cost for f in open_now), any(f.row.symbol == symbol for f in open_now),
                    self.positions.last_buy_ns(mode, symbol))  # fmt: skip

    def paper_free(self, start_usdt: float) -> float:
        """The paper account's free USDT: the configured start plus every paper fill's cash flow."""
        free = start_usdt
        for row in self.positions.positions("paper"):
            fig = self.figures(row.position_id)
            if fig is not None:
                free += fig.pos.proceeds - fig.pos.invested
        return free

    def pnl(self, mode: str, since_ns: int, prices: dict[str, float]) -> dict[str, float | int | None]:
        """/pnl figures: realised over positions closed since since_ns, unrealised of open ones at prices.

        A trade is a closed position: win rate and the averages are over those.
        """
        closed = [f for f in (self.figures(r.position_id) for r in self.positions.positions(mode, "closed", since_ns)) if f]
        opened = self.open(mode)
        realised_open = sum(f.pos.realised for f in opened)
        unrealised = sum(f.pos.unrealised(prices[f.row.symbol]) for f in opened if f.row.symbol in prices)
        wins = sum(1 for f in closed if f.pos.realised > 0)
        holds = [((f.row.closed_ns or 0) - f.row.opened_ns) / 1e9 for f in closed]
        return {"trades": len(closed), "realised": sum(f.pos.realised for f in closed), "realised_open": realised_open,
                "unrealised": unrealised, "priced": sum(1 for f in opened if f.row.symbol in prices), "open": len(opened),
                "win_rate": wins / len(closed) if closed else None,
                "avg_pnl": sum(f.pos.realised for f in closed) / len(closed) if closed else None,
                "avg_hold_s": sum(holds) / len(holds) if holds else None,
                "fees": sum(f.pos.fees_quote for f in closed)}  # fmt: skip


__all__ = ["Figures", "Ledger"]
