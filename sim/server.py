"""The emulator process: one aiohttp server on loopback with /ws, /api/v3/* and /_sim/*.

With futures_contracts > 0 the same server also speaks MEXC's contract API (sim/futures_rest.py):
WebSocket /edge, REST /api/v1/contract/*, control /_sim/futures/*, on the same clock.

The clock task maps wall time to exchange time (start + speed x elapsed) and advances the market
in 100 ms steps, publishing each step's updates to subscribers. Tests use run_emulator() in
their own event loop; `python -m sim serve` wraps the same thing for other processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from sim.faults import Faults, select_targets
from sim.futures_rest import FuturesSide
from sim.futures_scenario import FuturesAnomaly, load_futures_scenario
from sim.market import Market, build_market
from sim.rest_account import DEFAULT_API_KEY, DEFAULT_API_SECRET
from sim.rest_server import RestEmulator
from sim.scenario import load_scenario
from sim.updates import STEP_MS
from sim.ws_server import Limits, WsEmulator

log = logging.getLogger("sim.server")


def check_loopback(host: str, allow_non_loopback: bool) -> None:
    """Refuse to listen beyond this machine unless explicitly forced."""
    if allow_non_loopback:
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(f"refusing to bind {host!r}: the emulator listens on loopback only (use --allow-non-loopback to force)")


@dataclass
class EmulatorOptions:
    host: str = "127.0.0.1"
    port: int = 0
    pairs: int = 200
    seed: int = 1
    rate: float | None = None
    scenario: str | None = None
    replay: str | None = None
    speed: float = 1.0
    start_ms: int | None = None
    api_key: str = DEFAULT_API_KEY
    api_secret: str = DEFAULT_API_SECRET
    usdt_balance: float = 1000.0
    weight_budget: int = 500
    ban_base_s: float = 120.0
    limits: Limits = field(default_factory=Limits)
    allow_non_loopback: bool = False
    futures_contracts: int = 0  # the CLI's default is 50; 0 = no futures API (spot tests stay lean)
    futures_scenario: str | None = None  # a file with a futures_anomalies list (the --scenario file may hold one too)
    futures_ping_timeout_s: float = 60.0


class Emulator:
    """A running emulator: URLs, the market, fault injection and state for tests."""

    def __init__(self, options: EmulatorOptions) -> None:
        check_loopback(options.host, options.allow_non_loopback)
        if options.speed <= 0:
            raise ValueError("speed must be > 0")
        self.options = options
        self.market: Any = self._build_market(options)
        self.faults = Faults()
        self.ws = WsEmulator(self.market, self.faults, options.limits)
        self.rest = RestEmulator(
            self.market,
            api_key=options.api_key,
            api_secret=options.api_secret,
            weight_budget=options.weight_budget,
            usdt_balance=options.usdt_balance,
            clock_ms=self.exchange_ms,
            ban_base_s=options.ban_base_s,
        )
        self.futures: FuturesSide | None = None
        if options.futures_contracts:
            self.futures = FuturesSide(options.futures_contracts, options.seed, self.market.now_ms(), self._futures_anomalies(options),
                                       options.futures_ping_timeout_s)  # fmt: skip
        self._wall_start = time.monotonic()
        self._exchange_start = self.market.now_ms()
        self._runner: web.AppRunner | None = None
        self._clock_task: asyncio.Task[None] | None = None
        self.port = 0
        self.steps = 0
        self.drop_every_s: float = 0.0

    @staticmethod
    def _build_market(options: EmulatorOptions) -> Market:
        if options.replay:
            from sim.replay import ReplayMarket

            return ReplayMarket(options.replay)  # type: ignore[return-value]
        scenario = load_scenario(options.scenario) if options.scenario else None
        start = options.start_ms if options.start_ms is not None else int(time.time() * 1000)
        return build_market(options.pairs, options.seed, start, scenario, options.rate)

    @staticmethod
    def _futures_anomalies(options: EmulatorOptions) -> list[FuturesAnomaly]:
        anomalies = list(load_scenario(options.scenario).futures_anomalies) if options.scenario else []
        if options.futures_scenario:
            anomalies += load_futures_scenario(options.futures_scenario)
        return anomalies

    @property
    def futures_ws_url(self) -> str:
        return f"ws://{self.options.host}:{self.port}/edge"

    @property
    def futures_rest_url(self) -> str:
        return self.rest_url

    def ready_line(self) -> dict[str, str]:
        """What `python -m sim serve` prints: spot URLs, plus the futures ones when the futures side is on."""
        ready = {"ws": self.ws_url, "rest": self.rest_url}
        if self.futures is not None:
            ready.update(futures_ws=self.futures_ws_url, futures_rest=self.futures_rest_url)
        return ready

    @property
    def ws_url(self) -> str:
        return f"ws://{self.options.host}:{self.port}/ws"

    @property
    def rest_url(self) -> str:
        return f"http://{self.options.host}:{self.port}"

    def exchange_ms(self) -> int:
        return self._exchange_start + int((time.monotonic() - self._wall_start) * 1000 * self.options.speed)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws", self.ws.handler)
        self.rest.add_routes(app)
        app.router.add_post("/_sim/fault", self._fault_handler)
        app.router.add_get("/_sim/state", self._state_handler)
        app.router.add_post("/_sim/ticker", self._ticker_handler)
        if self.futures is not None:
            self.futures.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.options.host, self.options.port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]
        self._wall_start = time.monotonic()
        self._exchange_start = self.market.now_ms()
        self._clock_task = asyncio.get_running_loop().create_task(self._clock())

    async def stop(self) -> None:
        if self._clock_task is not None:
            self._clock_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock_task
        if self.futures is not None:
            await self.futures.stop()
        conns = list(self.ws.connections.values())
        for conn in conns:
            conn.close_reason = "server stopping"
        await asyncio.gather(*(conn.ws.close() for conn in conns), return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    async def _clock(self) -> None:
        """Advance the market to the exchange time of now and publish; limits are checked on wall time."""
        last_second = -1
        last_drop = time.monotonic()
        while True:
            target = self.exchange_ms()
            try:
                updates = self.market.advance(target)
            except Exception:  # noqa: BLE001 - a market bug must be loud, not a silent frozen feed
                log.exception("market step failed; the emulator stops feeding")
                raise
            now_ms = self.market.now_ms()
            self.steps += 1
            if updates:
                self.ws.publish(updates, now_ms)
            second = now_ms // 1000
            if second != last_second:
                last_second = second
                self.ws.publish_slow_channels(now_ms, second)
            await self.ws.enforce_limits()
            if self.futures is not None:
                await self.futures.tick(target)
            if self.drop_every_s and time.monotonic() - last_drop >= self.drop_every_s:
                last_drop = time.monotonic()
                await self.drop_connections()
            # Sleep until the next step boundary in wall time (at most 100 ms, so limits stay timely).
            wait = (now_ms + STEP_MS - self.exchange_ms()) / 1000.0 / self.options.speed
            await asyncio.sleep(max(0.0, min(wait, 0.1)))

    # --- faults ----------------------------------------------------------------------------------

    async def drop_connections(self, count: int | None = None, symbol: str | None = None, ids: list[int] | None = None) -> int:
        """Close connections from the server side, as MEXC does on maintenance or at random."""
        targets = select_targets(self.ws.connections.values(), count=count, symbol=symbol, ids=ids)
        for conn in targets:
            self.faults.fired["drop"] += 1
            await self.ws.close(conn, "fault: drop")  # type: ignore[arg-type]
        return len(targets)

    def stall(self, seconds: float, count: int | None = None, symbol: str | None = None, ids: list[int] | None = None) -> int:
        """Stop sending to connections for a while without closing them (a half-dead TCP link)."""
        if seconds <= 0:
            raise ValueError("stall needs seconds > 0")
        targets = select_targets(self.ws.connections.values(), count=count, symbol=symbol, ids=ids)
        until = time.monotonic() + seconds
        for conn in targets:
            conn.stalled_until = until  # type: ignore[attr-defined]
            conn.outbox.clear()  # type: ignore[attr-defined]
            self.faults.fired["stall"] += 1
        return len(targets)

    async def inject(self, kind: str, **params: Any) -> Any:
        """Inject a fault: drop, drop_every, stall, depth_gap, malformed, or a REST fault kind.

        Returns how many connections a drop or stall hit; raises ValueError on a bad fault.
        """
        targeting = {k: params.get(k) for k in ("count", "symbol", "ids")}
        if kind == "drop":
            return await self.drop_connections(**targeting)
        if kind == "drop_every":
            seconds = float(params.get("seconds", 0))
            if seconds < 0:
                raise ValueError("drop_every needs seconds >= 0 (0 turns it off)")
            self.drop_every_s = seconds
            return None
        if kind == "stall":
            return self.stall(float(params.get("seconds", 5.0)), **targeting)
        if kind == "depth_gap":
            if not params.get("symbol"):
                raise ValueError("depth_gap needs a symbol")
            self.faults.add_depth_gap(str(params["symbol"]), int(params.get("frames", 1)))
            return None
        if kind == "malformed":
            self.faults.add_malformed(str(params.get("symbol") or ""), int(params.get("frames", 1)))
            return None
        self.rest.inject(kind, **params)
        return None

    def state(self) -> dict[str, Any]:
        return {
            **self.ws.state(),
            "rest": self.rest.state(),
            "faults_fired": dict(self.faults.fired),
            "exchange_ms": self.market.now_ms(),
            "steps": self.steps,
        }

    async def _fault_handler(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object with a 'kind'")
            kind = body.pop("kind")
            result = await self.inject(str(kind), **body)
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True, "result": result})

    async def _state_handler(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def _ticker_handler(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            qv = body.get("quote_volume")
            self.market.set_ticker_override(str(body["symbol"]), None if qv is None else float(qv))
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True})


_LIMIT_FIELDS = ("max_streams_per_conn", "no_sub_timeout_s", "no_data_timeout_s", "max_client_msg_per_s", "max_conn_life_s")


async def serve_until_stopped(emulator: Emulator, after_start: Callable[[], Awaitable[None]] | None = None) -> int:
    """Run an emulator until SIGTERM/SIGINT: start, print the ready line ({"ws", "rest"[, "futures_ws", "futures_rest"]}), wait, stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Handlers first: a SIGTERM sent right after the ready line must still be a clean exit.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await emulator.start()
    try:
        if after_start is not None:
            await after_start()
        print(json.dumps(emulator.ready_line()), flush=True)
        await stop.wait()
    finally:
        await emulator.stop()
    return 0


@contextlib.asynccontextmanager
async def run_emulator(**options: Any) -> AsyncIterator[Emulator]:
    """`async with run_emulator(pairs=50) as emu:` — an emulator in the caller's event loop.

    Takes the CLI's options as keywords (pairs, seed, rate, scenario, replay, speed, api_key,
    api_secret, usdt_balance, the five limits such as no_data_timeout_s, or limits=Limits(...),
    faults=[{"kind": ...}], allow_non_loopback, futures_contracts, futures_scenario, futures_ping_timeout_s).
    """
    limits = options.pop("limits", None) or Limits()
    for name in _LIMIT_FIELDS:
        if name in options:
            setattr(limits, name, options.pop(name))
    faults = options.pop("faults", None) or []
    emulator = Emulator(EmulatorOptions(limits=limits, **options))
    await emulator.start()
    try:
        for fault in faults:
            fault = dict(fault)
            await emulator.inject(fault.pop("kind"), **fault)
        yield emulator
    finally:
        await emulator.stop()


def scenario_path(name: str) -> str:
    """Path of a scenario shipped under sim/scenarios/."""
    return str(Path(__file__).parent / "scenarios" / name)
