"""The emulator's REST side: MEXC spot V3 routes, market data, per-endpoint weights, bans and faults.

Why weights and bans per client and endpoint: the scanner's REST scheduler must keep under
MEXC's limits, and only an emulator that answers 429 with Retry-After (then 418 with a growing
ban to a client that insists) shows whether it does. Every error is a {code, msg} body with
MEXC's code. The signed endpoints' checks, balances and orders live in sim/rest_account.py.
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sim.klines import KLINE_INTERVALS
from sim.market import Market
from sim.rest_account import DEFAULT_API_KEY, DEFAULT_API_SECRET, Account, ApiError

_WEIGHTS = {
    "/api/v3/ping": 1,
    "/api/v3/time": 1,
    "/api/v3/defaultSymbols": 1,
    "/api/v3/exchangeInfo": 10,
    "/api/v3/depth": 1,
    "/api/v3/klines": 1,
    "/api/v3/ticker/24hr": 1,
    "/api/v3/ticker/price": 1,
    "/api/v3/ticker/bookTicker": 1,
    "POST /api/v3/order": 1,
    "GET /api/v3/order": 2,
    "/api/v3/account": 10,
    "/api/v3/myTrades": 10,
    "/api/v3/openOrders": 3,
    "DELETE /api/v3/order": 1,
}


def _err(status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status, headers=headers)


@dataclass
class _Fault:
    kind: str
    endpoint: str
    status: int = 500
    count: int = 1
    until: float = 0.0
    retry_after: int = 1
    delay_s: float = 0.0

    def live(self, now: float) -> bool:
        return self.count > 0 or now < self.until


@dataclass
class _Client:
    spent: dict[str, deque[tuple[float, int]]] = field(default_factory=dict)
    throttled_until: float = 0.0
    calls_while_throttled: int = 0
    banned_until: float = 0.0
    bans: int = 0


class RestEmulator:
    """Routes under /api/v3 backed by the market; see the module docstring."""

    def __init__(self, market: Market, *, api_key: str = DEFAULT_API_KEY, api_secret: str = DEFAULT_API_SECRET,
                 weight_budget: int = 500, window_s: float = 10.0, usdt_balance: float = 1000.0,
                 clock_ms: Callable[[], int] | None = None, ban_base_s: float = 120.0) -> None:  # fmt: skip
        self.market = market
        self.weight_budget = weight_budget
        self.window_s = window_s
        self.ban_base_s = ban_base_s
        self.clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.account = Account(market, api_key, api_secret, usdt_balance, self.clock_ms)
        self._clients: dict[str, _Client] = {}
        self._faults: list[_Fault] = []
        self.requests: dict[str, int] = {}
        self.fired: dict[str, int] = {}

    # --- wiring --------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/api/v3/ping", self._wrap("/api/v3/ping", self.ping))
        r.add_get("/api/v3/time", self._wrap("/api/v3/time", self.time))
        r.add_get("/api/v3/defaultSymbols", self._wrap("/api/v3/defaultSymbols", self.default_symbols))
        r.add_get("/api/v3/exchangeInfo", self._wrap("/api/v3/exchangeInfo", self.exchange_info))
        r.add_get("/api/v3/depth", self._wrap("/api/v3/depth", self.depth))
        r.add_get("/api/v3/klines", self._wrap("/api/v3/klines", self.klines))
        r.add_get("/api/v3/ticker/24hr", self._wrap("/api/v3/ticker/24hr", self.ticker_24h))
        r.add_get("/api/v3/ticker/price", self._wrap("/api/v3/ticker/price", self.ticker_price))
        r.add_get("/api/v3/ticker/bookTicker", self._wrap("/api/v3/ticker/bookTicker", self.book_ticker))
        r.add_post("/api/v3/order", self._wrap("POST /api/v3/order", self.place_order))
        r.add_get("/api/v3/order", self._wrap("GET /api/v3/order", self.query_order))
        r.add_get("/api/v3/account", self._wrap("/api/v3/account", self.account_info))
        r.add_delete("/api/v3/order", self._wrap("DELETE /api/v3/order", self.cancel_order))
        r.add_get("/api/v3/openOrders", self._wrap("/api/v3/openOrders", self.open_orders))
        r.add_get("/api/v3/myTrades", self._wrap("/api/v3/myTrades", self.my_trades))

    def inject(self, kind: str, **params: Any) -> None:
        """REST faults: status, slow, garbage, order_5xx_after_fill (see sim/README.md)."""
        if kind not in ("status", "slow", "garbage", "order_5xx_after_fill"):
            raise ValueError(f"unknown REST fault {kind!r}")
        duration = float(params.get("duration_s", 0.0))
        fault = _Fault(
            kind=kind,
            endpoint=str(params.get("endpoint", "POST /api/v3/order" if kind == "order_5xx_after_fill" else "*")),
            status=int(params.get("status", 500)),
            count=int(params.get("count", 0 if duration else 1)),
            until=time.monotonic() + duration if duration else 0.0,
            retry_after=int(params.get("retry_after", 1)),
            delay_s=float(params.get("delay_s", 0.0)),
        )
        self._faults.append(fault)

    def state(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "faults_fired": dict(self.fired),
            "orders": list(self.account.orders),
            "balances": {a: {"free": f, "locked": lk} for a, (f, lk) in self.account.balances.items()},
            "bans": {ip: c.bans for ip, c in self._clients.items() if c.bans},
        }

    def _take_fault(self, endpoint: str, kinds: tuple[str, ...]) -> _Fault | None:
        now = time.monotonic()
        for fault in self._faults:
            if fault.kind in kinds and fault.live(now) and fnmatch.fnmatch(endpoint, fault.endpoint):
                if fault.count > 0:
                    fault.count -= 1
                self.fired[fault.kind] = self.fired.get(fault.kind, 0) + 1
                return fault
        self._faults = [f for f in self._faults if f.live(now)]
        return None

    def _wrap(self, endpoint: str, handler: Callable[[web.Request], Any]) -> Callable[[web.Request], Any]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            self.requests[endpoint] = self.requests.get(endpoint, 0) + 1
            limited = self._rate_limit(request, endpoint)
            if limited is not None:
                return limited
            slow = self._take_fault(endpoint, ("slow",))
            if slow is not None:
                await asyncio.sleep(slow.delay_s)
            fault = self._take_fault(endpoint, ("status", "garbage"))
            if fault is not None and fault.kind == "garbage":
                return web.Response(text="<html>upstream hiccup</html>", status=200, content_type="text/html")
            if fault is not None:
                headers = {"Retry-After": str(fault.retry_after)} if fault.status in (429, 418) else None
                return _err(fault.status, fault.status, "injected fault", headers)
            try:
                return await handler(request)
            except ApiError as exc:
                return _err(exc.status, exc.code, exc.msg)

        return wrapped

    def _rate_limit(self, request: web.Request, endpoint: str) -> web.Response | None:
        ip = request.remote or "?"
        client = self._clients.setdefault(ip, _Client())
        now = time.monotonic()
        if now < client.banned_until:
            return _err(418, 418, "IP banned", {"Retry-After": str(max(1, int(client.banned_until - now + 0.999)))})
        if now < client.throttled_until:
            client.calls_while_throttled += 1
            if client.calls_while_throttled > 5:
                client.bans += 1
                duration = self.ban_base_s * (2 ** (client.bans - 1))
                client.banned_until = now + duration
                client.calls_while_throttled = 0
                return _err(418, 418, "IP banned", {"Retry-After": str(max(1, int(duration)))})
            return _err(429, 429, "Too Many Requests", {"Retry-After": str(max(1, int(client.throttled_until - now + 0.999)))})
        weight = _WEIGHTS.get(endpoint, 1)
        if endpoint == "/api/v3/ticker/24hr" and "symbol" not in request.query:
            weight = 40
        window = client.spent.setdefault(endpoint, deque())
        while window and window[0][0] <= now - self.window_s:
            window.popleft()
        used = sum(w for _, w in window)
        if used + weight > self.weight_budget:
            client.throttled_until = window[0][0] + self.window_s if window else now + self.window_s
            client.calls_while_throttled = 0
            return _err(429, 429, "Too Many Requests", {"Retry-After": str(max(1, int(client.throttled_until - now + 0.999)))})
        window.append((now, weight))
        return None

    # --- market data ---------------------------------------------------------------------------

    def _symbol(self, request: web.Request) -> str:
        symbol = request.query.get("symbol")
        if not symbol:
            raise ApiError(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        if self.market.spec(symbol) is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        return symbol

    @staticmethod
    def _int(request: web.Request, name: str, default: int | None, low: int, high: int) -> int | None:
        raw = request.query.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'.") from None
        if not low <= value <= high:
            raise ApiError(400, -1100, f"Parameter '{name}' out of range.")
        return value

    async def ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": self.clock_ms()})

    async def default_symbols(self, request: web.Request) -> web.Response:
        data = [s.symbol for s in self.market.symbols if s.api_tradable and s.status == "1"]
        return web.json_response({"code": 200, "data": data, "msg": None})

    def _symbol_info(self, spec: Any) -> dict[str, Any]:
        return {
            "symbol": spec.symbol,
            "status": spec.status,
            "baseAsset": spec.base,
            "baseAssetPrecision": spec.qty_decimals,
            "quoteAsset": spec.quote,
            "quotePrecision": spec.price_decimals,
            "quoteAssetPrecision": spec.price_decimals,
            "baseCommissionPrecision": spec.qty_decimals,
            "quoteCommissionPrecision": spec.price_decimals,
            "orderTypes": ["LIMIT", "MARKET", "LIMIT_MAKER"],
            "isSpotTradingAllowed": spec.api_tradable,
            "isMarginTradingAllowed": False,
            "quoteAmountPrecision": "1",
            "baseSizePrecision": f"{10.0 ** -spec.qty_decimals:.{spec.qty_decimals}f}",
            "permissions": ["SPOT"],
            "filters": [],
            "maxQuoteAmount": "2000000",
            "makerCommission": "0",
            "takerCommission": "0.0005",
            "quoteAmountPrecisionMarket": f"{spec.min_market_quote:g}",
            "maxQuoteAmountMarket": "100000",
            "fullName": spec.base.title(),
            "tradeSideType": "1",
        }

    async def exchange_info(self, request: web.Request) -> web.Response:
        wanted: set[str] | None = None
        if "symbol" in request.query:
            wanted = {self._symbol(request)}
        elif "symbols" in request.query:
            wanted = {s for s in request.query["symbols"].split(",") if s}
            if any(self.market.spec(s) is None for s in wanted):
                raise ApiError(400, -1121, "Invalid symbol.")
        now = self.market.now_ms()  # a pair listed after now (a scenario's future listing) is not shown yet
        symbols = [self._symbol_info(s) for s in self.market.symbols if (wanted is None or s.symbol in wanted) and s.listing_ms <= now]
        return web.json_response(
            {"timezone": "CST", "serverTime": self.clock_ms(), "rateLimits": [], "exchangeFilters": [], "symbols": symbols}
        )

    async def depth(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        limit = self._int(request, "limit", 100, 1, 5000)
        assert limit is not None
        last_id, bids, asks = self.market.depth_snapshot(symbol, limit)
        fp, fq = self.market.fmt_price, self.market.fmt_qty
        return web.json_response(
            {
                "lastUpdateId": last_id,
                "bids": [[fp(symbol, p), fq(symbol, q)] for p, q in bids],
                "asks": [[fp(symbol, p), fq(symbol, q)] for p, q in asks],
                "timestamp": self.market.now_ms(),
            }
        )

    async def klines(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        interval = request.query.get("interval", "")
        if interval not in KLINE_INTERVALS:
            raise ApiError(400, -1121, "Invalid interval.")
        limit = self._int(request, "limit", 500, 1, 1000)
        start = self._int(request, "startTime", None, 0, 2**62)
        end = self._int(request, "endTime", None, 0, 2**62)
        assert limit is not None
        return web.json_response(self.market.klines(symbol, interval, start, end, limit))

    async def ticker_24h(self, request: web.Request) -> web.Response:
        if "symbol" in request.query:
            return web.json_response(self.market.ticker_24h(self._symbol(request)))
        return web.json_response([self.market.ticker_24h(s.symbol) for s in self.market.symbols if s.status == "1"])

    async def ticker_price(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        return web.json_response({"symbol": symbol, "price": self.market.fmt_price(symbol, self.market.last_price(symbol))})

    async def book_ticker(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        bid, bq, ask, aq = self.market.best_bid_ask(symbol)
        fp, fq = self.market.fmt_price, self.market.fmt_qty
        return web.json_response(
            {"symbol": symbol, "bidPrice": fp(symbol, bid), "bidQty": fq(symbol, bq), "askPrice": fp(symbol, ask), "askQty": fq(symbol, aq)}
        )

    # --- signed endpoints (sim/rest_account.py) -------------------------------------------------

    async def place_order(self, request: web.Request) -> web.Response:
        order = self.account.place_order(await self.account.signed_params(request))
        fault = self._take_fault("POST /api/v3/order", ("order_5xx_after_fill",))
        if fault is not None:
            return _err(fault.status if fault.status >= 500 else 503, fault.status, "Internal error; outcome unknown")
        return web.json_response({k: order[k] for k in ("symbol", "orderId", "orderListId", "price", "origQty", "type", "side", "transactTime")})

    async def query_order(self, request: web.Request) -> web.Response:
        return web.json_response(self.account.find_order(await self.account.signed_params(request)))

    async def cancel_order(self, request: web.Request) -> web.Response:
        return web.json_response(self.account.cancel_order(await self.account.signed_params(request)))

    async def open_orders(self, request: web.Request) -> web.Response:
        return web.json_response(self.account.open_orders(await self.account.signed_params(request)))

    async def my_trades(self, request: web.Request) -> web.Response:
        return web.json_response(self.account.my_trades(await self.account.signed_params(request)))

    async def account_info(self, request: web.Request) -> web.Response:
        await self.account.signed_params(request)
        return web.json_response(self.account.info())
