"""Forked children (shards and the bot): start, watch, restart with backoff, talk, stop.

Why one type for both: a shard and the bot die, restart and carry a pipe in the same way; what
differs (the entry point, what to send after a start, how to read its messages) is passed in.
Why a backoff: a child that dies at once on every start (a rejected bot token, a broken install)
restarted every half second fills the log and burns a core; each quick death doubles the wait
up to RESTART_MAX_S, a child that ran RESTART_RESET_S resets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from common.breadcrumb import Breadcrumb
from common.logs import EXIT_CONFIG, inherited_setup, run_child
from common.messages import Message, MessageError, decode, encode
from supervisor.forkserver import CONTEXT, without_resource_tracker

log = logging.getLogger("scanner.supervisor.children")

RESTART_MIN_S = 0.5
RESTART_MAX_S = 60.0
RESTART_RESET_S = 60.0  # a child that lived this long died of something new: restart fast again
DEATHS_WINDOW_S = 300.0  # health: "keeps dying" means this many deaths within this window ...
DEATHS_UNHEALTHY = 3  # ... or more
QUARANTINE_AFTER = 3  # deaths while working on the same pair before that pair is quarantined
FORKSERVER_LOST = 255  # the exit code multiprocessing reports when the forkserver died and cannot say


@dataclass
class ChildProcess:
    """One child process and its pipe; restarted after an exit until stop() is called.

    entry(conn, *args()) runs in the child, forked from the forkserver (supervisor/forkserver.py: entry
    must be an importable function, args picklable); on_message(message) gets each decoded message;
    on_start() runs after every (re)start (e.g. to resend the shard's plan). on_poisoned(symbol,
    deaths) runs when QUARANTINE_AFTER deaths happened while the child worked on that one pair
    (common/breadcrumb.py): the owner takes the pair out of the plan before the restart.
    """

    name: str
    entry: Callable[..., None]
    args: Callable[[], tuple[Any, ...]]
    on_message: Callable[[Message], None] = lambda message: None
    on_start: Callable[[], None] = lambda: None
    kind: str = ""  # what log lines call it ("shard started", "bot died, restarting"); default: the name
    log_extra: dict[str, Any] = field(default_factory=dict)  # e.g. {"shard": 0}, on every line about it
    on_poisoned: Callable[[str, int], None] | None = None
    breadcrumb: Breadcrumb = field(default_factory=Breadcrumb)
    deaths_by_pair: dict[str, int] = field(default_factory=dict)
    process: Any = None
    conn: Connection | None = None
    started_at: float = 0.0
    restarts: int = 0
    last_exit: int | None = None
    down_since: float | None = None  # monotonic time of the last exit while not yet restarted
    _quick_deaths: int = 0
    _deaths: deque[float] = field(default_factory=lambda: deque(maxlen=64))
    _stopping: bool = False

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def keeps_dying(self, now: float | None = None) -> bool:
        """True while DEATHS_UNHEALTHY or more exits fell within the last DEATHS_WINDOW_S."""
        now = time.monotonic() if now is None else now
        return sum(1 for t in self._deaths if now - t < DEATHS_WINDOW_S) >= DEATHS_UNHEALTHY

    def start(self) -> None:
        """Start the child from the forkserver, watch its exit and its pipe (call from the running event loop)."""
        if self._stopping:
            return
        without_resource_tracker()
        parent, child = CONTEXT.Pipe(duplex=True)
        self.breadcrumb.clear()
        process = CONTEXT.Process(target=run_child, args=(self.name, self.entry, child, *self.args()), kwargs={"breadcrumb": self.breadcrumb, "log_setup": inherited_setup()},
                                name=self.name, daemon=True)  # fmt: skip
        process.start()
        child.close()
        self.process, self.conn, self.started_at, self.down_since = process, parent, time.monotonic(), None
        loop = asyncio.get_running_loop()
        loop.add_reader(process.sentinel, self._on_exit)
        loop.add_reader(parent.fileno(), self._on_readable)
        # Keep the pipe blocking: the loop switches a watched fd to non-blocking, and Connection then
        # fails with BlockingIOError in the middle of a large message (a 1,000-pair plan is ~40 KB).
        os.set_blocking(parent.fileno(), True)
        log.info(f"{self.kind or self.name} started", extra={"child": self.name, "pid": process.pid, **self.log_extra})
        self.on_start()

    def send(self, message: Message) -> bool:
        """Send one message; False (logged) when the child is down or its pipe broke."""
        if self.conn is None:
            return False
        try:
            self.conn.send(encode(message))
        except (OSError, ValueError):
            log.warning("pipe send failed", extra={"child": self.name, "message": type(message).__name__})
            return False
        return True

    def _on_readable(self) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            while conn.poll():
                data = conn.recv()
                try:
                    message = decode(data)
                except MessageError as exc:
                    log.warning("ignored a bad pipe message", extra={"child": self.name, "error": str(exc)[:200]})
                    continue
                self.on_message(message)
        except (EOFError, OSError):
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(conn.fileno())

    def _close_pipe(self) -> None:
        loop = asyncio.get_running_loop()
        if self.conn is not None:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(self.conn.fileno())
            self.conn.close()
            self.conn = None

    def _on_exit(self) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(self.process.sentinel)
        self._close_pipe()
        self.process.join(timeout=1.0)  # the forkserver writes the exit code to the sentinel once it reaped the child
        orphaned = self.process.exitcode == FORKSERVER_LOST and _kill_orphan(self.process.pid)
        if self._stopping:
            return
        now = time.monotonic()
        self.last_exit, self.down_since = self.process.exitcode, now
        self._deaths.append(now)
        self.restarts += 1
        self._quick_deaths = self._quick_deaths + 1 if now - self.started_at < RESTART_RESET_S else 1
        delay = min(RESTART_MAX_S, RESTART_MIN_S * 2 ** (self._quick_deaths - 1)) * random.uniform(0.8, 1.2)
        reason = ("configuration error (see the line it logged before exiting)" if self.last_exit == EXIT_CONFIG
                  else "lost with the forkserver (stopped and started anew)" if orphaned else "crashed")  # fmt: skip
        pair = self.breadcrumb.read()  # the pair it was working on when it died, if any
        extra = {"pair": pair, "deaths_on_pair": self.deaths_by_pair.get(pair, 0) + 1} if pair else {}
        log.error(f"{self.kind or self.name} died, restarting", extra={"child": self.name, "exitcode": self.last_exit, "reason": reason,
                                                                       "restarts": self.restarts, "restart_in_s": round(delay, 2),
                                                                       **extra, **self.log_extra})  # fmt: skip
        if pair:
            self._blame(pair)
        loop.call_later(delay, self.start)

    def _blame(self, pair: str) -> None:
        """Count a death against the pair it happened on; at QUARANTINE_AFTER, hand the pair to on_poisoned."""
        self.deaths_by_pair[pair] = deaths = self.deaths_by_pair.get(pair, 0) + 1
        if deaths >= QUARANTINE_AFTER and self.on_poisoned is not None:
            self.on_poisoned(pair, deaths)
            self.deaths_by_pair.pop(pair, None)

    async def stop(self, message: Message, timeout_s: float = 5.0) -> None:
        """Ask the child to stop (message), wait up to timeout_s, then terminate it."""
        self._stopping = True
        self.send(message)
        deadline = time.monotonic() + timeout_s
        while self.alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.alive():
            self.process.terminate()
            self.process.join(2.0)

    def status(self) -> dict[str, Any]:
        """What health and /status say of this child."""
        return {"name": self.name, "pid": self.pid, "alive": self.alive(), "restarts": self.restarts,
                "last_exit": self.last_exit, "keeps_dying": self.keeps_dying()}  # fmt: skip


def _kill_orphan(pid: int) -> bool:
    """Make sure a child whose exit the forkserver could not report is really gone before a restart.

    Why: exit code 255 also means "the forkserver died" (killed with the rest of a process group,
    or by the OOM killer), and then the child may still be running, now an orphan. Restarting
    beside it would give two shards writing one ring. A child that really exited was reaped by the
    forkserver already, so the kill finds nothing.
    """
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    log.warning("killed a child the forkserver lost track of", extra={"pid": pid})
    return True
