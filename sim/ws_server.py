"""The emulator's WebSocket side: MEXC spot V3 protobuf pushes and JSON control messages.

What it reproduces (mexc-api.md §1, §7): binary PushDataV3ApiWrapper frames (channel 1, symbol 3,
sendTime 6, never createTime); JSON text acks exactly as MEXC writes them, including the refusal
that still says "code": 0; at most 30 subscriptions per connection, further ones acked but never
fed ("silently dead", as measured live); disconnects after 30 s without a subscription, 60 s
without data flow and more than 100 client messages in one second; a lifetime limit.

Choices where MEXC is UNCONFIRMED (documented in sim/README.md): a request mixing good and bad
channels is answered with a success ack for the good ones and a separate refusal for the bad;
unparseable client text gets {"id":0,"code":-1,"msg":"Invalid message"}.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from sim.faults import Faults
from sim.market import Market, PairUpdate
from sim.proto import mexc_push_pb2 as pb

log = logging.getLogger("sim.ws")

_CHANNEL = re.compile(
    r"^spot@public\.(?:"
    r"(?P<aggre>aggre\.(?:deals|depth|bookTicker))\.v3\.api\.pb@(?:100ms|10ms)@(?P<sym1>[A-Z0-9]+)"
    r"|limit\.depth\.v3\.api\.pb@(?P<sym2>[A-Z0-9]+)@(?P<levels>5|10|20)"
    r"|kline\.v3\.api\.pb@(?P<sym3>[A-Z0-9]+)@(?P<interval>Min1|Min5|Min15|Min30|Min60|Hour4|Hour8|Day1|Week1|Month1)"
    r"|miniTickers\.v3\.api\.pb@(?P<tz>UTC[+-]\d{1,2}(?::\d{2})?|24H)"
    r")$"
)
REFUSAL = "Not Subscribed successfully! [{}].  Reason\uff1a Blocked! "


@dataclass
class Limits:
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


@dataclass(frozen=True)
class ParsedChannel:
    kind: str  # deals, depth, bookTicker, limit, kline, minitickers
    symbol: str | None
    levels: int = 0


def parse_channel(channel: str) -> ParsedChannel | None:
    m = _CHANNEL.match(channel)
    if not m:
        return None
    if m.group("aggre"):
        return ParsedChannel(m.group("aggre").split(".")[1], m.group("sym1"))
    if m.group("sym2"):
        return ParsedChannel("limit", m.group("sym2"), int(m.group("levels")))
    if m.group("sym3"):
        return ParsedChannel("kline", m.group("sym3"))
    return ParsedChannel("minitickers", None)


class WsEmulator:
    """Connections, subscriptions and the fan-out of each market step."""

    def __init__(self, market: Market, faults: Faults, limits: Limits) -> None:
        self.market = market
        self.faults = faults
        self.limits = limits
        self.connections: dict[int, Connection] = {}
        self.subscribers: dict[str, set[int]] = {}
        self._next_id = 1
        self.frames_sent = 0
        self.bytes_sent = 0
        self.closed: list[dict[str, Any]] = []

    # --- server side of one connection -------------------------------------------------------------

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Connection(self._next_id, ws, time.monotonic())
        conn.last_data = conn.opened
        self._next_id += 1
        self.connections[conn.conn_id] = conn
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_text(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await self._send_text(conn, {"id": 0, "code": -1, "msg": "Invalid message"})
                if conn.close_reason:
                    break
        finally:
            self._forget(conn)
        return ws

    async def _on_text(self, conn: Connection, text: str) -> None:
        now = time.monotonic()
        conn.msg_times.append(now)
        while conn.msg_times and conn.msg_times[0] < now - 1.0:
            conn.msg_times.popleft()
        if len(conn.msg_times) > self.limits.max_client_msg_per_s:
            await self.close(conn, "client message rate")
            return
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("method"), str):
            await self._send_text(conn, {"id": 0, "code": -1, "msg": "Invalid message"})
            return
        req_id = data.get("id") if isinstance(data.get("id"), int) else 0
        method = data["method"].upper()
        if method == "PING":
            conn.last_data = now
            await self._send_text(conn, {"id": req_id, "code": 0, "msg": "PONG"})
            return
        params = data.get("params")
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
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
                    self.subscribers.get(channel, set()).discard(conn.conn_id)
                if channel in conn.dead:
                    conn.dead.remove(channel)
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

    async def _send_text(self, conn: Connection, payload: dict[str, Any]) -> None:
        if not conn.ws.closed:
            await conn.ws.send_str(json.dumps(payload, separators=(",", ":"), ensure_ascii=False))

    def _forget(self, conn: Connection) -> None:
        for channel in conn.live:
            self.subscribers.get(channel, set()).discard(conn.conn_id)
        if self.connections.pop(conn.conn_id, None) is not None:
            self.closed.append({"id": conn.conn_id, "reason": conn.close_reason or "client closed"})
            del self.closed[:-200]

    async def close(self, conn: Connection, reason: str) -> None:
        conn.close_reason = reason
        self._forget(conn)
        await conn.ws.close()

    # --- the clock's fan-out ---------------------------------------------------------------------

    def publish(self, updates: list[PairUpdate], now_ms: int) -> None:
        """Encode each update once per subscribed channel and queue it to every subscriber."""
        for update in updates:
            symbol = update.symbol
            if update.trades:
                for interval in ("100ms", "10ms"):
                    channel = f"spot@public.aggre.deals.v3.api.pb@{interval}@{symbol}"
                    if self.subscribers.get(channel):
                        self._fanout(channel, symbol, self._deals_frame(channel, update))
            if update.depth is not None:
                gap = self.faults.take_depth_gap(symbol)
                for interval in ("100ms", "10ms"):
                    channel = f"spot@public.aggre.depth.v3.api.pb@{interval}@{symbol}"
                    if self.subscribers.get(channel) and not gap:
                        self._fanout(channel, symbol, self._depth_frame(channel, update))
                for interval in ("100ms", "10ms"):
                    channel = f"spot@public.aggre.bookTicker.v3.api.pb@{interval}@{symbol}"
                    if self.subscribers.get(channel):
                        self._fanout(channel, symbol, self._book_ticker_frame(channel, symbol, update.window_end_ms))
                for levels in (5, 10, 20):
                    channel = f"spot@public.limit.depth.v3.api.pb@{symbol}@{levels}"
                    if self.subscribers.get(channel):
                        self._fanout(channel, symbol, self._limit_frame(channel, symbol, levels, update.window_end_ms))

    def _fanout(self, channel: str, symbol: str, frame: bytes) -> None:
        now = time.monotonic()
        for conn_id in list(self.subscribers.get(channel, ())):
            conn = self.connections.get(conn_id)
            if conn is None or conn.ws.closed or now < conn.stalled_until:
                continue
            payload = self.faults.maybe_corrupt(symbol, frame)
            asyncio.ensure_future(self._send_bytes(conn, payload))
            conn.last_data = now
            conn.frames_sent += 1
            conn.bytes_sent += len(payload)
            self.frames_sent += 1
            self.bytes_sent += len(payload)

    @staticmethod
    async def _send_bytes(conn: Connection, payload: bytes) -> None:
        try:
            await conn.ws.send_bytes(payload)
        except (ConnectionError, RuntimeError):
            pass

    def _wrapper(self, channel: str, symbol: str, send_time: int) -> pb.PushDataV3ApiWrapper:
        return pb.PushDataV3ApiWrapper(channel=channel, symbol=symbol, sendTime=send_time)

    def _deals_frame(self, channel: str, update: PairUpdate) -> bytes:
        w = self._wrapper(channel, update.symbol, update.window_end_ms)
        body = w.publicAggreDeals
        body.eventType = channel.split("@", 2)[1] + "@" + channel.split("@")[2]
        fp, fq = self.market.fmt_price, self.market.fmt_qty
        for n, t in enumerate(update.trades):
            body.deals.add(price=fp(update.symbol, t.price), quantity=fq(update.symbol, t.qty), tradeType=t.side, time=t.time_ms,
                           tradeId=f"{t.time_ms}{n:03d}X0")  # fmt: skip
        return w.SerializeToString()

    def _depth_frame(self, channel: str, update: PairUpdate) -> bytes:
        assert update.depth is not None
        w = self._wrapper(channel, update.symbol, update.window_end_ms)
        body = w.publicAggreDepths
        fp, fq = self.market.fmt_price, self.market.fmt_qty
        for p, q in update.depth.asks:
            body.asks.add(price=fp(update.symbol, p), quantity=fq(update.symbol, q))
        for p, q in update.depth.bids:
            body.bids.add(price=fp(update.symbol, p), quantity=fq(update.symbol, q))
        body.eventType = "spot@public.aggre.depth.v3.api.pb"
        body.fromVersion = str(update.depth.from_version)
        body.toVersion = str(update.depth.to_version)
        return w.SerializeToString()

    def _book_ticker_frame(self, channel: str, symbol: str, send_time: int) -> bytes:
        bid, bq, ask, aq = self.market.best_bid_ask(symbol)
        w = self._wrapper(channel, symbol, send_time)
        fp, fq = self.market.fmt_price, self.market.fmt_qty
        b = w.publicAggreBookTicker
        b.bidPrice, b.bidQuantity, b.askPrice, b.askQuantity = fp(symbol, bid), fq(symbol, bq), fp(symbol, ask), fq(symbol, aq)
        b.version = str(self.market.depth_snapshot(symbol, 1)[0])
        return w.SerializeToString()

    def _limit_frame(self, channel: str, symbol: str, levels: int, send_time: int) -> bytes:
        version, bids, asks = self.market.depth_snapshot(symbol, levels)
        w = self._wrapper(channel, symbol, send_time)
        fp, fq = self.market.fmt_price, self.market.fmt_qty
        body = w.publicLimitDepths
        for p, q in asks:
            body.asks.add(price=fp(symbol, p), quantity=fq(symbol, q))
        for p, q in bids:
            body.bids.add(price=fp(symbol, p), quantity=fq(symbol, q))
        body.eventType = "spot@public.limit.depth.v3.api.pb"
        body.version = str(version)
        return w.SerializeToString()

    def publish_slow_channels(self, now_ms: int, second: int) -> None:
        """Kline every second, miniTickers every 3 s (only pairs whose price changed are MEXC's rule;
        here: every subscribed symbol's current state)."""
        for channel, subs in list(self.subscribers.items()):
            if not subs:
                continue
            parsed = parse_channel(channel)
            if parsed is None:
                continue
            if parsed.kind == "kline" and parsed.symbol:
                rows = self.market.klines(parsed.symbol, "1m", None, None, 1)
                if not rows:
                    continue
                r = rows[-1]
                w = self._wrapper(channel, parsed.symbol, now_ms)
                k = w.publicSpotKline
                k.interval, k.windowStart, k.windowEnd = "Min1", r[0] // 1000, (r[6] + 1) // 1000
                k.openingPrice, k.highestPrice, k.lowestPrice, k.closingPrice, k.volume, k.amount = r[1], r[2], r[3], r[4], r[5], r[7]
                self._fanout(channel, parsed.symbol, w.SerializeToString())
            elif parsed.kind == "minitickers" and second % 3 == 0:
                w = pb.PushDataV3ApiWrapper(channel=channel, sendTime=now_ms)
                for spec in self.market.symbols[:500]:
                    if spec.status == "1":
                        w.publicMiniTickers.items.add(symbol=spec.symbol, price=self.market.fmt_price(spec.symbol, self.market.last_price(spec.symbol)))
                self._fanout(channel, "", w.SerializeToString())

    async def enforce_limits(self) -> None:
        """Idle and lifetime disconnects, as MEXC does them."""
        now = time.monotonic()
        for conn in list(self.connections.values()):
            if not conn.live and not conn.dead and now - max(conn.opened, conn.last_sub) > self.limits.no_sub_timeout_s:
                await self.close(conn, "no subscription")
            elif now - conn.last_data > self.limits.no_data_timeout_s:
                await self.close(conn, "no data")
            elif now - conn.opened > self.limits.max_conn_life_s:
                await self.close(conn, "lifetime")

    def state(self) -> dict[str, Any]:
        return {
            "connections": [
                {"id": c.conn_id, "subscriptions": list(c.live), "dead_subscriptions": list(c.dead), "frames_sent": c.frames_sent,
                 "bytes_sent": c.bytes_sent}  # fmt: skip
                for c in self.connections.values()
            ],
            "frames_sent": self.frames_sent,
            "bytes_sent": self.bytes_sent,
            "closed": list(self.closed),
        }
