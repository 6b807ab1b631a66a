"""The emulator's signed side: API key, HMAC-SHA256 signature, recvWindow, balances and orders.

Orders, fills, fees, cancels and myTrades themselves are sim/spot_orders.py; this module checks
who is asking and what MEXC would refuse before any order exists (symbol, API permission, type).

Why exact signing and error bodies: the trading client must work against real MEXC, so the
emulator checks HMAC-SHA256 over queryString + body (no '&' between), timestamp and recvWindow
the way mexc-api.md §4.1 describes, and refuses orders with MEXC's codes (10007, 30019, 30002,
10101). Kept apart from the HTTP routing, weights and faults (sim/rest_server.py), which apply
to signed and public endpoints alike.

Choices where MEXC is UNCONFIRMED: a second order with an already used newClientOrderId is
refused with HTTP 400 {"code": -2010, "msg": "Duplicate order sent."} and does not execute;
signature/key errors use HTTP 400 (key missing) and 401 (key unknown / bad signature).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from sim.market import Market
from sim.spot_orders import OrderError, SpotOrders

DEFAULT_API_KEY = "mx0-test-key"
DEFAULT_API_SECRET = "mx0-test-secret-0123456789abcdef"


def sign(secret: str, total_params: str) -> str:
    """MEXC signature: lowercase hex HMAC-SHA256 of queryString + body."""
    return hmac.new(secret.encode(), total_params.encode(), hashlib.sha256).hexdigest()


class ApiError(Exception):
    """A MEXC error answer: HTTP status and a {code, msg} body (sim/rest_server.py renders it)."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


class Account:
    """The one test account: its keys, balances (asset -> [free, locked]) and orders."""

    def __init__(self, market: Market, api_key: str, api_secret: str, usdt_balance: float, clock_ms: Callable[[], int]) -> None:
        self.market = market
        self.api_key = api_key
        self.api_secret = api_secret
        self.clock_ms = clock_ms
        self.balances: dict[str, list[float]] = {"USDT": [usdt_balance, 0.0]}
        self.spot = SpotOrders(market, self.balances, clock_ms)

    async def signed_params(self, request: web.Request) -> dict[str, str]:
        """The request's parameters once its key, signature, timestamp and recvWindow check out."""
        key = request.headers.get("X-MEXC-APIKEY")
        if not key:
            raise ApiError(400, 400, "api key required")
        if key != self.api_key:
            raise ApiError(401, 10072, "Api key info invalid")
        query = request.rel_url.raw_query_string
        body = (await request.read()).decode("utf-8", "replace")
        query_pairs = parse_qsl(query, keep_blank_values=True)
        body_pairs = parse_qsl(body, keep_blank_values=True) if body and not body.lstrip().startswith("{") else []
        params = dict(body_pairs)
        params.update(dict(query_pairs))  # the query string wins over the body
        signature = params.get("signature")
        if not signature:
            raise ApiError(400, 700002, "Signature for this request is not valid.")
        # The signature parameter is not part of what was signed; it comes last by convention.
        unsigned_query = _strip_signature(query) if "signature=" in query else query
        unsigned_body = _strip_signature(body) if "signature=" in body else body
        expected = sign(self.api_secret, unsigned_query + unsigned_body)
        if not hmac.compare_digest(expected, signature.lower()):
            raise ApiError(401, 700002, "Signature for this request is not valid.")
        try:
            timestamp = int(params.get("timestamp", ""))
        except ValueError:
            raise ApiError(400, 700003, "Timestamp for this request is outside of the recvWindow.") from None
        try:
            recv_window = int(params.get("recvWindow", "5000"))
        except ValueError:
            raise ApiError(400, 33333, "Parameter error: recvWindow") from None
        if recv_window >= 60000:
            raise ApiError(400, 700005, "recvWindow must less than 60000")
        server = int(time.time() * 1000)
        if not (timestamp < server + 1000 and server - timestamp <= recv_window):
            raise ApiError(400, 700003, "Timestamp for this request is outside of the recvWindow.")
        return params

    def place_order(self, params: dict[str, str]) -> dict[str, Any]:
        """Execute an order against the emulator's book (sim/spot_orders.py) or refuse it with MEXC's code."""
        symbol = params.get("symbol", "")
        spec = self.market.spec(symbol)
        if spec is None or spec.status != "1":
            raise ApiError(400, 30014, "Invalid symbol.")
        if not spec.api_tradable:
            raise ApiError(400, 10007, "symbol not support api")
        side, kind = params.get("side", "").upper(), params.get("type", "").upper()
        if side not in ("BUY", "SELL") or kind not in ("MARKET", "LIMIT"):
            raise ApiError(400, 33333, "Parameter error")
        if kind == "MARKET" and not spec.market_order_allowed:
            raise ApiError(400, 30019, "api market order is disabled")
        return self._call(self.spot.place, spec, params)

    def find_order(self, params: dict[str, str]) -> dict[str, Any]:
        """An earlier order by origClientOrderId or orderId (and symbol), else MEXC's -2011."""
        return self._call(self.spot.find, params)

    def cancel_order(self, params: dict[str, str]) -> dict[str, Any]:
        return self._call(self.spot.cancel, params)

    def open_orders(self, params: dict[str, str]) -> list[dict[str, Any]]:
        return self.spot.open_orders(self._symbol(params))

    def my_trades(self, params: dict[str, str]) -> list[dict[str, Any]]:
        self._symbol(params)
        return self._call(self.spot.my_trades, params)

    def _symbol(self, params: dict[str, str]) -> str:
        symbol = params.get("symbol", "")
        if self.market.spec(symbol) is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        return symbol

    @staticmethod
    def _call(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except OrderError as exc:
            raise ApiError(exc.status, exc.code, exc.msg) from None

    @property
    def orders(self) -> list[dict[str, Any]]:
        return self.spot.orders

    def info(self) -> dict[str, Any]:
        """The account endpoint's body: permissions and every balance."""
        return {
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "updateTime": None,
            "accountType": "SPOT",
            "balances": [{"asset": a, "free": f"{f:.8f}", "locked": f"{lk:.8f}"} for a, (f, lk) in self.balances.items()],
            "permissions": ["SPOT"],
        }


def _strip_signature(text: str) -> str:
    """Remove the signature parameter (and its separator) from a raw parameter string."""
    parts = text.split("&")
    return "&".join(p for p in parts if not p.startswith("signature="))
