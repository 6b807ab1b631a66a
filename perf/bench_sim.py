"""Can the emulator feed the whole MEXC universe? Frames/s it emits, and its CPU, side by side.

Starts `python -m sim serve --pairs N` as a subprocess and a consumer that opens ceil(2N/30)
connections (deals + depth for every pair, 30 streams per connection, like the shards), counts the
frames it receives over a window, and reads the emulator's CPU with psutil. The baseline in the
same run is the emulator with the same pairs and no subscribers (market simulation only), so the
difference is the cost of encoding and sending.

Usage: python -m perf.bench_sim [--pairs 2000] [--seconds 20] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import websockets

REPO = Path(__file__).resolve().parent.parent


def start(pairs: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen([sys.executable, "-m", "sim", "serve", "--pairs", str(pairs), "--seed", "1"], cwd=REPO, stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    return proc, json.loads(proc.stdout.readline())  # type: ignore[union-attr]


async def consume(ws_url: str, rest_url: str, pairs: int, seconds: float, subscribe: bool, pid: int) -> dict[str, Any]:
    import urllib.request

    info = json.loads(urllib.request.urlopen(rest_url + "/api/v3/exchangeInfo", timeout=10).read())
    symbols = [s["symbol"] for s in info["symbols"] if s["status"] == "1"][:pairs]
    channels = [c for s in symbols for c in (f"spot@public.aggre.deals.v3.api.pb@100ms@{s}", f"spot@public.aggre.depth.v3.api.pb@100ms@{s}")]
    groups = [channels[i : i + 30] for i in range(0, len(channels), 30)] if subscribe else []
    frames = 0
    stop = asyncio.Event()

    async def link(group: list[str]) -> None:
        nonlocal frames
        async with websockets.connect(ws_url, max_size=2**20) as ws:
            await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": group}))
            while not stop.is_set():
                try:
                    msg = await asyncio.wait_for(ws.recv(), 1.0)
                except TimeoutError:
                    continue
                if isinstance(msg, bytes):
                    frames += 1

    def sim_state() -> dict[str, Any]:
        return json.loads(urllib.request.urlopen(rest_url + "/_sim/state", timeout=10).read())

    tasks = [asyncio.create_task(link(g)) for g in groups]
    await asyncio.sleep(5.0)  # warm-up: subscriptions acked, queues steady
    proc, me = psutil.Process(pid), psutil.Process()
    s0 = sim_state()
    f0, c0, m0, t0 = frames, proc.cpu_times(), me.cpu_times(), time.monotonic()
    await asyncio.sleep(seconds)
    f1, c1, m1, t1 = frames, proc.cpu_times(), me.cpu_times(), time.monotonic()
    s1 = sim_state()
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    dt = t1 - t0
    return {
        "connections": s1["links"], "streams": s1["streams"], "dead_streams": s1["dead_streams"],
        "frames_per_s": (f1 - f0) / dt,  # received by the consumer
        "server_frames_sent_per_s": (s1["frames_sent"] - s0["frames_sent"]) / dt,
        "server_frames_encoded_per_s": (s1["frames_encoded"] - s0["frames_encoded"]) / dt,
        "emulator_cpu_cores": (c1.user + c1.system - c0.user - c0.system) / dt,
        "consumer_cpu_cores": (m1.user + m1.system - m0.user - m0.system) / dt,
        "emulator_rss_mb": proc.memory_info().rss / 2**20,
    }  # fmt: skip


def run(pairs: int, seconds: float, subscribe: bool) -> dict[str, Any]:
    proc, ready = start(pairs)
    try:
        return asyncio.run(consume(ready["ws"], ready["rest"], pairs, seconds, subscribe, proc.pid))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    full = run(args.pairs, args.seconds, subscribe=True)
    idle = run(args.pairs, args.seconds, subscribe=False)
    result = {"pairs": args.pairs, "expected_connections": math.ceil(2 * args.pairs / 30), "subscribed": full, "baseline_no_subscribers": idle,
              "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}  # fmt: skip
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"\n{'run':<24}{'links':>7}{'streams':>9}{'recv frames/s':>15}{'sent/s':>9}{'emulator CPU':>14}{'RSS MB':>8}")
    for name, r in (("all pairs subscribed", full), ("no subscribers (base)", idle)):
        print(f"{name:<24}{r['connections']:>7}{r['streams']:>9}{r['frames_per_s']:>15.0f}{r['server_frames_sent_per_s']:>9.0f}"
              f"{r['emulator_cpu_cores'] * 100:>13.0f}%{r['emulator_rss_mb']:>8.0f}")  # fmt: skip
    extra = full["emulator_cpu_cores"] - idle["emulator_cpu_cores"]
    rate = full["server_frames_sent_per_s"]
    print(f"encode + send cost: {extra * 100:.0f}% of a core for {rate:.0f} frames/s = {extra / max(rate, 1) * 1e6:.0f} us/frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())
