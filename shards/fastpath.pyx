# cython: language_level=3
"""The per-frame path of a link, compiled: picows calls on_ws_frame as a C method for every frame.

Why compiled: at thousands of frames per second per shard, two Python-level calls per frame
(listener → worker) cost more than decoding the frame itself. Here a binary frame goes from
picows' read buffer to the engine with one vectorcall and no Python frame; the rare frames (JSON
acks and PONGs, close) and connection events are handed to the Python Link, which owns all
policy. shards/ stays ignorant of scoring: the sink only knows "a frame arrived", "a resync is
needed" and "rows are waiting".
"""

from posix.time cimport CLOCK_REALTIME, clock_gettime, timespec

from picows.picows cimport WSFrame, WSListener, WSMsgType, WSTransport


cdef inline long long wall_ns() noexcept nogil:
    """time.time_ns() without the Python call: the frame's receive stamp for the latency figures."""
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return <long long>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef class LinkCounters:
    """Frames and the newest frame time of one link, kept across its reconnects."""

    cdef public unsigned long long frames
    cdef public long long last_frame_ns


cdef class FrameSink:
    """Where a shard's binary frames go: engine.on_frame, then resync and row-notify hooks.

    on_frame(payload, recv_ns) returns non-zero when a pair needs a REST resync; rows_pending()
    says the engine wrote rows the supervisor has not been woken for. schedule_notify is called at
    most once until notify_done() (the worker defers the eventfd write to the end of the loop
    iteration, so one wake-up covers every frame of a read burst).
    """

    cdef object _on_frame
    cdef object _rows_pending
    cdef object _on_resync
    cdef object _schedule_notify
    cdef object _record
    cdef bint _notify_scheduled

    def __init__(self, engine, on_resync, schedule_notify, record=None):
        self._on_frame = engine.on_frame
        self._rows_pending = engine.rows_pending
        self._on_resync = on_resync
        self._schedule_notify = schedule_notify
        self._record = record  # the tick recorder's add(payload), or None (off: one pointer test)
        self._notify_scheduled = False

    cdef inline void feed(self, WSFrame frame, long long now) except *:
        self._take(frame.get_payload_as_memoryview(), now)

    cdef inline void _take(self, object payload, long long now) except *:
        if self._on_frame(payload, now):
            self._on_resync()
        if self._record is not None:
            self._record(payload)
        if not self._notify_scheduled and self._rows_pending():
            self._notify_scheduled = True
            self._schedule_notify()

    def notify_done(self):
        self._notify_scheduled = False

    def __call__(self, link_id, payload, recv_ns):
        """The same work for a payload that did not come from picows (tests, replays)."""
        self._take(payload, recv_ns)


cdef class FrameListener(WSListener):
    """picows listener of one connection of a Link; binary frames never touch Python code."""

    cdef object link
    cdef LinkCounters counters
    cdef FrameSink sink
    cdef object on_binary

    def __init__(self, link, LinkCounters counters, on_binary):
        self.link = link
        self.counters = counters
        if isinstance(on_binary, FrameSink):
            self.sink = <FrameSink>on_binary
            self.on_binary = None
        else:
            self.sink = None
            self.on_binary = on_binary

    cpdef on_ws_connected(self, WSTransport transport):
        self.link._on_connected(transport)

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        cdef long long now = wall_ns()
        cdef WSMsgType kind = frame.msg_type
        if kind == WSMsgType.BINARY:
            self.counters.frames += 1
            self.counters.last_frame_ns = now
            if self.sink is not None:
                self.sink.feed(frame, now)
            else:
                self.on_binary(self.link.link_id, frame.get_payload_as_memoryview(), now)
        elif kind == WSMsgType.TEXT:
            self.counters.last_frame_ns = now
            self.link._on_text(frame.get_payload_as_bytes())
        elif kind == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    cpdef on_ws_disconnected(self, WSTransport transport):
        self.link._on_disconnected()

    cpdef send_user_specific_ping(self, WSTransport transport):
        transport.send(WSMsgType.TEXT, b'{"method":"PING"}')

    cpdef is_user_specific_pong(self, WSFrame frame):
        return frame.msg_type == WSMsgType.TEXT and b'"PONG"' in frame.get_payload_as_bytes()
