"""The Buy button: paper orders by default, signed MEXC market buys when trading.live is on.

The MEXC calls themselves (paths, parameters, answers) live in venues/mexc/orders.py; this module
decides whether and when to call them and keeps every attempt in the store.

Safety gate before a live order (FIELD-NOTES): the signal must be fresh, the pair API-tradable
(defaultSymbols + isSpotTradingAllowed), the stake at least the pair's minimum market amount, the
fresh price not run away from the signal price, and free USDT minus the stake above the reserve.

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
from venues.mexc.client import MexcError, MexcRest
from venues.mexc.orders import api_symbols, fetch_order, free_balance, market_buy_price, parse_order, place_market_buy
from venues.mexc.rules import RuleError, RulesCache, SymbolRules

log = logging.getLogger("scanner.trading")

UNIVERSE_TTL_S = 600.0  # tradability changes rarely; a stale "yes" is caught by MEXC's 10007 anyway
_QUERY_BACKOFF_S = (0.2, 0.5, 1.0)
# Statuses after which a new press may try again: nothing was bought.
_RETRYABLE = ("REFUSED", "REJECTED")
_IN_DOUBT = ("PENDING", "UNKNOWN")

__all__ = ["BuyResult", "Trader", "client_order_id"]


@dataclass
class BuyResult:
    """What a Buy press did; message is the sentence shown to the user."""

    ok: bool
    message: str
    mode: str  # paper | live
    client_order_id: str
    order: OrderRecord | None = None


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

    @property
    def live(self) -> bool:
        return self.config.trading.live and bool(self.config.mexc.api_key and self.config.mexc.api_secret)

    async def buy(self, signal: Signal, user_id: int) -> BuyResult:
        """Buy trading.stake_usd of the signal's pair (paper or live); never raises, never buys twice."""
        cid = client_order_id(signal.signal_id)
        lock = self._locks.get(signal.signal_id)
        if lock is None:
            lock = self._locks[signal.signal_id] = asyncio.Lock()
        async with lock:
            try:
                return await self._buy_locked(signal, cid, user_id)
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
        stake = self.config.trading.stake_usd
        note = ""
        try:
            price = await self._price(signal.symbol)
        except MexcError as exc:
            price, note = signal.price, f" — no fresh price ({exc.message}), used the signal price"
        order = OrderRecord(cid, signal.signal_id, signal.symbol, "paper", stake, "FILLED", price=price,
                            qty=stake / price if price > 0 else None, created_ns=self.clock_ns())  # fmt: skip
        self.store.upsert_order(order)
        return BuyResult(True, f"paper buy: ${stake:g} of {signal.symbol} at {price:.10g} (dry-run, no real order){note}",
                         "paper", cid, order)  # fmt: skip

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
        free = await free_balance(self.rest, "USDT")
        if free < t.stake_usd:
            return f"insufficient balance: free USDT {free:.2f} is less than the stake ${t.stake_usd:g}"
        if free - t.stake_usd < t.reserve_usdt:
            return f"free USDT {free:.2f} minus the stake would fall below the reserve {t.reserve_usdt:g}"
        return None

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
            self._apply(order, await fetch_order(self.rest, signal.symbol, order.client_order_id))
        except MexcError as exc:
            log.warning("order placed but its status could not be read", extra={"error": exc.message})
        return self._report(order, "")

    def _apply(self, order: OrderRecord, data: Any) -> None:
        """Copy a queried order (venues/mexc/orders.py reads it) into our record and store it."""
        state = parse_order(data)
        order.status = state.status
        order.exchange_order_id = state.order_id or order.exchange_order_id
        qty, quote = state.executed_qty, state.executed_quote
        if qty and quote:
            order.qty, order.price = qty, quote / qty
        order.error_code = order.error_msg = None
        self.store.upsert_order(order)

    def _report(self, order: OrderRecord, how: str) -> BuyResult:
        fill = f": {order.qty:.10g} at {order.price:.10g}" if order.qty and order.price else ""
        ok = order.status in ("FILLED", "NEW", "PARTIALLY_FILLED")
        verb = "bought" if ok else "order"
        text = f"{verb} ${order.quote_qty:g} of {order.symbol}{fill} (order {order.exchange_order_id}, {order.status}){how}"
        return BuyResult(ok, text, "live", order.client_order_id, order)

    async def _reconcile(self, signal: Signal, order: OrderRecord, may_resend: bool) -> BuyResult:
        """Outcome unknown: ask MEXC for the order by client id before anything else."""
        for delay in (*_QUERY_BACKOFF_S, None):
            try:
                data = await fetch_order(self.rest, signal.symbol, order.client_order_id)
            except MexcError as exc:
                if exc.code == -2011:  # MEXC never got it: nothing was bought
                    if may_resend:
                        log.info("order not found after an unknown outcome; sending once more", extra={"signal_id": signal.signal_id})
                        return await self._send(signal, order, may_resend=False)
                    order.status, order.error_code, order.error_msg = "REJECTED", -2011, "MEXC never received the order"
                    self.store.upsert_order(order)
                    return BuyResult(False, "not bought: MEXC never received the order; press again to retry", "live",
                                     order.client_order_id, order)  # fmt: skip
                if exc.rate_limited or delay is None:
                    break
                await asyncio.sleep(delay)
                continue
            self._apply(order, data)
            return self._report(order, " — confirmed after an exchange error")
        order.status = "UNKNOWN"
        self.store.upsert_order(order)
        return BuyResult(False, "outcome unknown: MEXC did not confirm the order; press Buy again later to re-check "
                         "(it will not buy twice)", "live", order.client_order_id, order)  # fmt: skip

    async def close(self) -> None:
        await self.rest.close()
