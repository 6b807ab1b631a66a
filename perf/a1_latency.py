"""Acceptance A-1 and A-7 as a script: PASS/FAIL with the figures.

A-1: tick-to-card latency p95 ≤ 2,000 ms at the specification's load (every pair of a 2,000-pair
market, deals + depth, ~6k frames/s), measured by perf/bench_load.py: frame received by a shard →
card arriving at the fake Telegram Bot API. A-7: no connection carries more than 30 streams, read
off the live emulator while the service runs. Exit code 0 only when both pass.

Usage: python -m perf.a1_latency [--pairs 2000] [--rate 6000] [--duration 60] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from perf.bench_load import run_once

A1_P95_MS = 2000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=6000)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=200.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    result = run_once(args.pairs, args.rate, args.warmup, args.duration, baseline=False)
    p95 = result.latency_ms.get("p95")
    cards = result.latency_ms.get("cards", 0)
    a1 = p95 is not None and cards >= 5 and p95 <= A1_P95_MS
    a7 = bool(result.a7.get("pass"))
    verdict = {
        "a1": {"pass": a1, "p95_ms": p95, "limit_ms": A1_P95_MS, "cards": cards, "latency_ms": result.latency_ms},
        "a7": {"pass": a7, **result.a7},
        "load": {"pairs": args.pairs, "frames_per_s": result.service.get("frames_per_s")},
        "pumps": result.pumps,
    }
    print(json.dumps(verdict, indent=2, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(verdict, indent=2, default=str))
    fps = result.service.get("frames_per_s", 0.0)
    print(f"A-1 {'PASS' if a1 else 'FAIL'}: frame → card p95 {p95 if p95 is None else round(p95, 1)} ms over {cards} cards "
          f"(limit {A1_P95_MS:.0f} ms) at {args.pairs} pairs, {fps:.0f} frames/s")  # fmt: skip
    print(f"A-7 {'PASS' if a7 else 'FAIL'}: max {result.a7.get('max_streams_per_connection')} streams on one connection, "
          f"{result.a7.get('streams')} streams over {result.a7.get('links')} links (limit 30 per connection)")  # fmt: skip
    return 0 if a1 and a7 else 1


if __name__ == "__main__":
    sys.exit(main())
