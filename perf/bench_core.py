"""ns per frame for the hot path, side by side in one run; sections can be run alone.

Sections (`--sections decode,engine,memory`, default all; add one by writing a function that
returns (json_part, table_text) and listing it in SECTIONS):

  decode   core.decode.FrameDecoder.decode alone on realistic MEXC frames of each kind (deals with
           1-5 items, depth with 1-20 levels, book ticker), against, on the same frames:
             pb_parse   protobuf ParseFromString + access to every field the scanner uses
             pb_dict    ParseFromString + MessageToDict (the path ccxt and hummingbot take)
             reference  core.reference.decode.decode_frame (the plain-Python twin)
  engine   core.engine.ShardEngine.on_frame on emulator frames: decode + book/bar update + feature
           rows (what shards run), against decode alone, pb_parse, pb_dict and
           core.reference.engine.ReferenceEngine.on_frame
  memory   per-pair state memory for --mem-pairs pairs (core vs the plain-Python twin)

Usage: python -m perf.bench_core [--sections decode,engine,memory] [--pairs 200] [--seconds 60]
       [--repeat 5] [--decode-frames 2000] [--json OUT]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from google.protobuf.json_format import MessageToDict

from core.decode import FrameDecoder
from core.engine import ShardEngine
from core.reference.decode import decode_frame
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
            frames.append(ws.frames.deals(f"spot@public.aggre.deals.v3.api.pb@100ms@{update.symbol}", update))
        if update.depth is not None:
            frames.append(ws.frames.depth(f"spot@public.aggre.depth.v3.api.pb@100ms@{update.symbol}", update))
    return frames, market, snapshots


def _prepare(engine: Any, market: Any, snapshots: dict[str, Any]) -> None:
    for pair_id, spec in enumerate(market.symbols, start=1):
        engine.add_pair(pair_id, spec.symbol)
        engine.set_listing(spec.symbol, spec.listing_ms)
        engine.apply_snapshot(spec.symbol, *snapshots[spec.symbol])


def pb_parse(frame: bytes) -> float:
    """The "obvious" way: protobuf's C parser, then every field the scanner uses, as numbers."""
    w = pb.PushDataV3ApiWrapper()
    w.ParseFromString(frame)
    total = 0.0
    which = w.WhichOneof("body")
    if which == "publicAggreDeals":
        for d in w.publicAggreDeals.deals:
            total += float(d.price) * float(d.quantity) + d.time + d.tradeType
    elif which == "publicAggreDepths" or which == "publicLimitDepths":
        body = getattr(w, which)
        for lv in body.bids:
            total += float(lv.price) + float(lv.quantity)
        for lv in body.asks:
            total += float(lv.price) + float(lv.quantity)
        if which == "publicAggreDepths":
            total += int(body.fromVersion) + int(body.toVersion)
        else:
            total += int(body.version)
    elif which == "publicAggreBookTicker":
        t = w.publicAggreBookTicker
        total += float(t.bidPrice) + float(t.bidQuantity) + float(t.askPrice) + float(t.askQuantity) + int(t.version)
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
            # tracemalloc does not see libc malloc: add the order books level arrays (K=64 per side).
            used += pairs * 64 * 2 * 16
        result[f"{name}_bytes"] = used
        result[f"{name}_bytes_per_pair"] = used / pairs
        if name == "engine":
            ring.close()
            ring.unlink()
            stats.close()
            stats.unlink()
    return result


# --- decode section ------------------------------------------------------------------------------

_SYMBOLS = [("BTCUSDT", 80535.88, 2, 6), ("ETHUSDT", 3120.45, 2, 4), ("PEPEUSDT", 0.000012345, 9, 0),
            ("SOLUSDT", 187.321, 3, 3), ("X1USDT", 0.04817, 5, 2)]  # fmt: skip


