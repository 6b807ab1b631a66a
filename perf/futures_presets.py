"""How often each futures preset fires on the emulator's ordinary market (issue #17, README figures).

The original system's thresholds (a last price 20–50 % above fair) should never fire on ordinary
trading; the sensitive preset (basis points, config.yaml's commented block) is for research and
fires far more. This script measures both on the same feed: the emulator's contract API with no
scripted anomaly (its market: index random walk, fair = index × funding basis, last trading on a
book around fair with AR(1) noise, thick and thin books), played at --speed times real time, one
FuturesFeed and two FairPriceDetectors (defaults, sensitive) fed the same tickers and books.
Episodes are counted per strategy and scaled to episodes per contract-hour and per day over the
~1,200 MEXC perpetuals. Durations and cooldowns run on exchange time, so a faster emulator
changes nothing but the wall time.

It measures the emulator's market, not MEXC's: the point is the order of magnitude between the
presets and that the defaults stay silent on noise.

Usage: python -m perf.futures_presets [--contracts 200] [--speed 20] [--duration 180] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from common.config import config_from_mapping
from common.futures_config import FuturesConfig, sensitive_preset
from common.progress import Progress
from detectors.futures import FairPriceDetector
from perf.harness import REPO, start_json, stop
from supervisor.futures import book_candidates
from venues.mexc.futures_feed import FuturesFeed
from venues.mexc.futures_rest import ContractRest

MEXC_PERPETUALS = 1200
BOOK_PICK_EVERY_S = 1.0


def presets() -> dict[str, FuturesConfig]:
    """The shipped defaults and config.yaml's sensitive preset, as validated sections."""
    sensitive = config_from_mapping({"futures": sensitive_preset(REPO / "config.yaml")}, environ={}).futures
    return {"default": FuturesConfig(), "sensitive": sensitive}


async def measure(ws: str, rest_url: str, duration: float, speed: float, bar: Progress) -> dict[str, Any]:
    configs = presets()
    detectors = {name: FairPriceDetector(cfg) for name, cfg in configs.items()}
    counts: dict[str, Counter[int]] = {name: Counter() for name in configs}
    peaks: dict[str, list[float]] = {name: [] for name in configs}
    ratios: dict[str, float] = {}
    first_ms: list[int] = []
    last_ms = [0]

    def count(name: str, events: Any) -> None:
        for event in events or ():
            if event.kind == "ended":
                counts[name][event.episode.strategy] += 1
                peaks[name].append(event.episode.peak_ratio)

    def on_ticker(symbol: str, t_ms: int, last: float, fair: float, index: float) -> None:
        if not first_ms:
            first_ms.append(t_ms)
        last_ms[0] = max(last_ms[0], t_ms)
        if fair > 0:
            ratios[symbol] = last / fair
        for name, det in detectors.items():
            count(name, det.on_ticker(symbol, t_ms, last, fair, index))

    def on_book(symbol: str, t_ms: int, bids: Any, asks: Any) -> None:
        for det in detectors.values():
            det.on_book(symbol, t_ms, bids, asks)

    rest = ContractRest(rest_url)
    feed = FuturesFeed(ws, on_ticker, rest=rest, on_book=on_book)
    task = asyncio.create_task(feed.run())
    t0 = time.monotonic()
    while (elapsed := time.monotonic() - t0) < duration:
        feed.set_books(book_candidates(ratios, configs["sensitive"].strategy4))  # the service's own pick
        await asyncio.sleep(BOOK_PICK_EVERY_S)
        bar.advance_to(min(duration, elapsed))
    await feed.stop()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await rest.close()
    for name, det in detectors.items():
        count(name, det.close_all(last_ms[0], "shutdown"))
    contracts = len(ratios)
    hours = (last_ms[0] - first_ms[0]) / 3.6e6 if first_ms else 0.0
    feed_counts = {k: v for k, v in feed.metrics().items() if k.endswith("_total") and v}
    out: dict[str, Any] = {"contracts": contracts, "exchange_hours": hours, "speed": speed, "feed": feed_counts, "presets": {}}
    for name in configs:
        per_strategy = {str(k): counts[name][k] for k in (1, 2, 3, 4)}
        total = sum(per_strategy.values())
        rate = total / (contracts * hours) if contracts and hours else 0.0
        out["presets"][name] = {"episodes": per_strategy, "total": total, "per_contract_hour": rate,
                                "per_day_at_1200_perpetuals": rate * 24 * MEXC_PERPETUALS,
                                "peak_ratio_max": max(peaks[name], default=None)}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contracts", type=int, default=200)
    parser.add_argument("--speed", type=float, default=20.0, help="emulator speed (exchange seconds per wall second)")
    parser.add_argument("--duration", type=float, default=180.0, help="wall seconds to watch")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    emu, ready = start_json([sys.executable, "-m", "sim", "serve", "--pairs", "10", "--rate", "20", "--seed", str(args.seed),
                             "--speed", str(args.speed), "--futures-contracts", str(args.contracts)])  # fmt: skip
    try:
        with Progress(args.duration, f"futures presets, {args.contracts} contracts at {args.speed:g}x", "s", leave=False) as bar:
            result = asyncio.run(measure(ready["futures_ws"], ready["futures_rest"], args.duration, args.speed, bar))
    finally:
        stop(emu)
    result["command"] = "python -m perf.futures_presets " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"{'preset':<10}{'s1':>7}{'s2':>7}{'s3':>7}{'s4':>7}{'per contract-hour':>19}{'per day, 1,200 perps':>22}")
    for name, p in result["presets"].items():
        e = p["episodes"]
        print(f"{name:<10}{e['1']:>7}{e['2']:>7}{e['3']:>7}{e['4']:>7}{p['per_contract_hour']:>19.3f}{p['per_day_at_1200_perpetuals']:>22.0f}")
    print(f"({result['contracts']} contracts, {result['exchange_hours']:.2f} exchange hours each)")
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
