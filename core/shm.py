"""Shared-memory segments owned by the supervisor, outside multiprocessing's resource tracker.

Why: on Python < 3.13 every SharedMemory is registered with the resource tracker, which unlinks
"leaked" segments when a process exits and complains (KeyError tracebacks) when the owner
unlinks them itself. Our segments have one owner (the supervisor) that unlinks them on shutdown;
shards inherit them across fork. So the tracker is told to forget them at creation.
"""

from __future__ import annotations

from multiprocessing import resource_tracker, shared_memory


def create_segment(size: int, name: str | None = None) -> shared_memory.SharedMemory:
    shm = shared_memory.SharedMemory(name=name, create=True, size=size)
    try:
        resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - no tracker running: nothing to forget
        pass
    return shm


def attach_segment(name: str) -> shared_memory.SharedMemory:
    shm = shared_memory.SharedMemory(name=name)
    try:
        resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001
        pass
    return shm


def unlink_segment(shm: shared_memory.SharedMemory) -> None:
    """Remove the segment's name (memory is freed when the last mapping closes)."""
    from multiprocessing import shared_memory as _sm

    try:
        _sm._posixshmem.shm_unlink(shm._name)  # type: ignore[attr-defined]
    except FileNotFoundError:
        pass
