# Single-producer / single-consumer feature ring in shared memory; see core/ring.pyx.
# Cython users (the shard engine) call c_push from the hot path without the GIL.
from core.row cimport FeatureRow

cdef class FeatureRing:
    cdef object shm
    cdef Py_buffer view
    cdef bint has_view
    cdef readonly bint owner
    cdef readonly int notify_fd
    cdef readonly unsigned long long capacity
    cdef unsigned long long* write_seq
    cdef unsigned long long* overflow_count
    cdef unsigned long long* read_seq
    cdef char* rows
    cdef Py_ssize_t row_size

    # 0 = published, 1 = dropped (ring full, counted in overflow; or ring closed, not counted)
    cdef int c_push(self, FeatureRow* row) noexcept nogil
    cdef void _release(self) noexcept
    cdef int _check_open(self) except -1
