"""What the short watcher costs the supervisor per scored batch (issue #19: nothing measurable without a watch).

    python -m perf.bench_shorts [--batches N] [--repeats R] [--json OUT]

Batches like the live ones (25 rows of 2,000 pairs, one exchange second apart) go through
`ShortWatches.on_rows`, the pipeline's hook, in three states: no watch (the default), and 5
active watches (max_concurrent) whose pairs are in every batch (the worst case). Baseline in the
same run: the same loop without the hook. Reported: microseconds per batch, best of R repeats
(a shared 2-core machine: the best run is the least disturbed), and the hook's added cost.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from common.config import Config, StorageConfig
from common.progress import progress
from common.shorts_config import ShortsConfig
from core.rowspec import FEATURE_ROW_DTYPE
from supervisor.shorts import ShortWatches

PAIRS, ROWS = 2000, 25


def batches(n: int, watched: list[int]) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        rows = np.zeros(ROWS, FEATURE_ROW_DTYPE)
        ids = rng.choice(PAIRS, ROWS, replace=False)
        ids[: len(watched)] = watched
        rows["pair_id"], rows["row_time_ms"] = ids, 1_790_000_000_000 + i * 1000
        rows["last_price"] = 1.0 + 0.01 * np.sin(i / 50.0)  # inside drop_pct: the watches stay open
        rows["quote_vol_5m"], rows["buy_share_10s"] = 1e5, 0.4
        out.append(rows)
    return out


def timed(hook: Any, data: list[np.ndarray]) -> float:
    start = time.perf_counter()
    for rows in data:
        rows["row_time_ms"].max()  # what the loop around the hook does anyway (the tracker's clock)
        if hook is not None:
            hook(rows)
    return (time.perf_counter() - start) / len(data) * 1e6


def run(n: int, repeats: int) -> dict[str, Any]:
    symbols = {i: f"P{i}USDT" for i in range(PAIRS)}
    watched = [11, 222, 333, 444, 555]
    results: dict[str, list[float]] = {"baseline_no_hook": [], "hook_no_watch": [], "hook_5_watches": []}
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(storage=StorageConfig(data_dir=tmp), shorts=ShortsConfig(snapshots=False, watch_max_minutes=10080))
        for _ in progress(range(repeats), repeats, "bench_shorts", "repeats"):
            idle = ShortWatches(config, symbols, lambda m: True, lambda: 0)
            busy = ShortWatches(config, symbols, lambda m: True, lambda: 1_790_000_000_000)
            for pid in watched:
                busy.start(symbols[pid], "scanner", 20.0, 1_790_000_000_000, 1.0)
            data = batches(n, watched)
            results["baseline_no_hook"].append(timed(None, data))
            results["hook_no_watch"].append(timed(idle.on_rows, data))
            results["hook_5_watches"].append(timed(busy.on_rows, data))
            assert len(busy) == 5
    best = {k: round(min(v), 3) for k, v in results.items()}
    return {"batches": n, "rows_per_batch": ROWS, "pairs": PAIRS, "repeats": repeats, "us_per_batch_best": best,
            "added_us_per_batch": {k: round(best[k] - best["baseline_no_hook"], 3) for k in ("hook_no_watch", "hook_5_watches")},
            "runs_us_per_batch": {k: [round(x, 3) for x in v] for k, v in results.items()}}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m perf.bench_shorts", description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, default=20000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    report = run(args.batches, args.repeats)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    best, added = report["us_per_batch_best"], report["added_us_per_batch"]
    print(f"{'state':20}{'us/batch':>10}{'added':>10}")
    for k in best:
        print(f"{k:20}{best[k]:>10.3f}{added.get(k, 0.0):>10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
