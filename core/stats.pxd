# A shard's counters in shared memory: the shard's hot path writes them in place, the supervisor
# reads them for /metrics and /status. Layout matches core.statsspec.STATS_DTYPE (a test compares
# every offset via core.ring.shard_stats_layout()). New fields go at the END of a struct, and
# statsspec.py changes in the same commit.
from libc.stdint cimport int64_t, uint64_t

cdef enum:
    MAX_LINKS = 256             # per-link slots; a shard with more links leaves the rest unreported

cdef enum LinkState:
    LINK_SLOT_UNUSED = 0
    LINK_SLOT_CONNECTING = 1
    LINK_SLOT_UP = 2
    LINK_SLOT_DOWN = 3

cdef struct LinkSlot:
    uint64_t state              # LinkState
    uint64_t streams            # streams confirmed on this link
    uint64_t frames             # binary frames received on this link
    int64_t last_frame_ns       # time.time_ns() of its newest frame

cdef struct ShardStats:
    uint64_t frames_total
    uint64_t bytes_total
    uint64_t deals_frames
    uint64_t depth_frames
    uint64_t other_frames
    uint64_t decode_errors
    uint64_t resyncs
    uint64_t gaps
    uint64_t rows_written
    uint64_t rows_dropped
    uint64_t reconnects
    uint64_t links_up
    uint64_t streams_subscribed
    uint64_t pairs_subscribed
    uint64_t pairs_blocked
    uint64_t rest_requests
    uint64_t rest_throttled     # answers 429 / 418
    uint64_t duplicate_frames
    uint64_t candidate_rows     # rows written before their bar closed (also in rows_written)
    int64_t last_frame_ns
    int64_t heartbeat_ns
    int64_t started_ns
    int64_t pid
    LinkSlot links[MAX_LINKS]


cdef inline ShardStats* stats_ptr(object block) except NULL:
    """The C view of a core.statsspec.StatsBlock: the block must outlive every use of the pointer."""
    cdef size_t address = block.address()
    if address == 0:
        raise ValueError("stats block has no memory (closed?)")
    return <ShardStats*>address
