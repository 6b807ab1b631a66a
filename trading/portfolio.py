"""The portfolio view and the optional balancer: target weights per asset, a drift band, the reserve.

Why a balancer at all: the original system kept BTC/ETH at 50/50 by trading back whenever one
drifted; generalised, trading.portfolio_targets names any assets and weights (the rest stays
USDT). Off while the list is empty, paper unless trading.live, like every order.

Why plan() is pure: which trades a drift calls for, and that they never spend the reserve or sell
more than is held, is arithmetic; it is tested on its own, and the runner only executes it:
sells first (they free USDT), then buys, each asset at most once per portfolio_cooldown_s, as
limit orders at the touch (a buy at the best ask, a sell at the best bid) so the price is bounded,
whatever does not fill at once is cancelled.

Why a journal (store/balancer.py) and the same discipline as the Buy and the exits: every order
is written PENDING with a client order id (per mode, pair, side and cooldown window) before it
is sent; each pass first settles what a killed process left in doubt by asking MEXC about that
id (cancel what rests, store the fills once by trade id), and the cooldown is read from the
journal. So a kill -9 mid-run never places the same rebalance twice and never forgets one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from store.balancer import BALANCER_IN_DOUBT, UNSENT, BalancerJournal, BalancerOrder
from trading.avgcost import EPS
from trading.fills import order_fills
from trading.paper import walk_buy, walk_sell
from venues.mexc.client import MexcError
from venues.mexc.orders import ask_order, balances, cancel_order, order_book, parse_order, place_order
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
        self.journal = BalancerJournal(trader.ledger.store.db)

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
        """One balancer pass: first every journaled order a killed process left in doubt is settled, then
        (when targets are set) the trades the drift calls for, each journaled before it is sent; as sentences."""
        out = await self.reconcile()
        t = self.trader.config.trading
        if not t.portfolio_targets:
            return out
        held, total, usdt = await self.holdings()
        fee = t.paper_fee_rate if self.mode == "paper" else 0.002
        now_ns = self.trader.clock_ns()
        doubtful = {j.asset for j in self.journal.in_doubt(self.mode)}  # MEXC has not told us yet: never a second order
        for trade in plan(held, total, usdt, t.portfolio_band, t.reserve_usdt, fee, 5.0):
            last = self.journal.last_order_ns(self.mode, trade.asset)
            if trade.asset in doubtful or (last is not None and now_ns - last < t.portfolio_cooldown_s * 1e9):
                continue
            async with self.trader.funds.hold():
                try:
                    out.append(await self._execute(trade, now_ns, int(now_ns // 10**9 // max(t.portfolio_cooldown_s, 1.0))))
                except (MexcError, RuleError) as exc:
                    out.append(f"balancer: {trade.side.lower()} {trade.asset} not done: {exc}")
        return out

    async def _execute(self, trade: Trade, now_ns: int, bucket: int) -> str:
        symbol = trade.asset + QUOTE
        cid = balancer_order_id(self.mode, symbol, trade.side, bucket)
        bids, asks = await order_book(self.trader.rest, symbol, 100)
        touch = asks[0][0] if trade.side == "BUY" else bids[0][0]
        qty = trade.quote_amount / touch
        ledger = self.trader.ledger
        if trade.side == "SELL" and self.mode == "paper" and not ledger.positions.open_position("paper", symbol):
            return f"balancer: no paper position in {symbol} to sell"
        journal = BalancerOrder(cid, self.mode, symbol, trade.asset, trade.side, trade.quote_amount, qty, touch, "PENDING", created_ns=now_ns)
        if not self.journal.claim(journal):  # written before anything is sent: a crash leaves a row to settle
            return f"balancer: {trade.side.lower()} {trade.asset} is journaled already ({cid}); not sent again"
        if self.mode == "paper":
            rules = await self.trader.rules.get(symbol)
            fee, now_ms = self.trader.config.trading.paper_fee_rate, now_ns // 1_000_000
            fills = walk_buy(asks, trade.quote_amount, fee, QUOTE, cid, now_ms) if trade.side == "BUY" else walk_sell(bids, qty, fee, QUOTE, cid, now_ms)
            row = ledger.record("paper", symbol, trade.asset, QUOTE, cid, fills)
            if row is not None and rules is not None:
                ledger.settle(row.position_id, bids[0][0], float(rules.min_market_notional))
            self._final(journal, "FILLED" if fills else "REJECTED", None if fills else "the book is empty")
            return f"balancer (paper): {trade.side.lower()} {sum(f.qty for f in fills):.10g} {trade.asset} for about {trade.quote_amount:.2f} {QUOTE}"
        try:
            journal.exchange_order_id = await place_order(self.trader.rest, self.trader.rules, symbol,
                                                          lambda r: shape_limit(r, trade.side, qty, touch), cid)  # fmt: skip
            journal.status = "NEW"
        except RuleError as exc:
            self._final(journal, "REFUSED", str(exc))
            raise
        except MexcError as exc:
            if not exc.outcome_unknown and exc.code != -2010:
                self._final(journal, "REJECTED", exc.message)
                raise
            journal.status = "UNKNOWN"
        self.journal.update(journal, self.trader.clock_ns())
        journal = await self._settle(journal)
        done = sum(f.qty for f in ledger.positions.fills_of_order(cid))
        return f"balancer: {trade.side.lower()} {done:.10g} {trade.asset} at the touch {touch:.10g} ({journal.status})"

    def _final(self, journal: BalancerOrder, status: str, error: str | None) -> None:
        journal.status, journal.error_msg = status, error
        self.journal.update(journal, self.trader.clock_ns())

    async def _settle(self, journal: BalancerOrder) -> BalancerOrder:
        """Ask MEXC for the order by its client id: cancel what rests (never chased), store its fills, then its final status.

        Each step may be repeated after a crash: a cancel of a finished order (-2011) is fine, fills
        are stored once by trade id, and the status turns final only after the fills are stored.
        """
        rest, symbol, cid = self.trader.rest, journal.symbol, journal.client_order_id
        try:
            state = await ask_order(rest, symbol, cid, parse_order)
            if state is not None and state.status in ("NEW", "PARTIALLY_FILLED"):
                with contextlib.suppress(MexcError):  # -2011: it finished meanwhile; anything else: the next ask says
                    await cancel_order(rest, symbol, cid)
                state = await ask_order(rest, symbol, cid, parse_order)
        except MexcError:  # -2011
            if journal.status in ("PENDING", "UNKNOWN"):
                self._final(journal, UNSENT, "MEXC never received the order")
                return journal
            state = None
        if state is not None:
            journal.exchange_order_id = state.order_id or journal.exchange_order_id
            if state.executed_qty and journal.exchange_order_id:
                fills = await order_fills(rest, symbol, journal.exchange_order_id, journal.asset, QUOTE)
                if fills and (journal.side == "BUY" or self.trader.ledger.positions.open_position("live", symbol)):
                    self.trader.ledger.record("live", symbol, journal.asset, QUOTE, cid, fills)
            self._final(journal, state.status, None)
            return journal
        if journal.status == "PENDING":
            self._final(journal, "UNKNOWN", "MEXC did not confirm the order yet")
        return journal

    async def reconcile(self) -> list[str]:
        """Every balancer order of this mode a killed process left in doubt, settled before anything new is planned.

        Paper: its fills are stored in one transaction, so fills mean FILLED and none mean UNSENT.
        Only a settled order is told (once); one MEXC still does not confirm is logged and asked about
        again on the next pass, so an unreachable exchange does not fill the chat.
        """
        out = []
        for journal in self.journal.in_doubt(self.mode):
            async with self.trader.funds.hold():
                if journal.mode == "paper":
                    filled = bool(self.trader.ledger.positions.fills_of_order(journal.client_order_id))
                    self._final(journal, "FILLED" if filled else UNSENT, None if filled else "interrupted before the paper fill")
                else:
                    try:
                        journal = await self._settle(journal)
                    except MexcError as exc:
                        journal.error_msg = exc.message
                if journal.status in BALANCER_IN_DOUBT:
                    log.warning("balancer order still in doubt", extra={"client_order_id": journal.client_order_id,
                                                                         "error": (journal.error_msg or "")[:200]})  # fmt: skip
                    continue
            done = sum(f.qty for f in self.trader.ledger.positions.fills_of_order(journal.client_order_id))
            out.append(f"balancer: a {journal.side.lower()} of {journal.asset} left in doubt by a restart is {journal.status}"
                       + (f", {done:.10g} {journal.asset} filled" if done else ""))  # fmt: skip
        return out


def balancer_order_id(mode: str, symbol: str, side: str, bucket: int) -> str:
    """Deterministic newClientOrderId of a rebalancing order: one per mode, pair, side and cooldown window (28 chars)."""
    return "scb_" + hashlib.sha256(f"{mode}:{symbol}:{side}:{bucket}".encode()).hexdigest()[:24]


__all__ = ["Holding", "Portfolio", "Trade", "balancer_order_id", "parse_targets", "plan", "weigh"]
