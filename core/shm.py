"""Shared-memory segments owned by the supervisor, outside multiprocessing's resource tracker.

Why: on Python < 3.13 every SharedMemory is registered with the resource tracker, which unlinks
"leaked" segments when a process exits and complains (KeyError tracebacks) when the owner
unlinks them itself. Our segments have one owner (the supervisor) that unlinks them on shutdown;
shards inherit them across fork. Registering would also start the tracker: a whole extra Python
process (~7 MB PSS) that does nothing for us. So segments are created with registration off.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from multiprocessing import resource_tracker, shared_memory


@contextlib.contextmanager
def _untracked() -> Iterator[None]:
    """SharedMemory calls resource_tracker.register at creation; make that call a no-op meanwhile."""
    original = resource_tracker.register
    resource_tracker.register = lambda name, rtype: None  # type: ignore[assignment]
    try:
        yield
    finally:
        resource_tracker.register = original  # type: ignore[assignment]


def create_segment(size: int, name: str | None = None) -> shared_memory.SharedMemory:
    with _untracked():
        return shared_memory.SharedMemory(name=name, create=True, size=size)


def attach_segment(name: str) -> shared_memory.SharedMemory:
    with _untracked():
        return shared_memory.SharedMemory(name=name)


def unlink_segment(shm: shared_memory.SharedMemory) -> None:
    """Remove the segment's name (memory is freed when the last mapping closes)."""
    from multiprocessing import shared_memory as _sm

    try:
        _sm._posixshmem.shm_unlink(shm._name)  # type: ignore[attr-defined]
    except FileNotFoundError:
        pass
