"""Exits: the Sell button, /sell SYMBOL [pct] and the optional take-profit / stop-loss / trailing stop.

Why a journal before every sell: an exit is written PENDING with a client order id derived from
the position and the exit's number before anything is sent. A process killed after sending finds
the PENDING row on restart and asks MEXC about that id (reconcile) before any new exit of the same
position may go out; MEXC never saw it (-2011): the row becomes REJECTED and the next exit takes
the next number; MEXC has it: its fills are stored (once, by trade id). So a killed process never
sells twice and never forgets an exit it placed. Paper exits keep the same journal.

Why a partial sell that would leave dust sells everything: a remainder below the pair's minimum
order can never be sold; better to close the position than to strand it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from common.config import TradingConfig
from store.positions import ExitRow
from store.transaction import write_transaction
from trading.avgcost import EPS, Fill
from trading.fills import order_fills
from trading.ledger import Figures, Ledger
from trading.paper import walk_sell
from venues.mexc.client import MexcError, MexcRest
from venues.mexc.orders import ask_order, order_book, parse_order, place_market_sell
from venues.mexc.rules import RuleError, RulesCache

log = logging.getLogger("scanner.trading")
_IN_DOUBT = ("PENDING", "UNKNOWN")


def exit_order_id(position_id: str, seq: int) -> str:
    """Deterministic newClientOrderId of a position's seq-th exit (28 chars of [a-z0-9_])."""
    return "scx_" + hashlib.sha256(f"{position_id}#{seq}".encode()).hexdigest()[:24]


def exit_reason(fig: Figures, price: float, t: TradingConfig) -> str | None:
    """Which automatic exit (if any) price triggers for the position; every rule is off at 0."""
    avg = fig.pos.avg_price
    if avg <= 0 or price <= 0 or fig.pos.qty <= EPS:
        return None
    change = price / avg - 1
    if t.take_profit and change >= t.take_profit:
        return f"take-profit: {change * 100:+.2f}% over the average entry (trading.take_profit {t.take_profit:g})"
    if t.stop_loss and change <= -t.stop_loss:
        return f"stop-loss: {change * 100:+.2f}% under the average entry (trading.stop_loss {t.stop_loss:g})"
    peak = max(fig.row.peak_price or 0.0, price)
    if t.trailing_stop and peak > avg and price <= peak * (1 - t.trailing_stop):
        return f"trailing stop: {(price / peak - 1) * 100:+.2f}% from the high {peak:.10g} (trading.trailing_stop {t.trailing_stop:g})"
    return None


@dataclass
class ExitResult:
    """What an exit did; message is the sentence shown to the user. closed: the position is now closed."""

    ok: bool
    message: str
    position_id: str | None = None
    client_order_id: str | None = None
    closed: bool = False
    realised: float = 0.0


