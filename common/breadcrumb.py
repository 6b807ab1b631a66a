"""The pair a child process is working on, in memory its parent can still read after the child died.

Why: a pair whose data crashes the shard (a "poisoned pair") kills it again on every restart, and
the supervisor must know which pair to quarantine. A pipe message would be lost with a native crash
(a segfault in compiled code), a log line cannot be read back reliably; a few bytes of shared memory
written before each per-pair step survive any death. Written only around per-pair work that runs in
Python (adding, seeding, resyncing a pair), never per frame: the hot path stays untouched, and a
crash inside the frame path is left unattributed (the supervisor's restart backoff still holds it).
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

SIZE = 64  # bytes: a symbol (MEXC's are under 20), NUL-padded
_FORK = mp.get_context("fork")


class Breadcrumb:
    """A fixed shared byte slot: mark(symbol) before a per-pair step, clear() after it."""

    def __init__(self) -> None:
        self._slot: Any = _FORK.Array("c", SIZE, lock=False)

    def mark(self, symbol: str) -> None:
        self._slot.value = symbol.encode("utf-8", "replace")[: SIZE - 1]

    def clear(self) -> None:
        self._slot.value = b""

    def read(self) -> str:
        """The symbol marked and not cleared ('' when the process was between per-pair steps)."""
        return bytes(self._slot.value).decode("utf-8", "replace")


_current: Breadcrumb | None = None


def install(crumb: Breadcrumb | None) -> None:
    """Make crumb this process's breadcrumb (run_child does it in every forked child)."""
    global _current
    _current = crumb


def mark(symbol: str) -> None:
    """Note that this process now works on symbol (a no-op outside a supervised child)."""
    if _current is not None:
        _current.mark(symbol)


def clear() -> None:
    """The per-pair step finished without dying."""
    if _current is not None:
        _current.clear()


class on:  # noqa: N801 - used as `with breadcrumb.on(symbol):`
    """Mark symbol for the block; cleared when the block ends normally, kept when an exception escapes.

    Why kept: an exception leaving a per-pair step is how a Python-level poisoned pair kills the
    process, and the parent reads the mark after the death. A class and not @contextmanager: no
    generator per use.
    """

    __slots__ = ("symbol",)

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol

    def __enter__(self) -> None:
        mark(self.symbol)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc_type is None:
            clear()
