# cython: language_level=3
"""Per-pair order book fed by aggre.depth diffs (mexc-api.md §3).

Why only K levels per side: the features look within 10 bps of the touch; a full 5,000-level
book per pair would cost megabytes for 2,000 pairs and gain nothing. Levels beyond K are
forgotten, and each side remembers its horizon, the best price it has forgotten: a level at or
beyond the horizon is ignored (a deep delete or update is harmless), so the kept levels are always
exactly the exchange book's levels better than the horizon, never a book with holes. When the
kept levels of a side are all gone and its horizon is set (a sweep through K levels), the best
price is unknown: the diff reports GAP and the book waits for a snapshot like after a version gap.
K = 64 by default: 32 would cover the ±10 bps bands, but a pump eats asks level by level and
every sweep past K costs a REST snapshot while the book is invalid; on the emulator's scripted
pumps K = 32 swept 3 of 14 books within a minute, K = 64 none. 2 x 64 levels = 2 KB per pair.

Versions: a live diff must continue the book (fromVersion == version + 1); one entirely older
than the book (toVersion <= version), or while buffering no newer than the last buffered diff (a
repeat from a second link), is ignored; anything else is a gap, which invalidates the
book and buffers diffs again until a REST snapshot is applied with the buffered-diff procedure.

The buffer is bounded (MAX_BUFFERED diffs, MAX_BUFFERED_LEVELS levels): a pair that waits too
long for its snapshot drops what it has and starts buffering afresh, and the snapshot check then
asks for a newer snapshot. The buffer's memory is released once the book is in sync, so 3,000
books in sync hold only their 2 x K levels.

Bad levels (price not finite and positive, quantity not finite and non-negative) are skipped on
the hot path (the decoder rejects them before they get here) and refused with ValueError by the
Python-level wrappers.
"""

from libc.math cimport INFINITY
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memmove

DEF MAX_BUFFERED = 512
DEF C_DEFAULT_DEPTH = 64
DEF MAX_BUFFERED_LEVELS = 8192
DEF DBL_MAX = 1.7976931348623157e308

DEFAULT_DEPTH = C_DEFAULT_DEPTH
APPLIED = BOOK_APPLIED
BUFFERED = BOOK_BUFFERED
STALE = BOOK_STALE
GAP = BOOK_GAP
SYNCED = BOOK_SYNCED
SNAPSHOT_TOO_OLD = BOOK_SNAPSHOT_TOO_OLD
STATUS_NAMES = {APPLIED: "applied", BUFFERED: "buffered", STALE: "stale", GAP: "gap", SYNCED: "synced",
                SNAPSHOT_TOO_OLD: "snapshot_too_old"}


cdef inline bint _good(double price, double qty) noexcept:
    return 0.0 < price <= DBL_MAX and 0.0 <= qty <= DBL_MAX


cdef Level* _levels_from_list(list rows, int* n) except? NULL:
    """Copy a list of (price, qty) into a malloc'd array, refusing bad levels with ValueError."""
    cdef Py_ssize_t count = len(rows), i
    cdef Level* out = <Level*>malloc((count + 1) * sizeof(Level))
    if out == NULL:
        raise MemoryError()
    try:
        for i in range(count):
            try:
                price, qty = rows[i]
                out[i].price = price
                out[i].qty = qty
            except (TypeError, ValueError) as exc:
                raise ValueError(f"bad book level {rows[i]!r}: want (price, qty)") from exc
            if not _good(out[i].price, out[i].qty):
                raise ValueError(f"bad book level {rows[i]!r}: price must be finite and > 0, qty finite and >= 0")
    except BaseException:
        free(out)
        raise
    n[0] = <int>count
    return out


