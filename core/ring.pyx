# cython: language_level=3
"""Single-producer / single-consumer ring of feature rows in shared memory.

Why lock-free with sequence numbers: the shard must never wait for the supervisor. The producer
writes a row, then publishes it by storing write_seq with release ordering; the consumer reads
write_seq with acquire ordering, copies the rows, then stores read_seq with release ordering, so
the producer (which loads read_seq with acquire) never reuses a slot still being copied. When the
ring is full the producer drops the new row and counts it in `overflow` — a loss is always
visible, and a reader never sees a half-written row. Rows carry their 1-based sequence number, so
a consumer can check for gaps and duplicates.

Header (128 bytes): producer fields (write_seq, overflow) and the immutable geometry (capacity,
row size, magic) on the first cache line, the consumer's read_seq alone on the second, so the two
sides do not bounce one line between cores.

Wake-up: an eventfd created with the ring (before fork) is written once per batch by the
producer (notify) and watched by the consumer's event loop: no busy polling. The supervisor owns
the memory, so a producer that dies and is forked again continues at the same write_seq.
"""

import operator
import os

import numpy as np

from cpython.buffer cimport PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from libc.string cimport memcpy

from core.row cimport FeatureRow
from core.stats cimport LinkSlot, ShardStats

from core.rowspec import FEATURE_ROW_DTYPE
from core.shm import attach_segment, create_segment, unlink_segment

cdef extern from *:
    """
    static inline unsigned long long ring_load_acquire(unsigned long long* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline void ring_store_release(unsigned long long* p, unsigned long long v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    """
    unsigned long long ring_load_acquire(unsigned long long* p) noexcept nogil
    void ring_store_release(unsigned long long* p, unsigned long long v) noexcept nogil

DEF HEADER = 128
DEF OFF_WRITE = 0
DEF OFF_OVERFLOW = 8
DEF OFF_CAPACITY = 16
DEF OFF_ROW_SIZE = 24
DEF OFF_MAGIC = 32
DEF OFF_READ = 64
DEF MAGIC = 0x31474E4952524546   # "FERRING1": refuses to attach to some other segment
DEF MAX_CAPACITY = 1 << 32

if sizeof(FeatureRow) != FEATURE_ROW_DTYPE.itemsize:
    raise ImportError(f"FeatureRow is {sizeof(FeatureRow)} bytes but FEATURE_ROW_DTYPE is {FEATURE_ROW_DTYPE.itemsize}")


