"""What the futures feed costs beside the spot scanner, at the full universe (issue #17).

Issue #17's budget: the futures feed at ~1,200 perpetuals (every ticker, plus books where a
strategy needs them) adds at most 2 % of the machine to the spot scanner's figures at 2,000 spot
pairs. Measured the only way that separates the two on a noisy 2-core machine: the same feeds (the spot
feed, by default perf/blast_feed.py's synthetic frames, which cost a fraction of the emulator's CPU
for 2,000 pairs; and the emulator's contract API alone for the perpetuals) and the whole service
run in turns with
`futures.enabled` false and true (ABBA when --rounds 2, so a slow spell does not land on one
side), each measured over the same window after the same warm-up. The figure is the difference of
the service's CPU between the turns, and the futures child's own CPU from the per-process table.

Side by side in the same run: perf/naive_futures.py, the plain websockets + `json` consumer of the
same contract stream (the same subscriptions), measured the same way, so the futures child's CPU
per 1,000 ticker entries has a baseline; it also times `json.loads` alone, which says whether the
standard JSON module is the cost on this path (the reason to reach for a faster library or not).

Usage:
    python -m perf.bench_futures [--pairs 2000] [--rate 6000] [--contracts 1200] [--warmup 60]
        [--duration 60] [--rounds 2] [--spot-feed blast|emulator] [--json OUT]
Progress goes to stderr; the summary table and the JSON to stdout (and OUT).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from common.progress import Progress
from perf.harness import (
    CORES,
    CpuMeter,
    cpu_model,
    emulator,
    free_port,
    get_json,
    scrape_metrics,
    service_env,
    start_fake_telegram,
    start_json,
    start_service,
    stop,
)
from perf.load_profile import write_config

TG_TOKEN = "123456:bench-futures-token"
CHAT_ID = 4242
BUDGET_PCT_OF_MACHINE = 2.0


def _metric(metrics: dict[str, float], suffix: str) -> float:
    """A futures counter by its name's tail (the supervisor prefixes the feed's own names)."""
    return sum(v for k, v in metrics.items() if k.endswith(suffix))


def measure_turn(ready: dict[str, Any], tg: dict[str, Any], futures_on: bool, warmup: float, seconds: float, workdir: Path,
                 bar: Progress, offset: float) -> dict[str, Any]:  # fmt: skip
    """The whole service on the running emulator, futures on or off: CPU per process over the window."""
    config = workdir / f"bench-{'on' if futures_on else 'off'}.yaml"
    write_config(config)
    raw = yaml.safe_load(config.read_text())
    raw.setdefault("futures", {})["enabled"] = futures_on
    config.write_text(yaml.safe_dump(raw))
    data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=workdir))
    port = free_port()
    env = service_env(ready, tg, data_dir, port, TG_TOKEN, CHAT_ID)
    with open(workdir / f"service-{'on' if futures_on else 'off'}.log", "a") as log:
        service = start_service(config, env, log)
        try:
            started = time.monotonic()
            bar.note(f"warm-up, futures {'on' if futures_on else 'off'}")
            while time.monotonic() - started < warmup:
                if service.poll() is not None:
                    raise RuntimeError(f"service exited during warm-up (code {service.returncode}); see {log.name}")
                time.sleep(1.0)
                bar.advance_to(offset + time.monotonic() - started)
            meter = CpuMeter(service.pid)
            m0 = scrape_metrics(port)
            meter.begin()
            t0 = time.monotonic()
            bar.note(f"window, futures {'on' if futures_on else 'off'}")
            memory = []
            while (left := seconds - (time.monotonic() - t0)) > 0:
                time.sleep(min(5.0, left))
                memory.append(meter.memory()["pss_mb"])
                bar.advance_to(offset + warmup + time.monotonic() - t0)
            dt = time.monotonic() - t0
            by_pid = meter.seconds_by_pid()
            last_memory = meter.memory()["by_pid"]
            m1 = scrape_metrics(port)
            names = {int(p["pid"]): str(p["name"]) for p in get_json(f"http://127.0.0.1:{port}/healthz").get("processes", [])}
        finally:
            stop(service, 30)
    cpu = sum(by_pid.values())
    by_name = {names.get(pid, "supervisor" if pid == service.pid else str(pid)): round(100 * v / dt, 3) for pid, v in by_pid.items()}
    tickers = _metric(m1, "futures_tickers_total") - _metric(m0, "futures_tickers_total")
    futures_cpu = sum(v for pid, v in by_pid.items() if names.get(pid) == "futures")
    return {
        "futures": futures_on,
        "cpu_pct_of_machine": 100 * cpu / dt / CORES,
        "cpu_pct_of_core_by_process": by_name,
        "frames_per_s": (m1.get("scanner_frames_total", 0.0) - m0.get("scanner_frames_total", 0.0)) / dt,
        "pairs_subscribed": m1.get("scanner_pairs_subscribed", 0.0),
        "futures_tickers_per_s": tickers / dt,
        "futures_universe": _metric(m1, "futures_universe_size"),
        "futures_books": _metric(m1, "futures_books_subscribed"),
        "futures_child_pct_of_core": 100 * futures_cpu / dt,
        "futures_child_ms_per_1000_tickers": 1000 * 1000 * futures_cpu / tickers if tickers else None,
        "pss_mb_max": max(memory, default=0.0),
        "pss_mb_by_process": {names.get(pid, "supervisor" if pid == service.pid else str(pid)): round(m["pss_mb"], 1)
                              for pid, m in last_memory.items()},
    }


def measure_baseline(ready: dict[str, Any], books: list[str], warmup: float, seconds: float, bar: Progress,
                     offset: float) -> dict[str, Any]:  # fmt: skip
    """perf/naive_futures.py on the same contract stream, the same subscriptions, the same window length."""
    cmd = [sys.executable, "-m", "perf.naive_futures", "--ws", ready["futures_ws"], "--books", ",".join(books)]
    proc, _ = start_json(cmd)

    def counters() -> dict[str, float]:
        proc.send_signal(signal.SIGUSR1)
        return json.loads(proc.stdout.readline())  # type: ignore[union-attr]

    try:
        bar.note("baseline warm-up")
        time.sleep(min(warmup, 10.0))
        meter = CpuMeter(proc.pid, tree=False)
        c0 = counters()
        meter.begin()
        t0 = time.monotonic()
        bar.note("baseline window")
        while (left := seconds - (time.monotonic() - t0)) > 0:
            time.sleep(min(2.0, left))
            bar.advance_to(offset + min(warmup, 10.0) + time.monotonic() - t0)
        dt = time.monotonic() - t0
        cpu = meter.seconds()
        c1 = counters()
        pss = meter.memory()["pss_mb"]
    finally:
        stop(proc)
    tickers = c1["tickers"] - c0["tickers"]
    json_s = c1["json_s"] - c0["json_s"]
    return {
        "cpu_pct_of_core": 100 * cpu / dt,
        "tickers_per_s": tickers / dt,
        "ms_per_1000_tickers": 1000 * 1000 * cpu / tickers if tickers else None,
        "json_loads_pct_of_core": 100 * json_s / dt,
        "json_share_of_cpu": json_s / cpu if cpu else None,
        "pss_mb": pss,
    }


def turn_problems(turn: dict[str, Any], rate: int, contracts: int) -> list[str]:
    """Why a turn does not measure what it claims (an emulator that fell behind on a busy machine)."""
    out = []
    if turn["frames_per_s"] < 0.9 * rate:
        out.append(f"spot feed {turn['frames_per_s']:.0f} frames/s < 90 % of {rate}")
    if turn["futures"] and turn["futures_tickers_per_s"] < 0.9 * contracts / 2:
        out.append(f"futures {turn['futures_tickers_per_s']:.0f} tickers/s < 90 % of {contracts} every 2 s")
    return out


def summarise(turns: list[dict[str, Any]], baseline: dict[str, Any]) -> dict[str, Any]:
    on = [t for t in turns if t["futures"]]
    off = [t for t in turns if not t["futures"]]
    added = statistics.median(t["cpu_pct_of_machine"] for t in on) - statistics.median(t["cpu_pct_of_machine"] for t in off)
    child_machine = statistics.median(t["futures_child_pct_of_core"] for t in on) / CORES
    per_1000 = [t["futures_child_ms_per_1000_tickers"] for t in on if t["futures_child_ms_per_1000_tickers"]]
    ours = statistics.median(per_1000) if per_1000 else None
    base = baseline.get("ms_per_1000_tickers")
    return {
        "added_pct_of_machine": added,
        "futures_child_pct_of_machine": child_machine,
        "budget_pct_of_machine": BUDGET_PCT_OF_MACHINE,
        "valid": not any(t["problems"] for t in turns),
        "pass": max(added, child_machine) <= BUDGET_PCT_OF_MACHINE and not any(t["problems"] for t in turns),
        "futures_child_ms_per_1000_tickers": ours,
        "baseline_ms_per_1000_tickers": base,
        "baseline_over_ours": base / ours if ours and base else None,
    }


def table(result: dict[str, Any]) -> str:
    lines = [f"{'turn':<12}{'machine %':>10}{'futures child % core':>22}{'tickers/s':>11}{'frames/s':>10}{'PSS MB':>8}"]
    for t in result["turns"]:
        lines.append(f"{'futures on' if t['futures'] else 'futures off':<12}{t['cpu_pct_of_machine']:>10.2f}"
                     f"{t['futures_child_pct_of_core']:>22.2f}{t['futures_tickers_per_s']:>11.0f}{t['frames_per_s']:>10.0f}"
                     f"{t['pss_mb_max']:>8.1f}")  # fmt: skip
    b, s = result["baseline"], result["summary"]
    lines.append(f"baseline (websockets + json): {b['cpu_pct_of_core']:.2f} % of a core, {b['tickers_per_s']:.0f} tickers/s, "
                 f"json.loads {b['json_loads_pct_of_core']:.2f} % of a core ({100 * (b['json_share_of_cpu'] or 0):.0f} % of its CPU)")
    for t in result["turns"]:
        for problem in t["problems"]:
            lines.append(f"INVALID turn (futures {'on' if t['futures'] else 'off'}): {problem}")
    ratio = s["baseline_over_ours"]
    lines.append(f"added by futures: {s['added_pct_of_machine']:+.2f} % of the machine (child alone {s['futures_child_pct_of_machine']:.2f} %), "
                 f"budget {s['budget_pct_of_machine']} % -> {'PASS' if s['pass'] else 'FAIL'}; per 1,000 tickers: ours "
                 f"{s['futures_child_ms_per_1000_tickers'] or float('nan'):.2f} ms, baseline {s['baseline_ms_per_1000_tickers'] or float('nan'):.2f} ms"
                 + (f" ({ratio:.1f}x)" if ratio else ""))  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=6000, help="spot frames per second of the emulator")
    parser.add_argument("--contracts", type=int, default=1200, help="perpetual contracts of the emulator's contract API")
    parser.add_argument("--warmup", type=float, default=60.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=2, help="1: off, on; 2: off, on, on, off (ABBA)")
    parser.add_argument("--spot-feed", choices=("blast", "emulator"), default="blast",
                        help="the spot frames: the synthetic blast feed (cheap) or the emulator's market (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    order = [False, True] if args.rounds == 1 else ([False, True, True, False] * ((args.rounds + 1) // 2))[: 2 * args.rounds]
    total = len(order) * (args.warmup + args.duration) + min(args.warmup, 10.0) + args.duration
    workdir = Path(tempfile.mkdtemp(prefix="bench-futures-"))
    tg, tg_ready = start_fake_telegram(TG_TOKEN)
    try:
        with Progress(total, f"bench_futures {args.pairs} pairs + {args.contracts} perpetuals", "s", leave=False) as bar, \
                emulator(args.pairs, args.rate, None, args.spot_feed, futures_contracts=0) as (_, spot), \
                emulator(10, 20, None, futures_contracts=args.contracts) as (_, contract):  # fmt: skip
            ready = {"ws": spot["ws"], "rest": spot["rest"], "futures_ws": contract["futures_ws"], "futures_rest": contract["futures_rest"]}
            turns = []
            for i, on in enumerate(order):
                turns.append(measure_turn(ready, tg_ready, on, args.warmup, args.duration, workdir, bar, i * (args.warmup + args.duration)))
                turns[-1]["problems"] = turn_problems(turns[-1], args.rate, args.contracts)
            books = []  # the service's own choice: books only near strategy 4's ratio (none on a calm market)
            baseline = measure_baseline(ready, books, args.warmup, args.duration, bar, len(order) * (args.warmup + args.duration))
    finally:
        stop(tg)
        shutil.rmtree(workdir, ignore_errors=True)
    result = {"command": "python -m perf.bench_futures " + " ".join(argv if argv is not None else sys.argv[1:]),
              "cpu": cpu_model(), "cores": CORES, "pairs": args.pairs, "rate": args.rate, "contracts": args.contracts, "spot_feed": args.spot_feed,
              "warmup_s": args.warmup, "window_s": args.duration, "turns": turns, "baseline": baseline}  # fmt: skip
    result["summary"] = summarise(turns, baseline)
    print(table(result))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if result["summary"]["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
