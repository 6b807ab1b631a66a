# Triangular cycles over the L10 tops of every pair they use, re-priced incrementally per update.
from core.decode cimport FrameDecoder, Level

cdef enum CycleStatus:
    CYCLE_BELOW = 0         # priced: no size above min_profit_bps after fees and rounding
    CYCLE_PROFITABLE = 1    # priced: min_start and more clear min_profit_bps
    CYCLE_UNSEEN = 2        # a leg has no book yet
    CYCLE_ONE_SIDED = 3     # a leg's book has an empty side
    CYCLE_CROSSED = 4       # a leg's best bid >= its best ask
    CYCLE_STALE = 5         # a leg is older than max_leg_age_ms


cdef class CycleBook:
    cdef readonly int n_pairs           # pairs known (ids 0..n_pairs-1)
    cdef readonly int n_cycles
    cdef readonly int depth             # levels kept per side (10)
    cdef double* bid_px                 # n_pairs x depth, best first
    cdef double* bid_qty
    cdef double* ask_px
    cdef double* ask_qty
    cdef int* n_bid
    cdef int* n_ask
    cdef long long* t_ms                # exchange time of each pair's last update (-1: never)
    cdef double* fee                    # taker fee per pair, a fraction (0.0005)
    cdef double* step                   # base quantity step per pair (0: no rounding)
    cdef int* leg_pair                  # n_cycles x 3
    cdef char* leg_buy                  # n_cycles x 3: 1 buys the base with the quote, 0 sells it
    cdef int* index_start               # CSR: cycles through pair p are index_cycles[index_start[p]:index_start[p+1]]
    cdef int* index_cycles
    cdef char* status                   # per-cycle cached result
    cdef double* top_bps
    cdef double* edge_bps
    cdef double* size
    cdef double* size_bps
    cdef long long* ages                # n_cycles x 3, at the last pricing
    cdef long long* priced_ms
    cdef int* touched                   # cycles profitable now or at their previous pricing
    cdef char* touched_flag
    cdef int n_touched
    cdef readonly double min_profit_bps
    cdef readonly double min_start
    cdef readonly long long max_leg_age_ms
    cdef readonly unsigned long long repriced_total
    cdef readonly unsigned long long updates_total
    cdef FrameDecoder decoder
    cdef dict ids                       # symbol bytes -> pair id

    cdef int c_update(self, int pair, long long t_ms, const Level* bids, int nb, const Level* asks, int na) noexcept
    cdef void c_reprice(self, int c, long long now_ms) noexcept
    cdef double c_profit(self, int c, double amount) noexcept
    cdef double c_leg(self, int pair, bint buy, double amount) noexcept
