# cython: language_level=3
"""The shard's hot path: frame bytes in, per-pair state updated, feature rows out.

Why one engine object per shard: the frame callback does one Python call per frame
(on_frame) and everything after that — protobuf walk, book update, 1 s bars, feature row,
ring write, stats counters — happens in C without a Python object per field. The engine knows
nothing of sockets or scoring; the shard feeds it bytes and REST answers, the supervisor reads
the ring.

Exchange time only: bars close when exchange time (deal times, frame sendTime) passes their
end, so replay at any speed gives the same rows.

Candidate rows (DESIGN.md, step 3): a pair whose open bar already looks like a pump (c_precheck:
price CANDIDATE_PM_MIN above the 5-min vwap on CANDIDATE_VOL_MULT x the mean one-second volume,
or with a 5-min volume CANDIDATE_VSR_MIN x its 6 h baseline)
gets a row after each deals push, stamped with that push's receive time, instead of waiting up to
a second for its bar to close. The gate is deliberately looser than any sane scoring rule: it
only decides which pairs are worth scoring early; the supervisor's rules decide the signal. The
candidate's row_time_ms is its bar's end, which is also the closing row's whenever the pair's
next event comes within the next second (a pumping pair's always does), so a signal from either
then has the same id; the per-pair cooldown keeps the other from signalling again regardless.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.math cimport NAN
from libc.string cimport memset

from core.book cimport BOOK_GAP, BOOK_SYNCED, OrderBook
from core.decode cimport BODY_AGGRE_DEALS, BODY_AGGRE_DEPTH, Deal, FrameDecoder
from core.features cimport c_fill_candidate, c_fill_row, c_precheck
from core.ring cimport FeatureRing
from core.row cimport FeatureRow
from core.stats cimport ShardStats
from core.windows cimport TradeWindows

from core.decode import DecodeError

DEF DEPTH_BAND_BPS = 3.0
DEF C_CANDIDATE_PM_MIN = 0.01     # half of Alpha-1's PM > 2 %: a superset gate, the scorer decides
DEF C_CANDIDATE_VOL_MULT = 3.0
DEF C_CANDIDATE_VSR_MIN = 3.0     # 60 % of Alpha-1's VSR > 5, for pumps past their first burst
CANDIDATE_PM_MIN = C_CANDIDATE_PM_MIN
CANDIDATE_VOL_MULT = C_CANDIDATE_VOL_MULT
CANDIDATE_VSR_MIN = C_CANDIDATE_VSR_MIN


cdef class PairState:
    """Everything the engine keeps for one pair."""
    cdef public OrderBook book
    cdef public TradeWindows windows
    cdef public unsigned int pair_id
    cdef public long long listing_ms
    cdef public long long last_recv_ns
    cdef public long long last_deals_send_ms
    cdef public bint dirty
    cdef public str symbol

    def __init__(self, unsigned int pair_id, str symbol):
        self.pair_id = pair_id
        self.symbol = symbol
        self.book = OrderBook()
        self.windows = TradeWindows()
        self.listing_ms = -1
        self.last_recv_ns = 0
        self.last_deals_send_ms = -1
        self.dirty = False


cdef class ShardEngine:
    """Decode frames, keep books and windows, write feature rows to the ring."""
    cdef FrameDecoder decoder
    cdef dict by_symbol
    cdef list resyncs
    cdef FeatureRing ring
    cdef object stats_block
    cdef ShardStats* stats
    cdef readonly long long exchange_ms
    cdef FeatureRow row
    cdef unsigned long long rows_at_notify
    cdef readonly bint candidates

    def __init__(self, FeatureRing ring, stats_block, bint candidates=True):
        self.decoder = FrameDecoder()
        self.candidates = candidates
        self.by_symbol = {}
        self.resyncs = []
        self.ring = ring
        self.stats_block = stats_block
        self.stats = <ShardStats*><size_t>stats_block.address()
        self.exchange_ms = 0
        self.rows_at_notify = 0
        memset(&self.row, 0, sizeof(FeatureRow))

    # --- pairs ---------------------------------------------------------------------------------

    def add_pair(self, unsigned int pair_id, str symbol):
        key = symbol.encode()
        if key not in self.by_symbol:
            self.by_symbol[key] = PairState(pair_id, symbol)

    def remove_pair(self, str symbol):
        self.by_symbol.pop(symbol.encode(), None)

    def pair(self, str symbol):
        return self.by_symbol.get(symbol.encode())

    def set_listing(self, str symbol, long long listing_ms):
        cdef PairState p = self.by_symbol.get(symbol.encode())
        if p is not None:
            p.listing_ms = listing_ms

    def seed_klines(self, str symbol, list rows):
        cdef PairState p = self.by_symbol.get(symbol.encode())
        if p is not None:
            p.windows.seed_klines(rows)

    def reset_book(self, str symbol):
        cdef PairState p = self.by_symbol.get(symbol.encode())
        if p is not None:
            p.book.reset()

    def apply_snapshot(self, str symbol, unsigned long long last_update_id, list bids, list asks):
        """Returns True when the book is in sync after this snapshot."""
        cdef PairState p = self.by_symbol.get(symbol.encode())
        if p is None:
            return True
        status = p.book.apply_snapshot(last_update_id, bids, asks)
        if status == BOOK_SYNCED:
            self.stats.resyncs += 1
            return True
        return False

    def take_resyncs(self):
        out, self.resyncs = self.resyncs, []
        return out

    # --- hot path ------------------------------------------------------------------------------

    def on_frame(self, object buf, long long recv_ns):
        """Feed one binary frame. Returns 1 when some book needs a REST resync, else 0."""
        cdef Py_buffer view
        cdef int need = 0
        PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
        try:
            need = self.c_on_frame(<const unsigned char*>view.buf, view.len, recv_ns)
        finally:
            PyBuffer_Release(&view)
        return need

    cdef int c_on_frame(self, const unsigned char* data, Py_ssize_t n, long long recv_ns) except -1:
        cdef ShardStats* st = self.stats
        cdef FrameDecoder d = self.decoder
        cdef PairState p
        cdef int i, status, need = 0
        cdef Deal* deal
        st.frames_total += 1
        st.bytes_total += n
        st.last_frame_ns = recv_ns
        try:
            d.c_decode(data, n)
        except DecodeError:
            st.decode_errors += 1
            return 0
        if d.body == BODY_AGGRE_DEALS:
            st.deals_frames += 1
        elif d.body == BODY_AGGRE_DEPTH:
            st.depth_frames += 1
        else:
            st.other_frames += 1
            return 0
        p = self.by_symbol.get(PyBytes_FromStringAndSize(<const char*>d.symbol_ptr, d.symbol_len))
        if p is None:
            return 0
        if d.body == BODY_AGGRE_DEALS:
            # The same deals push can arrive twice (two links overlap during a planned
            # reconnect): each pair's pushes have increasing sendTime, so an old one is a repeat.
            if d.send_time_ms >= 0 and d.send_time_ms <= p.last_deals_send_ms:
                st.duplicate_frames += 1
                return 0
            p.last_deals_send_ms = d.send_time_ms
            for i in range(d.n_deals):
                deal = &d.deals[i]
                if deal.time_ms > self.exchange_ms:
                    self.exchange_ms = deal.time_ms
                self._advance_pair(p, deal.time_ms)
                p.windows.c_on_trade(deal.price, deal.qty, deal.side, deal.time_ms)
                p.dirty = True
            p.last_recv_ns = recv_ns
            if self.candidates and d.n_deals > 0 and c_precheck(p.windows, C_CANDIDATE_PM_MIN, C_CANDIDATE_VOL_MULT, C_CANDIDATE_VSR_MIN):
                self._write_candidate(p, recv_ns)
        else:
            status = p.book.c_apply_diff(d.from_version, d.to_version, d.bids, d.n_bids, d.asks, d.n_asks)
            if status == BOOK_GAP:
                st.gaps += 1
                self.resyncs.append(p.symbol)
                need = 1
        if d.send_time_ms > self.exchange_ms:
            self.exchange_ms = d.send_time_ms
        if d.send_time_ms > 0:
            self._advance_pair(p, d.send_time_ms)
        return need

    cdef void _advance_pair(self, PairState p, long long now_ms):
        """Close p's bars up to now_ms; a pair that traded in them gets a feature row."""
        cdef int closed = p.windows.c_advance(now_ms)
        if closed <= 0:
            return
        cdef long long bar_end = (now_ms // 1000) * 1000
        if p.book.synced and p.book.n_bids > 0:
            p.windows.c_record_bid_depth(bar_end, p.book.c_size_within(True, DEPTH_BAND_BPS))
        if not p.dirty:
            return
        p.dirty = False
        c_fill_row(&self.row, p.book, p.windows, bar_end, p.listing_ms, p.last_recv_ns, p.pair_id)
        self._push_row()

    cdef bint _push_row(self) noexcept:
        """Write self.row to the ring and count it (written or dropped); True when written."""
        if self.ring.c_push(&self.row) == 0:
            self.stats.rows_written += 1
            return True
        self.stats.rows_dropped += 1
        return False

    cdef void _write_candidate(self, PairState p, long long recv_ns):
        """The open bar's row now (ROW_CANDIDATE), stamped with the deals push that made it one."""
        c_fill_candidate(&self.row, p.book, p.windows, (p.windows.bar_sec + 1) * 1000, p.listing_ms, recv_ns, p.pair_id)
        if self._push_row():
            self.stats.candidate_rows += 1

    def tick(self):
        """Close bars of every pair up to the shard's exchange clock (quiet pairs included)."""
        cdef PairState p
        if self.exchange_ms <= 0:
            return
        for p in self.by_symbol.values():
            if p.dirty:
                self._advance_pair(p, self.exchange_ms)

    def rows_pending(self):
        return self.stats.rows_written != self.rows_at_notify

    def flush_notify(self):
        """Wake the supervisor once for every batch of rows (not once per row)."""
        if self.stats.rows_written != self.rows_at_notify:
            self.rows_at_notify = self.stats.rows_written
            self.ring.notify()

    # --- stats written by the shard's Python side ------------------------------------------------

    def count_reconnect(self):
        self.stats.reconnects += 1

    def count_rest(self, bint throttled):
        self.stats.rest_requests += 1
        if throttled:
            self.stats.rest_throttled += 1

    def set_link_state(self, int link_id, int state, int links_up):
        self.stats.links_up = links_up

    def set_pair_counts(self, int pairs, int blocked, int streams):
        self.stats.pairs_subscribed = pairs
        self.stats.pairs_blocked = blocked
        self.stats.streams_subscribed = streams

    def heartbeat(self, long long now_ns):
        self.stats.heartbeat_ns = now_ns


def stats_struct_size():
    """sizeof(ShardStats), so a test can check core.statsspec.STATS_DTYPE matches it."""
    return sizeof(ShardStats)
