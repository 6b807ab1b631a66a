"""The futures REST routes (`/api/v1/contract/...`) and the futures side's glue and control API.

Why the envelope everywhere: MEXC's contract API wraps every answer in
`{"success":true,"code":0,"data":…}` and every error in `{"success":false,"code":N,"message":"…"}`
with HTTP 200 (mexc-api.md §5.2); a client that checks only the HTTP status would take an error
for data, and only an emulator that answers the same way shows it. An unknown contract is code
1001 ("contract does not exist" in the docs' error table), a bad parameter 600.

`FuturesSide` bundles market, WebSocket and REST so sim/server.py adds the futures API with a few
lines: routes, one `tick()` per clock turn, `stop()` and `state()`. Its control routes
(`GET /_sim/futures/state`, `POST /_sim/futures/anomaly`) let tests read the scripted timeline and
script an anomaly while the emulator runs.
"""

from __future__ import annotations

import contextlib
from typing import Any

from aiohttp import web

from sim.futures_book import LEVELS
from sim.futures_market import STEP_MS, FuturesMarket
from sim.futures_scenario import FuturesAnomaly
from sim.futures_ws import FuturesWs
from sim.scenario import ScenarioError

NO_CONTRACT = (1001, "Contract does not exist")
PARAM_ERROR = 600


def ok(data: Any) -> web.Response:
    return web.json_response({"success": True, "code": 0, "data": data})


def fail(code: int, message: str) -> web.Response:
    return web.json_response({"success": False, "code": code, "message": message})


class FuturesRest:
    """Market-data routes of the contract API, backed by the futures market."""

    def __init__(self, market: FuturesMarket) -> None:
        self.market = market
        self.requests = 0

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/api/v1/contract/ping", self.ping)
        r.add_get("/api/v1/contract/detail", self.detail)
        r.add_get("/api/v1/contract/ticker", self.ticker)
        r.add_get("/api/v1/contract/depth/{symbol}", self.depth)
        r.add_get("/api/v1/contract/fair_price/{symbol}", self.fair_price)
        r.add_get("/api/v1/contract/index_price/{symbol}", self.index_price)
        r.add_get("/api/v1/contract/funding_rate/{symbol}", self.funding_rate)

    def _contract(self, symbol: str | None) -> int | None:
        self.requests += 1
        return None if symbol is None else self.market.index_of(symbol)

    async def ping(self, request: web.Request) -> web.Response:
        self.requests += 1
        return ok(self.market.now_ms())

    async def detail(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol")
        if symbol is None:
            self.requests += 1
            return ok([c.detail() for c in self.market.contracts])
        i = self._contract(symbol)
        return fail(*NO_CONTRACT) if i is None else ok(self.market.contracts[i].detail())

    async def ticker(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol")
        if symbol is None:
            self.requests += 1
            return ok([self._ticker(i) for i in range(self.market.n)])
        i = self._contract(symbol)
        return fail(*NO_CONTRACT) if i is None else ok(self._ticker(i))

    def _ticker(self, i: int) -> dict[str, Any]:
        """The ticker record plus the REST-only change figures (one zone, UTC+8, as the site's default)."""
        t = self.market.ticker(i)
        rate, value = t["riseFallRate"], t["riseFallValue"]
        t["riseFallRates"] = {"zone": "UTC+8", "r": rate, "v": value, "r7": rate, "r30": rate, "r90": rate, "r180": rate, "r365": rate}
        t["riseFallRatesOfTimezone"] = [rate, rate, rate]
        return t

    async def depth(self, request: web.Request) -> web.Response:
        i = self._contract(request.match_info["symbol"])
        if i is None:
            return fail(*NO_CONTRACT)
        try:
            limit = int(request.query.get("limit", LEVELS))
        except ValueError:
            return fail(PARAM_ERROR, "limit must be an integer")
        if limit < 1:
            return fail(PARAM_ERROR, "limit must be >= 1")
        return ok(self.market.depth(i, limit))  # the book holds 20 levels; a larger limit gives 20

    async def fair_price(self, request: web.Request) -> web.Response:
        i = self._contract(request.match_info["symbol"])
        if i is None:
            return fail(*NO_CONTRACT)
        m = self.market
        return ok({"symbol": m.contracts[i].symbol, "fairPrice": float(m.fair_r[i]), "timestamp": m.now_ms()})

    async def index_price(self, request: web.Request) -> web.Response:
        i = self._contract(request.match_info["symbol"])
        if i is None:
            return fail(*NO_CONTRACT)
        m = self.market
        return ok({"symbol": m.contracts[i].symbol, "indexPrice": float(m.index_r[i]), "timestamp": m.now_ms()})

    async def funding_rate(self, request: web.Request) -> web.Response:
        i = self._contract(request.match_info["symbol"])
        if i is None:
            return fail(*NO_CONTRACT)
        m = self.market
        now, cycle = m.now_ms(), int(m.cycle_ms[i])
        return ok({"symbol": m.contracts[i].symbol, "fundingRate": round(float(m.funding[i]), 6), "maxFundingRate": 0.003,
                   "minFundingRate": -0.003, "collectCycle": cycle // 3_600_000, "nextSettleTime": now - now % cycle + cycle,
                   "timestamp": now})  # fmt: skip


class FuturesSide:
    """The futures market with its WebSocket (/edge), REST (/api/v1/contract) and control (/_sim/futures) routes."""

    def __init__(self, contracts: int, seed: int, start_ms: int, anomalies: list[FuturesAnomaly] | None = None,
                 ping_timeout_s: float = 60.0) -> None:  # fmt: skip
        self.market = FuturesMarket(contracts, seed, start_ms, anomalies)
        self.ws = FuturesWs(self.market, ping_timeout_s)
        self.rest = FuturesRest(self.market)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/edge", self.ws.handler)
        self.rest.add_routes(app)
        app.router.add_get("/_sim/futures/state", self._state_handler)
        app.router.add_post("/_sim/futures/anomaly", self._anomaly_handler)

    async def tick(self, to_ms: int) -> None:
        """Advance to exchange time to_ms a step at a time, publishing each step; then the heartbeat rule."""
        m = self.market
        while m.now_ms() + STEP_MS <= to_ms:
            for step in m.advance(m.now_ms() + STEP_MS):
                self.ws.publish(step)
        await self.ws.enforce_limits()

    async def stop(self) -> None:
        for conn in list(self.ws.connections.values()):
            conn.close_reason = "server stopping"
            with contextlib.suppress(Exception):
                await conn.ws.close()

    def state(self) -> dict[str, Any]:
        return {**self.market.state(), **self.ws.state(), "rest_requests": self.rest.requests}

    async def _state_handler(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def _anomaly_handler(self, request: web.Request) -> web.Response:
        """Body: {symbol, in_s, duration_s, premium_pct, spike?, approach_s?, decay_s?, book?} → the anomaly's timeline."""
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            symbol = body.pop("symbol")
            timeline = self.market.script_anomaly(str(symbol), **body)
        except (ValueError, KeyError, TypeError, ScenarioError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True, "anomaly": timeline})
