# cython: language_level=3
"""Triangular cycles priced on the L10 tops of their three pairs, re-priced per book update.

Why compiled and incremental: the full MEXC spot universe has ~2,000 pairs and tens of thousands
of three-leg cycles over all quote assets; a book update of one pair touches only the cycles
through that pair (an index built once per universe change), and each of those is re-priced in C
from flat arrays, with its result cached per cycle. Only cycles that are profitable now, or were at
their previous pricing, are reported to Python (take_touched), so Python work follows the rare
opportunities, not the update rate.

A cycle is three legs start -> X -> Y -> start. A leg that buys the base pays the quote at the
asks (ask when buying), one that sells the base takes the bids. Every leg's proceeds lose the
pair's taker fee; base quantities are floored to the pair's lot step (the dust is lost). A cycle
is unpriceable, never profitable, when a leg has no book yet, an empty side, a crossed top
(bid >= ask) or is older than max_leg_age_ms at the update that re-prices it.

Size-aware profit: top_bps is the edge at the top of the book (no rounding, vanishing size). Only
when it clears min_profit_bps is the depth walked: edge_bps is the profit of min_start (the
smallest amount worth reporting), and size the largest start amount whose profit stays at or
above min_profit_bps, found by bisection between min_start and what the first leg's L10 can
absorb (a leg that cannot absorb its input makes the amount infeasible). size_bps is the profit
at that size. core/reference/cycles.py is the plain-Python twin; tests prove them equal.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.math cimport INFINITY, NAN, floor
from libc.stdlib cimport calloc, free, malloc

from core.decode cimport BODY_AGGRE_BOOK_TICKER, BODY_LIMIT_DEPTH

from core.decode import DecodeError

DEF C_DEPTH = 10
DEF BISECT_STEPS = 48
DEF STEP_EPS = 1e-9

DEPTH = C_DEPTH
BISECTIONS = BISECT_STEPS
BELOW = CYCLE_BELOW
PROFITABLE = CYCLE_PROFITABLE
UNSEEN = CYCLE_UNSEEN
ONE_SIDED = CYCLE_ONE_SIDED
CROSSED = CYCLE_CROSSED
STALE = CYCLE_STALE
STATUS_NAMES = {BELOW: "below", PROFITABLE: "profitable", UNSEEN: "unseen", ONE_SIDED: "one_sided", CROSSED: "crossed",
                STALE: "stale"}


cdef inline bint _good(double price, double qty) noexcept:
    return 0.0 < price < INFINITY and 0.0 < qty < INFINITY


cdef void* _alloc(Py_ssize_t n, Py_ssize_t size) except NULL:
    cdef void* p = calloc(n if n > 0 else 1, size)
    if p == NULL:
        raise MemoryError()
    return p


cdef class CycleBook:
    """See the module docstring. The def methods are the slow paths (set-up, tests, /arb)."""

    def __cinit__(self, int n_pairs, object cycles, double min_profit_bps=0.0, double min_start=10.0,
                  long long max_leg_age_ms=5000):
        cdef int i, k, c, p
        cdef int* fill
        cdef list rows = list(cycles)
        if n_pairs < 0:
            raise ValueError("n_pairs must be >= 0")
        self.n_pairs = n_pairs
        self.n_cycles = len(rows)
        self.depth = C_DEPTH
        self.bid_px = <double*>_alloc(n_pairs * C_DEPTH, sizeof(double))
        self.bid_qty = <double*>_alloc(n_pairs * C_DEPTH, sizeof(double))
        self.ask_px = <double*>_alloc(n_pairs * C_DEPTH, sizeof(double))
        self.ask_qty = <double*>_alloc(n_pairs * C_DEPTH, sizeof(double))
        self.n_bid = <int*>_alloc(n_pairs, sizeof(int))
        self.n_ask = <int*>_alloc(n_pairs, sizeof(int))
        self.t_ms = <long long*>_alloc(n_pairs, sizeof(long long))
        self.fee = <double*>_alloc(n_pairs, sizeof(double))
        self.step = <double*>_alloc(n_pairs, sizeof(double))
        self.index_start = <int*>_alloc(n_pairs + 1, sizeof(int))
        for p in range(n_pairs):
            self.t_ms[p] = -1
            self.fee[p] = 0.0005
        self.leg_pair = <int*>_alloc(self.n_cycles * 3, sizeof(int))
        self.leg_buy = <char*>_alloc(self.n_cycles * 3, sizeof(char))
        for c in range(self.n_cycles):
            legs = rows[c]
            if len(legs) != 3:
                raise ValueError(f"cycle {c}: want three (pair, buy) legs, got {legs!r}")
            for k in range(3):
                p, buy = legs[k]
                if not 0 <= p < n_pairs:
                    raise ValueError(f"cycle {c}: pair id {p} outside 0..{n_pairs - 1}")
                self.leg_pair[3 * c + k] = p
                self.leg_buy[3 * c + k] = 1 if buy else 0
        # The index: each pair's cycles (a pair used twice by one cycle lists it once).
        for c in range(self.n_cycles):
            for k in range(3):
                p = self.leg_pair[3 * c + k]
                if k == 0 or (p != self.leg_pair[3 * c] and (k == 1 or p != self.leg_pair[3 * c + 1])):
                    self.index_start[p + 1] += 1
        for p in range(n_pairs):
            self.index_start[p + 1] += self.index_start[p]
        self.index_cycles = <int*>_alloc(self.index_start[n_pairs], sizeof(int))
        fill = <int*>_alloc(n_pairs, sizeof(int))
        try:
            for c in range(self.n_cycles):
                for k in range(3):
                    p = self.leg_pair[3 * c + k]
                    if k == 0 or (p != self.leg_pair[3 * c] and (k == 1 or p != self.leg_pair[3 * c + 1])):
                        self.index_cycles[self.index_start[p] + fill[p]] = c
                        fill[p] += 1
        finally:
            free(fill)
        self.status = <char*>_alloc(self.n_cycles, sizeof(char))
        self.top_bps = <double*>_alloc(self.n_cycles, sizeof(double))
        self.edge_bps = <double*>_alloc(self.n_cycles, sizeof(double))
        self.size = <double*>_alloc(self.n_cycles, sizeof(double))
        self.size_bps = <double*>_alloc(self.n_cycles, sizeof(double))
        self.ages = <long long*>_alloc(self.n_cycles * 3, sizeof(long long))
        self.priced_ms = <long long*>_alloc(self.n_cycles, sizeof(long long))
        self.touched = <int*>_alloc(self.n_cycles, sizeof(int))
        self.touched_flag = <char*>_alloc(self.n_cycles, sizeof(char))
        for c in range(self.n_cycles):
            self.status[c] = CYCLE_UNSEEN
            self.top_bps[c] = NAN
            self.edge_bps[c] = NAN
            self.size_bps[c] = NAN
            self.priced_ms[c] = -1
            for k in range(3):
                self.ages[3 * c + k] = -1
        self.n_touched = 0
        self.decoder = FrameDecoder()
        self.ids = {}
        self.set_params(min_profit_bps, min_start, max_leg_age_ms)

    def __dealloc__(self):
        free(self.bid_px); free(self.bid_qty); free(self.ask_px); free(self.ask_qty); free(self.n_bid); free(self.n_ask)
        free(self.t_ms); free(self.fee); free(self.step); free(self.leg_pair); free(self.leg_buy); free(self.index_start)
        free(self.index_cycles); free(self.status); free(self.top_bps); free(self.edge_bps); free(self.size)
        free(self.size_bps); free(self.ages); free(self.priced_ms); free(self.touched); free(self.touched_flag)

    # --- set-up ----------------------------------------------------------------------------------

    def set_params(self, double min_profit_bps, double min_start, long long max_leg_age_ms) -> None:
        """Thresholds; they apply from the next pricing of each cycle."""
        if not (-10_000.0 < min_profit_bps < 10_000.0) or not (0.0 < min_start < INFINITY) or max_leg_age_ms < 0:
            raise ValueError("want -10000 < min_profit_bps < 10000, min_start > 0 and max_leg_age_ms >= 0")
        self.min_profit_bps = min_profit_bps
        self.min_start = min_start
        self.max_leg_age_ms = max_leg_age_ms

    def set_rules(self, int pair, double fee, double step) -> None:
        """A pair's taker fee (fraction) and base lot step (0: none)."""
        if not 0 <= pair < self.n_pairs:
            raise ValueError(f"pair id {pair} outside 0..{self.n_pairs - 1}")
        if not (0.0 <= fee < 0.5) or not (0.0 <= step < INFINITY):
            raise ValueError(f"pair {pair}: want 0 <= fee < 0.5 and a finite step >= 0, got fee {fee}, step {step}")
        self.fee[pair] = fee
        self.step[pair] = step

    def set_symbols(self, list symbols) -> None:
        """Symbol names of pair ids 0..n-1, for on_frame."""
        if len(symbols) != self.n_pairs:
            raise ValueError(f"want {self.n_pairs} symbols, got {len(symbols)}")
        self.ids = {s.encode(): i for i, s in enumerate(symbols)}

    # --- updates ---------------------------------------------------------------------------------

    cdef int c_update(self, int pair, long long t_ms, const Level* bids, int nb, const Level* asks, int na) noexcept:
        """Replace a pair's top levels (the first DEPTH given, best first; bad or unordered ones are dropped), re-price its cycles."""
        cdef int i, n = 0, lo, hi, c
        cdef double last
        cdef Py_ssize_t o = <Py_ssize_t>pair * C_DEPTH
        last = INFINITY
        nb = nb if nb < C_DEPTH else C_DEPTH
        na = na if na < C_DEPTH else C_DEPTH
        for i in range(nb):
            if _good(bids[i].price, bids[i].qty) and bids[i].price < last:
                self.bid_px[o + n] = bids[i].price
                self.bid_qty[o + n] = bids[i].qty
                last = bids[i].price
                n += 1
        self.n_bid[pair] = n
        n = 0
        last = 0.0
        for i in range(na):
            if _good(asks[i].price, asks[i].qty) and asks[i].price > last:
                self.ask_px[o + n] = asks[i].price
                self.ask_qty[o + n] = asks[i].qty
                last = asks[i].price
                n += 1
        self.n_ask[pair] = n
        if t_ms > self.t_ms[pair]:
            self.t_ms[pair] = t_ms
        self.updates_total += 1
        lo = self.index_start[pair]
        hi = self.index_start[pair + 1]
        for i in range(lo, hi):
            self.c_reprice(self.index_cycles[i], t_ms)
        return hi - lo

    cdef double c_leg(self, int pair, bint buy, double amount) noexcept:
        """One leg's proceeds before the fee: base bought with `amount` quote, or quote for `amount` base; -1 if L10 cannot absorb it."""
        cdef Py_ssize_t o = <Py_ssize_t>pair * C_DEPTH
        cdef double rem = amount, out = 0.0, cost, stp = self.step[pair]
        cdef int i
        if buy:
            for i in range(self.n_ask[pair]):
                cost = self.ask_px[o + i] * self.ask_qty[o + i]
                if rem <= cost:
                    out += rem / self.ask_px[o + i]
                    rem = 0.0
                    break
                out += self.ask_qty[o + i]
                rem -= cost
            if rem > 0.0:
                return -1.0
            if stp > 0.0:
                out = floor(out / stp + STEP_EPS) * stp
            return out
        if stp > 0.0:
            rem = floor(rem / stp + STEP_EPS) * stp
        for i in range(self.n_bid[pair]):
            if rem <= self.bid_qty[o + i]:
                out += rem * self.bid_px[o + i]
                rem = 0.0
                break
            out += self.bid_qty[o + i] * self.bid_px[o + i]
            rem -= self.bid_qty[o + i]
        if rem > 0.0:
            return -1.0
        return out

    cdef double c_profit(self, int c, double amount) noexcept:
        """Profit in bps of starting cycle c with `amount` (fees, rounding, L10 walk); -inf when infeasible."""
        cdef double a = amount
        cdef int k, p
        for k in range(3):
            p = self.leg_pair[3 * c + k]
            a = self.c_leg(p, self.leg_buy[3 * c + k], a)
            if a < 0.0:
                return -INFINITY
            a = a * (1.0 - self.fee[p])
        return (a / amount - 1.0) * 1e4

    cdef void c_reprice(self, int c, long long now_ms) noexcept:
        cdef int k, p, i
        cdef int code = CYCLE_BELOW
        cdef long long age
        cdef double r = 1.0, lo, hi, mid
        cdef bint was = self.status[c] == CYCLE_PROFITABLE
        cdef Py_ssize_t o
        self.repriced_total += 1
        self.priced_ms[c] = now_ms
        for k in range(3):
            p = self.leg_pair[3 * c + k]
            if self.t_ms[p] < 0:
                age = -1
            else:
                age = now_ms - self.t_ms[p]
                if age < 0:
                    age = 0  # the leg's push is newer than the one re-pricing (pushes of pairs interleave)
            self.ages[3 * c + k] = age
            if code != CYCLE_BELOW:
                continue
            o = <Py_ssize_t>p * C_DEPTH
            if self.t_ms[p] < 0:
                code = CYCLE_UNSEEN
            elif self.n_bid[p] == 0 or self.n_ask[p] == 0:
                code = CYCLE_ONE_SIDED
            elif self.bid_px[o] >= self.ask_px[o]:
                code = CYCLE_CROSSED
            elif age > self.max_leg_age_ms:
                code = CYCLE_STALE
            elif self.leg_buy[3 * c + k]:
                r = r / self.ask_px[o]
                r = r * (1.0 - self.fee[p])
            else:
                r = r * self.bid_px[o]
                r = r * (1.0 - self.fee[p])
        self.edge_bps[c] = NAN
        self.size[c] = 0.0
        self.size_bps[c] = NAN
        if code != CYCLE_BELOW:
            self.status[c] = code
            self.top_bps[c] = NAN
        else:
            self.top_bps[c] = (r - 1.0) * 1e4
            if self.top_bps[c] >= self.min_profit_bps:
                lo = self.min_start
                self.edge_bps[c] = self.c_profit(c, lo)
                if self.edge_bps[c] >= self.min_profit_bps:
                    code = CYCLE_PROFITABLE
                    p = self.leg_pair[3 * c]
                    o = <Py_ssize_t>p * C_DEPTH
                    hi = 0.0
                    if self.leg_buy[3 * c]:
                        for i in range(self.n_ask[p]):
                            hi += self.ask_px[o + i] * self.ask_qty[o + i]
                    else:
                        for i in range(self.n_bid[p]):
                            hi += self.bid_qty[o + i]
                    if hi <= lo:
                        hi = lo
                    elif self.c_profit(c, hi) >= self.min_profit_bps:
                        lo = hi
                    else:
                        for i in range(BISECT_STEPS):
                            mid = 0.5 * (lo + hi)
                            if self.c_profit(c, mid) >= self.min_profit_bps:
                                lo = mid
                            else:
                                hi = mid
                    self.size[c] = lo
                    self.size_bps[c] = self.c_profit(c, lo)
            self.status[c] = code
        if (was or code == CYCLE_PROFITABLE) and not self.touched_flag[c]:
            self.touched_flag[c] = 1
            self.touched[self.n_touched] = c
            self.n_touched += 1

    # --- Python-visible paths --------------------------------------------------------------------

    def update(self, int pair, long long t_ms, list bids, list asks) -> int:
        """Replace a pair's top levels ([(price, qty)] best first) at exchange time t_ms; returns cycles re-priced."""
        cdef int nb = min(len(bids), C_DEPTH), na = min(len(asks), C_DEPTH), i
        cdef Level b[C_DEPTH]
        cdef Level a[C_DEPTH]
        if not 0 <= pair < self.n_pairs:
            raise ValueError(f"pair id {pair} outside 0..{self.n_pairs - 1}")
        for i in range(nb):
            b[i].price, b[i].qty = bids[i]
        for i in range(na):
            a[i].price, a[i].qty = asks[i]
        return self.c_update(pair, t_ms, b, nb, a, na)

    def on_frame(self, object buf, long long now_ms=-1) -> int:
        """A limit.depth or bookTicker push of a known symbol: update it; returns cycles re-priced (0: ignored).

        Exchange time is the push's sendTime (now_ms when absent). A malformed frame raises DecodeError.
        """
        cdef Py_buffer view
        cdef FrameDecoder d = self.decoder
        cdef Level b, a
        cdef long long t
        PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
        try:
            d.c_decode(<const unsigned char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)
        if d.body != BODY_LIMIT_DEPTH and d.body != BODY_AGGRE_BOOK_TICKER:
            return 0
        pid = self.ids.get(PyBytes_FromStringAndSize(<const char*>d.symbol_ptr, d.symbol_len))
        if pid is None:
            return 0
        t = d.send_time_ms if d.send_time_ms >= 0 else now_ms
        if d.body == BODY_LIMIT_DEPTH:
            return self.c_update(<int>pid, t, d.bids, d.n_bids, d.asks, d.n_asks)
        b.price, b.qty, a.price, a.qty = d.bt_bid_price, d.bt_bid_qty, d.bt_ask_price, d.bt_ask_qty
        return self.c_update(<int>pid, t, &b, 1, &a, 1)

    def reprice(self, int cycle, long long now_ms) -> None:
        """Re-price one cycle at now_ms (tests)."""
        if not 0 <= cycle < self.n_cycles:
            raise ValueError(f"cycle {cycle} outside 0..{self.n_cycles - 1}")
        self.c_reprice(cycle, now_ms)

    def reprice_all(self, long long now_ms) -> int:
        """Every cycle at now_ms (a full re-evaluation: after set_params, and the benchmark's figure)."""
        cdef int c
        for c in range(self.n_cycles):
            self.c_reprice(c, now_ms)
        return self.n_cycles

    def reprice_profitable(self, long long now_ms) -> int:
        """Re-price the cycles now profitable at now_ms, so a leg that went stale ends their episodes."""
        cdef int c, n = 0
        for c in range(self.n_cycles):
            if self.status[c] == CYCLE_PROFITABLE:
                self.c_reprice(c, now_ms)
                n += 1
        return n

    def take_touched(self) -> list:
        """Cycles profitable at their last pricing or just before it, since the previous call."""
        cdef int i
        out = [self.touched[i] for i in range(self.n_touched)]
        for i in range(self.n_touched):
            self.touched_flag[self.touched[i]] = 0
        self.n_touched = 0
        return out

    def result(self, int cycle) -> tuple:
        """(status, top_bps, edge_bps, size, size_bps, (age0, age1, age2), priced_ms) of a cycle's last pricing."""
        cdef int c = cycle
        if not 0 <= cycle < self.n_cycles:
            raise ValueError(f"cycle {cycle} outside 0..{self.n_cycles - 1}")
        return (self.status[c], self.top_bps[c], self.edge_bps[c], self.size[c], self.size_bps[c],
                (self.ages[3 * c], self.ages[3 * c + 1], self.ages[3 * c + 2]), self.priced_ms[c])

    def profit(self, int cycle, double amount) -> float:
        """Profit in bps of starting the cycle with `amount` on the current books (-inf when L10 cannot take it)."""
        if not 0 <= cycle < self.n_cycles or not amount > 0.0:
            raise ValueError("want a known cycle and amount > 0")
        return self.c_profit(cycle, amount)

    def best(self, int k) -> list:
        """Up to k priced cycles with the highest top_bps, best first: [(cycle, top_bps)]."""
        cdef int c
        found = [(self.top_bps[c], c) for c in range(self.n_cycles) if self.status[c] <= CYCLE_PROFITABLE]
        found.sort(key=lambda x: (-x[0], x[1]))
        return [(c, bps) for bps, c in found[: max(0, k)]]

    def cycles_of(self, int pair) -> list:
        """The cycles through a pair (the incremental index)."""
        if not 0 <= pair < self.n_pairs:
            raise ValueError(f"pair id {pair} outside 0..{self.n_pairs - 1}")
        return [self.index_cycles[i] for i in range(self.index_start[pair], self.index_start[pair + 1])]

    def top(self, int pair) -> tuple:
        """(bids, asks, t_ms) kept for a pair: lists of (price, qty), best first."""
        cdef Py_ssize_t o = <Py_ssize_t>pair * C_DEPTH
        if not 0 <= pair < self.n_pairs:
            raise ValueError(f"pair id {pair} outside 0..{self.n_pairs - 1}")
        return ([(self.bid_px[o + i], self.bid_qty[o + i]) for i in range(self.n_bid[pair])],
                [(self.ask_px[o + i], self.ask_qty[o + i]) for i in range(self.n_ask[pair])], self.t_ms[pair])

    def nbytes(self) -> int:
        """Bytes held: the object, the books and the per-cycle arrays and index."""
        return ((<object>self).__sizeof__() + self.n_pairs * (4 * C_DEPTH * sizeof(double) + 2 * sizeof(int) + sizeof(long long)
                + 2 * sizeof(double) + sizeof(int)) + self.n_cycles * (3 * sizeof(int) + 3 + 4 * sizeof(double) + 4 * sizeof(long long)
                + 1 + sizeof(int) + 1) + self.index_start[self.n_pairs] * sizeof(int))
