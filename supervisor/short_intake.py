"""POST /pump: the short watcher's HTTP intake, for an outside bot, a webhook, or a test by hand.

    curl -s 127.0.0.1:8010/pump -H "Authorization: Bearer $PUMP_INTAKE_TOKEN" \\
         -d '{"symbol": "PEPEUSDT", "exchange": "mexc", "pump_pct": 14.2, "pump_ts": 1764000000000}'

Why its own listener (shorts.intake_host:intake_port, 127.0.0.1 by default) and not a route on
/metrics: the metrics port may be published for Prometheus (METRICS_HOST), while the intake starts
watches and must stay private unless the owner says otherwise. No token (PUMP_INTAKE_TOKEN empty)
means no listener at all. Every refusal is a 4xx with a JSON `error` naming the field and what
was expected, never a crash; a valid pump answers 200 with `{"ok": true, "run_id": ...}` or
`{"ok": false, "refused": "<the filter that said no>"}`.

Body: `symbol` (a scanned MEXC spot pair, e.g. PEPEUSDT), `exchange` ("mexc"), `pump_pct` (the
pump's size in percent, > 0), `pump_ts` (when it happened: ms since epoch, or seconds), `extra`
(optional JSON object, stored with the watch).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
from collections.abc import Callable
from typing import Any

from aiohttp import web

log = logging.getLogger("scanner.supervisor.short_intake")
MAX_BODY = 16 * 1024
SECONDS_BEFORE_MS = 10**11  # a pump_ts below this is in seconds (10^11 ms is 1973; 10^11 s is year 5138)

StartFn = Callable[[str, str, float, int, "float | None", "dict[str, Any] | None"], "tuple[str | None, str | None]"]


class IntakeError(ValueError):
    """A refused body: the message names the field and what was expected."""


def parse_pump(body: bytes, known: Callable[[str], bool]) -> tuple[str, float, int, dict[str, Any]]:
    """(symbol, pump_pct, pump_ts_ms, extra) from a request body, or IntakeError with the reason."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise IntakeError("body: expected a JSON object") from None
    if not isinstance(data, dict):
        raise IntakeError("body: expected a JSON object")
    unknown = sorted(set(data) - {"symbol", "exchange", "pump_pct", "pump_ts", "extra"})
    if unknown:
        raise IntakeError(f"{unknown[0]}: unknown field (expected symbol, exchange, pump_pct, pump_ts, extra)")
    symbol = data.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip():
        raise IntakeError("symbol: expected a pair name like PEPEUSDT")
    symbol = symbol.strip().upper().replace("/", "").replace("_", "")
    exchange = data.get("exchange")
    if not isinstance(exchange, str) or exchange.strip().lower() != "mexc":
        raise IntakeError(f"exchange: got {str(exchange)[:20]!r}, expected \"mexc\" (the only exchange this service watches)")
    pump_pct = data.get("pump_pct")
    if isinstance(pump_pct, bool) or not isinstance(pump_pct, (int, float)) or not math.isfinite(pump_pct) or pump_pct <= 0:
        raise IntakeError(f"pump_pct: got {str(pump_pct)[:20]!r}, expected a number of percent > 0")
    ts = data.get("pump_ts")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts) or ts <= 0:
        raise IntakeError(f"pump_ts: got {str(ts)[:30]!r}, expected a time since the epoch in ms (or seconds)")
    ts_ms = int(ts * 1000) if ts < SECONDS_BEFORE_MS else int(ts)
    extra = data.get("extra", {})
    if extra is None:
        extra = {}
    if not isinstance(extra, dict):
        raise IntakeError("extra: expected a JSON object")
    if len(symbol) > 30 or not symbol.isalnum():
        raise IntakeError(f"symbol: got {symbol[:30]!r}, expected letters and digits like PEPEUSDT")
    if not known(symbol):
        raise IntakeError(f"symbol: {symbol} is not a pair the scanner streams now (no rows would reach the watch)")
    return symbol, float(pump_pct), ts_ms, extra


def intake_app(token: str, start: StartFn, known: Callable[[str], bool]) -> web.Application:
    """The aiohttp application: POST /pump behind `Authorization: Bearer <token>`."""

    async def pump(request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return web.json_response({"ok": False, "error": "Authorization: expected Bearer <PUMP_INTAKE_TOKEN>"}, status=401)
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.json_response({"ok": False, "error": f"body: over {MAX_BODY} bytes"}, status=413)
        try:
            body = await request.content.read(MAX_BODY + 1)
            if len(body) > MAX_BODY:
                return web.json_response({"ok": False, "error": f"body: over {MAX_BODY} bytes"}, status=413)
            symbol, pump_pct, ts_ms, extra = parse_pump(body, known)
        except IntakeError as exc:
            status = 422 if str(exc).startswith("symbol: ") and "not a pair" in str(exc) else 400
            return web.json_response({"ok": False, "error": str(exc)}, status=status)
        run_id, why = start(symbol, "http", pump_pct, ts_ms, None, extra)
        log.info("pump intake", extra={"symbol": symbol, "pump_pct": pump_pct, "run_id": run_id, "refused": why})
        if run_id is None:
            return web.json_response({"ok": False, "refused": why}, status=200)
        return web.json_response({"ok": True, "run_id": run_id}, status=200)

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/pump", pump)
    return app


async def serve_intake(host: str, port: int, token: str, start: StartFn, known: Callable[[str], bool],
                       stop: asyncio.Event) -> None:  # fmt: skip
    """Run the intake until `stop` is set; returns at once (logged) without a token or when the port is taken."""
    if not token:
        log.info("pump intake off (PUMP_INTAKE_TOKEN is not set)")
        return
    runner = web.AppRunner(intake_app(token, start, known), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        log.error("pump intake could not start", extra={"host": host, "port": port, "error": str(exc)[:200]})
        await runner.cleanup()
        return
    log.info("pump intake listening", extra={"host": host, "port": port})
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


__all__ = ["IntakeError", "intake_app", "parse_pump", "serve_intake"]
