"""ns per frame for the hot path, side by side in one run, on real emulator frames.

Compared, on the same frames:
  engine      core.engine.ShardEngine.on_frame: decode + book/bar update + feature rows (what shards run)
  decode      core.decode.FrameDecoder.decode alone
  pb_parse    protobuf ParseFromString + field access (float() of every price/qty) — the "obvious" way
  pb_dict     ParseFromString + MessageToDict (the path ccxt and hummingbot take)
  reference   core.reference.engine.ReferenceEngine.on_frame (the plain-Python twin)

Also prints the per-pair state memory for --mem-pairs pairs (core vs the plain-Python twin).
Usage: python -m perf.bench_core [--pairs 200] [--seconds 60] [--repeat 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from google.protobuf.json_format import MessageToDict

from core.decode import FrameDecoder
from core.engine import ShardEngine
from core.reference.engine import ReferenceEngine
from core.ring import FeatureRing
from core.statsspec import StatsBlock
from sim.faults import Faults
from sim.market import build_market
from sim.proto import mexc_push_pb2 as pb
from sim.ws_server import Limits, WsEmulator

START = 1_790_000_040_000


def make_frames(pairs: int, seconds: int, seed: int = 3) -> tuple[list[bytes], Any, dict[str, Any]]:
    market = build_market(pairs, seed, START, rate=pairs * 3)
    ws = WsEmulator(market, Faults(), Limits())
    snapshots = {s.symbol: market.depth_snapshot(s.symbol, 1000) for s in market.symbols}
    frames: list[bytes] = []
    for update in market.advance(START + seconds * 1000):
        if update.trades:
            frames.append(ws._deals_frame(f"spot@public.aggre.deals.v3.api.pb@100ms@{update.symbol}", update))
        if update.depth is not None:
            frames.append(ws._depth_frame(f"spot@public.aggre.depth.v3.api.pb@100ms@{update.symbol}", update))
    return frames, market, snapshots


def _prepare(engine: Any, market: Any, snapshots: dict[str, Any]) -> None:
    for pair_id, spec in enumerate(market.symbols, start=1):
        engine.add_pair(pair_id, spec.symbol)
        engine.set_listing(spec.symbol, spec.listing_ms)
        engine.apply_snapshot(spec.symbol, *snapshots[spec.symbol])


def pb_parse(frame: bytes) -> float:
    w = pb.PushDataV3ApiWrapper()
    w.ParseFromString(frame)
    total = 0.0
    if w.HasField("publicAggreDeals"):
        for d in w.publicAggreDeals.deals:
            total += float(d.price) * float(d.quantity) + d.time + d.tradeType
    elif w.HasField("publicAggreDepths"):
        body = w.publicAggreDepths
        for lv in body.bids:
            total += float(lv.price) + float(lv.quantity)
        for lv in body.asks:
            total += float(lv.price) + float(lv.quantity)
        total += int(body.fromVersion) + int(body.toVersion)
    return total + w.sendTime + len(w.symbol)


def pb_dict(frame: bytes) -> dict[str, Any]:
    w = pb.PushDataV3ApiWrapper()
    w.ParseFromString(frame)
    return MessageToDict(w)


def time_per_frame(fn: Callable[[bytes], Any], frames: list[bytes], repeat: int) -> list[float]:
    results = []
    for _ in range(repeat):
        gc.disable()
        t0 = time.perf_counter_ns()
        for frame in frames:
            fn(frame)
        elapsed = time.perf_counter_ns() - t0
        gc.enable()
        results.append(elapsed / len(frames))
    return results


def bench(pairs: int, seconds: int, repeat: int) -> dict[str, Any]:
    frames, market, snapshots = make_frames(pairs, seconds)
    sizes = [len(f) for f in frames]
    out: dict[str, Any] = {"frames": len(frames), "pairs": pairs, "mean_frame_bytes": statistics.mean(sizes), "ns_per_frame": {}}

    decoder = FrameDecoder()
    out["ns_per_frame"]["decode"] = time_per_frame(decoder.decode, frames, repeat)

    runs = []
    for _ in range(repeat):
        ring, stats = FeatureRing.create(len(frames) + 10), StatsBlock.create()
        engine = ShardEngine(ring, stats)
        _prepare(engine, market, snapshots)
        runs.extend(time_per_frame(lambda f, e=engine: e.on_frame(f, 0), frames, 1))
        ring.close()
        ring.unlink()
        stats.close()
        stats.unlink()
    out["ns_per_frame"]["engine"] = runs
    out["ns_per_frame"]["pb_parse"] = time_per_frame(pb_parse, frames, repeat)
    out["ns_per_frame"]["pb_dict"] = time_per_frame(pb_dict, frames, max(1, repeat // 2))
    ref_runs = []
    for _ in range(max(1, repeat // 2)):
        ref = ReferenceEngine()
        _prepare(ref, market, snapshots)
        ref_runs.extend(time_per_frame(lambda f, r=ref: r.on_frame(f, 0), frames, 1))
    out["ns_per_frame"]["reference"] = ref_runs
    med = {k: statistics.median(v) for k, v in out["ns_per_frame"].items()}
    out["median_ns_per_frame"] = med
    out["ratios_vs_engine"] = {k: v / med["engine"] for k, v in med.items()}
    return out


def memory(pairs: int) -> dict[str, Any]:
    """Per-pair state bytes after a minute of traffic: compiled engine vs the plain-Python twin."""
    frames, market, snapshots = make_frames(pairs, 60, seed=5)
    result: dict[str, Any] = {"pairs": pairs}
    for name in ("engine", "reference"):
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.take_snapshot()
        if name == "engine":
            ring, stats = FeatureRing.create(16), StatsBlock.create()
            engine: Any = ShardEngine(ring, stats)
        else:
            engine = ReferenceEngine()
        _prepare(engine, market, snapshots)
        for f in frames:
            engine.on_frame(f, 0)
        if name == "reference":
            engine.rows.clear()  # rows are output, not per-pair state
        gc.collect()
        snap = tracemalloc.take_snapshot()
        tracemalloc.stop()
        used = sum(s.size_diff for s in snap.compare_to(base, "filename"))
        if name == "engine":
            # tracemalloc does not see libc malloc: add the order books' level arrays (K=32 per side).
            used += pairs * 32 * 2 * 16
        result[f"{name}_bytes"] = used
        result[f"{name}_bytes_per_pair"] = used / pairs
        if name == "engine":
            ring.close()
            ring.unlink()
            stats.close()
            stats.unlink()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mem-pairs", type=int, default=3000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    result = {"speed": bench(args.pairs, args.seconds, args.repeat), "memory": memory(args.mem_pairs),
              "python": sys.version.split()[0], "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}  # fmt: skip
    text = json.dumps(result, indent=2)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text)
    print(text)
    speed, mem = result["speed"], result["memory"]
    print(f"\n{'path':<12}{'ns/frame (median)':>20}{'x engine':>10}")
    for name, ns in sorted(speed["median_ns_per_frame"].items(), key=lambda kv: kv[1]):
        print(f"{name:<12}{ns:>20.0f}{speed['ratios_vs_engine'][name]:>10.1f}")
    print(f"\nframes {speed['frames']} from {speed['pairs']} pairs, mean {speed['mean_frame_bytes']:.0f} B")
    print(f"state for {mem['pairs']} pairs: engine {mem['engine_bytes'] / 2**20:.1f} MB ({mem['engine_bytes_per_pair']:.0f} B/pair), "
          f"reference {mem['reference_bytes'] / 2**20:.1f} MB ({mem['reference_bytes_per_pair']:.0f} B/pair)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
