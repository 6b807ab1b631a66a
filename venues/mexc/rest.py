"""Paced public REST client for MEXC market data (depth snapshots, klines, exchangeInfo, tickers).

Why this is MEXC knowledge and not a generic HTTP helper: the pacing model is MEXC's (a separate
weight window per endpoint, 500 per 10 s per IP), so is the 429-then-418 escalation where a 418 bans
the IP on every endpoint, and so is the error body ({"code": non-0/200, "msg": ...} even on HTTP 200).
Another exchange would need different windows, ban rules and error shapes, i.e. a different client.

Why pacing lives in the client: MEXC gives every endpoint its own budget (500 weight per 10 s per
IP); going over gives 429, and insisting after a 429 gives a 418 ban that grows from minutes to
days. Many books resyncing at once is exactly how other tools tripped this (ccxt #17511). So every
request waits for weight in its endpoint's window, urgent work (book resyncs) goes before bulk work
(baseline seeding), and a 429/418 pauses the endpoint (418: every endpoint) for Retry-After.
Callers never block the frame path: they await here in their own tasks.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp

log = logging.getLogger("scanner.rest")

URGENT = 0
BULK = 1


class RestError(Exception):
    """A REST call failed: HTTP status, MEXC code (if any), the host that failed and a plain message.

    Why the host: with several REST bases (spot, futures, an emulator) a log line "scout failed"
    must say which one. Only host[:port] goes in, never the path's query string, which may carry a
    signature or an API key.
    """

    def __init__(self, status: int, code: int | None, message: str, retry_after: float | None = None, host: str = "") -> None:
        where = f" from {host}" if host else ""
        super().__init__(f"HTTP {status}" + (f" code {code}" if code is not None else "") + f"{where}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.host = host


def host_of(url: str) -> str:
    """host[:port] of a URL, without credentials, path or query (what a log line may show)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "?"
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    return f"{host}:{port}" if port else host


class _EndpointBudget:
    """Sliding-window weight budget for one endpoint, with a priority queue of waiters."""

    def __init__(self, budget: int, window_s: float, clock: Callable[[], float]) -> None:
        self.budget = budget
        self.window_s = window_s
        self.clock = clock
        self.spent: deque[tuple[float, int]] = deque()
        self.paused_until = 0.0
        self._waiters: list[tuple[int, int, asyncio.Future[None], int]] = []
        self._counter = itertools.count()
        self._wakeup: asyncio.TimerHandle | None = None

    def _used(self, now: float) -> int:
        while self.spent and self.spent[0][0] <= now - self.window_s:
            self.spent.popleft()
        return sum(weight for _, weight in self.spent)

    async def acquire(self, weight: int, priority: int) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._waiters, (priority, next(self._counter), fut, weight))
        self._dispatch()
        try:
            await fut
        except asyncio.CancelledError:
            self._waiters = [w for w in self._waiters if w[2] is not fut]
            heapq.heapify(self._waiters)
            raise

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, self.clock() + seconds)
        self._schedule(seconds)

    def _schedule(self, delay: float) -> None:
        if self._wakeup is not None:
            self._wakeup.cancel()
        self._wakeup = asyncio.get_running_loop().call_later(max(delay, 0.001), self._dispatch)

    def _dispatch(self) -> None:
        self._wakeup = None
        now = self.clock()
        if now < self.paused_until:
            self._schedule(self.paused_until - now)
            return
        while self._waiters:
            priority, _, fut, weight = self._waiters[0]
            if fut.done():
                heapq.heappop(self._waiters)
                continue
            used = self._used(now)
            if used + weight > self.budget and self.spent:
                self._schedule(self.spent[0][0] + self.window_s - now)
                return
            heapq.heappop(self._waiters)
            self.spent.append((now, weight))
            fut.set_result(None)


class PacedRest:
    """GET JSON from MEXC's public REST API within a per-endpoint weight budget.

    budget_per_10s is this process's share of the exchange budget (split it between processes
    that share the IP). on_event, when given, is called with ("request" | "throttled", endpoint) for metrics.
    """

    def __init__(
        self,
        base_url: str,
        budget_per_10s: int = 400,
        timeout_s: float = 10.0,
        on_event: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = host_of(self.base_url)
        self.budget_per_10s = budget_per_10s
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.on_event = on_event
        self.clock = clock
        self._budgets: dict[str, _EndpointBudget] = {}
        self._session: aiohttp.ClientSession | None = None
        self._banned_until = 0.0  # a 418 bans the IP on every endpoint, known or not yet used

    def _budget(self, path: str) -> _EndpointBudget:
        budget = self._budgets.get(path)
        if budget is None:
            # Half a second of slack: our window and the exchange's are measured at different
            # moments (send vs arrival), and a request that lands just inside its window is a 429.
            budget = self._budgets[path] = _EndpointBudget(self.budget_per_10s, 10.5, self.clock)
        return budget

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def get(self, path: str, params: dict[str, Any] | None = None, weight: int = 1, priority: int = BULK) -> Any:
        """GET base_url+path; returns parsed JSON or raises RestError (never other exceptions)."""
        budget = self._budget(path)
        ban = self._banned_until - self.clock()
        if ban > 0:
            await asyncio.sleep(ban)
        await budget.acquire(weight, priority)
        if self.on_event:
            self.on_event("request", path)
        session = await self._get_session()
        try:
            async with session.get(self.base_url + path, params=params) as resp:
                body = await resp.read()
                status = resp.status
                retry_after_header = resp.headers.get("Retry-After")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise RestError(0, None, f"{path}: connection failed ({type(exc).__name__})", host=self.host) from None
        if status in (429, 418):
            retry_after = _parse_retry_after(retry_after_header, default=60.0 if status == 418 else 10.0)
            if self.on_event:
                self.on_event("throttled", path)
            if status == 418:
                # An IP ban covers every endpoint: pause them all.
                self._banned_until = max(self._banned_until, self.clock() + retry_after)
                for other in self._budgets.values():
                    other.pause(retry_after)
            budget.pause(retry_after)
            log.warning("rest throttled", extra={"endpoint": path, "status": status, "retry_after_s": retry_after})
            raise RestError(status, None, f"{path}: rate limited, retry after {retry_after:.0f}s", retry_after, host=self.host)
        try:
            data = json.loads(body) if body else None
        except ValueError:
            raise RestError(status, None, f"{path}: response is not JSON ({body[:60]!r})", host=self.host) from None
        if status >= 400 or (isinstance(data, dict) and isinstance(data.get("code"), int) and data.get("code") not in (0, 200) and "msg" in data):
            code = data.get("code") if isinstance(data, dict) else None
            msg = data.get("msg") if isinstance(data, dict) else None
            raise RestError(status, code if isinstance(code, int) else None, f"{path}: {msg or 'HTTP error'}", host=self.host)
        return data

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _parse_retry_after(value: str | None, default: float) -> float:
    try:
        seconds = float(value) if value is not None else default
    except ValueError:
        seconds = default
    return min(max(seconds, 0.5), 3 * 24 * 3600.0)
