"""What does the market generator cost? CPU per simulated second, build time, frames/s, by pair count.

The server advances the market every 100 ms of wall time, so its cost per simulated second is CPU
the emulator cannot spend encoding frames. The baseline in the same run is the smallest pair
count, so the table shows how the cost scales (it should grow with frames, not with pairs).

Usage: python -m perf.bench_market [--pairs 300,3000] [--seconds 20] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from sim.market import build_market
from sim.scenario import load_scenario
from sim.server import scenario_path

START = 1_790_000_040_000


def measure(pairs: int, seconds: int) -> dict[str, Any]:
    t = time.process_time()
    market = build_market(pairs, 1, START, load_scenario(scenario_path("pumps.yaml")) if pairs >= 20 else None)
    build_s = time.process_time() - t
    t = time.process_time()
    frames = trades = 0
    for sec in range(1, seconds + 1):
        for u in market.advance(START + sec * 1000):
            frames += bool(u.trades) + (u.depth is not None)
            trades += len(u.trades)
    cpu = time.process_time() - t
    t = time.process_time()
    for spec in market.symbols:
        market.ticker_24h(spec.symbol)
    ticker_s = time.process_time() - t
    return {"pairs": pairs, "build_s": round(build_s, 3), "cpu_per_sim_s": round(cpu / seconds, 4), "frames_per_s": round(frames / seconds),
            "target_frames_per_s": 3 * pairs, "trades_per_s": round(trades / seconds), "all_tickers_first_s": round(ticker_s, 3)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", default="300,3000")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = [measure(int(p), args.seconds) for p in args.pairs.split(",")]
    base = rows[0]
    for r in rows:
        r["cpu_vs_baseline"] = round(r["cpu_per_sim_s"] / max(base["cpu_per_sim_s"], 1e-9), 2)
    print(json.dumps(rows))
    print(f"{'pairs':>6} {'build s':>8} {'CPU s/sim s':>12} {'frames/s':>9} {'target':>7} {'trades/s':>9} {'tickers s':>10} {'x base':>7}")
    for r in rows:
        print(f"{r['pairs']:>6} {r['build_s']:>8} {r['cpu_per_sim_s']:>12} {r['frames_per_s']:>9} {r['target_frames_per_s']:>7} "
              f"{r['trades_per_s']:>9} {r['all_tickers_first_s']:>10} {r['cpu_vs_baseline']:>7}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
