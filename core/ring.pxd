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

    cdef int c_push(self, FeatureRow* row) nogil
