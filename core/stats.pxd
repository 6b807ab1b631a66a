# A shard's counters in shared memory: the shard's hot path writes them in place, the supervisor
# reads them for /metrics and /status. Layout matches core.statsspec.STATS_DTYPE (a test checks).
from libc.stdint cimport int64_t, uint64_t

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
    uint64_t rest_throttled
    uint64_t duplicate_frames
    int64_t last_frame_ns
    int64_t heartbeat_ns
    int64_t started_ns
    int64_t pid
