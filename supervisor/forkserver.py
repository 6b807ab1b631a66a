"""Where children are forked from: a small forkserver started before the supervisor grows.

Why: a child forked from the supervisor itself inherits the supervisor's whole heap (pipeline,
detectors, models, store, chart history) and shares those pages copy-on-write. Every page either
side writes later is copied, so each child's PSS creeps towards a private copy of a heap it never
uses: the 2,000-pair soak measured ~24 MB/h of growth that was not a leak (heap in use flat), and a
shard re-forked after a crash started from the grown supervisor (+15 MB at once). Children forked
from a forkserver instead share only the modules it preloaded (supervisor/forkserver_preload.py),
and the forkserver never writes to them, so a child's memory is its own and stops growing once it
is warm.

What changes for a child: its arguments are pickled instead of inherited. Shared-memory rings and
stats blocks travel by name, their eventfd as a passed file descriptor (reducers registered here);
pipes, the breadcrumb and the config pickle on their own. Entry points must be importable functions.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from multiprocessing import reduction, resource_tracker
from typing import Any

from core.ring import FeatureRing
from core.statsspec import StatsBlock

PRELOAD = ["supervisor.forkserver_preload"]

CONTEXT = mp.get_context("forkserver")
CONTEXT.set_forkserver_preload(PRELOAD)


def without_resource_tracker() -> None:
    """Start the forkserver without the resource tracker process multiprocessing would start with it.

    Why: the tracker unlinks named resources (shared memory, semaphores) that dead processes
    registered. This service registers none: its segments are created untracked (core/shm.py),
    the breadcrumb lives in an unnamed heap, and no child makes a semaphore. The tracker would be
    a whole Python process (~6 MB PSS, measured) that does nothing, so the forkserver is handed
    a write end that discards (the tracker's protocol is write-only) instead of a tracker.
    """
    tracker = resource_tracker._resource_tracker  # noqa: SLF001 - the stdlib keeps no public switch
    if tracker._fd is None:  # noqa: SLF001
        tracker._fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)  # noqa: SLF001


def _reduce_ring(ring: FeatureRing) -> tuple[Any, tuple[Any, ...]]:
    """Send a ring by name, its eventfd as a descriptor the child receives (only while spawning)."""
    return _attach_ring, (ring.name, reduction.DupFd(ring.notify_fd) if ring.notify_fd >= 0 else None)


def _attach_ring(name: str, notify: Any) -> FeatureRing:
    return FeatureRing.attach(name, notify.detach() if notify is not None else -1)


def _reduce_stats(block: StatsBlock) -> tuple[Any, tuple[Any, ...]]:
    """A stats block travels by name; the child attaches without owning (never unlinks it)."""
    return StatsBlock.attach, (block.shm.name,)


reduction.ForkingPickler.register(FeatureRing, _reduce_ring)
reduction.ForkingPickler.register(StatsBlock, _reduce_stats)


def helper_pids() -> list[tuple[str, int]]:
    """The forkserver and the resource tracker it starts, when running: part of the service's memory.

    Why reported: they are processes of the service like the shards (the forkserver holds the
    preloaded modules every child shares), so /status and the benchmarks count them too.
    """
    from multiprocessing import forkserver, resource_tracker

    found = [("forkserver", getattr(forkserver._forkserver, "_forkserver_pid", None)),  # noqa: SLF001 - stdlib keeps no public handle
             ("resource_tracker", getattr(resource_tracker._resource_tracker, "_pid", None))]  # noqa: SLF001  # fmt: skip
    return [(name, pid) for name, pid in found if isinstance(pid, int) and pid > 0]
