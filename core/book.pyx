# cython: language_level=3
"""Per-pair order book fed by aggre.depth diffs (mexc-api.md §3).

Why only K levels per side: the features look within 10 bps of the touch; a full 5,000-level
book per pair would cost megabytes for 2,000 pairs and gain nothing. Levels beyond K are
forgotten: a level that falls out of the top K and comes back later is re-learnt from the next
diff that touches it or the next snapshot. A delete far away is harmless.

Versions: a live diff must continue the book (fromVersion == version + 1); one older than the
book is ignored; a gap invalidates the book and buffers diffs until a REST snapshot is applied
with the buffered-diff procedure (drop buffered diffs the snapshot covers, require the first
remaining to start at or before lastUpdateId + 1, apply in order).
"""

from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memmove

DEF MAX_BUFFERED = 512

APPLIED = BOOK_APPLIED
BUFFERED = BOOK_BUFFERED
STALE = BOOK_STALE
GAP = BOOK_GAP
SYNCED = BOOK_SYNCED
SNAPSHOT_TOO_OLD = BOOK_SNAPSHOT_TOO_OLD


cdef class OrderBook:
    """See the module docstring. Thin def wrappers exist for tests and the shard's slow paths."""

    def __cinit__(self, int depth_cap=32):
        if depth_cap < 1:
            raise ValueError("depth_cap must be >= 1")
        self.depth_cap = depth_cap
        self.bids = <Level*>malloc(depth_cap * sizeof(Level))
        self.asks = <Level*>malloc(depth_cap * sizeof(Level))
        if self.bids == NULL or self.asks == NULL:
            raise MemoryError()
        self.n_bids = self.n_asks = 0
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

    cdef void _set_level(self, bint bid, double price, double qty):
        cdef Level* side = self.bids if bid else self.asks
        cdef int n = self.n_bids if bid else self.n_asks
        cdef int i = 0
        # Find the first level not better than price (bids descending, asks ascending).
        if bid:
            while i < n and side[i].price > price:
                i += 1
        else:
            while i < n and side[i].price < price:
                i += 1
        if i < n and side[i].price == price:
            if qty <= 0.0:
                memmove(&side[i], &side[i + 1], (n - i - 1) * sizeof(Level))
                n -= 1
            else:
                side[i].qty = qty
        elif qty > 0.0 and i < self.depth_cap:
            if n == self.depth_cap:
                n -= 1  # the worst level falls out
            memmove(&side[i + 1], &side[i], (n - i) * sizeof(Level))
            side[i].price = price
            side[i].qty = qty
            n += 1
        if bid:
            self.n_bids = n
        else:
            self.n_asks = n

    cdef void _apply_levels(self, const Level* bids, int nb, const Level* asks, int na):
        cdef int i
        for i in range(nb):
            self._set_level(True, bids[i].price, bids[i].qty)
        for i in range(na):
            self._set_level(False, asks[i].price, asks[i].qty)

    cdef int _buffer(self, unsigned long long from_v, unsigned long long to_v,
                     const Level* bids, int nb, const Level* asks, int na) except -1:
        cdef int i
        if self.n_buffered >= MAX_BUFFERED:
            # Too long without a snapshot: start over; the snapshot check will ask for a fresh one.
            self.n_buffered = 0
            self.n_pool = 0
            self.buffer_overflows += 1
        if self.n_buffered == self.cap_buffered:
            self.cap_buffered = self.cap_buffered * 2 + 8
            self.buffered = <Buffered*>realloc(self.buffered, self.cap_buffered * sizeof(Buffered))
            if self.buffered == NULL:
                raise MemoryError()
        while self.n_pool + nb + na > self.cap_pool:
            self.cap_pool = self.cap_pool * 2 + 64
            self.pool = <Level*>realloc(self.pool, self.cap_pool * sizeof(Level))
            if self.pool == NULL:
                raise MemoryError()
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

    cdef int c_apply_diff(self, unsigned long long from_v, unsigned long long to_v,
                          const Level* bids, int nb, const Level* asks, int na) except -1:
        if not self.synced:
            self._buffer(from_v, to_v, bids, nb, asks, na)
            return BOOK_BUFFERED
        if to_v <= self.version:
            return BOOK_STALE
        if from_v != self.version + 1:
            self.synced = False
            self.n_bids = self.n_asks = 0
            self.n_buffered = self.n_pool = 0
            self._buffer(from_v, to_v, bids, nb, asks, na)
            return BOOK_GAP
        self._apply_levels(bids, nb, asks, na)
        self.version = to_v
        return BOOK_APPLIED

    def apply_diff(self, unsigned long long from_v, unsigned long long to_v, list bids, list asks):
        """Test/slow-path wrapper: bids and asks as lists of (price, qty)."""
        cdef int nb = len(bids), na = len(asks), i
        cdef Level* tmp = <Level*>malloc((nb + na + 1) * sizeof(Level))
        if tmp == NULL:
            raise MemoryError()
        try:
            for i in range(nb):
                tmp[i].price, tmp[i].qty = bids[i][0], bids[i][1]
            for i in range(na):
                tmp[nb + i].price, tmp[nb + i].qty = asks[i][0], asks[i][1]
            return self.c_apply_diff(from_v, to_v, tmp, nb, tmp + nb, na)
        finally:
            free(tmp)

    def apply_snapshot(self, unsigned long long last_update_id, list bids, list asks):
        """REST snapshot + buffered diffs (mexc-api.md §3.1 steps 3-6). Returns a status code."""
        cdef int start = 0, i
        cdef Buffered* b
        if self.n_buffered and last_update_id + 1 < self.buffered[0].from_v:
            return BOOK_SNAPSHOT_TOO_OLD
        while start < self.n_buffered and self.buffered[start].to_v <= last_update_id:
            start += 1
        if start < self.n_buffered and self.buffered[start].from_v > last_update_id + 1:
            return BOOK_GAP
        self.n_bids = self.n_asks = 0
        for price, qty in bids:
            self._set_level(True, price, qty)
        for price, qty in asks:
            self._set_level(False, price, qty)
        self.version = last_update_id
        for i in range(start, self.n_buffered):
            b = &self.buffered[i]
            if i > start and b.from_v != self.version + 1:
                self.n_bids = self.n_asks = 0
                self.n_buffered = self.n_pool = 0
                return BOOK_GAP
            self._apply_levels(&self.pool[b.offset], b.n_bids, &self.pool[b.offset + b.n_bids], b.n_asks)
            self.version = b.to_v
        self.n_buffered = self.n_pool = 0
        self.synced = True
        return BOOK_SYNCED

    def reset(self):
        """Forget the book (link lost): diffs are buffered until the next snapshot."""
        self.synced = False
        self.n_bids = self.n_asks = 0
        self.n_buffered = self.n_pool = 0

    # --- queries ---------------------------------------------------------------------------------

    @property
    def valid(self):
        return self.synced and self.n_bids > 0 and self.n_asks > 0

    @property
    def best_bid(self):
        return self.bids[0].price if self.n_bids else float("nan")

    @property
    def best_ask(self):
        return self.asks[0].price if self.n_asks else float("nan")

    @property
    def best_bid_qty(self):
        return self.bids[0].qty if self.n_bids else float("nan")

    @property
    def best_ask_qty(self):
        return self.asks[0].qty if self.n_asks else float("nan")

    @property
    def mid(self):
        return (self.bids[0].price + self.asks[0].price) / 2.0 if self.n_bids and self.n_asks else float("nan")

    @property
    def spread_frac(self):
        if not (self.n_bids and self.n_asks):
            return float("nan")
        return (self.asks[0].price - self.bids[0].price) / ((self.asks[0].price + self.bids[0].price) / 2.0)

    cdef double c_size_within(self, bint bid, double bps):
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

    def size_within(self, bint bid, double bps):
        return self.c_size_within(bid, bps)

    def levels(self):
        """(bids, asks) as lists of (price, qty), best first."""
        return ([(self.bids[i].price, self.bids[i].qty) for i in range(self.n_bids)],
                [(self.asks[i].price, self.asks[i].qty) for i in range(self.n_asks)])
