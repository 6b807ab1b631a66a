"""The portfolio view and the optional balancer: target weights per asset, a drift band, the reserve.

Why a balancer at all: the original system kept BTC/ETH at 50/50 by trading back whenever one
drifted; generalised, trading.portfolio_targets names any assets and weights (the rest stays
USDT). Off while the list is empty, paper unless trading.live, like every order.

Why plan() is pure: which trades a drift calls for, and that they never spend the reserve or sell
more than is held, is arithmetic; it is tested on its own, and the runner only executes it:
sells first (they free USDT), then buys, each asset at most once per portfolio_cooldown_s, as
limit orders at the touch (a buy at the best ask, a sell at the best bid) so the price is bounded,
whatever does not fill at once is cancelled.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from trading.avgcost import EPS
from trading.fills import order_fills
from trading.paper import walk_buy, walk_sell
from venues.mexc.client import MexcError
from venues.mexc.orders import balances, cancel_order, fetch_order, order_book, parse_order, place_order
from venues.mexc.rules import RuleError, shape_limit

log = logging.getLogger("scanner.trading")
QUOTE = "USDT"


def parse_targets(items: list[str]) -> dict[str, float]:
    """{asset: weight} from ["BTC:0.5", ...] (common/config.py already checked the form)."""
    return {a: float(w) for a, _, w in (item.partition(":") for item in items)}


@dataclass(frozen=True)
class Holding:
    asset: str
    qty: float
    price: float | None
    value: float
    weight: float
    target: float


@dataclass(frozen=True)
class Trade:
    asset: str
    side: str  # BUY | SELL
    quote_amount: float


def weigh(qtys: dict[str, float], prices: dict[str, float], usdt: float, targets: dict[str, float]) -> tuple[list[Holding], float]:
    """Holdings of the target assets (and any other asset held) with their weights in the total value."""
    assets = sorted(set(targets) | {a for a, q in qtys.items() if q > EPS})
    values = {a: qtys.get(a, 0.0) * prices.get(a, 0.0) for a in assets}
    total = usdt + sum(values.values())
    out = [Holding(a, qtys.get(a, 0.0), prices.get(a), values[a], values[a] / total if total > 0 else 0.0, targets.get(a, 0.0))
           for a in assets]  # fmt: skip
    return out, total


def plan(holdings: list[Holding], total: float, usdt: float, band: float, reserve: float, fee_rate: float,
         min_value: float) -> list[Trade]:  # fmt: skip
    """Trades that bring each drifted target asset back to its weight: sells first, buys within USDT above the reserve.

    An asset without a price is never traded; a trade below min_value is skipped (it would be refused).
    """
    sells, buys = [], []
    for h in holdings:
        if h.price is None or h.price <= 0 or h.asset not in _targeted(holdings):
            continue
        drift = h.weight - h.target
        if abs(drift) <= band:
            continue
        amount = abs(drift) * total
        if drift > 0:
            amount = min(amount, h.value)
            if amount >= min_value:
                sells.append(Trade(h.asset, "SELL", amount))
        else:
            buys.append(Trade(h.asset, "BUY", amount))
    spendable = usdt + sum(t.quote_amount * (1 - fee_rate) for t in sells) - reserve
    planned = list(sells)
    for t in sorted(buys, key=lambda t: -t.quote_amount):
        amount = min(t.quote_amount, spendable / (1 + fee_rate))
        if amount >= min_value:
            planned.append(Trade(t.asset, "BUY", amount))
            spendable -= amount * (1 + fee_rate)
    return planned


def _targeted(holdings: list[Holding]) -> set[str]:
    return {h.asset for h in holdings if h.target > 0}


class Portfolio:
    """The /portfolio view and the balancer for one Trader (its rest, rules, ledger and mode)."""

    def __init__(self, trader: Any) -> None:
        self.trader = trader
        self._last: dict[str, float] = {}  # asset -> monotonic time of its last rebalancing order

    @property
    def mode(self) -> str:
        return "live" if self.trader.live else "paper"

    async def holdings(self) -> tuple[list[Holding], float, float]:
        """(holdings, total value, free USDT) of the account (live) or the paper positions (paper)."""
        t = self.trader.config.trading
        targets = parse_targets(t.portfolio_targets)
        if self.mode == "live":
            bal = await balances(self.trader.rest)
            usdt = bal.pop(QUOTE, 0.0)
            qtys = {a: q for a, q in bal.items() if q > EPS and (a in targets or self.trader.ledger.positions.open_position("live", a + QUOTE))}
        else:
            usdt = self.trader.ledger.paper_free(t.paper_balance_usdt)
            qtys = {f.row.base: f.pos.qty for f in self.trader.ledger.open("paper") if f.row.quote == QUOTE}
        prices: dict[str, float] = {}
        for asset in set(qtys) | set(targets):
            try:
                bids, _ = await order_book(self.trader.rest, asset + QUOTE, 5)
            except MexcError:
                continue
            if bids:
                prices[asset] = bids[0][0]
        held, total = weigh(qtys, prices, usdt, targets)
        return held, total, usdt

    async def view(self) -> str:
        held, total, usdt = await self.holdings()
        band = self.trader.config.trading.portfolio_band
        lines = [f"Portfolio ({self.mode}): total {total:.2f} {QUOTE}, of which {usdt:.2f} {QUOTE} free"
                 + ("" if self.trader.config.trading.portfolio_targets else "; balancer off (trading.portfolio_targets is empty)")]  # fmt: skip
        for h in held:
            pos = self.trader.ledger.positions.open_position(self.mode, h.asset + QUOTE)
            fig = self.trader.ledger.figures(pos.position_id) if pos else None
            pnl = f", AvgCost PnL {fig.pos.unrealised(h.price):+.2f}" if fig and h.price else ""
            drift = h.weight - h.target
            flag = " ⚠ outside the band" if h.target > 0 and abs(drift) > band else ""
            price = f"{h.price:.10g}" if h.price else "no price"
            lines.append(f"{h.asset}: {h.qty:.10g} at {price} = {h.value:.2f} {QUOTE}, weight {h.weight * 100:.1f}% "
                         f"(target {h.target * 100:.1f}%, drift {drift * 100:+.1f}%){pnl}{flag}")  # fmt: skip
        return "\n".join(lines)

    async def rebalance(self) -> list[str]:
        """One balancer pass (nothing when no targets): the trades done, as sentences."""
        t = self.trader.config.trading
        if not t.portfolio_targets:
            return []
        held, total, usdt = await self.holdings()
        fee = t.paper_fee_rate if self.mode == "paper" else 0.002
        now = time.monotonic()
        out = []
        for trade in plan(held, total, usdt, t.portfolio_band, t.reserve_usdt, fee, 5.0):
            if now - self._last.get(trade.asset, -1e18) < t.portfolio_cooldown_s:
                continue
            self._last[trade.asset] = now
            async with self.trader.funds.hold():
                try:
                    out.append(await self._execute(trade, int(time.time() // max(t.portfolio_cooldown_s, 1.0))))
                except (MexcError, RuleError) as exc:
                    out.append(f"balancer: {trade.side.lower()} {trade.asset} not done: {exc}")
        return out

    async def _execute(self, trade: Trade, bucket: int) -> str:
        symbol = trade.asset + QUOTE
        cid = "scb_" + hashlib.sha256(f"{symbol}:{trade.side}:{bucket}".encode()).hexdigest()[:24]
        bids, asks = await order_book(self.trader.rest, symbol, 100)
        touch = asks[0][0] if trade.side == "BUY" else bids[0][0]
        qty = trade.quote_amount / touch
        ledger = self.trader.ledger
        if self.mode == "paper":
            rules = await self.trader.rules.get(symbol)
            fee, now_ms = self.trader.config.trading.paper_fee_rate, int(time.time() * 1000)
            fills = walk_buy(asks, trade.quote_amount, fee, QUOTE, cid, now_ms) if trade.side == "BUY" else walk_sell(bids, qty, fee, QUOTE, cid, now_ms)
            if trade.side == "SELL" and not ledger.positions.open_position("paper", symbol):
                return f"balancer: no paper position in {symbol} to sell"
            row = ledger.record("paper", symbol, trade.asset, QUOTE, cid, fills)
            if row is not None and rules is not None:
                ledger.settle(row.position_id, bids[0][0], float(rules.min_market_notional))
            return f"balancer (paper): {trade.side.lower()} {sum(f.qty for f in fills):.10g} {trade.asset} for about {trade.quote_amount:.2f} {QUOTE}"
        order_id = await place_order(self.trader.rest, self.trader.rules, symbol, lambda r: shape_limit(r, trade.side, qty, touch), cid)
        state = parse_order(await fetch_order(self.trader.rest, symbol, cid))
        if state.status in ("NEW", "PARTIALLY_FILLED"):
            await cancel_order(self.trader.rest, symbol, cid)  # what did not fill at the touch is not chased
        if state.executed_qty and (order_id or state.order_id):
            fills = await order_fills(self.trader.rest, symbol, str(state.order_id or order_id), trade.asset, QUOTE)
            if fills and (trade.side == "BUY" or ledger.positions.open_position("live", symbol)):
                ledger.record("live", symbol, trade.asset, QUOTE, cid, fills)
        return f"balancer: {trade.side.lower()} {state.executed_qty or 0:.10g} {trade.asset} at the touch {touch:.10g} ({state.status})"


__all__ = ["Holding", "Portfolio", "Trade", "parse_targets", "plan", "weigh"]
