"""Signed MEXC spot REST client for the Buy button (orders, order queries, account, prices).

Why a client of our own next to venues/mexc/rest.py: that one paces bulk public market data for the
scanner; this one serves a person pressing a button. It must sign (HMAC-SHA256 over the exact
query string, mexc-api.md §4.1), turn every failure into one exception with a sentence a trader
understands, tell "refused" (nothing happened) from "outcome unknown" (5xx, no answer, garbage:
the order may have executed), and stop calling MEXC while a 429/418 Retry-After runs, because
insisting after a 429 turns into an IP ban that grows to days.

Secrets: the key goes only into the X-MEXC-APIKEY header and the secret only into the HMAC; neither
appears in an exception, a log record or repr().
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp
from yarl import URL

log = logging.getLogger("scanner.mexc_rest")

# MEXC error codes (mexc-api.md §4.2) in the words a trader needs to decide what to do next.
PLAIN_WORDS: dict[int, str] = {
    400: "the API key is missing: set MEXC_KEY",
    401: "MEXC refused the API key: check MEXC_KEY / MEXC_SECRET",
    602: "the API signature was refused: check MEXC_KEY / MEXC_SECRET",
    10007: "this pair can't be traded through the API",
    10072: "the API key is not valid: check MEXC_KEY",
    10073: "MEXC refused our request time (is the server clock right?)",
    10101: "insufficient balance",
    30000: "trading is suspended for this pair",
    30002: "the stake is below the pair's minimum order",
    30003: "the stake is above the pair's maximum order",
    30010: "MEXC has no valid trade price for this pair right now",
    30014: "MEXC does not know this pair",
    30016: "trading is disabled for this pair",
    30018: "market orders are disabled for this pair",
    30019: "market orders through the API are disabled for this pair",
    30020: "this account has no permission to trade this pair",
    30021: "MEXC does not know this pair",
    30027: "buying is suspended: the maximum position is reached",
    30051: "market orders through the API are disabled for this pair",
    700001: "the API key has the wrong format: check MEXC_KEY",
    700002: "the API signature was refused: check MEXC_KEY / MEXC_SECRET",
    700003: "the server clock and MEXC's disagree (timestamp outside recvWindow)",
    700006: "this server's IP is not on the API key's whitelist",
    700007: "the API key lacks the permission for this (enable spot trading on the key)",
    -2010: "MEXC already has an order with this client id",
    -2011: "MEXC does not know this order",
}

_MAX_RETRY_AFTER_S = 3 * 24 * 3600.0  # MEXC bans grow to 3 days; anything longer is a broken header


class MexcError(Exception):
    """Any failed MEXC call, in plain words.

    status: HTTP status, 0 when MEXC did not answer at all. code: MEXC's error code when the body
    carried one. outcome_unknown: True when MEXC may have acted anyway (5xx, no answer, an
    unreadable 2xx body) — for an order that means "query it before doing anything else".
    retry_after: seconds to stay away (429/418).
    """

    def __init__(self, status: int, code: int | None, message: str, *, retry_after: float | None = None,
                 outcome_unknown: bool | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.outcome_unknown = (status == 0 or status >= 500) if outcome_unknown is None else outcome_unknown

    @property
    def rate_limited(self) -> bool:
        return self.status in (429, 418)


def sign(secret: str, total_params: str) -> str:
    """MEXC signature: lowercase hex HMAC-SHA256(secret, queryString + body)."""
    return hmac.new(secret.encode(), total_params.encode(), hashlib.sha256).hexdigest()


def parse_retry_after(value: str | None, default: float) -> float:
    """Retry-After in seconds, clamped to [1 s, 3 days]; a missing or odd header gives default."""
    try:
        seconds = float(value) if value is not None else default
    except ValueError:
        seconds = default
    if seconds != seconds:  # NaN
        seconds = default
    return min(max(seconds, 1.0), _MAX_RETRY_AFTER_S)


def _short(body: bytes) -> str:
    text = body[:60].decode("utf-8", "replace")
    return repr(text) + ("…" if len(body) > 60 else "")


class MexcRest:
    """MEXC spot REST over aiohttp: public GETs and signed calls, one MexcError type for failures.

    All parameters travel in the query string (allowed for POST too, §4.1), so what is signed is
    byte for byte what is sent.
    """

    def __init__(self, base_url: str, api_key: str = "", api_secret: str = "", recv_window_ms: int = 5000,
                 timeout_s: float = 10.0, clock_ms: Callable[[], int] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        if not 0 < recv_window_ms < 60000:
            raise ValueError(f"recv_window_ms: got {recv_window_ms}, expected 1..59999 (MEXC refuses >= 60000)")
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._secret = api_secret
        self.recv_window_ms = recv_window_ms
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._monotonic = monotonic
        self._offset_ms = 0  # MEXC server time minus ours, learned after a 700003
        self._paused_until = 0.0
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"MexcRest({self.base_url!r}, key={'set' if self._key else 'unset'})"

    @property
    def has_keys(self) -> bool:
        return bool(self._key and self._secret)

    def paused_for(self) -> float:
        """Seconds left of a 429/418 pause (0 when calls may go out)."""
        return max(0.0, self._paused_until - self._monotonic())

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """Public GET; parsed JSON or MexcError."""
        return await self.request("GET", path, params)

    async def signed(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        """Signed call (timestamp, recvWindow, signature); one retry after a clock-skew refusal."""
        try:
            return await self.request(method, path, params, signed=True)
        except MexcError as exc:
            if exc.code != 700003:
                raise
        # 700003 means MEXC rejected the request unexecuted: safe to fix the clock and resend.
        await self._sync_clock()
        return await self.request(method, path, params, signed=True)

    async def _sync_clock(self) -> None:
        before = self._clock_ms()
        data = await self.get("/api/v3/time")
        after = self._clock_ms()
        try:
            server = int(data["serverTime"])
        except (KeyError, TypeError, ValueError):
            raise MexcError(502, None, "MEXC sent a server time we cannot read") from None
        self._offset_ms = server - (before + after) // 2
        log.info("clock offset to MEXC learned", extra={"offset_ms": self._offset_ms})

    async def request(self, method: str, path: str, params: dict[str, Any] | None = None, signed: bool = False) -> Any:
        """One HTTP call; returns parsed JSON or raises MexcError (never anything else)."""
        wait = self.paused_for()
        if wait > 0:
            raise MexcError(429, None, f"MEXC rate limit: wait {wait:.0f} s before trying again", retry_after=wait,
                            outcome_unknown=False)  # fmt: skip
        query_params = {k: v for k, v in (params or {}).items() if v is not None}
        headers = {"Content-Type": "application/json"}
        if signed:
            if not self.has_keys:
                raise MexcError(400, 400, "no API keys: set MEXC_KEY and MEXC_SECRET", outcome_unknown=False)
            query_params["recvWindow"] = self.recv_window_ms
            query_params["timestamp"] = self._clock_ms() + self._offset_ms
            query = urlencode(query_params)
            query += "&signature=" + sign(self._secret, query)
            headers["X-MEXC-APIKEY"] = self._key
        else:
            query = urlencode(query_params)
        url = URL(f"{self.base_url}{path}" + (f"?{query}" if query else ""), encoded=True)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.request(method, url, headers=headers) as resp:
                status = resp.status
                retry_header = resp.headers.get("Retry-After")
                body = await resp.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise MexcError(0, None, f"no answer from MEXC ({type(exc).__name__})") from None
        return self._decode(method, path, status, retry_header, body)

    def _decode(self, method: str, path: str, status: int, retry_header: str | None, body: bytes) -> Any:
        if status in (429, 418):
            seconds = parse_retry_after(retry_header, 120.0 if status == 418 else 10.0)
            self._paused_until = max(self._paused_until, self._monotonic() + seconds)
            what = "MEXC banned this IP for a while" if status == 418 else "MEXC rate limit"
            log.warning("mexc throttled", extra={"endpoint": path, "status": status, "retry_after_s": seconds})
            raise MexcError(status, status, f"{what}: wait {seconds:.0f} s before trying again", retry_after=seconds,
                            outcome_unknown=False)  # fmt: skip
        try:
            data = json.loads(body) if body.strip() else None
        except ValueError:
            data = _UNREADABLE
        if data is _UNREADABLE or (data is None and status < 300 and method != "GET"):
            # A 2xx we cannot read may still be an executed order; a 4xx without a body was refused.
            raise MexcError(status, None, f"MEXC answered HTTP {status} with something that is not JSON ({_short(body)})",
                            outcome_unknown=status < 300 or status >= 500)  # fmt: skip
        code = data.get("code") if isinstance(data, dict) else None
        is_error_body = isinstance(code, int) and not isinstance(code, bool) and code not in (0, 200) and "msg" in data
        if status >= 300 or is_error_body:
            raise MexcError(status, code if isinstance(code, int) else None, _plain(status, code, data))
        return data

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


_UNREADABLE = object()


def _plain(status: int, code: Any, data: Any) -> str:
    msg = data.get("msg") if isinstance(data, dict) else None
    if isinstance(code, int) and code in PLAIN_WORDS:
        return PLAIN_WORDS[code]
    if status >= 500:
        return f"MEXC had an internal error (HTTP {status}); the outcome is unknown"
    detail = str(msg)[:160] if msg else f"HTTP {status}"
    return f"MEXC refused: {detail}" + (f" (code {code})" if isinstance(code, int) else "")


__all__ = ["MexcError", "MexcRest", "PLAIN_WORDS", "parse_retry_after", "sign"]
