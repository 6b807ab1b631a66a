# cython: language_level=3
"""Single-producer / single-consumer ring of feature rows in shared memory.

Why lock-free with sequence numbers: the shard must never wait for the supervisor. The producer
writes a row, then publishes it by storing write_seq with release ordering; the consumer reads
write_seq with acquire ordering, copies the rows, then stores read_seq. When the ring is full the
producer drops the new row and counts it in `overflow` — a loss is always visible, and a reader
never sees a half-written row. Rows carry their 1-based sequence number, so a consumer can check
for gaps and duplicates.

Wake-up: an eventfd created with the ring (before fork) is written once per batch by the
producer (notify) and watched by the consumer's event loop: no busy polling.
"""

import os

import numpy as np

from cpython.buffer cimport PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from libc.string cimport memcpy

from core.row cimport FeatureRow

from core.rowspec import FEATURE_ROW_DTYPE
from core.shm import attach_segment, create_segment, unlink_segment

cdef extern from *:
    """
    static inline unsigned long long ring_load_acquire(unsigned long long* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline void ring_store_release(unsigned long long* p, unsigned long long v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    """
    unsigned long long ring_load_acquire(unsigned long long* p) nogil
    void ring_store_release(unsigned long long* p, unsigned long long v) nogil

DEF HEADER = 128    # producer fields on one cache line, the consumer's on the next

if sizeof(FeatureRow) != FEATURE_ROW_DTYPE.itemsize:
    raise ImportError(f"FeatureRow is {sizeof(FeatureRow)} bytes but FEATURE_ROW_DTYPE is {FEATURE_ROW_DTYPE.itemsize}")


cdef class FeatureRing:
    """See the module docstring. Create in the owner (supervisor) before forking producers."""

    def __init__(self, shm, bint owner, int notify_fd=-1):
        self.shm = shm
        self.owner = owner
        self.notify_fd = notify_fd
        PyObject_GetBuffer(shm.buf, &self.view, PyBUF_WRITABLE)
        self.has_view = True
        cdef char* base = <char*>self.view.buf
        self.write_seq = <unsigned long long*>base
        self.overflow_count = <unsigned long long*>(base + 8)
        self.read_seq = <unsigned long long*>(base + 64)
        self.capacity = (<unsigned long long*>(base + 16))[0]
        self.rows = base + HEADER
        self.row_size = sizeof(FeatureRow)

    @classmethod
    def create(cls, unsigned long long capacity, name=None):
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        shm = create_segment(HEADER + capacity * sizeof(FeatureRow), name)
        header = np.ndarray((HEADER // 8,), dtype=np.uint64, buffer=shm.buf)
        header[:] = 0
        header[2] = capacity
        del header
        fd = os.eventfd(0, os.EFD_NONBLOCK)
        return cls(shm, True, fd)

    @classmethod
    def attach(cls, str name):
        return cls(attach_segment(name), False, -1)

    @property
    def name(self):
        return self.shm.name

    @property
    def written(self):
        return ring_load_acquire(self.write_seq)

    @property
    def overflow(self):
        return ring_load_acquire(self.overflow_count)

    @property
    def lag(self):
        return ring_load_acquire(self.write_seq) - ring_load_acquire(self.read_seq)

    cdef int c_push(self, FeatureRow* row) nogil:
        cdef unsigned long long w = self.write_seq[0]
        cdef unsigned long long r = ring_load_acquire(self.read_seq)
        if w - r >= self.capacity:
            ring_store_release(self.overflow_count, self.overflow_count[0] + 1)
            return 1
        row.seq = w + 1
        memcpy(self.rows + (w % self.capacity) * self.row_size, row, self.row_size)
        ring_store_release(self.write_seq, w + 1)
        return 0

    def push(self, **fields):
        """Test helper: push one row given as keyword fields (missing ones are 0)."""
        cdef FeatureRow row
        arr = np.zeros(1, dtype=FEATURE_ROW_DTYPE)
        for key, value in fields.items():
            arr[0][key] = value
        memcpy(&row, <char*><size_t>arr.ctypes.data, sizeof(FeatureRow))
        return self.c_push(&row) == 0

    def read_new(self, max_rows=None):
        """Copy the unread rows (oldest first) and mark them read."""
        cdef unsigned long long w = ring_load_acquire(self.write_seq)
        cdef unsigned long long r = self.read_seq[0]
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
        if self.notify_fd >= 0:
            try:
                os.eventfd_write(self.notify_fd, 1)
            except BlockingIOError:
                pass

    def drain_notify(self):
        if self.notify_fd >= 0:
            try:
                os.eventfd_read(self.notify_fd)
            except BlockingIOError:
                pass

    def close(self):
        if self.has_view:
            PyBuffer_Release(&self.view)
            self.has_view = False
        self.shm.close()

    def unlink(self):
        if self.owner:
            unlink_segment(self.shm)
            if self.notify_fd >= 0:
                os.close(self.notify_fd)
                self.notify_fd = -1
