"""NumPy view of core/stats.pxd and the shared-memory block that holds one shard's counters.

Why shared memory and not messages: the shard bumps counters on every frame; a pipe message per
update would cost more than the work it measures. One writer (the shard), any number of readers.
"""

from __future__ import annotations

from multiprocessing import shared_memory

import numpy as np

from core.shm import attach_segment, create_segment, unlink_segment

_U64 = (
    "frames_total", "bytes_total", "deals_frames", "depth_frames", "other_frames", "decode_errors", "resyncs", "gaps",
    "rows_written", "rows_dropped", "reconnects", "links_up", "streams_subscribed", "pairs_subscribed", "pairs_blocked",
    "rest_requests", "rest_throttled", "duplicate_frames",
)  # fmt: skip
_I64 = ("last_frame_ns", "heartbeat_ns", "started_ns", "pid")

STATS_DTYPE = np.dtype([(name, np.uint64) for name in _U64] + [(name, np.int64) for name in _I64], align=True)


class StatsBlock:
    """One ShardStats record in shared memory (create before fork, or attach by name)."""

    def __init__(self, shm: shared_memory.SharedMemory, owner: bool) -> None:
        self.shm = shm
        self.owner = owner
        self.array = np.ndarray((1,), dtype=STATS_DTYPE, buffer=shm.buf)

    @classmethod
    def create(cls) -> StatsBlock:
        shm = create_segment(STATS_DTYPE.itemsize)
        block = cls(shm, owner=True)
        block.array[0] = np.zeros((), dtype=STATS_DTYPE)
        return block

    @classmethod
    def attach(cls, name: str) -> StatsBlock:
        return cls(attach_segment(name), owner=False)

    @property
    def name(self) -> str:
        return self.shm.name

    @property
    def view(self) -> np.void:
        """The live record (reads see the shard's latest writes)."""
        return self.array[0]

    def address(self) -> int:
        """Address of the record, for Cython code that casts it to ShardStats*."""
        return int(self.array.ctypes.data)

    def reset(self) -> None:
        """Zero every counter (a restarted shard starts fresh; Prometheus handles counter resets)."""
        self.array[0] = np.zeros((), dtype=STATS_DTYPE)

    def close(self) -> None:
        del self.array
        self.shm.close()

    def unlink(self) -> None:
        if self.owner:
            unlink_segment(self.shm)