def _as_count(value, what):
    """An integer (Python or NumPy, not bool) or a ValueError naming the argument."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{what} must be an integer, got {value!r}") from None


cdef inline unsigned long long* _u64(char* base, Py_ssize_t offset) noexcept nogil:
    return <unsigned long long*>(base + offset)


cdef class FeatureRing:
    """See the module docstring. Create in the owner (supervisor) before forking producers."""

    def __init__(self, shm, bint owner, int notify_fd=-1):
        self.shm = shm
        self.owner = owner
        self.notify_fd = notify_fd
        PyObject_GetBuffer(shm.buf, &self.view, PyBUF_WRITABLE)
        self.has_view = True
        cdef char* base = <char*>self.view.buf
        cdef unsigned long long capacity = 0
        try:
            if self.view.len < HEADER or _u64(base, OFF_MAGIC)[0] != MAGIC:
                raise ValueError(f"shared memory {shm.name!r} is not a feature ring")
            capacity = _u64(base, OFF_CAPACITY)[0]
            if _u64(base, OFF_ROW_SIZE)[0] != sizeof(FeatureRow):
                raise ValueError(
                    f"feature ring {shm.name!r} holds {_u64(base, OFF_ROW_SIZE)[0]}-byte rows, this build uses {sizeof(FeatureRow)}"
                )
            if capacity < 1 or capacity > MAX_CAPACITY or <unsigned long long>self.view.len < HEADER + capacity * sizeof(FeatureRow):
                raise ValueError(f"feature ring {shm.name!r}: capacity {capacity} does not fit its {self.view.len}-byte segment")
        except ValueError:
            self._release()
            raise
        self.write_seq = _u64(base, OFF_WRITE)
        self.overflow_count = _u64(base, OFF_OVERFLOW)
        self.read_seq = _u64(base, OFF_READ)
        self.capacity = capacity
        self.rows = base + HEADER
        self.row_size = sizeof(FeatureRow)

    def __dealloc__(self):
        if self.has_view:
            PyBuffer_Release(&self.view)
            self.has_view = False

    @classmethod
    def create(cls, capacity, name=None):
        """A new ring of `capacity` rows plus its eventfd; the caller owns (and later unlinks) it."""
        capacity = _as_count(capacity, "capacity")
        if not 1 <= capacity <= MAX_CAPACITY:
            raise ValueError(f"capacity must be an integer in 1..{MAX_CAPACITY}, got {capacity!r}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"name must be a non-empty string or None, got {name!r}")
        shm = create_segment(HEADER + capacity * sizeof(FeatureRow), name)
        header = np.ndarray((HEADER // 8,), dtype=np.uint64, buffer=shm.buf)
        header[:] = 0
        header[OFF_CAPACITY // 8] = capacity
        header[OFF_ROW_SIZE // 8] = sizeof(FeatureRow)
        header[OFF_MAGIC // 8] = MAGIC
        del header
        fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        try:
            return cls(shm, True, fd)
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def attach(cls, name, notify_fd=-1):
        """Map an existing ring by name (another process; pass the inherited eventfd to notify)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"ring name must be a non-empty string, got {name!r}")
        shm = attach_segment(name)
        try:
            return cls(shm, False, notify_fd)
        except BaseException:
            shm.close()
            raise

    cdef void _release(self) noexcept:
        self.write_seq = NULL
        self.overflow_count = NULL
        self.read_seq = NULL
        self.rows = NULL
        if self.has_view:
            PyBuffer_Release(&self.view)
            self.has_view = False

    cdef int _check_open(self) except -1:
        if self.rows == NULL:
            raise ValueError("feature ring is closed")
        return 0

    @property
    def name(self):
        return self.shm.name

    @property
    def closed(self):
        return self.rows == NULL

    @property
    def written(self):
        """Rows published so far (the newest row's seq)."""
        self._check_open()
        return ring_load_acquire(self.write_seq)

    @property
    def overflow(self):
        """Rows dropped because the ring was full."""
        self._check_open()
        return ring_load_acquire(self.overflow_count)

    @property
    def lag(self):
        """Rows published but not yet read."""
        self._check_open()
        return ring_load_acquire(self.write_seq) - ring_load_acquire(self.read_seq)

    cdef int c_push(self, FeatureRow* row) noexcept nogil:
        if self.rows == NULL:
            return 1
        cdef unsigned long long w = self.write_seq[0]    # only this producer writes it
        cdef unsigned long long r = ring_load_acquire(self.read_seq)
        if w - r >= self.capacity:
            ring_store_release(self.overflow_count, self.overflow_count[0] + 1)
            return 1
        row.seq = w + 1
        memcpy(self.rows + (w % self.capacity) * self.row_size, row, self.row_size)
        ring_store_release(self.write_seq, w + 1)
        return 0

    def push(self, **fields):
        """Push one row given as keyword fields (missing ones are 0); False when it was dropped.

        For tests and slow paths; the shard's hot path calls c_push. `seq` is always assigned by
        the ring.
        """
        self._check_open()
        cdef FeatureRow row
        arr = np.zeros(1, dtype=FEATURE_ROW_DTYPE)
        for key, value in fields.items():
            if key not in FEATURE_ROW_DTYPE.names:
                raise ValueError(f"unknown feature row field {key!r}")
            arr[key] = value
        memcpy(&row, <char*><size_t>arr.ctypes.data, sizeof(FeatureRow))
        return self.c_push(&row) == 0

    def push_rows(self, rows):
        """Push every row of a FEATURE_ROW_DTYPE array in order (each via c_push); returns how many
        were published (the rest were dropped and counted). For replay tools and perf/bench_ring.py.
        """
        self._check_open()
        if not isinstance(rows, np.ndarray) or rows.dtype != FEATURE_ROW_DTYPE or rows.ndim != 1:
            raise ValueError("rows must be a 1-D numpy array of FEATURE_ROW_DTYPE")
        arr = np.ascontiguousarray(rows).copy()    # c_push writes seq into the row it publishes
        cdef char* src = <char*><size_t>arr.ctypes.data if len(arr) else NULL
        cdef Py_ssize_t i, n = len(arr)
        cdef Py_ssize_t pushed = 0
        with nogil:
            for i in range(n):
                if self.c_push(<FeatureRow*>(src + i * self.row_size)) == 0:
                    pushed += 1
        return pushed

    def read_new(self, max_rows=None):
        """Copy the unread rows (oldest first, at most max_rows) and mark them read."""
        self._check_open()
        if max_rows is not None:
            max_rows = _as_count(max_rows, "max_rows")
            if max_rows < 0:
                raise ValueError(f"max_rows must be a non-negative integer or None, got {max_rows!r}")
        cdef unsigned long long w = ring_load_acquire(self.write_seq)
        cdef unsigned long long r = self.read_seq[0]    # only this consumer writes it
        cdef unsigned long long n = w - r, i, first, count
        if max_rows is not None and n > <unsigned long long>max_rows:
            n = max_rows
        out = np.empty(n, dtype=FEATURE_ROW_DTYPE)
        cdef char* dst = <char*><size_t>out.ctypes.data if n else NULL
        i = 0
        while i < n:
            first = (r + i) % self.capacity
            count = min(n - i, self.capacity - first)
            memcpy(dst + i * self.row_size, self.rows + first * self.row_size, count * self.row_size)
            i += count
        ring_store_release(self.read_seq, r + n)
        return out

    def notify(self):
        """Producer: wake the consumer (once per batch). A full eventfd counter is already a wake-up."""
        if self.notify_fd >= 0:
            try:
                os.eventfd_write(self.notify_fd, 1)
            except BlockingIOError:
                pass

    def drain_notify(self):
        """Consumer: reset the eventfd so the loop sleeps until the next notify."""
        if self.notify_fd >= 0:
            try:
                os.eventfd_read(self.notify_fd)
            except BlockingIOError:
                pass

    def close(self):
        """Unmap this process's view (idempotent); the segment lives on until unlink()."""
        self._release()
        self.shm.close()

    def unlink(self):
        """Owner only: remove the segment's name and close the eventfd."""
        if self.owner:
            unlink_segment(self.shm)
            if self.notify_fd >= 0:
                os.close(self.notify_fd)
                self.notify_fd = -1


