"""The Buy button: paper orders by default, signed MEXC market buys when trading.live is on.

Safety gate before a live order (FIELD-NOTES): the pair must be API-tradable, the stake at least
the pair's minimum market amount, the signal fresh, the price not run away from the signal price,
and the free USDT above the reserve. The client order id is derived from the signal id, and the
store is checked first, so a double press or a retry never buys twice. A 5xx means the outcome is
unknown: the order is looked up by its client id before anything else.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bot.storage import OrderRecord, Store
from common.config import Config
from common.signal import Signal

log = logging.getLogger("scanner.trading")

_PLAIN = {
    10007: "this pair can't be traded through the API",
    30019: "market orders through the API are disabled for this pair",
    30018: "market orders are disabled for this pair",
    10101: "insufficient balance",
    30002: "the stake is below the pair's minimum order",
    700002: "the API signature was refused: check MEXC_KEY / MEXC_SECRET",
    10072: "the API key is not valid",
    700003: "the server clock and ours disagree (timestamp outside recvWindow)",
    30016: "trading is disabled for this pair",
    30000: "trading is suspended for this pair",
}


class ExchangeError(Exception):
    """A MEXC REST error in plain words; status 0 means no answer at all."""

    def __init__(self, status: int, code: int | None, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after

    @property
    def unknown_outcome(self) -> bool:
        return self.status == 0 or self.status >= 500


class MexcRest:
    """Minimal signed MEXC spot client (HMAC-SHA256 over the query string, mexc-api.md §4.1)."""

    def __init__(self, base_url: str, api_key: str, api_secret: str, recv_window_ms: int = 5000, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._secret = api_secret.encode()
        self.recv_window_ms = recv_window_ms
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._paused_until = 0.0

    async def request(self, method: str, path: str, params: dict[str, Any] | None = None, signed: bool = False) -> Any:
        wait = self._paused_until - time.monotonic()
        if wait > 0:
            raise ExchangeError(429, None, f"rate limited by MEXC, wait {wait:.0f} s", wait)
        params = dict(params or {})
        headers = {"Content-Type": "application/json"}
        query = urlencode(params)
        if signed:
            params["recvWindow"] = self.recv_window_ms
            params["timestamp"] = int(time.time() * 1000)
            query = urlencode(params)
            query += "&signature=" + hmac.new(self._secret, query.encode(), hashlib.sha256).hexdigest()
            headers["X-MEXC-APIKEY"] = self._key
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        try:
            async with self._session.request(method, url, headers=headers) as resp:
                status, body, retry = resp.status, await resp.read(), resp.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ExchangeError(0, None, f"no answer from MEXC ({type(exc).__name__})") from None
        if status in (429, 418):
            seconds = float(retry) if retry and retry.replace(".", "", 1).isdigit() else 60.0
            self._paused_until = time.monotonic() + seconds
            raise ExchangeError(status, None, f"rate limited by MEXC, wait {seconds:.0f} s", seconds)
        try:
            data = json.loads(body) if body else None
        except ValueError:
            raise ExchangeError(status if status >= 500 else 502, None, "MEXC answered something that is not JSON") from None
        if status >= 400:
            code = data.get("code") if isinstance(data, dict) else None
            msg = data.get("msg") if isinstance(data, dict) else None
            plain = _PLAIN.get(code, msg or f"HTTP {status}") if isinstance(code, int) else (msg or f"HTTP {status}")
            raise ExchangeError(status, code if isinstance(code, int) else None, str(plain))
        return data

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


@dataclass
class BuyResult:
    ok: bool
    message: str
    mode: str
    client_order_id: str
    order: OrderRecord | None = None


def client_order_id(signal_id: str) -> str:
    """Deterministic, ≤ 32 chars of [A-Za-z0-9_-]: the same signal always maps to the same order."""
    return "scn_" + hashlib.sha256(signal_id.encode()).hexdigest()[:24]


class Trader:
    """Executes Buy presses; one lock per signal so concurrent presses cannot race."""

    def __init__(self, config: Config, store: Store, rest: MexcRest | None = None, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.config = config
        self.store = store
        self.rest = rest or MexcRest(config.mexc.rest_url, config.mexc.api_key, config.mexc.api_secret, config.trading.recv_window_ms)
        self.clock_ns = clock_ns
        self._locks: dict[str, asyncio.Lock] = {}
        self._tradable: tuple[float, set[str], dict[str, dict[str, Any]]] | None = None

    @property
    def live(self) -> bool:
        return self.config.trading.live and bool(self.config.mexc.api_key and self.config.mexc.api_secret)

    async def buy(self, signal: Signal, user_id: int) -> BuyResult:
        cid = client_order_id(signal.signal_id)
        lock = self._locks.setdefault(signal.signal_id, asyncio.Lock())
        async with lock:
            existing = self.store.get_order(cid)
            if existing is not None and existing.status not in ("REJECTED",):
                return BuyResult(existing.status == "FILLED", f"already ordered for this signal ({existing.mode}, {existing.status})", existing.mode, cid, existing)
            if not self.live:
                return await self._paper(signal, cid)
            return await self._live(signal, cid)

    async def _price(self, symbol: str) -> float:
        data = await self.rest.request("GET", "/api/v3/ticker/price", {"symbol": symbol})
        try:
            return float(data["price"])
        except (KeyError, TypeError, ValueError):
            raise ExchangeError(502, None, "MEXC sent a price we cannot read") from None

    async def _paper(self, signal: Signal, cid: str) -> BuyResult:
        stake = self.config.trading.stake_usd
        try:
            price = await self._price(signal.symbol)
        except ExchangeError as exc:
            price = signal.price
            log.warning("paper buy without a fresh price", extra={"symbol": signal.symbol, "error": exc.message})
        order = OrderRecord(cid, signal.signal_id, signal.symbol, "paper", stake, "FILLED", price=price, qty=stake / price if price > 0 else None,
                            created_ns=self.clock_ns())  # fmt: skip
        self.store.upsert_order(order)
        return BuyResult(True, f"paper buy: ${stake:g} of {signal.symbol} at {price:g} (dry-run, no real order)", "paper", cid, order)

    async def _universe(self) -> tuple[set[str], dict[str, dict[str, Any]]]:
        now = time.monotonic()
        if self._tradable is None or now - self._tradable[0] > 600:
            default = await self.rest.request("GET", "/api/v3/defaultSymbols")
            info = await self.rest.request("GET", "/api/v3/exchangeInfo")
            symbols = {s["symbol"]: s for s in info.get("symbols", []) if isinstance(s, dict) and "symbol" in s}
            self._tradable = (now, set(default.get("data") or []), symbols)
        return self._tradable[1], self._tradable[2]

    def _refuse(self, signal: Signal, cid: str, why: str) -> BuyResult:
        self.store.upsert_order(OrderRecord(cid, signal.signal_id, signal.symbol, "live", self.config.trading.stake_usd, "REJECTED",
                                            error_msg=why, created_ns=self.clock_ns()))  # fmt: skip
        return BuyResult(False, f"not bought: {why}", "live", cid)

    async def _live(self, signal: Signal, cid: str) -> BuyResult:
        t = self.config.trading
        try:
            age = (self.clock_ns() - signal.recv_ns) / 1e9
            if age > t.max_signal_age_s:
                return self._refuse(signal, cid, f"the signal is {age:.0f} s old (limit {t.max_signal_age_s:g} s)")
            tradable, info = await self._universe()
            spec = info.get(signal.symbol)
            if signal.symbol not in tradable or not spec or not spec.get("isSpotTradingAllowed", False):
                return self._refuse(signal, cid, "this pair can't be traded through the API")
            minimum = float(spec.get("quoteAmountPrecisionMarket") or 0)
            if t.stake_usd < minimum:
                return self._refuse(signal, cid, f"the stake ${t.stake_usd:g} is below the pair's minimum ${minimum:g}")
            price = await self._price(signal.symbol)
            drift = price / signal.price - 1 if signal.price > 0 else float("inf")
            if drift > t.max_slippage:
                return self._refuse(signal, cid, f"the price ran {drift * 100:.1f}% past the signal (limit {t.max_slippage * 100:g}%)")
            account = await self.rest.request("GET", "/api/v3/account", signed=True)
            free = next((float(b["free"]) for b in account.get("balances", []) if b.get("asset") == "USDT"), 0.0)
            if free - t.stake_usd < t.reserve_usdt:
                return self._refuse(signal, cid, f"free USDT {free:.2f} minus the stake would fall below the reserve {t.reserve_usdt:g}")
        except ExchangeError as exc:
            return BuyResult(False, f"not bought: {exc.message}", "live", cid)
        pending = OrderRecord(cid, signal.signal_id, signal.symbol, "live", t.stake_usd, "PENDING", created_ns=self.clock_ns())
        self.store.upsert_order(pending)  # written before sending: a crash leaves a trace to reconcile
        params = {"symbol": signal.symbol, "side": "BUY", "type": "MARKET", "quoteOrderQty": f"{t.stake_usd:g}", "newClientOrderId": cid}
        try:
            data = await self.rest.request("POST", "/api/v3/order", params, signed=True)
        except ExchangeError as exc:
            if exc.unknown_outcome:
                return await self._reconcile(signal, cid, pending)
            pending.status, pending.error_code, pending.error_msg = "REJECTED", exc.code, exc.message
            self.store.upsert_order(pending)
            return BuyResult(False, f"not bought: {exc.message}", "live", cid, pending)
        pending.status = "FILLED"
        pending.exchange_order_id = str(data.get("orderId")) if isinstance(data, dict) else None
        self.store.upsert_order(pending)
        return BuyResult(True, f"bought ${t.stake_usd:g} of {signal.symbol} (order {pending.exchange_order_id})", "live", cid, pending)

    async def _reconcile(self, signal: Signal, cid: str, pending: OrderRecord) -> BuyResult:
        """After a 5xx or no answer: ask MEXC whether the order exists before doing anything else."""
        for attempt in range(3):
            try:
                data = await self.rest.request("GET", "/api/v3/order", {"symbol": signal.symbol, "origClientOrderId": cid}, signed=True)
            except ExchangeError as exc:
                if exc.code == -2011:  # MEXC never got it: nothing was bought
                    pending.status, pending.error_msg = "REJECTED", "the exchange did not receive the order"
                    self.store.upsert_order(pending)
                    return BuyResult(False, "not bought: MEXC did not receive the order; press again to retry", "live", cid, pending)
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            pending.status = str(data.get("status", "UNKNOWN"))
            pending.exchange_order_id = str(data.get("orderId"))
            self.store.upsert_order(pending)
            return BuyResult(pending.status == "FILLED", f"order {pending.exchange_order_id} is {pending.status} (confirmed after an exchange error)",
                             "live", cid, pending)  # fmt: skip
        pending.status = "UNKNOWN"
        self.store.upsert_order(pending)
        return BuyResult(False, "outcome unknown: MEXC did not answer; check the order on MEXC before pressing again", "live", cid, pending)

    async def close(self) -> None:
        await self.rest.close()
