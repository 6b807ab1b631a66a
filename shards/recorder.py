"""Tick recorder: every received deals push, written as hourly Parquet dumps in the replay format.

Why raw frames in the shard and decoding in a thread: the frame callback must not slow down, so
it only appends the frame's bytes to a list (no decode, no I/O). The shard's housekeeping hands
the list to a writer thread every flush interval; the thread decodes the deals with its own
FrameDecoder and appends them to the hour's file. If the thread falls behind, the buffer is
capped (max_buffer_frames) and the excess is counted as dropped instead of growing memory.

Files: DIR/ticks-s{shard}-{YYYYMMDD}T{HH}.parquet, columns ts_ms, symbol, price, qty, side
(sim/replay.py's format; hour = exchange time of the trade). A file being written is named
*.parquet.part and renamed when its hour is done or the shard stops, so a replay never reads
half a file. Disk is bounded: after each finished file, the oldest finished files of this shard
are deleted while there are more than max_hours of them or together they exceed max_mb.
Depth is not recorded (the replay format has no depth table yet).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("scanner.recorder")

HOUR_MS = 3_600_000


class TickRecorder:
    """Buffers deals frames on the loop thread; a writer thread decodes and writes them."""

    def __init__(self, directory: str | Path, shard: int, max_mb: float, max_hours: int,
                 flush_interval_s: float = 5.0, max_buffer_frames: int = 200_000) -> None:  # fmt: skip
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.shard = shard
        self.max_bytes = int(max_mb * 1_000_000)
        self.max_hours = max_hours
        self.flush_interval_s = flush_interval_s
        self.max_buffer_frames = max_buffer_frames
        self.dropped_frames = 0
        self.trades_written = 0
        self._buf: list[bytes] = []
        self._last_flush = time.monotonic()
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue()
        self._writer: Any = None
        self._hour = -1
        self._thread = threading.Thread(target=self._run, name=f"recorder-s{shard}", daemon=True)
        self._thread.start()

    # --- loop thread -------------------------------------------------------------------------

    def add(self, payload: memoryview | bytes) -> None:
        """Called from the frame callback: one copy of a deals frame, nothing else."""
        if b".deals." not in bytes(payload[:64]):  # the channel leads the wrapper: skip depth cheaply
            return
        if len(self._buf) >= self.max_buffer_frames:
            self.dropped_frames += 1
            return
        self._buf.append(bytes(payload))

    def maybe_flush(self) -> None:
        """From housekeeping: hand the buffer to the writer every flush interval."""
        if self._buf and time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if self._buf:
            batch, self._buf = self._buf, []
            self._queue.put_nowait(batch)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is buffered, finish the open file and stop the thread."""
        self.flush()
        self._queue.put_nowait(None)
        self._thread.join(timeout)

    # --- writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        from core.decode import DecodeError, FrameDecoder
        from core.reference.decode import BODY_AGGRE_DEALS  # the same field number as decode.pxd's

        decoder = FrameDecoder()
        while True:
            batch = self._queue.get()
            if batch is None:
                break
            rows: list[tuple[int, str, float, float, int]] = []
            for frame in batch:
                try:
                    if decoder.decode(frame) != BODY_AGGRE_DEALS:
                        continue
                except DecodeError:
                    continue
                d = decoder.to_dict()
                rows.extend((t, d["symbol"], p, q, s) for p, q, s, t in d["deals"])
            try:
                self._write(rows)
            except Exception:  # noqa: BLE001 - a full disk must not kill the shard; say so and go on
                log.exception("tick recorder: write failed", extra={"shard": self.shard})
        try:
            self._finish()
        except Exception:  # noqa: BLE001
            log.exception("tick recorder: closing the file failed", extra={"shard": self.shard})

    def _path(self, hour: int, part: bool) -> Path:
        stamp = datetime.fromtimestamp(hour * 3600, tz=UTC).strftime("%Y%m%dT%H")
        return self.dir / f"ticks-s{self.shard}-{stamp}.parquet{'.part' if part else ''}"

    def _write(self, rows: list[tuple[int, str, float, float, int]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows.sort(key=lambda r: r[0])  # stable: same-time deals keep their arrival order
        start = 0
        while start < len(rows):
            hour = rows[start][0] // HOUR_MS
            end = start
            while end < len(rows) and rows[end][0] // HOUR_MS == hour:
                end += 1
            chunk = rows[start:end]
            start = end
            if hour < self._hour:
                hour = self._hour  # a late deal of a finished hour joins the open file
            if hour != self._hour:
                self._finish()
                self._hour = hour
                self._writer = pq.ParquetWriter(self._path(hour, True), _schema(), compression="zstd")
            ts, sym, price, qty, side = zip(*chunk, strict=True)
            table = pa.table(
                {
                    "ts_ms": pa.array(ts, pa.int64()),
                    "symbol": pa.array(sym, pa.string()),
                    "price": pa.array(price, pa.float64()),
                    "qty": pa.array(qty, pa.float64()),
                    "side": pa.array(side, pa.int8()),
                },
                schema=_schema(),
            )
            self._writer.write_table(table)
            self.trades_written += len(chunk)

    def _finish(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        self._path(self._hour, True).replace(self._path(self._hour, False))
        self._prune()

    def _prune(self) -> None:
        files = sorted(self.dir.glob(f"ticks-s{self.shard}-*.parquet"))
        sizes = [f.stat().st_size for f in files]
        while files and (len(files) > self.max_hours or sum(sizes) > self.max_bytes):
            oldest = files.pop(0)
            sizes.pop(0)
            oldest.unlink(missing_ok=True)
            log.info("tick recorder: deleted old dump", extra={"file": oldest.name, "shard": self.shard})


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema([("ts_ms", pa.int64()), ("symbol", pa.string()), ("price", pa.float64()), ("qty", pa.float64()),
                      ("side", pa.int8())])  # fmt: skip
