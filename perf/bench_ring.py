"""rows/s through the feature ring: the Cython shared-memory ring against the plain-Python twin.

Measured in one run, so the ratios are comparable (timings on a shared 2-vCPU box are noisy):

  cython c_push        core.ring.FeatureRing.push_rows: the shard's hot path (c_push per row)
  cython push(**kw)    FeatureRing.push with keyword fields (the test helper: Python per row)
  reference push       core.reference.ring.ReferenceRing.push (the baseline)
  cython read_new      FeatureRing.read_new in batches of --batch rows (what the supervisor does)
  reference read_new   ReferenceRing.read_new in the same batches
  cross-process        a forked producer (push_rows in chunks of --batch) and this process
                       consuming with read_new, woken by the eventfd: rows/s end to end, and
                       whether every row arrived once, in order

Usage: python -m perf.bench_ring [--rows 1000000] [--batch 1000] [--repeat 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import select
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from core.reference.ring import ReferenceRing
from core.ring import FeatureRing
from core.rowspec import FEATURE_ROW_DTYPE


def _rows(n: int) -> np.ndarray:
    rows = np.zeros(n, dtype=FEATURE_ROW_DTYPE)
    rows["pair_id"] = np.arange(n) % 2000
    rows["row_time_ms"] = 1_790_000_000_000 + np.arange(n)
    rows["vsr"] = 1.5
    rows["pm"] = 0.01
    return rows


def _rates(fn: Callable[[], tuple[int, float]], repeat: int) -> list[float]:
    """rows/s of each run; fn returns (rows moved, seconds of the timed part only)."""
    rates = []
    for _ in range(repeat):
        n, seconds = fn()
        rates.append(n / seconds)
    return rates


def _timed(fn: Callable[[], int]) -> tuple[int, float]:
    t0 = time.perf_counter()
    n = fn()
    return n, time.perf_counter() - t0


def bench_push_read(rows: int, batch: int, repeat: int) -> dict[str, list[float]]:
    data = _rows(rows)
    kw_rows = min(rows, 50_000)  # the per-row Python paths are slow; fewer rows, same rate
    out: dict[str, list[float]] = {}

    def cython_push() -> tuple[int, float]:
        ring = FeatureRing.create(rows)
        try:
            return _timed(lambda: ring.push_rows(data))
        finally:
            ring.close()
            ring.unlink()

    def cython_push_kw() -> tuple[int, float]:
        ring = FeatureRing.create(kw_rows)

        def run() -> int:
            for i in range(kw_rows):
                ring.push(pair_id=i, row_time_ms=i, vsr=1.5, pm=0.01)
            return kw_rows

        try:
            return _timed(run)
        finally:
            ring.close()
            ring.unlink()

    def reference_push() -> tuple[int, float]:
        ref = ReferenceRing(kw_rows)

        def run() -> int:
            for i in range(kw_rows):
                ref.push(pair_id=i, row_time_ms=i, vsr=1.5, pm=0.01)
            return kw_rows

        return _timed(run)

    def drain(ring: FeatureRing | ReferenceRing) -> int:
        moved = 0
        while ring.lag:
            moved += len(ring.read_new(batch))
        return moved

    def cython_read() -> tuple[int, float]:
        ring = FeatureRing.create(rows)
        try:
            ring.push_rows(data)  # untimed fill
            return _timed(lambda: drain(ring))
        finally:
            ring.close()
            ring.unlink()

    def reference_read() -> tuple[int, float]:
        ref = ReferenceRing(rows)
        ref.rows[:] = data  # untimed fill, straight into its storage
        ref.written = rows
        return _timed(lambda: drain(ref))

    out["cython c_push"] = _rates(cython_push, repeat)
    out["cython push(**kw)"] = _rates(cython_push_kw, repeat)
    out["reference push"] = _rates(reference_push, repeat)
    out["cython read_new"] = _rates(cython_read, repeat)
    out["reference read_new"] = _rates(reference_read, repeat)
    return out


def _producer(ring: FeatureRing, data: np.ndarray, batch: int) -> None:
    for start in range(0, len(data), batch):
        chunk = data[start : start + batch]
        done = 0
        while done < len(chunk):
            done += ring.push_rows(chunk[done:])
            ring.notify()
            if done < len(chunk):
                time.sleep(0)  # full: let the consumer catch up (a real shard would drop and count)


def bench_cross_process(rows: int, batch: int) -> dict[str, Any]:
    ring = FeatureRing.create(max(batch * 8, 1024))
    data = _rows(rows)
    proc = mp.get_context("fork").Process(target=_producer, args=(ring, data, batch))
    seqs = []
    t0 = time.perf_counter()
    proc.start()
    got = 0
    wakeups = 0
    try:
        while got < rows:
            if not select.select([ring.notify_fd], [], [], 10.0)[0]:
                raise RuntimeError("no wake-up from the producer in 10 s")
            wakeups += 1
            ring.drain_notify()
            chunk = ring.read_new()
            got += len(chunk)
            seqs.append(chunk["seq"])
        elapsed = time.perf_counter() - t0
        proc.join(10)
        seq = np.concatenate(seqs)
        in_order = bool(np.array_equal(seq, np.arange(1, rows + 1)))
        return {"rows": rows, "rows_per_s": rows / elapsed, "wakeups": wakeups, "in_order_no_loss": in_order, "capacity": int(ring.capacity)}
    finally:
        proc.kill()
        proc.join()
        ring.close()
        ring.unlink()


def table(result: dict[str, Any]) -> str:
    speeds = result["rows_per_s"]
    base_push = statistics.median(speeds["reference push"])
    base_read = statistics.median(speeds["reference read_new"])
    lines = [f"{'path':34} {'rows/s (median)':>16} {'x reference':>12}", "-" * 64]
    for name, rates in speeds.items():
        base = base_read if "read" in name else base_push
        med = statistics.median(rates)
        lines.append(f"{name:34} {med:16,.0f} {med / base:12.1f}")
    x = result["cross_process"]
    lines.append(f"{'cross-process (fork + eventfd)':34} {x['rows_per_s']:16,.0f} {'':>12}")
    lines.append(f"cross-process: {x['rows']:,} rows, {x['wakeups']:,} wake-ups, in order and none lost: {x['in_order_no_loss']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.rows < 1 or args.batch < 1 or args.repeat < 1:
        parser.error("--rows, --batch and --repeat must be >= 1")
    result = {
        "rows": args.rows,
        "batch": args.batch,
        "row_bytes": FEATURE_ROW_DTYPE.itemsize,
        "rows_per_s": bench_push_read(args.rows, args.batch, args.repeat),
        "cross_process": bench_cross_process(args.rows, args.batch),
    }
    text = json.dumps(result, indent=2)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text + "\n")
    print(text)
    print("\n" + table(result))
    return 0 if result["cross_process"]["in_order_no_loss"] else 1


if __name__ == "__main__":
    sys.exit(main())
