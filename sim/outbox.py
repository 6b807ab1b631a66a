"""One writer task per WebSocket client, fed from the client's queue of frames (spot and futures servers).

Why a queue and a task per client instead of awaiting each send: the market step produces frames
for every client at once; awaiting a slow client there would stall the market for everyone. A
client whose queue passes MAX_OUTBOX frames is a dead consumer and is closed, as MEXC does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

MAX_OUTBOX = 20_000  # frames queued to one client before it counts as a dead consumer and is closed


def kick_writers(connections: Iterable[Any], close: Callable[[Any, str], Awaitable[None]], binary: bool) -> None:
    """Start a writer for every client with queued frames and no writer running; close the hopeless ones."""
    for conn in list(connections):
        if not conn.outbox or (conn.writer is not None and not conn.writer.done()):
            continue
        if len(conn.outbox) > MAX_OUTBOX:
            asyncio.ensure_future(close(conn, "slow consumer"))
            continue
        conn.writer = asyncio.ensure_future(drain(conn, binary))


async def drain(conn: Any, binary: bool) -> None:
    """Send a client's queued frames in order; aiohttp awaits only when the socket is full."""
    ws = conn.ws
    send = ws.send_bytes if binary else ws.send_str
    try:
        while conn.outbox and not ws.closed:
            await send(conn.outbox.popleft())
    except (ConnectionError, RuntimeError):
        conn.outbox.clear()
