"""The Buy button: paper orders by default, signed MEXC market buys when trading.live is on.

The MEXC calls themselves (paths, parameters, answers) live in venues/mexc/orders.py; this module
decides whether and when to call them and keeps every attempt in the store.

Safety gate before a live order (FIELD-NOTES): the signal must be fresh, the pair API-tradable
(defaultSymbols + isSpotTradingAllowed), the stake at least the pair's minimum market amount, the
fresh price not run away from the signal price, and the reserve and limits (trading/limits.py: the
reserve, open positions, exposure, the pair's cooldown), checked under one lock for every Buy.

Fills: a live Buy's fills come from myTrades (trading/fills.py), a paper Buy's from walking the
book (trading/paper.py); either way they go into the pair's position (trading/ledger.py).

Never twice: the client order id is derived from the signal id, the store is checked first under a
per-signal lock, and the order is written PENDING before it is sent. A 5xx or no answer means the
outcome is unknown, so the order is looked up by its client id before anything else; only when
MEXC says it does not exist is it sent once more (with the same id, which MEXC deduplicates).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.config import Config
from common.signal import Signal
from store.history import Store
from store.schema import OrderRecord
from trading.avgcost import Fill
from trading.exits import Exits
from trading.fills import order_fills
from trading.ledger import Ledger
from trading.limits import FundsGuard, buy_refusal
from trading.paper import vwap, walk_buy
from trading.portfolio import Portfolio
from venues.mexc.client import MexcError, MexcRest
from venues.mexc.orders import (
    api_symbols,
    ask_order,
    fetch_order,
    free_balance,
    market_buy_price,
    order_book,
    parse_order,
    place_market_buy,
)
from venues.mexc.rules import RuleError, RulesCache, SymbolRules

log = logging.getLogger("scanner.trading")

UNIVERSE_TTL_S = 600.0  # tradability changes rarely; a stale "yes" is caught by MEXC's 10007 anyway
_QUERY_BACKOFF_S = (0.2, 0.5, 1.0)
# Statuses after which a new press may try again: nothing was bought.
_RETRYABLE = ("REFUSED", "REJECTED")
_IN_DOUBT = ("PENDING", "UNKNOWN")
LIVE_FEE_ALLOWANCE = 0.002  # the reserve check leaves room for MEXC's taker fee, whatever the account's tier (0.05 % today)

__all__ = ["BuyResult", "Trader", "client_order_id"]


@dataclass
class BuyResult:
    """What a Buy press did; message is the sentence shown to the user."""

    ok: bool
    message: str
    mode: str  # paper | live
    client_order_id: str
    order: OrderRecord | None = None
    fee: float = 0.0  # the fills' fees in the quote asset (0 when nothing filled)
    fee_approx: bool = False  # a third-asset (MX) fee converted at a later price than its fill's (trading/fills.py)


def client_order_id(signal_id: str) -> str:
    """Deterministic newClientOrderId: 28 chars of [a-z0-9_], the same signal always the same id."""
    return "scn_" + hashlib.sha256(signal_id.encode()).hexdigest()[:24]


class Trader:
    """Executes Buy presses for the bot; one lock per signal so concurrent presses cannot race."""

    def __init__(self, config: Config, store: Store, rest: MexcRest | None = None, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.config = config
        self.store = store
        self.rest = rest or MexcRest(config.mexc.rest_url, config.mexc.api_key, config.mexc.api_secret,
                                     config.trading.recv_window_ms, config.mexc.rest_timeout_s)  # fmt: skip
        self.clock_ns = clock_ns
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._default_symbols: tuple[float, frozenset[str]] | None = None
        self.rules = RulesCache(self.rest, UNIVERSE_TTL_S)
        self.ledger = Ledger(store, clock_ns)
        self.funds = FundsGuard()
        self.exits = Exits(lambda: self.config.trading, self.ledger, self.rest, self.rules, lambda: self.live)
        self.portfolio = Portfolio(self)

    @property
    def live(self) -> bool:
        return self.config.trading.live and bool(self.config.mexc.api_key and self.config.mexc.api_secret)

    async def buy(self, signal: Signal, user_id: int) -> BuyResult:
        """Buy trading.stake_usd of the signal's pair (paper or live); never raises, never buys twice."""
        cid = client_order_id(signal.signal_id)
        lock = self._locks.get(signal.signal_id)
        if lock is None:
            lock = self._locks[signal.signal_id] = asyncio.Lock()
        async with lock, self.funds.hold():
            try:
                return self._with_fee(await self._buy_locked(signal, cid, user_id))
            except MexcError as exc:
                return BuyResult(False, f"not bought: {exc.message}", "live" if self.live else "paper", cid)
            except Exception:  # noqa: BLE001 - a bug must become a message, not a dead button
                log.exception("buy failed", extra={"signal_id": signal.signal_id})
                return BuyResult(False, "not bought: internal error (see the logs)", "live" if self.live else "paper", cid)

    async def _buy_locked(self, signal: Signal, cid: str, user_id: int) -> BuyResult:
        existing = self.store.get_order(cid)
        if existing is not None and existing.mode == "live" and existing.status in _IN_DOUBT:
            resolved = await self._reconcile(signal, existing, may_resend=False)
            if resolved.order is None or resolved.order.status not in _RETRYABLE:
                return resolved
            existing = resolved.order  # MEXC never got it: a fresh attempt may go through the gate
        if existing is not None and existing.status not in _RETRYABLE:
            return BuyResult(existing.status == "FILLED", f"already ordered for this signal ({existing.mode}, {existing.status})",
                             existing.mode, cid, existing)  # fmt: skip
        log.info("buy pressed", extra={"signal_id": signal.signal_id, "user_id": user_id, "live": self.live})
        if not self.live:
            return await self._paper(signal, cid)
        return await self._live(signal, cid)

    def _with_fee(self, result: BuyResult) -> BuyResult:
        result.fee = self.ledger.order_fee(result.client_order_id)
        result.fee_approx = self.ledger.order_fee_approx(result.client_order_id)
        return result

    def _refusal(self, mode: str, symbol: str, free: float) -> str | None:
        """The reserve and limits (trading/limits.py) for a Buy of the stake in symbol."""
        t = self.config.trading
        fee_rate = t.paper_fee_rate if mode == "paper" else LIVE_FEE_ALLOWANCE
        why = buy_refusal(t, self.ledger.book(mode, symbol, free), t.stake_usd, fee_rate, self.clock_ns())
        if why is not None:  # the trader is told; the log says it too, for whoever reads why orders stopped
            log.info("buy refused", extra={"symbol": symbol, "mode": mode, "reason": why})
        return why

    # --- prices and the tradable universe ----------------------------------------------------------

    async def _price(self, symbol: str) -> float:
        """What a market buy would pay now (venues/mexc/orders.py: best ask, else last price)."""
        return await market_buy_price(self.rest, symbol)

    async def _tradable(self, symbol: str) -> tuple[bool, SymbolRules | None]:
        """(in defaultSymbols, the pair's rules or None), both cached for UNIVERSE_TTL_S."""
        now = time.monotonic()
        if self._default_symbols is None or now - self._default_symbols[0] > UNIVERSE_TTL_S:
            self._default_symbols = (now, await api_symbols(self.rest))
        return symbol in self._default_symbols[1], await self.rules.get(symbol)

    # --- paper ------------------------------------------------------------------------------------

    async def _paper(self, signal: Signal, cid: str) -> BuyResult:
        """A paper buy: the reserve and limits against the paper account, then the stake walked through the book."""
        t = self.config.trading
        stake = t.stake_usd
        recorded = self._paper_recorded(signal, cid)
        if recorded is not None:
            return recorded
        why = self._refusal("paper", signal.symbol, self.ledger.paper_free(t.paper_balance_usdt))
        if why is not None:
            return BuyResult(False, f"not bought (paper): {why}", "paper", cid)
        note, fills = "", []
        rules = await self._rules_or_none(signal.symbol)
        base, quote = (rules.base, rules.quote) if rules else (signal.symbol.removesuffix("USDT"), "USDT")
        now_ms = self.clock_ns() // 1_000_000
        try:
            fills = walk_buy((await order_book(self.rest, signal.symbol))[1], stake, t.paper_fee_rate, quote, cid, now_ms)
        except MexcError as exc:
            note = f" — no order book ({exc.message}), filled at the signal price"
        if not fills and signal.price > 0:
            fills = [Fill(f"{cid}-000", "BUY", signal.price, stake / signal.price, stake * t.paper_fee_rate, quote, now_ms)]
        qty, price = vwap(fills)
        if qty <= 0:
            return BuyResult(False, "not bought (paper): no price to fill at", "paper", cid)
        spent = sum(f.qty * f.price for f in fills)
        if spent < stake * 0.999:
            note += f" — the book held only ${spent:.2f} of asks: partial fill"
        order = OrderRecord(cid, signal.signal_id, signal.symbol, "paper", stake, "FILLED", price=price, qty=qty,
                            created_ns=self.clock_ns())  # fmt: skip
        self.ledger.record("paper", signal.symbol, base, quote, cid, fills)  # before the order: see _paper_recorded
        self.store.upsert_order(order)
        return BuyResult(True, f"paper buy: ${spent:.6g} of {signal.symbol} at {price:.10g} (dry-run, no real order){note}",
                         "paper", cid, order)  # fmt: skip

    def _paper_recorded(self, signal: Signal, cid: str) -> BuyResult | None:
        """A paper Buy whose fills are stored but whose order is not (the process died in between): the order from them.

        Why: the fills go first so that a kill never leaves a FILLED order without its position; the
        press after such a kill must finish that Buy, not walk the book a second time.
        """
        qty, price = vwap(self.ledger.positions.fills_of_order(cid))
        if qty <= 0:
            return None
        order = OrderRecord(cid, signal.signal_id, signal.symbol, "paper", self.config.trading.stake_usd, "FILLED", price=price,
                            qty=qty, created_ns=self.clock_ns())  # fmt: skip
        self.store.upsert_order(order)
        return BuyResult(True, f"paper buy: {qty:.10g} {signal.symbol} at {price:.10g} (recorded before a restart)", "paper", cid, order)

    async def _rules_or_none(self, symbol: str) -> SymbolRules | None:
        try:
            return await self.rules.get(symbol)
        except MexcError:
            return None

    # --- live -------------------------------------------------------------------------------------

    def _refuse(self, signal: Signal, cid: str, why: str) -> BuyResult:
        order = OrderRecord(cid, signal.signal_id, signal.symbol, "live", self.config.trading.stake_usd, "REFUSED",
                            error_msg=why, created_ns=self.clock_ns())  # fmt: skip
        self.store.upsert_order(order)
        log.info("buy refused", extra={"signal_id": signal.signal_id, "reason": why})
        return BuyResult(False, f"not bought: {why}", "live", cid, order)

    async def _gate(self, signal: Signal) -> str | None:
        """The reason not to buy, or None when every check passes."""
        t = self.config.trading
        age = (self.clock_ns() - signal.recv_ns) / 1e9
        if age > t.max_signal_age_s:
            return f"the signal is {age:.0f} s old (limit {t.max_signal_age_s:g} s)"
        listed, info = await self._tradable(signal.symbol)
        if info is None:
            return "MEXC does not know this pair"
        if not info.online:
            return f"this pair is not trading right now (status {info.status})"
        if not listed or not info.spot_trading_allowed:
            return "this pair can't be traded through the API"
        minimum = info.min_market_quote
        if t.stake_usd < minimum:
            return f"the stake ${t.stake_usd:g} is below the pair's minimum ${minimum:g}"
        price = await self._price(signal.symbol)
        if signal.price <= 0:
            return "the signal has no valid price to compare with"
        drift = price / signal.price - 1
        if drift > t.max_slippage:
            return f"the price ran {drift * 100:.1f}% past the signal (limit {t.max_slippage * 100:g}%)"
        if drift < -t.max_slippage:
            return f"the price fell {-drift * 100:.1f}% below the signal (limit {t.max_slippage * 100:g}%): the move may be over"
        return self._refusal("live", signal.symbol, await free_balance(self.rest, "USDT"))

    async def _live(self, signal: Signal, cid: str) -> BuyResult:
        why = await self._gate(signal)
        if why is not None:
            return self._refuse(signal, cid, why)
        stake = self.config.trading.stake_usd
        order = OrderRecord(cid, signal.signal_id, signal.symbol, "live", stake, "PENDING", created_ns=self.clock_ns())
        self.store.upsert_order(order)  # written before sending: a crash leaves a trace to reconcile
        return await self._send(signal, order, may_resend=True)

    async def _send(self, signal: Signal, order: OrderRecord, may_resend: bool) -> BuyResult:
        try:
            exchange_order_id = await place_market_buy(self.rest, self.rules, signal.symbol, order.quote_qty, order.client_order_id)
        except RuleError as exc:
            order.status, order.error_msg = "REFUSED", str(exc)
            self.store.upsert_order(order)
            return BuyResult(False, f"not bought: {exc}", "live", order.client_order_id, order)
        except MexcError as exc:
            if exc.outcome_unknown or exc.code == -2010:
                log.warning("order outcome unknown, querying", extra={"signal_id": signal.signal_id, "status": exc.status})
                return await self._reconcile(signal, order, may_resend=may_resend)
            order.status, order.error_code, order.error_msg = "REJECTED", exc.code, exc.message
            self.store.upsert_order(order)
            return BuyResult(False, f"not bought: {exc.message}", "live", order.client_order_id, order)
        order.status = "NEW"
        order.exchange_order_id = exchange_order_id
        self.store.upsert_order(order)
        try:  # the POST answer has no fill details; one query gives the real status, price and quantity
            await self._apply(order, await fetch_order(self.rest, signal.symbol, order.client_order_id))
        except MexcError as exc:
            log.warning("order placed but its status could not be read", extra={"error": exc.message})
        return self._report(order, "")

    async def _record_fills(self, order: OrderRecord) -> None:
        """The order's fills from myTrades into its position; without them, one fill from the order's totals (fee unknown)."""
        if not order.qty or not order.exchange_order_id or self.ledger.positions.fills_of_order(order.client_order_id):
            return
        rules = await self._rules_or_none(order.symbol)
        base, quote = (rules.base, rules.quote) if rules else (order.symbol.removesuffix("USDT"), "USDT")
        try:
            fills = await order_fills(self.rest, order.symbol, order.exchange_order_id, base, quote)
        except MexcError as exc:
            log.warning("fills could not be read; position recorded from the order's totals", extra={"error": exc.message})
            fills = []
        if not fills and order.price:
            fills = [Fill(f"{order.exchange_order_id}-total", "BUY", order.price, order.qty, 0.0, quote, self.clock_ns() // 1_000_000)]
        self.ledger.record("live", order.symbol, base, quote, order.client_order_id, fills)

    async def _apply(self, order: OrderRecord, data: Any) -> None:
        """Copy a queried order (venues/mexc/orders.py reads it) into our record, store it, and its fills into the position."""
        state = parse_order(data)
        order.status = state.status
        order.exchange_order_id = state.order_id or order.exchange_order_id
        qty, quote = state.executed_qty, state.executed_quote
        if qty and quote:
            order.qty, order.price = qty, quote / qty
        order.error_code = order.error_msg = None
        await self._record_fills(order)  # before the status: killed in between, the order is still asked about at start-up
        self.store.upsert_order(order)

    def _report(self, order: OrderRecord, how: str) -> BuyResult:
        fill = f": {order.qty:.10g} at {order.price:.10g}" if order.qty and order.price else ""
        ok = order.status in ("FILLED", "NEW", "PARTIALLY_FILLED")
        verb = "bought" if ok else "order"
        text = f"{verb} ${order.quote_qty:g} of {order.symbol}{fill} (order {order.exchange_order_id}, {order.status}){how}"
        return BuyResult(ok, text, "live", order.client_order_id, order)

    async def _reconcile(self, signal: Signal, order: OrderRecord, may_resend: bool) -> BuyResult:
        """Outcome unknown: ask MEXC for the order by client id before anything else."""
        try:
            data = await ask_order(self.rest, signal.symbol, order.client_order_id, backoff_s=_QUERY_BACKOFF_S)
        except MexcError:  # -2011: MEXC never got it, nothing was bought
            if may_resend:
                log.info("order not found after an unknown outcome; sending once more", extra={"signal_id": signal.signal_id})
                return await self._send(signal, order, may_resend=False)
            order.status, order.error_code, order.error_msg = "REJECTED", -2011, "MEXC never received the order"
            self.store.upsert_order(order)
            return BuyResult(False, "not bought: MEXC never received the order; press again to retry", "live",
                             order.client_order_id, order)  # fmt: skip
        if data is not None:
            await self._apply(order, data)
            return self._report(order, " — confirmed after an exchange error")
        order.status = "UNKNOWN"
        self.store.upsert_order(order)
        return BuyResult(False, "outcome unknown: MEXC did not confirm the order; press Buy again later to re-check "
                         "(it will not buy twice)", "live", order.client_order_id, order)  # fmt: skip

    async def reconcile_buy(self, signal: Signal, order: OrderRecord) -> BuyResult:
        """A live Buy left PENDING/UNKNOWN (e.g. by a restart): ask MEXC by its client id; never resends (trading/audit.py)."""
        async with self.funds.hold():
            try:
                return self._with_fee(await self._reconcile(signal, order, may_resend=False))
            except MexcError as exc:
                return BuyResult(False, f"still unknown: {exc.message}", "live", order.client_order_id, order)

    async def close(self) -> None:
        await self.rest.close()
