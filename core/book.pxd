# Per-pair order book: the best K levels per side, fed by MEXC diff depth with version checks.
from core.decode cimport Level

cdef enum BookStatus:
    BOOK_APPLIED = 0            # diff applied in sequence
    BOOK_BUFFERED = 1           # no snapshot yet: diff kept for the snapshot procedure
    BOOK_STALE = 2              # diff older than the book: ignored
    BOOK_GAP = 3                # version gap: book invalid until the next snapshot
    BOOK_SYNCED = 4             # snapshot accepted, buffered diffs applied
    BOOK_SNAPSHOT_TOO_OLD = 5   # snapshot older than the buffered diffs: fetch again

cdef struct Buffered:
    unsigned long long from_v
    unsigned long long to_v
    int offset                  # first level in the pool
    int n_bids
    int n_asks


cdef class OrderBook:
    cdef readonly int depth_cap         # K levels kept per side
    cdef Level* bids                    # best first (descending price)
    cdef Level* asks                    # best first (ascending price)
    cdef readonly int n_bids, n_asks
    cdef readonly unsigned long long version
    cdef readonly bint synced
    cdef Buffered* buffered
    cdef int n_buffered, cap_buffered
    cdef Level* pool
    cdef int n_pool, cap_pool
    cdef readonly int buffer_overflows

    cdef int c_apply_diff(self, unsigned long long from_v, unsigned long long to_v,
                          const Level* bids, int nb, const Level* asks, int na) except -1
    cdef void _apply_levels(self, const Level* bids, int nb, const Level* asks, int na)
    cdef void _set_level(self, bint bid, double price, double qty)
    cdef int _buffer(self, unsigned long long from_v, unsigned long long to_v,
                     const Level* bids, int nb, const Level* asks, int na) except -1
    cdef double c_size_within(self, bint bid, double bps)
