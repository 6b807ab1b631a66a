"""The emulator's WebSocket side: MEXC spot V3 protobuf pushes and JSON control messages.

What it reproduces (mexc-api.md §1, §7): binary PushDataV3ApiWrapper frames (channel 1, symbol 3,
sendTime 6, never createTime); JSON text acks exactly as MEXC writes them, including the refusal
that still says "code": 0; at most 30 subscriptions per connection, further ones acked but never
fed ("silently dead", as measured live); disconnects after 30 s without a subscription, 60 s
without data flow and more than 100 client messages in one second; a lifetime limit.

Choices where MEXC is UNCONFIRMED (documented in sim/README.md): a request mixing good and bad
channels is answered with a success ack for the good ones and a separate refusal for the bad;
unparseable client text gets {"id":0,"code":-1,"msg":"Invalid message"}.

Each frame is encoded once per (channel, update) (sim/frames.py; the channel grammar is
sim/channels.py) and the same bytes are queued to every subscriber; one writer task per connection drains its queue, so a slow client cannot stall the
clock and the cost of sending stays proportional to frames, not to tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from sim.channels import parse_channel
from sim.faults import Faults
from sim.frames import FrameEncoder
from sim.market import Market
from sim.outbox import kick_writers
from sim.updates import PairUpdate

if TYPE_CHECKING:
    from sim.proto.mexc_push_pb2 import PublicMiniTickerV3Api

log = logging.getLogger("sim.ws")

REFUSAL = "Not Subscribed successfully! [{}].  Reason\uff1a Blocked! "
INVALID = {"id": 0, "code": -1, "msg": "Invalid message"}


@dataclass
class Limits:
    """MEXC's per-connection limits (mexc-api.md §1.3); every one is configurable so tests run fast."""

    max_streams_per_conn: int = 30
    no_sub_timeout_s: float = 30.0
    no_data_timeout_s: float = 60.0
    max_client_msg_per_s: int = 100
    max_conn_life_s: float = 86_400.0


@dataclass
class Connection:
    conn_id: int
    ws: web.WebSocketResponse
    opened: float
    live: list[str] = field(default_factory=list)  # fed channels, in subscription order
    dead: list[str] = field(default_factory=list)  # acked past the limit, never fed
    last_data: float = 0.0
    last_sub: float = 0.0
    msg_times: deque[float] = field(default_factory=deque)
    frames_sent: int = 0
    bytes_sent: int = 0
    stalled_until: float = 0.0
    close_reason: str = ""
    outbox: deque[bytes] = field(default_factory=deque)
    writer: asyncio.Task[None] | None = None


