"""The baseline perf/bench_load.py compares with, measured: perf/naive_consumer.py on the same feed.

The naive consumer (websockets + protobuf ParseFromString + MessageToDict + dict books, one
asyncio process) runs against a fresh feed of the same seed, pairs and rate as the service's run,
and is measured the same way (CPU from psutil, PSS), so the two compare as CPU per 1,000 frames.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from typing import Any

from common.progress import Progress
from perf.harness import CpuMeter, bounded, emulator, get_json, start_json, stop


def measure_baseline(pairs: int, rate: int, warmup: float, seconds: float, feed: str = "emulator",
                     bar: Progress | None = None, offset: float = 0.0) -> dict[str, Any]:  # fmt: skip
    """The naive consumer against the same feed, no pumps needed (no cards); bar counts from offset.

    Frames are counted by the consumer itself (SIGUSR1 at the window's edges), not as sent: a
    consumer that falls behind leaves frames in the kernel's socket buffers, which the feed never
    sees; its delay (now - sendTime of the frames it parses) then grows.
    """
    bar = bar or Progress(None, "", enabled=False)
    with emulator(pairs, rate, None, feed) as (emu, ready):
        proc, hello = start_json([sys.executable, "-m", "perf.naive_consumer", "--ws", ready["ws"], "--rest", ready["rest"],
                                   "--pairs", str(pairs)])  # fmt: skip

        def counters() -> dict[str, Any]:
            proc.send_signal(signal.SIGUSR1)
            return json.loads(proc.stdout.readline())  # type: ignore[union-attr]

        try:
            bar.note("baseline warm-up")
            warm_until = time.monotonic() + min(warmup, 20.0)
            while (left := warm_until - time.monotonic()) > 0:  # in 1 s steps, only so that the bar moves
                time.sleep(min(1.0, left))
                bar.advance_to(offset + min(warmup, 20.0) - max(0.0, warm_until - time.monotonic()))
            meter = CpuMeter(proc.pid, tree=False)
            s0, c0 = get_json(ready["rest"] + "/_sim/state"), counters()
            meter.begin()
            t0 = time.monotonic()
            bar.note("baseline window")
            delays = []
            while time.monotonic() - t0 < seconds:
                time.sleep(2.0)
                delays.append(float(counters()["delay_ms_max"]))
                bar.advance_to(offset + min(warmup, 20.0) + time.monotonic() - t0)
            dt = time.monotonic() - t0
            cpu = meter.seconds()
            s1, c1 = get_json(ready["rest"] + "/_sim/state"), counters()
            memory = meter.memory()
        finally:
            stop(proc)
    frames = c1["frames"] - c0["frames"]
    sent = s1["frames_sent"] - s0["frames_sent"]
    return {
        "links": hello.get("links"),
        "cpu_pct_of_core": 100 * cpu / dt,
        "cpu_us_per_frame": 1e6 * cpu / max(frames, 1),
        "cpu_s_per_1000_frames": 1000 * cpu / max(frames, 1),
        "frames_per_s": frames / dt,
        "frames_sent_per_s": sent / dt,
        "pss_mb": memory["pss_mb"],
        "delay_ms_max": max(delays, default=0.0),
        "delay_ms_last": delays[-1] if delays else 0.0,
        # Keeping up: it parsed (nearly) all that was sent, and its delay did not grow.
        "bounded": frames >= 0.98 * sent and bounded(delays, slack=250.0),
    }
