"""Type stub for the compiled shards/fastpath.pyx (see that file for the why); tests/test_core_stubs.py keeps it in step."""

from collections.abc import Callable
from typing import Any, Protocol

from picows import WSFrame, WSListener, WSTransport

class _Engine(Protocol):
    def on_frame(self, buf: memoryview, recv_ns: int, /) -> int: ...
    def rows_pending(self) -> bool: ...

class LinkCounters:
    """Frames and the newest frame time of one link, kept across its reconnects."""

    frames: int
    last_frame_ns: int

class FrameSink:
    """Where a shard's binary frames go: engine.on_frame, then resync and row-notify hooks."""

    def __init__(
        self,
        engine: _Engine,
        on_resync: Callable[[], object],
        schedule_notify: Callable[[], object],
        record: Callable[[memoryview], object] | None = None,
    ) -> None: ...
    def notify_done(self) -> None: ...
    def __call__(self, link_id: int, payload: memoryview | bytes, recv_ns: int) -> None: ...

class FrameListener(WSListener):
    """picows listener of one connection of a Link; binary frames never touch Python code."""

    def __init__(
        self, link: Any, counters: LinkCounters, on_binary: FrameSink | Callable[[int, memoryview, int], object]
    ) -> None: ...
    def on_ws_connected(self, transport: WSTransport) -> None: ...
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None: ...
    def on_ws_disconnected(self, transport: WSTransport) -> None: ...
    def send_user_specific_ping(self, transport: WSTransport) -> None: ...
    def is_user_specific_pong(self, frame: WSFrame) -> bool: ...
