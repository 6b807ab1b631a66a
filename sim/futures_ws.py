"""The futures WebSocket (`/edge`, like wss://contract.mexc.com/edge): JSON text in both directions.

What it reproduces (mexc-api.md §5.1): `{"method":"sub.<x>","param":{...}}` answered with
`{"channel":"rs.sub.<x>","data":"success","ts":…}` (no symbol in the ack); an unknown contract
with `{"channel":"rs.error","data":"Contract [NOPE_USDT] not exists","ts":…}` (the 2026 live
wording); an unknown method with no answer at all; `{"method":"ping"}` with
`{"channel":"pong","data":<ms>}`; and the close 60 s after the last client ping even while data
flows, preceded by `{"channel":"rs.error","data":"more than 60 seconds no response, close the channel"}`.
Every frame is TEXT (no gzip, as measured live); `gzip` and `compress` params are accepted and
ignored. Unsubscribing is `unsub.<x>`; `usub.depth.full` (the docs' spelling) works too.

Cadences on exchange time: push.deal every 200 ms step with trades, push.depth and
push.depth.full every step the book changed, push.fair.price / push.index.price /
push.funding.rate when the value changed (index and fair move once a second), push.ticker once a
second for a contract that traded in that second, push.tickers (every contract) every 2 s.
Each push is encoded once and the same text is queued to every subscriber; one writer task per
connection drains its queue, so a slow client cannot stall the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from sim.futures_market import SECOND_MS, FuturesMarket, FuturesStep
from sim.outbox import kick_writers

TICKERS_EVERY_MS = 2000
DEPTH_LIMITS = (5, 10, 20)
# sub.<x> channels and whether they take a symbol
CHANNELS = {"tickers": False, "ticker": True, "deal": True, "depth": True, "depth.full": True, "fair.price": True,
            "index.price": True, "funding.rate": True}  # fmt: skip
Key = tuple[str, int, int]  # (channel, contract index or -1, depth.full limit or 0)


@dataclass
class FuturesConnection:
    conn_id: int
    ws: web.WebSocketResponse
    opened: float
    last_ping: float
    subs: set[Key] = field(default_factory=set)
    outbox: deque[str] = field(default_factory=deque)
    writer: asyncio.Task[None] | None = None
    frames_sent: int = 0
    close_reason: str = ""


def _dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


class FuturesWs:
    """Connections, subscriptions and the fan-out of each futures step; see the module docstring."""

    def __init__(self, market: FuturesMarket, ping_timeout_s: float = 60.0) -> None:
        self.market = market
        self.ping_timeout_s = ping_timeout_s
        self.connections: dict[int, FuturesConnection] = {}
        self.subscribers: dict[Key, set[int]] = {}
        self._next_id = 1
        self._traded: set[int] = set()  # contracts that traded since the last whole second
        self._last_tickers_ms = -(10**18)
        self._last_funding: dict[int, float] = {}
        self.frames_sent = 0
        self.handshakes_abandoned = 0
        self.frames_encoded = 0
        self.closed: list[dict[str, Any]] = []

    # --- one connection --------------------------------------------------------------------------------

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20, timeout=2.0)
        try:
            await ws.prepare(request)
        except ConnectionError:  # the client gave up before the handshake's answer (an overloaded run): nothing to serve
            self.handshakes_abandoned += 1
            return ws
        now = time.monotonic()
        conn = FuturesConnection(self._next_id, ws, now, now)
        self._next_id += 1
        self.connections[conn.conn_id] = conn
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_text(conn, msg.data)
                if conn.close_reason:
                    break
        finally:
            self._forget(conn)
        return ws

    async def _on_text(self, conn: FuturesConnection, text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:
            return  # UNCONFIRMED: garbage gets no answer, like an unknown method
        if not isinstance(data, dict) or not isinstance(data.get("method"), str):
            return
        method: str = data["method"]
        now_ms = self.market.now_ms()
        if method == "ping":
            conn.last_ping = time.monotonic()
            await self._send(conn, {"channel": "pong", "data": now_ms})
            return
        action, _, name = method.partition(".")
        if action not in ("sub", "unsub", "usub") or name not in CHANNELS or (action == "usub" and name != "depth.full"):
            return  # mexc-api.md §5.1: an unknown method gets no answer
        param = data.get("param")
        param = param if isinstance(param, dict) else {}
        key, error = self._key(name, param)
        if error:
            await self._send(conn, {"channel": "rs.error", "data": error, "ts": now_ms})
            return
        assert key is not None
        if action == "sub":
            conn.subs.add(key)
            self.subscribers.setdefault(key, set()).add(conn.conn_id)
        else:
            self._drop_sub(conn, key)
        self._rewatch()
        await self._send(conn, {"channel": f"rs.{method}", "data": "success", "ts": now_ms})

    def _key(self, name: str, param: dict[str, Any]) -> tuple[Key | None, str]:
        if not CHANNELS[name]:
            return (name, -1, 0), ""
        symbol = param.get("symbol")
        i = self.market.index_of(symbol) if isinstance(symbol, str) else None
        if i is None:
            return None, f"Contract [{symbol if isinstance(symbol, str) else ''}] not exists"
        limit = 0
        if name == "depth.full":
            limit = param.get("limit", 20)
            if limit not in DEPTH_LIMITS or isinstance(limit, bool):
                return None, f"limit [{limit}] not supported, use 5, 10 or 20"  # UNCONFIRMED wording
        return (name, i, int(limit)), ""

    def _drop_sub(self, conn: FuturesConnection, key: Key) -> None:
        conn.subs.discard(key)
        subs = self.subscribers.get(key)
        if subs is not None:
            subs.discard(conn.conn_id)
            if not subs:
                del self.subscribers[key]

    def _rewatch(self) -> None:
        """Tell the market whose book diffs to compute (only watched books cost Python work)."""
        self.market.watched = {k[1] for k in self.subscribers if k[0] in ("depth", "depth.full")}

    async def _send(self, conn: FuturesConnection, payload: dict[str, Any]) -> None:
        if conn.ws.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await conn.ws.send_str(_dumps(payload))

    def _forget(self, conn: FuturesConnection) -> None:
        for key in list(conn.subs):
            self._drop_sub(conn, key)
        self._rewatch()
        conn.outbox.clear()
        if self.connections.pop(conn.conn_id, None) is not None:
            self.closed.append({"id": conn.conn_id, "reason": conn.close_reason or "client closed"})
            del self.closed[:-200]

    async def close(self, conn: FuturesConnection, reason: str, notice: str | None = None) -> None:
        """Close from the server side, with an optional rs.error notice first."""
        conn.close_reason = reason
        if notice is not None:
            await self._send(conn, {"channel": "rs.error", "data": notice})
        self._forget(conn)
        with contextlib.suppress(Exception):
            await conn.ws.close()

    async def enforce_limits(self) -> None:
        """The heartbeat rule: no client ping for ping_timeout_s closes the socket, streaming or not."""
        now = time.monotonic()
        for conn in list(self.connections.values()):
            if not conn.close_reason and now - conn.last_ping > self.ping_timeout_s:
                await self.close(conn, "no ping", f"more than {self.ping_timeout_s:g} seconds no response, close the channel")

    # --- the clock's fan-out -------------------------------------------------------------------------

    def publish(self, step: FuturesStep) -> None:
        """Queue one step's pushes to their subscribers."""
        m, ts, subs = self.market, step.ts_ms, self.subscribers
        symbols = m.contracts
        for i, deals in step.trades.items():
            self._traded.add(i)
            if ("deal", i, 0) in subs:
                self._fanout(("deal", i, 0), {"channel": "push.deal", "data": deals, "symbol": symbols[i].symbol, "ts": ts})
        for i, (version, asks, bids) in step.depth.items():
            sym = symbols[i].symbol
            if ("depth", i, 0) in subs:
                self._fanout(("depth", i, 0), {"channel": "push.depth", "data": {"asks": asks, "bids": bids, "version": version}, "symbol": sym, "ts": ts})
            full = step.full[i]
            for limit in DEPTH_LIMITS:
                if ("depth.full", i, limit) in subs:
                    data = {"asks": full[1][:limit], "bids": full[2][:limit], "version": version}
                    self._fanout(("depth.full", i, limit), {"channel": "push.depth.full", "data": data, "symbol": sym, "ts": ts})
        if step.second:
            self._publish_second(step)
        self._kick_writers()

    def _publish_second(self, step: FuturesStep) -> None:
        m, ts, subs = self.market, step.ts_ms, self.subscribers
        for name, changed, values in (("fair.price", step.fair_changed, m.fair_r), ("index.price", step.index_changed, m.index_r)):
            for i in changed:
                if (name, i, 0) in subs:
                    sym = m.contracts[i].symbol
                    self._fanout((name, i, 0), {"channel": f"push.{name}", "data": {"symbol": sym, "price": float(values[i])}, "symbol": sym, "ts": ts})
        for key in [k for k in subs if k[0] == "funding.rate"]:
            i = key[1]
            rate = round(float(m.funding[i]), 6)
            if self._last_funding.get(i) != rate:
                self._last_funding[i] = rate
                sym = m.contracts[i].symbol
                cycle = int(m.cycle_ms[i])
                data = {"symbol": sym, "rate": rate, "nextSettleTime": ts - ts % cycle + cycle}
                self._fanout(key, {"channel": "push.funding.rate", "data": data, "symbol": sym, "ts": ts})
        for i in self._traded:
            if ("ticker", i, 0) in subs:
                self._fanout(("ticker", i, 0), {"channel": "push.ticker", "data": m.ticker(i), "symbol": m.contracts[i].symbol, "ts": ts})
        self._traded.clear()
        if ("tickers", -1, 0) in subs and ts - self._last_tickers_ms >= TICKERS_EVERY_MS and ts % TICKERS_EVERY_MS < SECOND_MS:
            self._last_tickers_ms = ts
            self._fanout(("tickers", -1, 0), {"channel": "push.tickers", "data": [m.ticker_brief(i) for i in range(m.n)], "ts": ts})

    def _fanout(self, key: Key, payload: dict[str, Any]) -> None:
        text = _dumps(payload)
        self.frames_encoded += 1
        for conn_id in self.subscribers.get(key, ()):
            conn = self.connections.get(conn_id)
            if conn is None or conn.close_reason:
                continue
            conn.outbox.append(text)
            conn.frames_sent += 1
            self.frames_sent += 1

    def _kick_writers(self) -> None:
        kick_writers(self.connections.values(), self.close, binary=False)

    def state(self) -> dict[str, Any]:
        def name(key: Key) -> str:
            sym = "" if key[1] < 0 else f"@{self.market.contracts[key[1]].symbol}"
            return f"{key[0]}{sym}" + (f"@{key[2]}" if key[2] else "")

        conns = [{"id": c.conn_id, "subscriptions": sorted(name(k) for k in c.subs), "frames_sent": c.frames_sent,
                  "queued": len(c.outbox)} for c in self.connections.values()]  # fmt: skip
        return {"connections": conns, "links": len(conns), "frames_sent": self.frames_sent,
                "frames_encoded": self.frames_encoded, "closed": list(self.closed)}  # fmt: skip
