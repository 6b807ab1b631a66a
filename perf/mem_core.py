"""Per-pair state memory (order book + trade windows) for N pairs, compiled vs the plain-Python twin.

Target: the compiled state for 3,000 pairs within 20 MB. Each pair is brought to its steady state
first: a 100-level snapshot per side (the book keeps its K), 40 diffs, a 6 h kline seed, five
minutes of deals with one bid-depth sample per closed second. Three measures of the compiled state:
  nbytes      what the objects report: their size (inline arrays) plus their malloc'd level
              arrays and diff buffers, exact;
  tracemalloc Python-allocator growth while building them plus the malloc'd arrays it cannot see;
  rss         growth of the process's resident set (psutil), a cross-check that includes
              allocator overhead and is noisy.
The twin is measured the same way (tracemalloc, rss) on --ref-pairs pairs and scaled to N: its
state is per pair, and building it is slow. Every measurement runs in its own forked process. A
last figure: the compiled books' extra memory while every pair buffers 20 diffs at once (a mass
resync after a reconnect); it is released when the snapshots are applied.

Usage: python -m perf.mem_core [--pairs 3000] [--ref-pairs 300] [--json OUT]
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import sys
import time
import tracemalloc
from typing import Any

import numpy as np
import psutil

from core.book import OrderBook
from core.reference.book import ReferenceBook
from core.reference.windows import ReferenceWindows
from core.windows import TradeWindows
from perf.bench_state import SNAPSHOT_ID, T0, PairInput, make_inputs

TARGET_BYTES = 20 * 2**20


def _klines(p: PairInput) -> list[tuple[int, float, float]]:
    base = float(p.qty.sum()) / 2
    return [(T0 - k * 300_000, base * (0.5 + (k % 7) / 7), base) for k in range(1, 73)]


def _build(inputs: list[PairInput], compiled: bool) -> list[tuple[Any, Any]]:
    """Bring one (book, windows) per pair to its steady state (see the module docstring)."""
    pairs = []
    for p in inputs:
        book = OrderBook() if compiled else ReferenceBook()
        win = TradeWindows() if compiled else ReferenceWindows()
        win.seed_klines(_klines(p))
        book.apply_snapshot(SNAPSHOT_ID, p.bids, p.asks)
        if compiled:
            book.replay_diffs(p.from_v, p.to_v, p.n_bids, p.n_asks, p.levels)
        else:
            for d in p.diff_lists():
                book.apply_diff(*d)
        for price, qty, side, t in zip(
            p.price.tolist(), p.qty.tolist(), p.side.tolist(), p.time_ms.tolist(), strict=True
        ):
            if win.advance(t):
                win.record_bid_depth(t, book.size_within(True, 3.0))
            win.on_trade(price, qty, side, t)
        pairs.append((book, win))
    return pairs


def _child(conn: Any, n_pairs: int, compiled: bool, traced: bool) -> None:
    """Build the state in a fresh process and send back what it cost (see _measure)."""
    inputs = make_inputs(n_pairs)
    for p in inputs:  # NumPy caches buffer info on an array's first export: not the state's memory
        for arr in (p.from_v, p.to_v, p.n_bids, p.n_asks, p.levels, p.price, p.qty, p.side, p.time_ms):
            memoryview(arr).release()
    proc = psutil.Process()
    gc.collect()
    rss0 = proc.memory_info().rss
    if traced:
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
    pairs = _build(inputs, compiled)
    gc.collect()
    out: dict[str, float] = {}
    if traced:
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        out["tracemalloc_bytes"] = float(sum(s.size_diff for s in after.compare_to(before, "filename")))
    else:
        out["rss_bytes"] = float(proc.memory_info().rss - rss0)
    if compiled:
        out["nbytes"] = float(sum(b.nbytes() + w.nbytes() for b, w in pairs))
        out["book_nbytes_per_pair"] = sum(b.nbytes() for b, _ in pairs) / n_pairs
        out["windows_nbytes_per_pair"] = sum(w.nbytes() for _, w in pairs) / n_pairs
        if traced:  # the level arrays are libc malloc: invisible to tracemalloc
            out["tracemalloc_bytes"] += sum(b.nbytes() - b.__sizeof__() for b, _ in pairs)
        else:
            steady = sum(b.nbytes() for b, _ in pairs)
            rng = np.random.default_rng(1)
            for (book, _), p in zip(pairs, inputs, strict=True):
                book.reset()
                for v in range(20):
                    lv = [(p.bids[0][0], float(rng.uniform(1, 9)))] * int(rng.integers(1, 5))
                    book.apply_diff(SNAPSHOT_ID + 1000 + v, SNAPSHOT_ID + 1000 + v, lv, lv)
            out["mass_resync_extra_bytes"] = float(sum(b.nbytes() for b, _ in pairs) - steady)
    conn.send(out)
    conn.close()


def _measure(n_pairs: int, compiled: bool, traced: bool) -> dict[str, float]:
    """One measurement in a forked child, so neither tracemalloc's own memory nor what an earlier
    build freed can blur the resident-set figure."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, n_pairs, compiled, traced))
    proc.start()
    child.close()
    try:
        result = parent.recv()
    finally:
        proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"measurement child failed with exit code {proc.exitcode}")
    return result


def run_mem(n_pairs: int = 3000, ref_pairs: int = 300) -> dict[str, Any]:
    """Compiled state for n_pairs; the twin measured on ref_pairs and scaled (state is per pair)."""
    ref_pairs = min(ref_pairs, n_pairs)
    compiled = _measure(n_pairs, True, False) | _measure(n_pairs, True, True)
    scale = n_pairs / ref_pairs
    reference = {
        k: v * scale for k, v in (_measure(ref_pairs, False, False) | _measure(ref_pairs, False, True)).items()
    }
    return {
        "pairs": n_pairs,
        "reference_measured_on_pairs": ref_pairs,
        "target_bytes": TARGET_BYTES,
        "compiled": compiled,
        "reference": reference,
        "compiled_within_target": compiled["nbytes"] <= TARGET_BYTES and compiled["tracemalloc_bytes"] <= TARGET_BYTES,
        "reference_over_compiled": reference["tracemalloc_bytes"] / compiled["tracemalloc_bytes"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3000)
    parser.add_argument("--ref-pairs", type=int, default=300)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    result = run_mem(args.pairs, args.ref_pairs)
    result["python"] = sys.version.split()[0]
    result["when"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    text = json.dumps(result, indent=2)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text)
    print(text)
    n, mb = result["pairs"], 2**20
    c, r = result["compiled"], result["reference"]
    print(f"\n(twin measured on {result['reference_measured_on_pairs']} pairs, scaled)")
    print(f"{'state for ' + str(n) + ' pairs':<28}{'MB':>8}{'B/pair':>9}")
    rows = [("compiled nbytes", c["nbytes"]), ("compiled tracemalloc+malloc", c["tracemalloc_bytes"]), ("compiled rss", c["rss_bytes"]),
            ("twin tracemalloc", r["tracemalloc_bytes"]), ("twin rss", r["rss_bytes"]),
            ("mass resync (extra)", c["mass_resync_extra_bytes"])]  # fmt: skip
    for name, value in rows:
        print(f"{name:<28}{value / mb:>8.1f}{value / n:>9.0f}")
    print(f"\ncompiled per pair: book {c['book_nbytes_per_pair']:.0f} B + windows {c['windows_nbytes_per_pair']:.0f} B; "
          f"target {result['target_bytes'] / mb:.0f} MB: {'met' if result['compiled_within_target'] else 'MISSED'}; "
          f"twin / compiled {result['reference_over_compiled']:.1f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
