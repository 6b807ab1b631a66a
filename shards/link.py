"""One WebSocket link to MEXC carrying at most ws.max_streams_per_conn streams.

Why a class per link with its own reconnect loop: a dead link must come back on its own (with
backoff and jitter, so 100+ links do not reconnect in lockstep and get the IP banned) without
disturbing the other links of the shard. The frame callback stays lean: binary frames go straight
to the sink (the Cython engine); only the rare JSON control replies are parsed in Python.

Liveness: MEXC sends no ping frames, so picows' idle auto-ping sends MEXC's JSON
{"method":"PING"} after ping_interval_s without incoming data and drops the link if no PONG
arrives; that also keeps quiet links under MEXC's 60 s no-data limit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from picows import WSAutoPingStrategy, WSMsgType, WSTransport, ws_connect

from shards.fastpath import FrameListener, LinkCounters
from venues.mexc.channels import Ack, AckKind, parse_ack, subscribe_message, unsubscribe_message

log = logging.getLogger("scanner.link")

LINK_DOWN = 0
LINK_CONNECTING = 1
LINK_UP = 2


@dataclass
class LinkCallbacks:
    """What a link tells its shard. on_binary is the hot path and must not raise."""

    # (link_id, payload, recv_ns); a shards.fastpath.FrameSink here is fed without any Python call
    on_binary: Callable[[int, memoryview, int], None]
    on_ack: Callable[[int, Ack], None]
    on_state: Callable[[int, int], None]  # (link_id, LINK_* state)
    on_disconnected: Callable[[int, list[str]], None]  # channels whose data may have gaps


class Link:
    """A self-healing connection with a set of channels.

    Subscription messages are paced under max_msg_per_sec and batched (one SUBSCRIPTION may carry
    many params), so a reconnect storm never trips MEXC's 100 messages/s disconnect.
    """

    @property
    def frames(self) -> int:
        return int(self.counters.frames)

    @property
    def last_frame_ns(self) -> int:
        return int(self.counters.last_frame_ns)

    def __init__(
        self,
        link_id: int,
        url: str,
        callbacks: LinkCallbacks,
        *,
        max_streams: int = 30,
        max_msg_per_sec: int = 50,
        ping_interval_s: float = 20.0,
        pong_timeout_s: float = 10.0,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        batch: int = 10,
    ) -> None:
        self.link_id = link_id
        self.url = url
        self.callbacks = callbacks
        self.max_streams = max_streams
        self.max_msg_per_sec = max_msg_per_sec
        self.ping_interval_s = ping_interval_s
        self.pong_timeout_s = pong_timeout_s
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.batch = batch
        self.wanted: set[str] = set()
        self.confirmed: set[str] = set()
        self.refused: set[str] = set()
        self._sent: set[str] = set()
        self.state = LINK_DOWN
        self.transport: WSTransport | None = None
        # Frame counters live in a compiled object the per-frame path writes without Python code.
        self.counters = LinkCounters()
        self.reconnects = 0
        self.connected_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._sync_event = asyncio.Event()
        self._closing = False
        self._msg_times: list[float] = []

    # --- channel set -------------------------------------------------------------------------

    def free_slots(self) -> int:
        return self.max_streams - len(self.wanted)

    def add(self, channels: list[str]) -> None:
        if len(self.wanted) + len(channels) > self.max_streams:
            raise ValueError(f"link {self.link_id}: {len(self.wanted)} + {len(channels)} streams > {self.max_streams}")
        self.wanted.update(channels)
        self._sync_event.set()

    def remove(self, channels: list[str]) -> None:
        self.wanted.difference_update(channels)
        self.refused.difference_update(channels)
        self._sync_event.set()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"link-{self.link_id}")

    async def close(self) -> None:
        self._closing = True
        self._sync_event.set()
        if self.transport is not None:
            self.transport.disconnect()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    def drop(self) -> None:
        """Force a reconnect (tests, planned reconnects)."""
        if self.transport is not None:
            self.transport.disconnect(graceful=False)

    async def _run(self) -> None:
        failures = 0
        while not self._closing:
            self.state = LINK_CONNECTING
            self.callbacks.on_state(self.link_id, LINK_CONNECTING)
            try:
                transport, _ = await ws_connect(
                    lambda: FrameListener(self, self.counters, self.callbacks.on_binary),
                    self.url,
                    enable_auto_ping=True,
                    auto_ping_idle_timeout=self.ping_interval_s,
                    auto_ping_reply_timeout=self.pong_timeout_s,
                    auto_ping_strategy=WSAutoPingStrategy.PING_WHEN_IDLE,
                    websocket_handshake_timeout=10,
                )
            except (TimeoutError, OSError, Exception) as exc:  # noqa: BLE001 - any connect failure means retry
                failures += 1
                delay = self._backoff(failures)
                log.warning("link connect failed", extra={"link": self.link_id, "error": f"{type(exc).__name__}: {exc}"[:200], "retry_in_s": round(delay, 2)}, exc_info=log.isEnabledFor(10))
                await asyncio.sleep(delay)
                continue
            failures = 0
            sync_task = asyncio.get_running_loop().create_task(self._sync_loop(transport))
            sync_task.add_done_callback(self._sync_done)
            try:
                await transport.wait_disconnected()
            finally:
                sync_task.cancel()
            if self._closing:
                break
            self.reconnects += 1
            delay = self._backoff(1)
            await asyncio.sleep(delay)

    def _sync_done(self, task: asyncio.Task[None]) -> None:
        # A crashed subscription loop would leave a live link with no streams: drop it so the
        # reconnect path starts over, and say why.
        if not task.cancelled() and task.exception() is not None:
            log.error("subscription loop failed", extra={"link": self.link_id}, exc_info=task.exception())
            self.drop()

    def _backoff(self, failures: int) -> float:
        base = min(self.reconnect_max_s, self.reconnect_min_s * (2 ** min(failures - 1, 16)))
        return base * (0.5 + random.random() * 0.5)

    def _on_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.state = LINK_UP
        self.connected_at = time.monotonic()
        self.confirmed.clear()
        self._sent.clear()
        self.refused.clear()
        self._sync_event.set()
        self.callbacks.on_state(self.link_id, LINK_UP)

    def _on_disconnected(self) -> None:
        self.transport = None
        self.state = LINK_DOWN
        lost = sorted(self.confirmed | self._sent)
        self.confirmed.clear()
        self._sent.clear()
        self.callbacks.on_state(self.link_id, LINK_DOWN)
        self.callbacks.on_disconnected(self.link_id, lost)

    # --- subscriptions -----------------------------------------------------------------------

    async def _pace(self) -> None:
        now = time.monotonic()
        self._msg_times = [t for t in self._msg_times if t > now - 1.0]
        if len(self._msg_times) >= self.max_msg_per_sec:
            await asyncio.sleep(self._msg_times[0] + 1.0 - now)
        self._msg_times.append(time.monotonic())

    async def _send_json(self, transport: WSTransport, payload: dict[str, object]) -> None:
        await self._pace()
        if not transport.is_disconnected:
            transport.send(WSMsgType.TEXT, json.dumps(payload, separators=(",", ":")).encode())

    async def _sync_loop(self, transport: WSTransport) -> None:
        """Make the server's subscription set equal `wanted` (minus refused), paced."""
        while not transport.is_disconnected:
            await self._sync_event.wait()
            self._sync_event.clear()
            to_unsub = sorted(self._sent - self.wanted)
            to_sub = sorted(self.wanted - self._sent - self.refused)
            for i in range(0, len(to_unsub), self.batch):
                chunk = to_unsub[i : i + self.batch]
                await self._send_json(transport, unsubscribe_message(chunk))
                self._sent.difference_update(chunk)
                self.confirmed.difference_update(chunk)
            for i in range(0, len(to_sub), self.batch):
                chunk = to_sub[i : i + self.batch]
                await self._send_json(transport, subscribe_message(chunk))
                self._sent.update(chunk)

    def _on_text(self, payload: bytes) -> None:
        ack = parse_ack(payload)
        if ack.kind is AckKind.SUBSCRIBED:
            self.confirmed.update(c for c in ack.ok if c in self._sent)
        elif ack.kind is AckKind.REFUSED:
            self.confirmed.update(c for c in ack.ok if c in self._sent)
            # Never retried in a loop: a refused channel stays out until the shard's plan changes.
            self.refused.update(ack.refused)
            self._sent.difference_update(ack.refused)
        if ack.kind is not AckKind.PONG:
            self.callbacks.on_ack(self.link_id, ack)