def ring_header_size():
    """Bytes before the first row (so tools can compute a segment's size)."""
    return HEADER


def shard_stats_layout():
    """The C layout of ShardStats, so a test can check core.statsspec.STATS_DTYPE against it.

    Returns {"size": sizeof(ShardStats), "offsets": {field: offset}, "link_size": sizeof(LinkSlot),
    "link_offsets": {field: offset within a LinkSlot}}.
    """
    cdef ShardStats s
    cdef LinkSlot l
    cdef char* b = <char*>&s
    cdef char* lb = <char*>&l
    offsets = {
        "frames_total": <char*>&s.frames_total - b,
        "bytes_total": <char*>&s.bytes_total - b,
        "deals_frames": <char*>&s.deals_frames - b,
        "depth_frames": <char*>&s.depth_frames - b,
        "other_frames": <char*>&s.other_frames - b,
        "decode_errors": <char*>&s.decode_errors - b,
        "resyncs": <char*>&s.resyncs - b,
        "gaps": <char*>&s.gaps - b,
        "rows_written": <char*>&s.rows_written - b,
        "rows_dropped": <char*>&s.rows_dropped - b,
        "reconnects": <char*>&s.reconnects - b,
        "links_up": <char*>&s.links_up - b,
        "streams_subscribed": <char*>&s.streams_subscribed - b,
        "pairs_subscribed": <char*>&s.pairs_subscribed - b,
        "pairs_blocked": <char*>&s.pairs_blocked - b,
        "rest_requests": <char*>&s.rest_requests - b,
        "rest_throttled": <char*>&s.rest_throttled - b,
        "duplicate_frames": <char*>&s.duplicate_frames - b,
        "candidate_rows": <char*>&s.candidate_rows - b,
        "last_frame_ns": <char*>&s.last_frame_ns - b,
        "heartbeat_ns": <char*>&s.heartbeat_ns - b,
        "started_ns": <char*>&s.started_ns - b,
        "pid": <char*>&s.pid - b,
        "links": <char*>&s.links[0] - b,
    }
    link_offsets = {
        "state": <char*>&l.state - lb,
        "streams": <char*>&l.streams - lb,
        "frames": <char*>&l.frames - lb,
        "last_frame_ns": <char*>&l.last_frame_ns - lb,
    }
    return {"size": sizeof(ShardStats), "offsets": offsets, "link_size": sizeof(LinkSlot), "link_offsets": link_offsets,
            "links": sizeof(s.links) // sizeof(LinkSlot)}