def decode_frames(kind: str, count: int, items: tuple[int, int], seed: int = 7) -> list[bytes]:
    """Frames shaped like MEXC's (mexc-api.md §1.5): channel, symbol, sendTime, string decimals,
    11-digit versions, the 2026-06 fields (tradeId, lastOrderCreateTime) present."""
    rng = random.Random(f"{kind}{items}{seed}")
    frames = []
    for i in range(count):
        symbol, mid, pdec, qdec = rng.choice(_SYMBOLS)
        n = rng.randint(*items)

        def px(off: float, mid: float = mid, pdec: int = pdec) -> str:
            return f"{mid * (1 + off):.{pdec}f}"

        def qty(qdec: int = qdec) -> str:
            return f"{rng.uniform(0.01, 5000):.{qdec}f}"

        send = START + i * 37
        channel = {"deals": "aggre.deals.v3.api.pb@100ms", "depth": "aggre.depth.v3.api.pb@100ms",
                   "book_ticker": "aggre.bookTicker.v3.api.pb@100ms"}[kind]  # fmt: skip
        w = pb.PushDataV3ApiWrapper(channel=f"spot@public.{channel}@{symbol}", symbol=symbol, sendTime=send)
        if kind == "deals":
            body = w.publicAggreDeals
            body.eventType = "spot@public.aggre.deals.v3.api.pb@100ms"
            for k in range(n):
                trade_id = f"{730292425431437318 + 2 * k}X0_{730292425431437319 + 2 * k}X0"
                body.deals.add(price=px(rng.uniform(-1e-3, 1e-3)), quantity=qty(), tradeType=rng.choice((1, 2)),
                               time=send - rng.randint(0, 99), tradeId=trade_id)  # fmt: skip
        elif kind == "depth":
            depth = w.publicAggreDepths
            for k in range(n):
                side = depth.bids if k % 2 else depth.asks
                side.add(price=px((1 if side is depth.asks else -1) * (k + 1) * 1e-4), quantity="0" if rng.random() < 0.2 else qty())
            depth.eventType = "spot@public.aggre.depth.v3.api.pb@100ms"
            depth.fromVersion = str(81721676217 + i * 10)
            depth.toVersion = str(81721676217 + i * 10 + rng.randint(0, 9))
            depth.lastOrderCreateTime = send - 3
        else:
            t = w.publicAggreBookTicker
            t.bidPrice, t.bidQuantity, t.askPrice, t.askQuantity = px(-5e-5), qty(), px(5e-5), qty()
            t.version = str(81721676217 + i)
            t.lastOrderCreateTime = send - 3
        frames.append(w.SerializeToString())
    return frames


DECODE_ROWS = [("deals 1-5 items", "deals", (1, 5)), ("deals 5 items", "deals", (5, 5)),
               ("depth 1-20 levels", "depth", (1, 20)), ("depth 20 levels", "depth", (20, 20)),
               ("book ticker", "book_ticker", (1, 1))]  # fmt: skip