cdef class OrderBook:
    """See the module docstring. Thin def wrappers exist for tests and the shard's slow paths."""

    def __cinit__(self, int depth_cap=DEFAULT_DEPTH):
        if depth_cap < 1 or depth_cap > 10_000:
            raise ValueError("depth_cap must be between 1 and 10000")
        self.depth_cap = depth_cap
        self.bids = <Level*>malloc(depth_cap * sizeof(Level))
        self.asks = <Level*>malloc(depth_cap * sizeof(Level))
        if self.bids == NULL or self.asks == NULL:
            raise MemoryError()
        self._clear_levels()
        self.version = 0
        self.synced = False
        self.buffered = NULL
        self.n_buffered = self.cap_buffered = 0
        self.pool = NULL
        self.n_pool = self.cap_pool = 0
        self.buffer_overflows = 0

    def __dealloc__(self):
        free(self.bids)
        free(self.asks)
        free(self.buffered)
        free(self.pool)

    # --- updates -----------------------------------------------------------------------------------

    cdef void _clear_levels(self) noexcept:
        self.n_bids = self.n_asks = 0
        self.bid_horizon = 0.0
        self.ask_horizon = INFINITY

    cdef void _set_level(self, bint bid, double price, double qty) noexcept:
        cdef Level* side = self.bids if bid else self.asks
        cdef int n = self.n_bids if bid else self.n_asks
        cdef int i = 0
        if not _good(price, qty):
            return
        if (price <= self.bid_horizon) if bid else (price >= self.ask_horizon):
            return  # beyond what this side remembers
        # Find the first level not better than price (bids descending, asks ascending).
        if bid:
            while i < n and side[i].price > price:
                i += 1
        else:
            while i < n and side[i].price < price:
                i += 1
        if i < n and side[i].price == price:
            if qty == 0.0:
                memmove(&side[i], &side[i + 1], (n - i - 1) * sizeof(Level))
                n -= 1
            else:
                side[i].qty = qty
        elif qty > 0.0:
            if i == self.depth_cap:
                # Worse than K kept levels: forget it, and everything from it outwards.
                if bid:
                    self.bid_horizon = price
                else:
                    self.ask_horizon = price
                return
            if n == self.depth_cap:
                n -= 1  # the worst level falls out and becomes the horizon
                if bid:
                    self.bid_horizon = side[n].price
                else:
                    self.ask_horizon = side[n].price
            memmove(&side[i + 1], &side[i], (n - i) * sizeof(Level))
            side[i].price = price
            side[i].qty = qty
            n += 1
        if bid:
            self.n_bids = n
        else:
            self.n_asks = n

    cdef void _apply_levels(self, const Level* bids, int nb, const Level* asks, int na) noexcept:
        cdef int i
        for i in range(nb):
            self._set_level(True, bids[i].price, bids[i].qty)
        for i in range(na):
            self._set_level(False, asks[i].price, asks[i].qty)

    cdef void _drop_buffer(self) noexcept:
        free(self.buffered)
        free(self.pool)
        self.buffered = NULL
        self.pool = NULL
        self.n_buffered = self.cap_buffered = 0
        self.n_pool = self.cap_pool = 0

    cdef int _buffer(self, unsigned long long from_v, unsigned long long to_v,
                     const Level* bids, int nb, const Level* asks, int na) except -1:
        cdef int i
        cdef int cap
        if self.n_buffered >= MAX_BUFFERED or self.n_pool + nb + na > MAX_BUFFERED_LEVELS:
            # Too long without a snapshot: start over; the snapshot check will ask for a fresh one.
            self.n_buffered = 0
            self.n_pool = 0
            self.buffer_overflows += 1
            if nb + na > MAX_BUFFERED_LEVELS:
                return 0  # a single diff larger than the whole buffer: drop it too
        if self.n_buffered == self.cap_buffered:
            cap = self.cap_buffered * 2 + 8
            if cap > MAX_BUFFERED:
                cap = MAX_BUFFERED
            self.buffered = <Buffered*>realloc(self.buffered, cap * sizeof(Buffered))
            if self.buffered == NULL:
                self.cap_buffered = self.n_buffered = 0
                raise MemoryError()
            self.cap_buffered = cap
        if self.n_pool + nb + na > self.cap_pool:
            cap = self.cap_pool * 2 + 64
            while cap < self.n_pool + nb + na:
                cap *= 2
            if cap > MAX_BUFFERED_LEVELS:
                cap = MAX_BUFFERED_LEVELS
            self.pool = <Level*>realloc(self.pool, cap * sizeof(Level))
            if self.pool == NULL:
                self.cap_pool = self.n_pool = self.n_buffered = 0
                raise MemoryError()
            self.cap_pool = cap
        self.buffered[self.n_buffered].from_v = from_v
        self.buffered[self.n_buffered].to_v = to_v
        self.buffered[self.n_buffered].offset = self.n_pool
        self.buffered[self.n_buffered].n_bids = nb
        self.buffered[self.n_buffered].n_asks = na
        for i in range(nb):
            self.pool[self.n_pool + i] = bids[i]
        for i in range(na):
            self.pool[self.n_pool + nb + i] = asks[i]
        self.n_pool += nb + na
        self.n_buffered += 1
        return 0

    cdef void _keep_buffered_from(self, int first) noexcept:
        """Drop buffered diffs before `first`, compacting their levels out of the pool."""
        cdef int shift = self.buffered[first].offset, i
        memmove(&self.pool[0], &self.pool[shift], (self.n_pool - shift) * sizeof(Level))
        self.n_pool -= shift
        memmove(&self.buffered[0], &self.buffered[first], (self.n_buffered - first) * sizeof(Buffered))
        self.n_buffered -= first
        for i in range(self.n_buffered):
            self.buffered[i].offset -= shift

    cdef int c_apply_diff(self, unsigned long long from_v, unsigned long long to_v,
                          const Level* bids, int nb, const Level* asks, int na) except -1:
        """One diff push; returns a BookStatus (APPLIED, BUFFERED, STALE or GAP)."""
        if not self.synced:
            if self.n_buffered and to_v <= self.buffered[self.n_buffered - 1].to_v:
                return BOOK_STALE  # a repeat (two links overlapping): nothing new to keep
            self._buffer(from_v, to_v, bids, nb, asks, na)
            return BOOK_BUFFERED
        if to_v <= self.version:
            return BOOK_STALE
        if from_v != self.version + 1:
            self.synced = False
            self._clear_levels()
            self.n_buffered = self.n_pool = 0
            self._buffer(from_v, to_v, bids, nb, asks, na)
            return BOOK_GAP
        self._apply_levels(bids, nb, asks, na)
        self.version = to_v
        if (self.n_bids == 0 and self.bid_horizon > 0.0) or (self.n_asks == 0 and self.ask_horizon < INFINITY):
            # Swept past everything this side remembers: its best price is unknown.
            self.synced = False
            self._clear_levels()
            return BOOK_GAP
        return BOOK_APPLIED

    cdef int c_apply_snapshot(self, unsigned long long last_update_id,
                              const Level* bids, int nb, const Level* asks, int na) noexcept:
        """mexc-api.md §3.1 steps 3-6; returns SYNCED, SNAPSHOT_TOO_OLD or GAP.

        Every check runs before the book is touched, so a refused snapshot leaves the book as it
        was (unsynced, still buffering).
        """
        cdef int start = 0, i
        cdef Buffered* b
        # Step 3, read as "the snapshot cannot reach the first buffered diff": a snapshot exactly
        # one version short (lastUpdateId + 1 == fromVersion) continues it and is accepted.
        if self.n_buffered and last_update_id + 1 < self.buffered[0].from_v:
            return BOOK_SNAPSHOT_TOO_OLD
        # Step 4: diffs the snapshot already contains.
        while start < self.n_buffered and self.buffered[start].to_v <= last_update_id:
            start += 1
        # Step 5: the first remaining diff must touch lastUpdateId + 1.
        if start < self.n_buffered and self.buffered[start].from_v > last_update_id + 1:
            return BOOK_GAP
        # The remaining diffs must chain; a break means a newer snapshot is needed. Keep the diffs
        # after the break: they are exactly what that newer snapshot will need.
        for i in range(start + 1, self.n_buffered):
            if self.buffered[i].from_v != self.buffered[i - 1].to_v + 1:
                self._keep_buffered_from(i)
                return BOOK_GAP
        # Step 6.
        self._clear_levels()
        self._apply_levels(bids, nb, asks, na)
        self.version = last_update_id
        for i in range(start, self.n_buffered):
            b = &self.buffered[i]
            self._apply_levels(&self.pool[b.offset], b.n_bids, &self.pool[b.offset + b.n_bids], b.n_asks)
            self.version = b.to_v
        self._drop_buffer()
        self.synced = True
        return BOOK_SYNCED

    cdef void c_reset(self) noexcept:
        self.synced = False
        self._clear_levels()
        self._drop_buffer()

    def apply_diff(self, unsigned long long from_v, unsigned long long to_v, list bids, list asks) -> int:
        """Test/slow-path wrapper: bids and asks as lists of (price, qty). Returns a status code."""
        cdef int nb = 0, na = 0
        cdef Level* b = _levels_from_list(bids, &nb)
        cdef Level* a = NULL
        try:
            a = _levels_from_list(asks, &na)
            return self.c_apply_diff(from_v, to_v, b, nb, a, na)
        finally:
            free(b)
            free(a)

    def apply_snapshot(self, unsigned long long last_update_id, list bids, list asks) -> int:
        """REST snapshot + buffered diffs (mexc-api.md §3.1 steps 3-6). Returns a status code.

        Raises ValueError for a bad level (the book is left untouched).
        """
        cdef int nb = 0, na = 0
        cdef Level* b = _levels_from_list(bids, &nb)
        cdef Level* a = NULL
        try:
            a = _levels_from_list(asks, &na)
            return self.c_apply_snapshot(last_update_id, b, nb, a, na)
        finally:
            free(b)
            free(a)

    def replay_diffs(self, const unsigned long long[::1] from_v, const unsigned long long[::1] to_v,
                     const int[::1] n_bids, const int[::1] n_asks, const double[:, ::1] levels) -> int:
        """Apply many diffs from arrays in one call (replay, benchmarks); returns how many applied.

        Diff i's levels are rows of `levels` (price, qty): its n_bids[i] bids then its n_asks[i] asks,
        diffs one after another.
        """
        cdef Py_ssize_t n = from_v.shape[0], i, row = 0
        cdef int applied = 0, status
        cdef const double* base
        if to_v.shape[0] != n or n_bids.shape[0] != n or n_asks.shape[0] != n:
            raise ValueError("from_v, to_v, n_bids and n_asks must have the same length")
        if levels.shape[1] != 2:
            raise ValueError("levels must have shape (n, 2)")
        for i in range(n):
            if n_bids[i] < 0 or n_asks[i] < 0 or row + n_bids[i] + n_asks[i] > levels.shape[0]:
                raise ValueError(f"diff {i}: level counts run past the levels array")
            row += n_bids[i] + n_asks[i]
        row = 0
        base = &levels[0, 0] if levels.shape[0] else NULL
        for i in range(n):
            status = self.c_apply_diff(from_v[i], to_v[i], <const Level*>(base + 2 * row), n_bids[i],
                                       <const Level*>(base + 2 * (row + n_bids[i])), n_asks[i])
            applied += status == BOOK_APPLIED
            row += n_bids[i] + n_asks[i]
        return applied

    def reset(self) -> None:
        """Forget the book (link lost): diffs are buffered until the next snapshot."""
        self.c_reset()

    # --- queries ---------------------------------------------------------------------------------

    @property
    def valid(self) -> bool:
        return self.synced and self.n_bids > 0 and self.n_asks > 0

    @property
    def best_bid(self) -> float:
        return self.bids[0].price if self.n_bids else float("nan")

    @property
    def best_ask(self) -> float:
        return self.asks[0].price if self.n_asks else float("nan")

    @property
    def best_bid_qty(self) -> float:
        return self.bids[0].qty if self.n_bids else float("nan")

    @property
    def best_ask_qty(self) -> float:
        return self.asks[0].qty if self.n_asks else float("nan")

    @property
    def mid(self) -> float:
        return (self.bids[0].price + self.asks[0].price) / 2.0 if self.n_bids and self.n_asks else float("nan")

    @property
    def spread_frac(self) -> float:
        if not (self.n_bids and self.n_asks):
            return float("nan")
        return (self.asks[0].price - self.bids[0].price) / ((self.asks[0].price + self.bids[0].price) / 2.0)

    @property
    def n_buffered_diffs(self) -> int:
        return self.n_buffered

    cdef double c_size_within(self, bint bid, double bps) noexcept:
        """Size within bps of this side's best price (the best level always counts)."""
        cdef Level* side = self.bids if bid else self.asks
        cdef int n = self.n_bids if bid else self.n_asks
        cdef double limit, total = 0.0
        cdef int i
        if n == 0:
            return 0.0
        if bid:
            limit = side[0].price * (1.0 - bps * 1e-4)
            for i in range(n):
                if side[i].price < limit and i > 0:
                    break
                total += side[i].qty
        else:
            limit = side[0].price * (1.0 + bps * 1e-4)
            for i in range(n):
                if side[i].price > limit and i > 0:
                    break
                total += side[i].qty
        return total

    def size_within(self, bint bid, double bps) -> float:
        """Base size of one side within bps of that side's best price (DESIGN.md: bands from the best)."""
        return self.c_size_within(bid, bps)

    def levels(self) -> tuple:
        """(bids, asks) as lists of (price, qty), best first."""
        return ([(self.bids[i].price, self.bids[i].qty) for i in range(self.n_bids)],
                [(self.asks[i].price, self.asks[i].qty) for i in range(self.n_asks)])

    def nbytes(self) -> int:
        """Bytes this book holds: the object plus its malloc'd level arrays and diff buffer."""
        return (<object>self).__sizeof__() + 2 * self.depth_cap * sizeof(Level) \
            + self.cap_buffered * sizeof(Buffered) + self.cap_pool * sizeof(Level)
