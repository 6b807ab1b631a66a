"""The emulator's REST side: MEXC spot V3 market data, signed orders, weights and bans.

Why exact signing and error bodies: the trading client must work against real MEXC, so the
emulator checks HMAC-SHA256 over queryString + body (no '&' between), timestamp and recvWindow
the way mexc-api.md §4.1 describes, and answers {code, msg} bodies with MEXC's codes.

Choices where MEXC is UNCONFIRMED: a second order with an already used newClientOrderId is
refused with HTTP 400 {"code": -2010, "msg": "Duplicate order sent."} and does not execute; signature/key errors use HTTP 400 (key missing) and 401 (key unknown / bad signature).
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import hmac
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from sim.market import KLINE_INTERVALS, Market

DEFAULT_API_KEY = "mx0-test-key"
DEFAULT_API_SECRET = "mx0-test-secret-0123456789abcdef"

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
}


def sign(secret: str, total_params: str) -> str:
    """MEXC signature: lowercase hex HMAC-SHA256 of queryString + body."""
    return hmac.new(secret.encode(), total_params.encode(), hashlib.sha256).hexdigest()


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
        self.api_key = api_key
        self.api_secret = api_secret
        self.weight_budget = weight_budget
        self.window_s = window_s
        self.ban_base_s = ban_base_s
        self.clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.balances: dict[str, list[float]] = {"USDT": [usdt_balance, 0.0]}
        self.orders: list[dict[str, Any]] = []
        self._by_client_id: dict[str, dict[str, Any]] = {}
        self._clients: dict[str, _Client] = {}
        self._faults: list[_Fault] = []
        self.requests: dict[str, int] = {}
        self.fired: dict[str, int] = {}
        self._order_seq = 0

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
        r.add_get("/api/v3/account", self._wrap("/api/v3/account", self.account))

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
            "orders": list(self.orders),
            "balances": {a: {"free": f, "locked": lk} for a, (f, lk) in self.balances.items()},
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
            except _ApiError as exc:
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
            raise _ApiError(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        if self.market.spec(symbol) is None:
            raise _ApiError(400, -1121, "Invalid symbol.")
        return symbol

    @staticmethod
    def _int(request: web.Request, name: str, default: int | None, low: int, high: int) -> int | None:
        raw = request.query.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _ApiError(400, -1100, f"Illegal characters found in parameter '{name}'.") from None
        if not low <= value <= high:
            raise _ApiError(400, -1100, f"Parameter '{name}' out of range.")
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
                raise _ApiError(400, -1121, "Invalid symbol.")
        symbols = [self._symbol_info(s) for s in self.market.symbols if wanted is None or s.symbol in wanted]
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
            raise _ApiError(400, -1121, "Invalid interval.")
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

    # --- signed endpoints ------------------------------------------------------------------------

    async def _signed_params(self, request: web.Request) -> dict[str, str]:
        key = request.headers.get("X-MEXC-APIKEY")
        if not key:
            raise _ApiError(400, 400, "api key required")
        if key != self.api_key:
            raise _ApiError(401, 10072, "Api key info invalid")
        query = request.rel_url.raw_query_string
        body = (await request.read()).decode("utf-8", "replace")
        query_pairs = parse_qsl(query, keep_blank_values=True)
        body_pairs = parse_qsl(body, keep_blank_values=True) if body and not body.lstrip().startswith("{") else []
        params = dict(body_pairs)
        params.update(dict(query_pairs))  # the query string wins over the body
        signature = params.get("signature")
        if not signature:
            raise _ApiError(400, 700002, "Signature for this request is not valid.")
        # The signature parameter is not part of what was signed; it comes last by convention.
        unsigned_query = _strip_signature(query) if "signature=" in query else query
        unsigned_body = _strip_signature(body) if "signature=" in body else body
        expected = sign(self.api_secret, unsigned_query + unsigned_body)
        if not hmac.compare_digest(expected, signature.lower()):
            raise _ApiError(401, 700002, "Signature for this request is not valid.")
        try:
            timestamp = int(params.get("timestamp", ""))
        except ValueError:
            raise _ApiError(400, 700003, "Timestamp for this request is outside of the recvWindow.") from None
        try:
            recv_window = int(params.get("recvWindow", "5000"))
        except ValueError:
            raise _ApiError(400, 33333, "Parameter error: recvWindow") from None
        if recv_window >= 60000:
            raise _ApiError(400, 700005, "recvWindow must less than 60000")
        server = int(time.time() * 1000)
        if not (timestamp < server + 1000 and server - timestamp <= recv_window):
            raise _ApiError(400, 700003, "Timestamp for this request is outside of the recvWindow.")
        return params

    async def place_order(self, request: web.Request) -> web.Response:
        params = await self._signed_params(request)
        symbol = params.get("symbol", "")
        spec = self.market.spec(symbol)
        if spec is None or spec.status != "1":
            raise _ApiError(400, 30014, "Invalid symbol.")
        if not spec.api_tradable:
            raise _ApiError(400, 10007, "symbol not support api")
        side, kind = params.get("side", "").upper(), params.get("type", "").upper()
        if side not in ("BUY", "SELL") or kind not in ("MARKET", "LIMIT"):
            raise _ApiError(400, 33333, "Parameter error")
        if kind == "MARKET" and not spec.market_order_allowed:
            raise _ApiError(400, 30019, "api market order is disabled")
        client_id = params.get("newClientOrderId") or ""
        if client_id and client_id in self._by_client_id:
            raise _ApiError(400, -2010, "Duplicate order sent.")
        bid, _, ask, _ = self.market.best_bid_ask(symbol)
        price = ask if side == "BUY" else bid
        try:
            if kind == "MARKET" and side == "BUY":
                quote_qty = float(params["quoteOrderQty"])
                qty = quote_qty / price
            else:
                qty = float(params["quantity"])
                if kind == "LIMIT":
                    price = float(params["price"])
                quote_qty = qty * price
        except (KeyError, ValueError):
            raise _ApiError(400, 44444, "Parameter null or invalid: quantity/quoteOrderQty") from None
        if quote_qty < spec.min_market_quote:
            raise _ApiError(400, 30002, "Minimum transaction volume cannot be less than: " + f"{spec.min_market_quote:g}USDT")
        usdt = self.balances.setdefault("USDT", [0.0, 0.0])
        if side == "BUY" and usdt[0] < quote_qty:
            raise _ApiError(400, 10101, "Insufficient balance")
        if side == "BUY":
            usdt[0] -= quote_qty
            self.balances.setdefault(spec.base, [0.0, 0.0])[0] += qty
        self._order_seq += 1
        order = {
            "symbol": symbol,
            "orderId": f"C02__{self._order_seq:012d}",
            "orderListId": -1,
            "clientOrderId": client_id,
            "price": self.market.fmt_price(symbol, price),
            "origQty": self.market.fmt_qty(symbol, qty),
            "executedQty": self.market.fmt_qty(symbol, qty),
            "cummulativeQuoteQty": f"{quote_qty:.8f}",
            "status": "FILLED",
            "type": kind,
            "side": side,
            "transactTime": self.clock_ms(),
        }
        self.orders.append(order)
        if client_id:
            self._by_client_id[client_id] = order
        fault = self._take_fault("POST /api/v3/order", ("order_5xx_after_fill",))
        if fault is not None:
            return _err(fault.status if fault.status >= 500 else 503, fault.status, "Internal error; outcome unknown")
        return web.json_response({k: order[k] for k in ("symbol", "orderId", "orderListId", "price", "origQty", "type", "side", "transactTime")})

    async def query_order(self, request: web.Request) -> web.Response:
        params = await self._signed_params(request)
        order = None
        if params.get("origClientOrderId"):
            order = self._by_client_id.get(params["origClientOrderId"])
        elif params.get("orderId"):
            order = next((o for o in self.orders if o["orderId"] == params["orderId"]), None)
        if order is None or order["symbol"] != params.get("symbol", order["symbol"] if order else ""):
            raise _ApiError(400, -2011, "Unknown order sent.")
        return web.json_response(order)

    async def account(self, request: web.Request) -> web.Response:
        await self._signed_params(request)
        return web.json_response(
            {
                "canTrade": True,
                "canWithdraw": True,
                "canDeposit": True,
                "updateTime": None,
                "accountType": "SPOT",
                "balances": [{"asset": a, "free": f"{f:.8f}", "locked": f"{lk:.8f}"} for a, (f, lk) in self.balances.items()],
                "permissions": ["SPOT"],
            }
        )


class _ApiError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


def _strip_signature(text: str) -> str:
    """Remove the signature parameter (and its separator) from a raw parameter string."""
    parts = text.split("&")
    return "&".join(p for p in parts if not p.startswith("signature="))
