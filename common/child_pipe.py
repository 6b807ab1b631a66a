"""A child process's end of its pipe to the supervisor: typed messages out, typed messages in.

Why one place: the futures and the arbitrage children (supervisor/futures.py, supervisor/arb.py)
both send stats and notices up and read Stop (and their own requests) down; the sending must never
raise into a feed callback (a supervisor that is gone is not the feed's problem) and a bad
message must be one warning, never a crash. The bot reads its pipe through it too (its replies
and requests on top); shards have a protocol of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from common.messages import Message, MessageError, decode, encode


class ChildPipe:
    """Wraps the child's Connection (None: no supervisor, e.g. a test or a perf script)."""

    def __init__(self, conn: Connection | None, on_message: Callable[[Message], None], on_closed: Callable[[], None],
                 log: logging.Logger) -> None:  # fmt: skip
        self.conn = conn
        self.on_message = on_message
        self.on_closed = on_closed  # the supervisor is gone: the child stops
        self.log = log

    def attach(self, loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> None:
        """Read the pipe on the loop, and let SIGTERM/SIGINT stop the child (its own loop's handlers).

        The pipe stays blocking: the loop switches a watched fd to non-blocking, and Connection then
        fails with BlockingIOError half-way through a large message (supervisor/children.py does
        the same on its end). Signal handlers need the main thread; tests run children in others.
        """
        if self.conn is not None:
            loop.add_reader(self.conn.fileno(), self.on_readable)
            os.set_blocking(self.conn.fileno(), True)
        with contextlib.suppress(RuntimeError, ValueError):  # not the main thread (tests)
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop)

    def detach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Stop reading the pipe (the child is shutting down; a closed pipe is fine)."""
        if self.conn is not None:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(self.conn.fileno())

    def tell(self, message: Any) -> bool:
        """Send one message; False when it was not sent (no pipe, or a closed one: on_readable sees the EOF and stops the child)."""
        if self.conn is None:
            return False
        try:
            self.conn.send(encode(message))
        except (OSError, ValueError):
            return False
        return True

    def on_readable(self) -> None:
        """The loop's reader callback: every waiting message, decoded; a bad one is logged and skipped."""
        assert self.conn is not None
        try:
            while self.conn.poll():
                try:
                    message = decode(self.conn.recv())
                except MessageError as exc:
                    self.log.warning("ignored a bad control message", extra={"error": str(exc)[:200]})
                    continue
                self.on_message(message)
        except (EOFError, OSError):
            self.on_closed()