def bench_decode(count: int, repeat: int) -> dict[str, Any]:
    """Median ns per frame of each decode path on each frame kind, plus ratios to the Cython decoder."""
    decoder = FrameDecoder()
    paths: dict[str, Callable[[bytes], Any]] = {"cython": decoder.decode, "pb_parse": pb_parse, "pb_dict": pb_dict,
                                                "reference": decode_frame}  # fmt: skip
    rows: dict[str, Any] = {}
    for label, kind, items in DECODE_ROWS:
        frames = decode_frames(kind, count, items)
        for frame in frames[:50]:  # the paths must agree before their speed means anything
            decoder.decode(frame)
            assert decoder.to_dict() == decode_frame(frame)
        runs: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(repeat):  # interleaved, so drift in machine load hits every path alike
            for name, fn in paths.items():
                slow = name in ("pb_dict", "reference")
                runs[name] += time_per_frame(fn, frames[: count // 4] if slow else frames, 1)
        med = {name: statistics.median(v) for name, v in runs.items()}
        rows[label] = {"mean_frame_bytes": statistics.mean(len(f) for f in frames), "median_ns_per_frame": med,
                       "ratio_vs_cython": {name: v / med["cython"] for name, v in med.items()}}  # fmt: skip
    typical = [rows[label]["median_ns_per_frame"]["cython"] for label in ("deals 1-5 items", "depth 1-20 levels", "book ticker")]
    speedup = [rows[label]["ratio_vs_cython"]["pb_parse"] for label in ("deals 1-5 items", "depth 1-20 levels", "book ticker")]
    return {"frames_per_row": count, "repeat": repeat, "rows": rows,
            "targets": {"typical_ns_max": max(typical), "under_1us": max(typical) <= 1000,
                        "pb_parse_speedup_min": min(speedup), "at_least_10x": min(speedup) >= 10}}  # fmt: skip


def decode_table(result: dict[str, Any]) -> str:
    names = ["cython", "pb_parse", "pb_dict", "reference"]
    lines = [f"{'decode: ns/frame (median)':<22}{'bytes':>7}" + "".join(f"{n:>12}" for n in names) + f"{'pb_parse/cy':>13}{'dict/cy':>9}{'ref/cy':>8}"]
    for label, row in result["rows"].items():
        med, ratio = row["median_ns_per_frame"], row["ratio_vs_cython"]
        lines.append(f"{label:<22}{row['mean_frame_bytes']:>7.0f}" + "".join(f"{med[n]:>12.0f}" for n in names)
                     + f"{ratio['pb_parse']:>12.1f}x{ratio['pb_dict']:>8.1f}x{ratio['reference']:>7.1f}x")  # fmt: skip
    t = result["targets"]
    lines.append(f"typical frame: {t['typical_ns_max']:.0f} ns max (target <= 1000: {'met' if t['under_1us'] else 'MISSED'}); "
                 f"vs protobuf+field access: >= {t['pb_parse_speedup_min']:.1f}x (target 10x: {'met' if t['at_least_10x'] else 'MISSED'})")  # fmt: skip
    return "\n".join(lines)


def engine_table(speed: dict[str, Any]) -> str:
    lines = [f"{'engine: path':<16}{'ns/frame (median)':>20}{'x engine':>10}"]
    for name, ns in sorted(speed["median_ns_per_frame"].items(), key=lambda kv: kv[1]):
        lines.append(f"{name:<16}{ns:>20.0f}{speed['ratios_vs_engine'][name]:>10.1f}")
    lines.append(f"frames {speed['frames']} from {speed['pairs']} pairs, mean {speed['mean_frame_bytes']:.0f} B")
    return "\n".join(lines)


def memory_table(mem: dict[str, Any]) -> str:
    return (f"state for {mem['pairs']} pairs: engine {mem['engine_bytes'] / 2**20:.1f} MB ({mem['engine_bytes_per_pair']:.0f} B/pair), "
            f"reference {mem['reference_bytes'] / 2**20:.1f} MB ({mem['reference_bytes_per_pair']:.0f} B/pair)")  # fmt: skip


# name -> (JSON key, run(args) -> JSON part, table(JSON part) -> text)
SECTIONS: dict[str, tuple[str, Callable[[argparse.Namespace], dict[str, Any]], Callable[[dict[str, Any]], str]]] = {
    "decode": ("decode", lambda a: bench_decode(a.decode_frames, a.repeat), decode_table),
    "engine": ("speed", lambda a: bench(a.pairs, a.seconds, a.repeat), engine_table),
    "memory": ("memory", lambda a: memory(a.mem_pairs), memory_table),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset of: " + ", ".join(SECTIONS))
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--decode-frames", type=int, default=2000, help="frames per row of the decode section")
    parser.add_argument("--mem-pairs", type=int, default=3000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.sections.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}")
    result: dict[str, Any] = {}
    tables = []
    for name in chosen:
        key, run, table = SECTIONS[name]
        result[key] = run(args)
        tables.append(table(result[key]))
    result.update(python=sys.version.split()[0], when=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
    text = json.dumps(result, indent=2)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text)
    print(text)
    print("\n" + "\n\n".join(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
