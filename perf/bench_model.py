"""Cost of the flash profile's model in the supervisor: memory and time per scored batch.

    python -m perf.bench_model [--model model.flash.json] [--baseline FILE] [--json OUT]

Why: a tree model (detectors/trees.py) replaces a 7-weight logistic one; the supervisor scores
after every deals push, so its per-batch cost and its memory must be known. Both models run on
the same rows in the same process (the baseline: the logistic model of the same features), at
the batch sizes the scorer sees (the model only runs on rows that pass the profile's rules:
usually none, a handful on a busy push, hundreds only in a market-wide move).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from core.rowspec import FEATURE_ROW_DTYPE
from detectors.model import load_model

REPO = Path(__file__).resolve().parent.parent
SIZES = (1, 8, 64, 512)
BASELINE = {"profile": "flash", "features": ["rush_5s", "rush_ratio_25s", "trades_ratio_25s", "qvol_ratio_25s", "buy_share_25s",
                                             "ret_25s", "ret_60s"],
            "norm": {f: {"center": 0.0, "scale": 1.0} for f in ["rush_5s", "rush_ratio_25s", "trades_ratio_25s", "qvol_ratio_25s",
                                                                 "buy_share_25s", "ret_25s", "ret_60s"]},
            "weights": dict.fromkeys(["rush_5s", "rush_ratio_25s", "trades_ratio_25s", "qvol_ratio_25s", "buy_share_25s",
                                      "ret_25s", "ret_60s"], 0.5), "beta0": -5.0, "beta": 1.0, "trained": None}  # fmt: skip


def rows(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros(n, FEATURE_ROW_DTYPE)
    for name in FEATURE_ROW_DTYPE.names:
        if out[name].dtype.kind == "f":
            out[name] = rng.lognormal(0, 1, n) * rng.choice([-1, 1], n) * 0.01
    out["buy_share_25s"] = rng.random(n)
    return out


def per_batch_us(model: Any, n: int, repeat: int) -> float:
    batch = rows(n)
    model.probability(batch)
    best = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeat):
            model.probability(batch)
        best.append((time.perf_counter() - t0) / repeat * 1e6)
    return float(np.median(best))


def loaded_bytes(load: Any) -> int:
    tracemalloc.start()
    model = load()
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del model
    return size


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m perf.bench_model", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=REPO / "model.flash.json")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    from detectors.model import model_from_dict

    model = load_model(args.model)
    baseline = model_from_dict(BASELINE)
    out: dict[str, Any] = {"model": str(args.model.name), "kind": type(model).__name__, "sizes": {}}
    out["loaded_bytes"] = {"model": loaded_bytes(lambda: load_model(args.model)), "baseline": loaded_bytes(lambda: model_from_dict(BASELINE))}
    for n in SIZES:
        repeat = max(20, 4000 // n)
        m, b = per_batch_us(model, n, repeat), per_batch_us(baseline, n, repeat)
        out["sizes"][n] = {"model_us": round(m, 1), "baseline_us": round(b, 1), "ratio": round(m / b, 2)}
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    print(f"| rows per batch | {out['kind']} µs | logistic µs | × |\n|---:|---:|---:|---:|")
    for n, r in out["sizes"].items():
        print(f"| {n} | {r['model_us']} | {r['baseline_us']} | {r['ratio']} |")
    print(f"memory after load: {out['loaded_bytes']['model'] / 1024:.0f} KiB (logistic {out['loaded_bytes']['baseline'] / 1024:.1f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