class Exits:
    """Sells of open positions, for the bot (manual) and the exit watcher (automatic)."""

    def __init__(self, config: Callable[[], TradingConfig], ledger: Ledger, rest: MexcRest, rules: RulesCache,
                 live: Callable[[], bool]) -> None:  # fmt: skip
        self._config = config
        self.ledger = ledger
        self.rest = rest
        self.rules = rules
        self._live = live
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @property
    def config(self) -> TradingConfig:
        return self._config()

    @property
    def live(self) -> bool:
        return self._live()

    @property
    def mode(self) -> str:
        return "live" if self.live else "paper"

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def sell(self, symbol: str, fraction: float, reason: str) -> ExitResult:
        """Sell fraction (0..1] of the open position in symbol; never raises, never sells twice."""
        if not 0 < fraction <= 1:
            return ExitResult(False, f"not sold: the share must be between 0 and 100 %, got {fraction * 100:g} %")
        async with self._lock(f"{self.mode}:{symbol}"):
            try:
                return await self._sell_locked(symbol, fraction, reason)
            except MexcError as exc:
                return ExitResult(False, f"not sold: {exc.message}")
            except Exception:  # noqa: BLE001 - a bug must become a message
                log.exception("sell failed", extra={"symbol": symbol})
                return ExitResult(False, "not sold: internal error (see the logs)")

    async def _sell_locked(self, symbol: str, fraction: float, reason: str) -> ExitResult:
        row = self.ledger.positions.open_position(self.mode, symbol)
        if row is None:
            return ExitResult(False, f"not sold: no open {self.mode} position in {symbol}")
        for doubt in [e for e in self.ledger.positions.exits(row.position_id) if e.status in _IN_DOUBT]:
            settled = await self._reconcile(doubt)
            if settled.status in _IN_DOUBT:
                return ExitResult(False, "not sold: an earlier exit's outcome is still unknown; it will not sell twice. Try again shortly.",
                                  row.position_id, doubt.client_order_id)  # fmt: skip
        fig = self.ledger.figures(row.position_id)
        if fig is None or fig.row.status != "open":
            return ExitResult(False, f"not sold: the {symbol} position is already closed", row.position_id, closed=True)
        rules = await self.rules.get(symbol)
        if rules is None:
            return ExitResult(False, f"not sold: MEXC does not know {symbol}")
        bids, _ = await order_book(self.rest, symbol, 100)
        price = bids[0][0] if bids else 0.0
        qty = fig.pos.qty * fraction
        if fraction < 1 and (fig.pos.qty - qty) * price < float(rules.min_market_notional):
            qty = fig.pos.qty  # the rest would be unsellable dust: sell it all
        seq = len(self.ledger.positions.exits(row.position_id))
        cid = exit_order_id(row.position_id, seq)
        journal = ExitRow(cid, row.position_id, symbol, self.mode, qty / fig.pos.qty, reason[:200], "PENDING")
        if not self.ledger.positions.add_exit(journal):
            return ExitResult(False, "not sold: this exit is already journaled", row.position_id, cid)
        try:
            if not self.live:
                return self._paper(journal, fig, bids, qty, price, float(rules.min_market_notional))
            await place_market_sell(self.rest, self.rules, symbol, qty, price, cid)
        except RuleError as exc:
            journal.status, journal.error_msg = "REFUSED", str(exc)
            self.ledger.positions.update_exit(journal)
            if "dust" in str(exc):
                self.ledger.settle(row.position_id, price, float(rules.min_market_notional))
            return ExitResult(False, f"not sold: {exc}", row.position_id, cid)
        except MexcError as exc:
            if not exc.outcome_unknown and exc.code != -2010:
                journal.status, journal.error_msg = "REJECTED", exc.message
                self.ledger.positions.update_exit(journal)
                return ExitResult(False, f"not sold: {exc.message}", row.position_id, cid)
            journal.status = "UNKNOWN"
            self.ledger.positions.update_exit(journal)
        journal.status = "NEW" if journal.status == "PENDING" else journal.status
        settled = await self._reconcile(journal)
        return self._result(settled)

    def _paper(self, journal: ExitRow, fig: Figures, bids: list[tuple[float, float]], qty: float, price: float,
               min_value: float) -> ExitResult:  # fmt: skip
        fills = walk_sell(bids, qty, self.config.paper_fee_rate, fig.row.quote, journal.client_order_id, self.ledger.clock_ns() // 1_000_000)
        if not fills:
            journal.status, journal.error_msg = "REJECTED", "the book has no bids"
            self.ledger.positions.update_exit(journal)
            return ExitResult(False, "not sold (paper): the book has no bids", fig.row.position_id, journal.client_order_id)
        journal.status = "FILLED"
        with write_transaction(self.ledger.positions.db):  # fills, settlement and journal land whole or not at all
            self.ledger.record("paper", fig.row.symbol, fig.row.base, fig.row.quote, journal.client_order_id, fills, fig.row.position_id)
            self.ledger.settle(fig.row.position_id, price, min_value)
            self.ledger.positions.update_exit(journal)
        return self._result(journal)

    async def _reconcile(self, journal: ExitRow) -> ExitRow:
        """Ask MEXC for the exit by its client id; store its status and fills. Paper rows in doubt never reached anything."""
        if journal.mode == "paper":
            journal.status, journal.error_msg = "REJECTED", "interrupted before the paper fill"
            self.ledger.positions.update_exit(journal)
            return journal
        try:
            state = await ask_order(self.rest, journal.symbol, journal.client_order_id, parse_order)
        except MexcError:  # -2011
            journal.status, journal.error_msg = "REJECTED", "MEXC never received the exit"
            self.ledger.positions.update_exit(journal)
            return journal
        if state is None:
            journal.status = "UNKNOWN"
            self.ledger.positions.update_exit(journal)
            return journal
        fills: list[Fill] = []
        row = self.ledger.positions.get_position(journal.position_id)
        if state.executed_qty and state.order_id and row is not None:
            fills = await order_fills(self.rest, journal.symbol, state.order_id, row.base, row.quote)
        rules = await self.rules.get(journal.symbol) if fills else None
        journal.status, journal.exchange_order_id = state.status, state.order_id
        # The fills, the position they empty and the journal's final status in one transaction: a
        # process killed before it leaves the exit in doubt (asked about again at start-up, its
        # fills then skipped as stored), never a FILLED exit whose fills or settlement are missing.
        with write_transaction(self.ledger.positions.db):
            if row is not None and fills:
                self.ledger.record("live", row.symbol, row.base, row.quote, journal.client_order_id, fills, row.position_id)
                self.ledger.settle(row.position_id, fills[-1].price, float(rules.min_market_notional) if rules else 0.0)
            self.ledger.positions.update_exit(journal)
        return journal

    def _result(self, journal: ExitRow) -> ExitResult:
        fig = self.ledger.figures(journal.position_id)
        sold = self.ledger.positions.fills_of_order(journal.client_order_id)
        if fig is None or not sold:
            ok = journal.status in ("NEW", "PARTIALLY_FILLED")
            return ExitResult(ok, f"exit {journal.status.lower()}: no fill yet", journal.position_id, journal.client_order_id)
        qty = sum(f.qty for f in sold)
        price = sum(f.qty * f.price for f in sold) / qty if qty > 0 else 0.0
        closed = fig.row.status == "closed"
        pct = fig.pos.realised_pct()
        what = f"sold {qty:.10g} {fig.row.base} at {price:.10g}" + (" (paper)" if journal.mode == "paper" else "")
        pnl = f"realised {fig.pos.realised:+.2f} {fig.row.quote}" + (f" ({pct * 100:+.2f}%)" if pct is not None else "")
        tail = "; position closed" + (f", {fig.row.note}" if fig.row.note else "") if closed else f"; {fig.pos.qty:.10g} left"
        return ExitResult(True, f"{what}: {pnl}{tail}", journal.position_id, journal.client_order_id, closed, fig.pos.realised)

    async def mark(self, symbols: list[str] | None = None) -> dict[str, float]:
        """Best bid per open position's pair (what a sell would get now); pairs whose book cannot be read are left out."""
        prices: dict[str, float] = {}
        for fig in self.ledger.open(self.mode):
            symbol = fig.row.symbol
            if symbol in prices or (symbols is not None and symbol not in symbols):
                continue
            try:
                bids, _ = await order_book(self.rest, symbol, 5)
            except MexcError:
                continue
            if bids:
                prices[symbol] = bids[0][0]
                if bids[0][0] > (fig.row.peak_price or 0.0):
                    self.ledger.positions.update_position(fig.row.position_id, peak_price=bids[0][0])
        return prices

    async def check_exits(self, closes: dict[str, float] | None = None) -> list[ExitResult]:
        """One pass of the automatic exits (off unless trading.take_profit/stop_loss/trailing_stop is set).

        closes: the supervisor's newest 1 s closes of the held pairs (common/messages.py Closes), used
        where present; a pair without one (not in the scanned universe, or no close yet) is priced at
        its REST best bid (mark()). The trailing stop's high follows whichever price is used.
        """
        t = self.config
        if not (t.take_profit or t.stop_loss or t.trailing_stop):
            return []
        closes = closes or {}
        missing = [f.row.symbol for f in self.ledger.open(self.mode) if f.row.symbol not in closes]
        prices = await self.mark(missing) if missing else {}
        for fig in self.ledger.open(self.mode):
            close = closes.get(fig.row.symbol)
            if close is not None and close > 0:
                prices[fig.row.symbol] = close
                if close > (fig.row.peak_price or 0.0):
                    self.ledger.positions.update_position(fig.row.position_id, peak_price=close)
        out = []
        for fig in self.ledger.open(self.mode):
            price = prices.get(fig.row.symbol)
            reason = exit_reason(fig, price, t) if price is not None else None
            if reason is not None:
                log.info("automatic exit", extra={"symbol": fig.row.symbol, "reason": reason})
                result = await self.sell(fig.row.symbol, 1.0, reason)
                result.message = f"{reason} — {result.message}"
                out.append(result)
        return out

    async def reconcile_all(self) -> list[ExitResult]:
        """At start-up: every exit a killed process left in doubt, settled with MEXC before anything else;
        then every open position that holds nothing is closed (no exit pass would ever sell it)."""
        out = []
        for journal in self.ledger.positions.exits_in_doubt():
            async with self._lock(f"{journal.mode}:{journal.symbol}"):
                try:
                    out.append(self._result(await self._reconcile(journal)))
                except MexcError as exc:
                    out.append(ExitResult(False, f"exit {journal.client_order_id} still unknown: {exc.message}", journal.position_id))
        for fig in self.ledger.open(self.mode):  # sold in full but left open (a history written before the close joined the fills)
            if fig.pos.qty <= EPS:
                self.ledger.settle(fig.row.position_id, 0.0, 0.0)
                out.append(ExitResult(True, f"the {fig.row.symbol} position holds nothing (sold before the restart): closed, "
                                      f"realised {fig.pos.realised:+.2f} {fig.row.quote}", fig.row.position_id, closed=True,
                                      realised=fig.pos.realised))  # fmt: skip
        return out


__all__ = ["ExitResult", "Exits", "exit_order_id", "exit_reason"]
