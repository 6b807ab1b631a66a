# Per-pair order book: the best K levels per side, fed by MEXC diff depth with version checks.
from core.decode cimport Level

cdef enum BookStatus:
    BOOK_APPLIED = 0            # diff applied in sequence
    BOOK_BUFFERED = 1           # no snapshot yet: diff kept for the snapshot procedure
    BOOK_STALE = 2              # diff older than the book: ignored
    BOOK_GAP = 3                # version gap (or a side emptied past forgotten levels): needs a snapshot
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
    cdef readonly double bid_horizon            # bids at or below were forgotten (0: none forgotten)
    cdef readonly double ask_horizon            # asks at or above were forgotten (inf: none)
    cdef readonly unsigned long long version
    cdef readonly bint synced
    cdef Buffered* buffered             # diffs waiting for a snapshot; freed once in sync
    cdef int n_buffered, cap_buffered
    cdef Level* pool                    # their levels, copied out of the decoder's buffers
    cdef int n_pool, cap_pool
    cdef readonly int buffer_overflows

    cdef int c_apply_diff(self, unsigned long long from_v, unsigned long long to_v,
                          const Level* bids, int nb, const Level* asks, int na) except -1
    cdef int c_apply_snapshot(self, unsigned long long last_update_id,
                              const Level* bids, int nb, const Level* asks, int na) noexcept
    cdef void c_reset(self) noexcept
    cdef void _clear_levels(self) noexcept
    cdef void _apply_levels(self, const Level* bids, int nb, const Level* asks, int na) noexcept
    cdef void _set_level(self, bint bid, double price, double qty) noexcept
    cdef int _buffer(self, unsigned long long from_v, unsigned long long to_v,
                     const Level* bids, int nb, const Level* asks, int na) except -1
    cdef void _drop_buffer(self) noexcept
    cdef void _keep_buffered_from(self, int first) noexcept
    cdef double c_size_within(self, bint bid, double bps) noexcept
