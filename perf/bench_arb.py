"""Triangular arbitrage: what the cycle pricer absorbs and what the detector costs the service.

    python -m perf.bench_arb [--sizes 1000,2000] [--updates 60000] [--service-seconds 60] [--json OUT]

Figures (JSON on stdout or --json, a summary table on stderr), each beside a baseline in the same run:

1. Book updates absorbed per second for a cycle universe of 1,000 pairs and of 2,000 (MEXC lists
   ~1,950 spot pairs in all), from pre-encoded limit.depth@10 pushes of the emulator's cross markets:
   core/cycles.pyx (decode, then re-price only the cycles through the pair, size-aware) against a
   plain-Python first version (protobuf decode, a dict of best prices, every cycle re-computed at the
   top of the book on every update). Cycles re-priced per update and per second.
2. A full re-evaluation of every cycle (ms): reprice_all against the baseline's loop.
3. Update -> opportunity latency p50/p99: the service's ArbWatch path (decode, re-price, episode
   start) on the emulator in lock-step, over many scripted dislocations.
4. The service (`python -m supervisor --config config.demo.yaml`: no volume floor, so the pump
   shards watch every USDT pair of the emulator's 2,000, and the cycle universe has ~2,000 pairs)
   with the detector on and off: CPU and PSS of the whole process tree and per process, frames/s.
   `valid` is false when the pump shards or the arb child had no pairs (an overloaded emulator).

Progress goes to stderr (common/progress.py). Loopback only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common.config import Config
from common.progress import Progress
from core.cycles import CycleBook
from detectors.arb_cycles import enumerate_cycles, universe_of
from perf.arb_lockstep import ArbLockstep, markets_of
from perf.harness import CORES, CpuMeter, cpu_model, free_port, get_json, percentile, scrape_metrics, start_json, stop
from sim.frames import FrameEncoder
from sim.market import Market
from sim.proto import mexc_push_pb2 as pb
from sim.scenario import scenario_from_mapping
from venues.mexc.arb_market import arb_channel

START_MS = 1_767_225_600_000
FEE = 0.0005


def cross_for(pairs: int) -> int:
    """Bases with cross pairs so that the cycle universe has about `pairs` pairs (2.83 pairs per base)."""
    return max(4, round((pairs - 4) / (1 + 1 + 1 / 2 + 1 / 3)))


def build(size: int, seed: int = 1) -> tuple[Market, list[Any], list[str]]:
    market = Market(max(2000, size), seed, START_MS, scenario_from_mapping({"cross": cross_for(size)}))
    cycles = enumerate_cycles(markets_of(market, FEE), ["USDT", "USDC"])
    return market, cycles, universe_of(cycles)


def frames_for(market: Market, symbols: list[str], n: int, seed: int = 3) -> list[bytes]:
    """n limit.depth@10 pushes of random cycle pairs, each book moved a few ticks and its sizes jittered."""
    rng = random.Random(seed)
    enc = FrameEncoder(market)
    books = {s: market.depth_snapshot(s, 10) for s in symbols}
    ticks = {s: market._pair(s).tick for s in symbols}
    out = []
    for k in range(n):
        s = symbols[rng.randrange(len(symbols))]
        version, bids, asks = books[s]
        d = rng.choice((-1, 0, 0, 1)) * ticks[s]
        bids = [(p + d, q * rng.uniform(0.5, 1.5)) for p, q in bids]
        asks = [(p + d, q * rng.uniform(0.5, 1.5)) for p, q in asks]
        out.append(enc.limit_depth(arb_channel(s, "limit10"), s, version + k, bids, asks, START_MS + k))
    return out


class NaiveScanner:
    """The first version of such a scanner: protobuf decode, a dict of best prices, all cycles on every update."""

    def __init__(self, cycles: list[Any]) -> None:
        self.cycles = [[(leg.symbol, leg.buy) for leg in c.legs] for c in cycles]
        self.prices: dict[str, tuple[float, float]] = {}
        self.best = -math.inf

    def on_frame(self, frame: bytes) -> int:
        w = pb.PushDataV3ApiWrapper.FromString(frame)
        body = w.publicLimitDepths
        if body.bids and body.asks:
            self.prices[w.symbol] = (float(body.bids[0].price), float(body.asks[0].price))
        return self.reprice_all()

    def reprice_all(self) -> int:
        best = -math.inf
        for legs in self.cycles:
            rate = 1.0
            for symbol, buy in legs:
                top = self.prices.get(symbol)
                if top is None or top[0] >= top[1]:
                    rate = math.nan
                    break
                rate = rate / top[1] * (1 - FEE) if buy else rate * top[0] * (1 - FEE)
            if rate == rate:
                best = max(best, (rate - 1.0) * 1e4)
        self.best = best
        return len(self.cycles)


def pricer_figures(size: int, n_updates: int, baseline_s: float, bar: Progress) -> dict[str, Any]:
    market, cycles, symbols = build(size)
    bar.note(f"{size} pairs: encoding {n_updates} pushes")
    frames = frames_for(market, symbols, n_updates)
    ids = {s: i for i, s in enumerate(symbols)}
    book = CycleBook(len(symbols), [[(ids[leg.symbol], leg.buy) for leg in c.legs] for c in cycles], 5.0, 100.0, 10**9)
    book.set_symbols(symbols)
    for m in markets_of(market, FEE):
        if m.symbol in ids:
            book.set_rules(ids[m.symbol], FEE, m.step)
    for s in symbols:  # every pair priced once before the clock starts
        book.on_frame(frames_for(market, [s], 1)[0])
    r0 = book.repriced_total
    t0 = time.perf_counter()
    for f in frames:
        book.on_frame(f)
    fast_s = time.perf_counter() - t0
    repriced = book.repriced_total - r0
    t0 = time.perf_counter()
    book.reprice_all(START_MS + n_updates)
    full_ms = 1000 * (time.perf_counter() - t0)
    bar.note(f"{size} pairs: baseline")
    naive = NaiveScanner(cycles)
    for s in symbols:
        _, b, a = market.depth_snapshot(s, 1)
        naive.prices[s] = (b[0][0], a[0][0])
    done, t0 = 0, time.perf_counter()
    while done < len(frames) and time.perf_counter() - t0 < baseline_s:
        naive.on_frame(frames[done])
        done += 1
    naive_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive.reprice_all()
    naive_full_ms = 1000 * (time.perf_counter() - t0)
    bar.update(1)
    fast_rate, naive_rate = n_updates / fast_s, done / naive_s
    return {"pairs": len(symbols), "cycles": len(cycles), "updates": n_updates, "updates_per_s": fast_rate,
            "cycles_repriced_per_update": repriced / n_updates, "cycles_repriced_per_s": repriced / fast_s,
            "us_per_update": 1e6 * fast_s / n_updates, "full_reevaluation_ms": full_ms, "pricer_bytes": book.nbytes(),
            "baseline": {"updates": done, "updates_per_s": naive_rate, "cycles_repriced_per_update": len(cycles),
                         "us_per_update": 1e6 * naive_s / max(done, 1), "full_reevaluation_ms": naive_full_ms},
            "speedup_updates_per_s": fast_rate / naive_rate, "speedup_full_reevaluation": naive_full_ms / max(full_ms, 1e-9)}  # fmt: skip


def channel_figures(size: int, n: int, bar: Progress) -> dict[str, Any]:
    """limit.depth@10 against bookTicker pushes of the same books: µs per push in the pricer and bytes per push."""
    market, cycles, symbols = build(size)
    ids = {s: i for i, s in enumerate(symbols)}
    enc = FrameEncoder(market)
    limit = frames_for(market, symbols, n, seed=5)
    ticker = []
    for f in limit:
        w = pb.PushDataV3ApiWrapper.FromString(f)
        b, a = w.publicLimitDepths.bids[0], w.publicLimitDepths.asks[0]
        bbo = (float(b.price), float(b.quantity), float(a.price), float(a.quantity))
        ticker.append(enc.book_ticker(arb_channel(w.symbol, "bookTicker"), w.symbol, bbo, w.sendTime))
    out: dict[str, Any] = {"pairs": len(symbols), "pushes": n}
    for name, frames in (("limit10", limit), ("bookTicker", ticker)):
        book = CycleBook(len(symbols), [[(ids[leg.symbol], leg.buy) for leg in c.legs] for c in cycles], 5.0, 100.0, 10**9)
        book.set_symbols(symbols)
        t0 = time.perf_counter()
        for f in frames:
            book.on_frame(f)
        out[name] = {"us_per_push": 1e6 * (time.perf_counter() - t0) / n, "bytes_per_push": sum(map(len, frames)) / n}
    bar.update(1)
    return out


def latency_figures(dislocations: int, bar: Progress) -> dict[str, Any]:
    """Frame received -> episode started, through ArbWatch, over scripted dislocations (lock-step)."""
    probe = Market(300, 7, START_MS, scenario_from_mapping({"cross": 60}))
    targets = [s.symbol for s in probe.symbols[300:] if s.quote in ("BTC", "USDC") and s.base != "ETH"]
    every = 4.0
    scenario = {"cross": 60, "dislocations": [{"symbol": targets[k % len(targets)], "start_s": 5 + every * k, "duration_s": 2,
                                               "size_bps": 60, "depth_usdt": 2000} for k in range(dislocations)]}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        lock = ArbLockstep(Config(), tmp, pairs=300, seed=7, scenario=scenario, start_ms=START_MS)
        bar.note("latency: lock-step run")
        lock.run(5 + every * dislocations + 3)
        lat = list(lock.watch.latency_us)
        started, stored = lock.watch.counts["opportunities"], lock.watch.counts["stored"]
        lock.stop()
    bar.update(1)
    return {"dislocations": dislocations, "episodes_started": started, "episodes_stored": stored, "pairs": len(lock.watch.symbols),
            "cycles": len(lock.watch.cycles), "latency_us_p50": percentile(lat, 50), "latency_us_p99": percentile(lat, 99),
            "latency_us_max": max(lat, default=None)}  # fmt: skip


def service_figures(pairs: int, cross: int, rate: int, warmup: float, seconds: float, arb_on: bool, bar: Progress) -> dict[str, Any]:
    """The whole service on the emulator (cross markets), arb on or off: CPU and PSS of its process tree."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "scenario.yaml").write_text(f"cross: {cross}\n")
        data = work / "data"
        data.mkdir()
        (data / "config.overrides.yaml").write_text(f"arb.enabled: '{'true' if arb_on else 'false'}'\n")
        emu, ready = start_json([sys.executable, "-m", "sim", "serve", "--pairs", str(pairs), "--rate", str(rate), "--seed", "1",
                                 "--scenario", str(work / "scenario.yaml")])  # fmt: skip
        port = free_port()
        env = dict(os.environ, MEXC_WS_URL=ready["ws"], MEXC_REST_URL=ready["rest"], SCANNER_DATA_DIR=str(data), METRICS_PORT=str(port))
        env.pop("TG_TOKEN", None)
        log = open(work / "service.log", "w")  # noqa: SIM115 - closed below
        service = subprocess.Popen([sys.executable, "-m", "supervisor", "--config", "config.demo.yaml"], cwd=Path(__file__).parent.parent,
                                   env=env, stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
        try:
            bar.note(f"service arb {'on' if arb_on else 'off'}: warm-up")
            time.sleep(warmup)
            meter = CpuMeter(service.pid)
            m0 = scrape_metrics(port)
            meter.begin()
            t0 = time.monotonic()
            bar.note(f"service arb {'on' if arb_on else 'off'}: window")
            memory = []
            while time.monotonic() - t0 < seconds:
                time.sleep(5.0)
                memory.append(meter.memory())
            dt = time.monotonic() - t0
            by_pid = meter.seconds_by_pid()
            m1 = scrape_metrics(port)
            names = {int(p["pid"]): str(p["name"]) for p in get_json(f"http://127.0.0.1:{port}/healthz").get("processes", [])}
        finally:
            stop(service, 30)
            stop(emu)
            log.close()
    bar.update(1)
    last = memory[-1]
    return {"arb": arb_on, "cpu_pct_of_machine": 100 * sum(by_pid.values()) / dt / CORES, "pss_mb": max(m["pss_mb"] for m in memory),
            "cpu_pct_of_core_by_process": {names.get(p, str(p)): round(100 * v / dt, 2) for p, v in by_pid.items()},
            "pss_mb_by_process": {names.get(p, str(p)): round(v["pss_mb"], 1) for p, v in last["by_pid"].items()},
            "pump_frames_per_s": (m1.get("scanner_frames_total", 0.0) - m0.get("scanner_frames_total", 0.0)) / dt,
            "arb_frames_per_s": (m1.get("scanner_arb_frames_total", 0.0) - m0.get("scanner_arb_frames_total", 0.0)) / dt,
            "arb_pairs": m1.get("scanner_arb_pairs"), "arb_cycles": m1.get("scanner_arb_cycles"),
            "arb_cycles_repriced_per_s": (m1.get("scanner_arb_cycles_repriced_total", 0.0) - m0.get("scanner_arb_cycles_repriced_total", 0.0)) / dt,
            "pairs_subscribed": m1.get("scanner_pairs_subscribed"),
            "valid": bool(m1.get("scanner_pairs_subscribed")) and (not arb_on or bool(m1.get("scanner_arb_pairs")))}  # fmt: skip


def table(result: dict[str, Any]) -> str:
    rows = ["figure | cycle pricer | plain-Python baseline | ratio", "---|---:|---:|---:"]
    for p in result["pricer"]:
        b = p["baseline"]
        rows.append(f"updates/s, {p['pairs']} pairs / {p['cycles']} cycles | {p['updates_per_s']:,.0f} | {b['updates_per_s']:,.0f} | "
                    f"{p['speedup_updates_per_s']:,.0f}x")  # fmt: skip
        rows.append(f"cycles re-priced per update ({p['pairs']} pairs) | {p['cycles_repriced_per_update']:.2f} | "
                    f"{b['cycles_repriced_per_update']:,} |")  # fmt: skip
        rows.append(f"cycles re-priced per s ({p['pairs']} pairs) | {p['cycles_repriced_per_s']:,.0f} | "
                    f"{b['updates_per_s'] * b['cycles_repriced_per_update']:,.0f} |")  # fmt: skip
        rows.append(f"full re-evaluation ms ({p['cycles']} cycles) | {p['full_reevaluation_ms']:.3f} | {b['full_reevaluation_ms']:.3f} | "
                    f"{p['speedup_full_reevaluation']:,.0f}x")  # fmt: skip
    ch = result.get("channels")
    if ch:
        rows.append(f"µs per push in the pricer, limit.depth@10 / bookTicker ({ch['pairs']} pairs) | {ch['limit10']['us_per_push']:.2f} | "
                    f"{ch['bookTicker']['us_per_push']:.2f} |")  # fmt: skip
        rows.append(f"bytes per push, limit.depth@10 / bookTicker | {ch['limit10']['bytes_per_push']:.0f} | {ch['bookTicker']['bytes_per_push']:.0f} |")
    lat = result.get("latency")
    if lat:
        rows.append(f"update -> opportunity µs p50 / p99 ({lat['episodes_started']} episodes) | "
                    f"{lat['latency_us_p50']:.0f} / {lat['latency_us_p99']:.0f} | |")  # fmt: skip
    svc = result.get("service") or []
    if len(svc) == 2:
        on, off = (s for s in sorted(svc, key=lambda s: not s["arb"]))
        rows.append(f"service CPU % of machine, arb on / off | {on['cpu_pct_of_machine']:.1f} | {off['cpu_pct_of_machine']:.1f} | "
                    f"+{on['cpu_pct_of_machine'] - off['cpu_pct_of_machine']:.1f}")  # fmt: skip
        rows.append(f"service PSS MB, arb on / off | {on['pss_mb']:.0f} | {off['pss_mb']:.0f} | +{on['pss_mb'] - off['pss_mb']:.0f}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,2000", help="cycle-universe sizes in pairs (default: %(default)s)")
    parser.add_argument("--updates", type=int, default=60_000, help="pushes timed per size (default: %(default)s)")
    parser.add_argument("--baseline-seconds", type=float, default=5.0, help="time box of the baseline per size (default: %(default)s)")
    parser.add_argument("--dislocations", type=int, default=30, help="scripted dislocations for the latency run (default: %(default)s)")
    parser.add_argument("--service-seconds", type=float, default=60.0, help="measured window per service run; 0 skips (default: %(default)s)")
    parser.add_argument("--service-pairs", type=int, default=2000, help="the emulator's generated pairs (default: %(default)s)")
    parser.add_argument("--service-cycle-pairs", type=int, default=2000, help="cycle universe of the service run, pairs (default: %(default)s)")
    parser.add_argument("--service-rate", type=int, default=6000, help="frames/s the emulator aims at (default: %(default)s)")
    parser.add_argument("--warmup", type=float, default=45.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",") if x]
    steps = len(sizes) + 2 + (2 if args.service_seconds > 0 else 0)
    result: dict[str, Any] = {"cpu": cpu_model(), "cores": CORES, "argv": sys.argv[1:] if argv is None else argv}
    with Progress(steps, "bench_arb", "step") as bar:
        result["pricer"] = [pricer_figures(size, args.updates, args.baseline_seconds, bar) for size in sizes]
        result["channels"] = channel_figures(sizes[0] if sizes else 1000, min(args.updates, 20_000), bar)
        result["latency"] = latency_figures(args.dislocations, bar)
        if args.service_seconds > 0:
            cross = cross_for(args.service_cycle_pairs)
            result["service"] = [service_figures(args.service_pairs, cross, args.service_rate, args.warmup, args.service_seconds, on, bar)
                                 for on in (True, False)]  # fmt: skip
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    else:
        print(text)
    print(table(result), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
