"""A synthetic MEXC feed fast enough to load the service at 50k frames/s on the same 2 cores.

Why not the emulator: its market simulation, protobuf encoding and per-frame aiohttp sends cost
~30-100 us of Python per frame (perf/bench_sim.py), so it saturates a core near 10-20k frames/s and
a 50k frames/s test would measure the emulator, not the service. Here every frame is joined from
pieces encoded once per pair at start-up (the wire format of sim/proto/mexc_push.proto, checked
against the protobuf classes by tests/test_perf_blast_feed.py) plus the current time and depth
versions, and each connection's frames of one tick leave in a single socket write.

What stays real: the emulator's REST side and its WebSocket control side (sim/server.py: the
same exchangeInfo, tickers, klines for seeding, subscription acks, the 30-streams limit); the
frames are aggregated deals and depth diffs of subscribed pairs, with strictly increasing deals
sendTime per pair and contiguous depth versions, so the shard decodes, dedups, applies and bars
every one as it would live. Depth snapshots (/api/v3/depth) come from the books this feed keeps,
so a resync lines up with its diffs. What is synthetic: prices do not trend (deals at the touch,
quantities change at fixed levels) and activity is spread evenly over the subscribed pairs. It
measures throughput, CPU and lag; detection is perf/eval_pumps.py's job.

    python -m perf.blast_feed --pairs 3000 --rate 50000     # prints {"ws": ..., "rest": ...}
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sim.encode import field_bytes, tag, varint
from sim.server import Emulator, EmulatorOptions, serve_until_stopped
from sim.ws_server import Limits

TICK_S = 0.02  # one batch per connection per tick
STREAM_PERIOD_S = 0.1  # at most one push per stream per 100 ms, as MEXC's aggregated streams
REBUILD_S = 0.5  # how often the rotation of subscribed streams is rebuilt
LEVELS = 20  # book levels per side the feed keeps and changes
MAX_BUFFER_BYTES = 8 << 20  # a connection whose socket backlog passes this is skipped (the reader is behind)
VERSION_BASE = 100_000_000_000  # 12-digit versions: every version string has the same length
DEALS_EVENT = "spot@public.aggre.deals.v3.api.pb@100ms"
DEPTH_EVENT = "spot@public.aggre.depth.v3.api.pb@100ms"


def ws_binary_header(length: int) -> bytes:
    """RFC 6455 header of one unmasked, unfragmented binary frame (server to client)."""
    if length < 126:
        return bytes((0x82, length))
    if length < 1 << 16:
        return b"\x82\x7e" + length.to_bytes(2, "big")
    return b"\x82\x7f" + length.to_bytes(8, "big")


_SEND_TIME = tag(6, 0)  # PushDataV3ApiWrapper.sendTime
_DEALS_BODY = tag(314, 2)  # PushDataV3ApiWrapper.publicAggreDeals
_DEPTH_BODY = tag(313, 2)  # PushDataV3ApiWrapper.publicAggreDepths
_DEAL_TIME = tag(4, 0)  # PublicAggreDealsV3ApiItem.time


TIME_VARINT_LEN = 6  # a millisecond timestamp between 2^35 (1971) and 2^42 (2109) is a 6-byte varint
VERSION_DIGITS = len(str(VERSION_BASE))


def _frame_pieces(head: bytes, body_tag: bytes, body_parts: list[bytes], holes: list[int]) -> list[bytes]:
    """Static pieces of one WebSocket frame whose protobuf body has fixed-size holes between body_parts.

    holes[i] is the byte size of the hole after body_parts[i] (the time varint or a version string);
    the frame's length and every length prefix are known now because the holes never change size.
    The wrapper's sendTime (a time hole) sits between head and body.
    """
    body_len = sum(map(len, body_parts)) + sum(holes)
    wrapper = head + _SEND_TIME  # then the time hole
    after = body_tag + varint(body_len)
    total = len(wrapper) + TIME_VARINT_LEN + len(after) + body_len
    return [ws_binary_header(total) + wrapper, after + body_parts[0], *body_parts[1:]]


@dataclass
class BlastPair:
    """One pair's frames as static pieces (joined with the time and versions per push) and its book."""

    symbol: str
    deals_channel: str
    depth_channel: str
    deals: list[list[bytes]]  # pieces of a deals push of 1-3 deals; joined with the time varint
    diffs: list[tuple[list[bytes], list[tuple[bool, str, str]]]]  # pieces of a diff, and the levels it sets
    bids: dict[str, str]
    asks: dict[str, str]
    version: int = VERSION_BASE
    last_deals_ms: int = 0
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def build(cls, symbol: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]], qty_fmt: Any, seed: int) -> BlastPair:
        rng = random.Random(seed)
        deals_channel = f"{DEALS_EVENT}@{symbol}"
        depth_channel = f"{DEPTH_EVENT}@{symbol}"
        head_deals = field_bytes(1, deals_channel.encode()) + field_bytes(3, symbol.encode())
        head_depth = field_bytes(1, depth_channel.encode()) + field_bytes(3, symbol.encode())
        deals = []
        for _ in range(32):
            parts = []
            for _ in range(rng.randint(1, 3)):
                buy = rng.random() < 0.5
                price = asks[0][0] if buy else bids[0][0]
                item = field_bytes(1, price.encode()) + field_bytes(2, qty_fmt(rng.uniform(0.5, 20.0)).encode())
                item += tag(3, 0) + varint(1 if buy else 2) + _DEAL_TIME
                parts.append(tag(1, 2) + varint(len(item) + TIME_VARINT_LEN) + item)  # then the deal's time
            tail = field_bytes(2, DEALS_EVENT.encode())
            # pieces: [header+wrapper head] time [body tag+len, item 1] time [item 2] time ... [eventType]
            pieces = _frame_pieces(head_deals, _DEALS_BODY, parts + [tail], [TIME_VARINT_LEN] * len(parts) + [0])
            deals.append(pieces)
        diffs = []
        for _ in range(64):
            changes = []
            for _ in range(rng.randint(1, 3)):
                is_bid = rng.random() < 0.5
                side = bids if is_bid else asks
                changes.append((is_bid, side[rng.randrange(len(side))][0], qty_fmt(rng.uniform(1.0, 500.0))))
            levels = b"".join(
                field_bytes(2 if is_bid else 1, field_bytes(1, p.encode()) + field_bytes(2, q.encode())) for is_bid, p, q in changes
            )
            digits = varint(VERSION_DIGITS)
            body = [levels + field_bytes(3, DEPTH_EVENT.encode()) + tag(4, 2) + digits, tag(5, 2) + digits]
            # pieces: [header+wrapper head] time [body tag+len, levels, eventType, fromVersion tag] from [toVersion tag] to
            diffs.append((_frame_pieces(head_depth, _DEPTH_BODY, body, [VERSION_DIGITS, VERSION_DIGITS]), changes))
        return cls(symbol, deals_channel, depth_channel, deals, diffs, dict(bids), dict(asks), rng=rng)

    def deals_frame(self, now_ms: int, now_varint: bytes) -> bytes | None:
        """The WebSocket frame of a deals push at now_ms; None if this pair already pushed deals at now_ms."""
        if now_ms <= self.last_deals_ms:
            return None  # sendTime must grow per pair, or the shard drops the push as a repeat
        self.last_deals_ms = now_ms
        return now_varint.join(self.deals[self.rng.randrange(len(self.deals))])

    def depth_frame(self, now_varint: bytes) -> bytes:
        """The WebSocket frame of the next diff: versions follow on, and the feed's book takes its changes."""
        pieces, changes = self.diffs[self.rng.randrange(len(self.diffs))]
        first = self.version + 1
        self.version += len(changes)
        for is_bid, price, qty in changes:
            (self.bids if is_bid else self.asks)[price] = qty
        return b"".join((pieces[0], now_varint, pieces[1], str(first).encode(), pieces[2], str(self.version).encode()))

    def snapshot(self) -> dict[str, Any]:
        bids = sorted(self.bids.items(), key=lambda kv: -float(kv[0]))
        asks = sorted(self.asks.items(), key=lambda kv: float(kv[0]))
        return {"lastUpdateId": self.version, "bids": [list(b) for b in bids], "asks": [list(a) for a in asks]}