class WsEmulator:
    """Connections, subscriptions and the fan-out of each market step."""

    def __init__(self, market: Market, faults: Faults, limits: Limits) -> None:
        self.market = market
        self.frames = FrameEncoder(market)
        self.faults = faults
        self.limits = limits
        self.connections: dict[int, Connection] = {}
        self.subscribers: dict[str, set[int]] = {}
        self._next_id = 1
        self.frames_sent = 0
        self.handshakes_abandoned = 0
        self.bytes_sent = 0
        self.frames_encoded = 0
        self.closed: list[dict[str, Any]] = []
        self.close_counts: dict[str, int] = {}
        self._last_bbo: dict[str, tuple[float, float, float, float]] = {}
        self._last_limit: dict[tuple[str, int], tuple[list[tuple[float, float]], list[tuple[float, float]]]] = {}
        self._mini_last: dict[str, float] = {}
        self._mini_cache: dict[str, dict[str, Any]] = {}
        self._mini_cursor = 0
        self._mini_last_ms = -(10**18)

    # --- server side of one connection -------------------------------------------------------------

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        """One client: read control messages until it or a limit closes the connection."""
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20, timeout=2.0)  # timeout: close handshake
        try:
            await ws.prepare(request)
        except ConnectionError:  # the client gave up before the handshake's answer (an overloaded run): nothing to serve
            self.handshakes_abandoned += 1
            return ws
        conn = Connection(self._next_id, ws, time.monotonic())
        conn.last_data = conn.opened
        self._next_id += 1
        self.connections[conn.conn_id] = conn
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_text(conn, msg.data)
                elif msg.type == WSMsgType.BINARY and self._count_message(conn):
                    await self._send_text(conn, INVALID)
                if conn.close_reason:
                    await self.close(conn, conn.close_reason)
                    break
        finally:
            self._forget(conn)
        return ws

    def _count_message(self, conn: Connection) -> bool:
        """Record one client message; False (and close) past MEXC's 100 messages per second."""
        now = time.monotonic()
        conn.msg_times.append(now)
        while conn.msg_times and conn.msg_times[0] < now - 1.0:
            conn.msg_times.popleft()
        if len(conn.msg_times) > self.limits.max_client_msg_per_s:
            conn.close_reason = "client message rate"  # the handler closes it
            return False
        return True

    async def _on_text(self, conn: Connection, text: str) -> None:
        if not self._count_message(conn):
            return
        now = time.monotonic()
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("method"), str):
            await self._send_text(conn, INVALID)
            return
        raw_id = data.get("id")
        req_id = raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) and raw_id >= 0 else 0
        method = data["method"].upper()
        if method == "PING":
            conn.last_data = now
            await self._send_text(conn, {"id": req_id, "code": 0, "msg": "PONG"})
            return
        params = data.get("params")
        if not isinstance(params, list) or not params or not all(isinstance(p, str) for p in params):
            await self._send_text(conn, {"id": req_id, "code": -1, "msg": "Invalid params"})
            return
        if method == "SUBSCRIPTION":
            good, bad = [], []
            for channel in params:
                (good if self._valid(channel) else bad).append(channel)
            for channel in good:
                if channel in conn.live or channel in conn.dead:
                    continue
                if len(conn.live) < self.limits.max_streams_per_conn:
                    conn.live.append(channel)
                    self.subscribers.setdefault(channel, set()).add(conn.conn_id)
                else:
                    conn.dead.append(channel)
            if good:
                conn.last_sub = now
                await self._send_text(conn, {"id": req_id, "code": 0, "msg": ",".join(good)})
            if bad:
                await self._send_text(conn, {"id": req_id, "code": 0, "msg": REFUSAL.format(",".join(bad))})
        elif method == "UNSUBSCRIPTION":
            for channel in params:
                if channel in conn.live:
                    conn.live.remove(channel)
                    self._unsubscribe(channel, conn.conn_id)
                if channel in conn.dead:
                    conn.dead.remove(channel)
            if not conn.live and not conn.dead:
                conn.last_sub = now  # the no-subscription timer starts again from here
            await self._send_text(conn, {"id": req_id, "code": 0, "msg": ",".join(params)})
        else:
            await self._send_text(conn, {"id": req_id, "code": -1, "msg": f"Unknown method {method}"})

    def _valid(self, channel: str) -> bool:
        parsed = parse_channel(channel)
        if parsed is None:
            return False  # JSON channels, legacy channels, malformed names: Blocked!
        if parsed.symbol is None:
            return True
        spec = self.market.spec(parsed.symbol)
        return spec is not None and spec.status == "1"

    def _unsubscribe(self, channel: str, conn_id: int) -> None:
        subs = self.subscribers.get(channel)
        if subs is not None:
            subs.discard(conn_id)
            if not subs:
                del self.subscribers[channel]

    async def _send_text(self, conn: Connection, payload: dict[str, Any]) -> None:
        if conn.ws.closed or time.monotonic() < conn.stalled_until:
            return  # a stalled link delivers nothing, replies included
        with contextlib.suppress(ConnectionError, RuntimeError):
            await conn.ws.send_str(json.dumps(payload, separators=(",", ":"), ensure_ascii=False))

    def _forget(self, conn: Connection) -> None:
        for channel in conn.live:
            self._unsubscribe(channel, conn.conn_id)
        conn.outbox.clear()
        if self.connections.pop(conn.conn_id, None) is not None:
            reason = conn.close_reason or "client closed"
            self.closed.append({"id": conn.conn_id, "reason": reason})
            self.close_counts[reason] = self.close_counts.get(reason, 0) + 1
            del self.closed[:-200]

    async def close(self, conn: Connection, reason: str) -> None:
        """Close from the server side, remembering why (visible in /_sim/state)."""
        conn.close_reason = reason
        self._forget(conn)
        with contextlib.suppress(Exception):
            await conn.ws.close()

    # --- the clock's fan-out ---------------------------------------------------------------------

    def publish(self, updates: list[PairUpdate], now_ms: int) -> None:
        """Encode each update once per subscribed channel and queue it to every subscriber."""
        subs = self.subscribers
        for update in updates:
            symbol = update.symbol
            if update.trades:
                for interval in ("100ms", "10ms"):
                    channel = f"spot@public.aggre.deals.v3.api.pb@{interval}@{symbol}"
                    if channel in subs:
                        self._fanout(channel, symbol, self.frames.deals(channel, update))
            if update.depth is None:
                continue
            gap = self.faults.take_depth_gap(symbol)
            for interval in ("100ms", "10ms"):
                channel = f"spot@public.aggre.depth.v3.api.pb@{interval}@{symbol}"
                if channel in subs and not gap:
                    self._fanout(channel, symbol, self.frames.depth(channel, update))
            bt = [c for c in (f"spot@public.aggre.bookTicker.v3.api.pb@{i}@{symbol}" for i in ("100ms", "10ms")) if c in subs]
            if bt:
                bbo = self.market.best_bid_ask(symbol)
                if bbo != self._last_bbo.get(symbol):
                    self._last_bbo[symbol] = bbo
                    for channel in bt:
                        self._fanout(channel, symbol, self.frames.book_ticker(channel, symbol, bbo, update.window_end_ms))
            for levels in (5, 10, 20):
                channel = f"spot@public.limit.depth.v3.api.pb@{symbol}@{levels}"
                if channel in subs:
                    version, bids, asks = self.market.depth_snapshot(symbol, levels)
                    if self._last_limit.get((symbol, levels)) != (bids, asks):
                        self._last_limit[(symbol, levels)] = (bids, asks)
                        self._fanout(channel, symbol, self.frames.limit_depth(channel, symbol, version, bids, asks, update.window_end_ms))
        self._kick_writers()

    def _fanout(self, channel: str, symbol: str, frame: bytes) -> None:
        now = time.monotonic()
        self.frames_encoded += 1
        for conn_id in self.subscribers.get(channel, ()):
            conn = self.connections.get(conn_id)
            if conn is None or conn.close_reason or now < conn.stalled_until:
                continue
            payload = self.faults.maybe_corrupt(symbol, frame)
            conn.outbox.append(payload)
            conn.last_data = now
            conn.frames_sent += 1
            conn.bytes_sent += len(payload)
            self.frames_sent += 1
            self.bytes_sent += len(payload)

    def _kick_writers(self) -> None:
        kick_writers(self.connections.values(), self.close, binary=True)

    # --- once a second: klines; every 3 s: miniTickers -----------------------------------------------

    def publish_slow_channels(self, now_ms: int, second: int) -> None:
        """Kline of every subscribed (pair, interval) each second; miniTickers every 3 s."""
        minis: list[tuple[str, str]] = []
        for channel in list(self.subscribers):
            parsed = parse_channel(channel)
            if parsed is None:
                continue
            if parsed.kind == "kline" and parsed.symbol:
                frame = self.frames.kline(channel, parsed.symbol, parsed.interval, now_ms)
                if frame is not None:
                    self._fanout(channel, parsed.symbol, frame)
            elif parsed.kind == "minitickers":
                minis.append((channel, parsed.interval))
        # Every 3 exchange seconds, even if a loaded clock skipped the exact second.
        if minis and now_ms - self._mini_last_ms >= 3000:
            self._mini_last_ms = now_ms - now_ms % 1000
            items = self._changed_minitickers()
            for channel, _tz in minis:
                if items:
                    self._fanout(channel, "", self.frames.mini_tickers(channel, items, now_ms))
        self._kick_writers()

    def _changed_minitickers(self) -> list[PublicMiniTickerV3Api]:
        """Only the pairs whose price changed since the last push (MEXC's rule, mexc-api.md §1.4).

        The 24 h figures come from a cache refreshed a slice at a time: ticker_24h costs milliseconds
        per pair and 2,000 pairs every 3 s would eat the emulator's CPU; price and rate stay live.
        """
        specs = [s for s in self.market.symbols if s.status == "1"]
        for k in range(min(64, len(specs))):
            spec = specs[(self._mini_cursor + k) % len(specs)]
            self._mini_cache[spec.symbol] = self.market.ticker_24h(spec.symbol)
        self._mini_cursor = (self._mini_cursor + 64) % max(1, len(specs))
        items = []
        for spec in specs:
            sym = spec.symbol
            price = self.market.last_price(sym)
            if self._mini_last.get(sym) == price:
                continue
            self._mini_last[sym] = price
            t = self._mini_cache.get(sym)
            if t is None:
                t = self._mini_cache[sym] = self.market.ticker_24h(sym)
            items.append(self.frames.mini_ticker(sym, price, t))
        return items

    # --- limits and observation -----------------------------------------------------------------------

    async def enforce_limits(self) -> None:
        """Idle and lifetime disconnects, as MEXC does them."""
        now = time.monotonic()
        lim = self.limits
        for conn in list(self.connections.values()):
            if conn.close_reason:
                continue
            if not conn.live and not conn.dead and now - max(conn.opened, conn.last_sub) > lim.no_sub_timeout_s:
                await self.close(conn, "no subscription")
            elif (conn.live or conn.dead) and now - conn.last_data > lim.no_data_timeout_s:
                await self.close(conn, "no data")
            elif now - conn.opened > lim.max_conn_life_s:
                await self.close(conn, "lifetime")

    def state(self) -> dict[str, Any]:
        """Everything a test needs to see what the server did (A-7: streams <= 30 x links)."""
        conns = [
            {"id": c.conn_id, "subscriptions": list(c.live), "dead_subscriptions": list(c.dead), "frames_sent": c.frames_sent,
             "bytes_sent": c.bytes_sent, "queued": len(c.outbox), "stalled": time.monotonic() < c.stalled_until}  # fmt: skip
            for c in self.connections.values()
        ]
        return {
            "connections": conns,
            "links": len(conns),
            "streams": sum(len(c["subscriptions"]) for c in conns),
            "dead_streams": sum(len(c["dead_subscriptions"]) for c in conns),
            "frames_sent": self.frames_sent,
            "frames_encoded": self.frames_encoded,
            "bytes_sent": self.bytes_sent,
            "closed": list(self.closed),
            "close_counts": dict(self.close_counts),
        }
