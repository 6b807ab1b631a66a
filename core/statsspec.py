"""NumPy view of core/stats.pxd and the shared-memory block that holds one shard's counters.

Why shared memory and not messages: the shard bumps counters on every frame; a pipe message per
update would cost more than the work it measures. One writer (the shard), any number of readers.
Counters are plain (non-atomic) 64-bit stores: a reader may see a value one update old, never a
torn one on x86-64/aarch64, which is all metrics need.
"""

from __future__ import annotations

from multiprocessing import shared_memory

import numpy as np

from core.shm import attach_segment, create_segment, unlink_segment

MAX_LINKS = 256

LINK_SLOT_UNUSED = 0
LINK_SLOT_CONNECTING = 1
LINK_SLOT_UP = 2
LINK_SLOT_DOWN = 3

_U64 = (
    "frames_total", "bytes_total", "deals_frames", "depth_frames", "other_frames", "decode_errors", "resyncs", "gaps",
    "rows_written", "rows_dropped", "reconnects", "links_up", "streams_subscribed", "pairs_subscribed", "pairs_blocked",
    "rest_requests", "rest_throttled", "duplicate_frames", "candidate_rows",
)  # fmt: skip
_I64 = ("last_frame_ns", "heartbeat_ns", "started_ns", "pid")

LINK_DTYPE = np.dtype(
    [("state", np.uint64), ("streams", np.uint64), ("frames", np.uint64), ("last_frame_ns", np.int64)], align=True
)

# Scalar counters first, then the per-link slots: the order of core/stats.pxd's ShardStats.
STATS_DTYPE = np.dtype(
    [(name, np.uint64) for name in _U64] + [(name, np.int64) for name in _I64] + [("links", LINK_DTYPE, (MAX_LINKS,))],
    align=True,
)

COUNTER_NAMES: tuple[str, ...] = _U64 + _I64


class StatsBlock:
    """One ShardStats record in shared memory (create before fork, or attach by name)."""

    def __init__(self, shm: shared_memory.SharedMemory, owner: bool) -> None:
        if shm.size < STATS_DTYPE.itemsize:
            raise ValueError(f"shared memory {shm.name!r} ({shm.size} bytes) is too small for a stats block ({STATS_DTYPE.itemsize})")
        self.shm = shm
        self.owner = owner
        self.array: np.ndarray | None = np.ndarray((1,), dtype=STATS_DTYPE, buffer=shm.buf)

    @classmethod
    def create(cls, name: str | None = None) -> StatsBlock:
        """A zeroed block owned by the caller (the supervisor), who unlinks it at shutdown."""
        shm = create_segment(STATS_DTYPE.itemsize, name)
        block = cls(shm, owner=True)
        block.reset()
        return block

    @classmethod
    def attach(cls, name: str) -> StatsBlock:
        """Map an existing block by name (read-mostly: the shard is the only writer)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"stats block name must be a non-empty string, got {name!r}")
        shm = attach_segment(name)
        try:
            return cls(shm, owner=False)
        except ValueError:
            shm.close()
            raise

    def _array(self) -> np.ndarray:
        if self.array is None:
            raise ValueError("stats block is closed")
        return self.array

    @property
    def name(self) -> str:
        return self.shm.name

    @property
    def view(self) -> np.void:
        """The live record (reads see the shard's latest writes; fields are also writable)."""
        return self._array()[0]

    @property
    def links(self) -> np.ndarray:
        """The live per-link slots (MAX_LINKS records of LINK_DTYPE)."""
        return self._array()[0]["links"]

    def snapshot(self) -> dict[str, int]:
        """A copy of the scalar counters, for /status and logs."""
        record = self._array()[0].copy()
        return {name: int(record[name]) for name in COUNTER_NAMES}

    def address(self) -> int:
        """Address of the record, for Cython code (core.stats.stats_ptr casts it to ShardStats*)."""
        return int(self._array().ctypes.data)

    def reset(self) -> None:
        """Zero every counter (a restarted shard starts fresh; Prometheus handles counter resets)."""
        self._array()[0] = np.zeros((), dtype=STATS_DTYPE)

    def close(self) -> None:
        """Unmap this process's view (idempotent); C pointers from address() become invalid."""
        self.array = None
        self.shm.close()

    def unlink(self) -> None:
        """Owner only: remove the segment's name."""
        if self.owner:
            unlink_segment(self.shm)