def _transport(conn: Any) -> Any:
    """The socket transport under a connection's aiohttp WebSocket (None once it is gone)."""
    return getattr(getattr(conn.ws, "_writer", None), "transport", None) if conn is not None else None


class BlastEmulator(Emulator):
    """The emulator with its market clock replaced by the synthetic feed (the market is never advanced)."""

    def __init__(self, options: EmulatorOptions, rate: float) -> None:
        super().__init__(options)
        self.rate = rate
        self.pairs: dict[str, BlastPair] = {}
        fp, fq = self.market.fmt_price, self.market.fmt_qty
        for n, spec in enumerate(self.market.symbols):
            _, bids, asks = self.market.depth_snapshot(spec.symbol, LEVELS)
            if not bids or not asks:
                continue
            self.pairs[spec.symbol] = BlastPair.build(
                spec.symbol,
                [(fp(spec.symbol, p), fq(spec.symbol, q)) for p, q in bids],
                [(fp(spec.symbol, p), fq(spec.symbol, q)) for p, q in asks],
                lambda v, s=spec.symbol: fq(s, v),
                seed=options.seed * 1_000_003 + n,
            )
        self.rest.depth = self._depth  # type: ignore[method-assign]  # snapshots from the feed's books
        self.frames_skipped = 0  # frames not written because the reader was behind
        self._credit = 0.0

    async def _depth(self, request: web.Request) -> web.Response:
        pair = self.pairs.get(request.query.get("symbol", ""))
        if pair is None:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        return web.json_response({**pair.snapshot(), "timestamp": int(time.time() * 1000)})

    def _due(self) -> list[tuple[Any, BlastPair, bool]]:
        """(connection, pair, is_deals) for every subscribed stream of a live connection."""
        streams = []
        for conn in self.ws.connections.values():
            if conn.close_reason:
                continue
            for channel in conn.live:
                symbol = channel.rsplit("@", 1)[-1]
                pair = self.pairs.get(symbol)
                if pair is not None and channel in (pair.deals_channel, pair.depth_channel):
                    streams.append((conn, pair, channel == pair.deals_channel))
        return streams

    async def _clock(self) -> None:
        """Every tick: rate x tick frames over the subscribed streams in turn, one write per connection."""
        order: list[tuple[Any, BlastPair, bool]] = []
        cursor = 0
        rebuilt = 0.0
        next_tick = time.monotonic()
        while True:
            next_tick += TICK_S
            if next_tick - rebuilt >= REBUILD_S:  # follow (un)subscriptions and reconnects
                rebuilt = next_tick
                order = self._due()
                random.Random(1).shuffle(order)
                cursor = cursor % len(order) if order else 0
            # MEXC pushes each aggregated stream at most once per 100 ms: so does the feed, which
            # caps its rate at 10 frames/s per subscribed stream (2,000 pairs: ~36k frames/s).
            self._credit = min(self._credit + self.rate * TICK_S, len(order) * TICK_S / STREAM_PERIOD_S)
            count = int(self._credit)
            self._credit -= count
            if count:
                now_ms = int(time.time() * 1000)
                now_varint = varint(now_ms)
                assert len(now_varint) == TIME_VARINT_LEN
                batches: dict[int, list[bytes]] = {}
                for _ in range(count):
                    conn, pair, is_deals = order[cursor]
                    cursor = (cursor + 1) % len(order)
                    frame = pair.deals_frame(now_ms, now_varint) if is_deals else pair.depth_frame(now_varint)
                    if frame is None:
                        continue
                    batch = batches.get(conn.conn_id)
                    if batch is None:
                        batch = batches[conn.conn_id] = []
                    batch.append(frame)
                self._write(batches)
            self.steps += 1
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))

    def _write(self, batches: dict[int, list[bytes]]) -> None:
        now = time.monotonic()
        for conn_id, parts in batches.items():
            conn = self.ws.connections.get(conn_id)
            transport = _transport(conn)
            frames = len(parts)
            if transport is None or transport.is_closing():
                continue
            if transport.get_write_buffer_size() > MAX_BUFFER_BYTES:
                self.frames_skipped += frames  # the reader is behind: lag, reported through /_sim/state
                continue
            data = b"".join(parts)
            transport.write(data)
            conn.last_data = now
            conn.frames_sent += frames
            conn.bytes_sent += len(data)
            self.ws.frames_sent += frames
            self.ws.frames_encoded += frames
            self.ws.bytes_sent += len(data)

    def state(self) -> dict[str, Any]:
        """The emulator's state, with each connection's socket backlog as queued frames."""
        state = self.ws.state()
        mean = self.ws.bytes_sent / max(1, self.ws.frames_sent)
        for entry in state["connections"]:
            conn = self.ws.connections.get(entry["id"])
            transport = _transport(conn)
            entry["queued"] = int(transport.get_write_buffer_size() / max(mean, 1.0)) if transport is not None else 0
        state["frames_skipped"] = self.frames_skipped
        state["feed"] = "blast"
        return state


async def _serve(args: argparse.Namespace) -> int:
    options = EmulatorOptions(pairs=args.pairs, seed=args.seed, weight_budget=args.weight_budget, limits=Limits())
    return await serve_until_stopped(BlastEmulator(options, args.rate))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=50_000.0, help="total frames/s over the subscribed streams")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--weight-budget", type=int, default=500, help="REST weight per endpoint per 10 s")
    args = parser.parse_args(argv)
    if not args.rate > 0 or args.pairs < 1:
        print("blast_feed: --rate must be > 0 and --pairs >= 1", file=sys.stderr)
        return 2
    return asyncio.run(_serve(args))


if __name__ == "__main__":
    sys.exit(main())
