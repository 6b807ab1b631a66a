"""The whole service under load, side by side with the way most people would build it.

One side: the MEXC emulator (`python -m sim serve --pairs N --rate R`) and the fake Telegram Bot
API, both subprocesses on 127.0.0.1. The other: `python -m supervisor` (supervisor, one shard per
CPU, the bot), exactly as a user runs it. Over a steady window after warm-up it measures:

- CPU of every service process summed (as % of one core and of the machine) from psutil; the
  emulator's and the fake Bot API's CPU are reported apart and never counted;
- memory as PSS and USS summed over the service processes (RSS double-counts forked pages);
- frames/s received and rows/s scored (from the service's own /metrics), dropped rows, ring
  overflows, reconnects;
- lag: the supervisor's ring lag and the emulator's send backlog (frames queued for the
  service's connections) sampled every SAMPLE_EVERY_S (3 s: the service's /metrics is read no
  more often than that, since each scrape costs the supervisor CPU that a real Prometheus, every
  15-60 s, would not spend); "bounded" means the last third of the window does
  not sit above the first third by more than a small margin;
- latency of each card: frame received by a shard (`recv_ns`, stored with the signal) → the card
  arriving at the fake Bot API (its own clock, same machine) — p50/p95/p99/max;
- A-7 on the live emulator: no connection carries more than 30 streams.

Cards need signals, and Alpha-1's VC < 0.5 needs minutes of a pump; CumDepthΔ needs 180 s of
book history after subscription, hence the default warm-up of 200 s. The bench therefore runs a
*latency profile*: the shipped config with VC off (vc_max 1.0), cooldown short, quality drop off,
and a scripted pump starting every few seconds so cards arrive all through the window. The
pipeline latency does not depend on which rule fired; detection quality is perf/eval_pumps.py's job.

The baseline in the same run: the same emulator market consumed by perf/naive_consumer.py
(websockets + protobuf ParseFromString + MessageToDict + dict books and Python bars in one asyncio
process). Compared as CPU per 1,000 frames.

Usage:
  python -m perf.bench_load --pairs 2000 --rate 6000 --duration 60 [--json OUT] [--no-baseline]
  python -m perf.bench_load --sweep [--json OUT --png OUT]   # pairs x rates, highest sustained rate
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.progress import Progress, progress
from perf.harness import (
    CORES,
    CpuMeter,
    bounded,
    emulator,
    free_port,
    get_json,
    pump_symbols,
    scrape_metrics,
    service_env,
    start_fake_telegram,
    start_service,
    stop,
)
from perf.load_baseline import measure_baseline
from perf.load_profile import (
    FIRES_AFTER_S,
    FIRES_AFTER_S_ALPHA1,
    card_latencies,
    pump_check,
    write_config,
    write_scenario,
)
from perf.report import bench_payload, plot, print_table

TG_TOKEN = "424242:BENCH-TOKEN"
CHAT_ID = 4242
SAMPLE_EVERY_S = 3.0  # lag, backlog and memory samples in the window (see the module docstring)
# Deals and depth windows of 100 ms: a pair can push at most 2 frames per step.
MAX_FRAMES_PER_PAIR_S = 20


# --- one run ---------------------------------------------------------------------------------------


@dataclass
class Sample:
    t: float
    ring_lag: float
    backlog: int
    frames: float


@dataclass
class RunResult:
    pairs: int
    rate_target: int
    seconds: float
    feed: str = "emulator"
    service: dict[str, Any] = field(default_factory=dict)
    emulator: dict[str, Any] = field(default_factory=dict)
    latency_ms: dict[str, Any] = field(default_factory=dict)
    lag: dict[str, Any] = field(default_factory=dict)
    a7: dict[str, Any] = field(default_factory=dict)
    pumps: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] | None = None


def _backlog(state: dict[str, Any]) -> int:
    return int(sum(int(c.get("queued", 0)) for c in state.get("connections", [])))


def measure_service(
    pairs: int, rate: int, warmup: float, seconds: float, workdir: Path, alpha1: bool = False, feed: str = "emulator",
    bar: Progress | None = None,
) -> RunResult:
    """The service under the feed: warm-up, then the measured window (the module docstring says what is measured).

    bar, when given, counts the warm-up's and the window's seconds (stderr only).
    """
    bar = bar or Progress(None, "", enabled=False)
    result = RunResult(pairs=pairs, rate_target=rate, seconds=seconds, feed=feed)
    count = max(6, int(seconds / 3))
    scenario = workdir / "scenario.yaml"
    # A pump fires ~60 s after it starts in this profile; start the first so its card lands at the window's start.
    pumps = write_scenario(
        scenario,
        pump_symbols(pairs, rate, count),
        first_s=max(5.0, warmup - (FIRES_AFTER_S_ALPHA1 if alpha1 else FIRES_AFTER_S) + 5.0),
        every_s=seconds / count,
    )
    if feed == "blast":
        pumps = []  # the synthetic feed has no pumps: throughput, CPU and lag only
    config = workdir / "bench.yaml"
    write_config(config, alpha1)
    data_dir = workdir / "data"
    data_dir.mkdir(exist_ok=True)
    tg, tg_ready = start_fake_telegram(TG_TOKEN)
    service: subprocess.Popen[bytes] | None = None
    try:
        with emulator(pairs, rate, scenario, feed) as (emu, ready):
            metrics_port = free_port()
            env = service_env(ready, tg_ready, data_dir, metrics_port, TG_TOKEN, CHAT_ID)
            log = open(workdir / "service.log", "w")  # noqa: SIM115 - closed below
            service = start_service(config, env, log)
            started = time.monotonic()
            bar.note("service warm-up")
            while time.monotonic() - started < warmup:
                if service.poll() is not None:
                    log.flush()
                    tail = (workdir / "service.log").read_text()[-3000:]
                    raise RuntimeError(f"service exited during warm-up (code {service.returncode}):\n{tail}")
                time.sleep(1.0)
                bar.advance_to(time.monotonic() - started)
            meter, emu_meter, tg_meter = (
                CpuMeter(service.pid),
                CpuMeter(emu.pid, tree=False),
                CpuMeter(tg.pid, tree=False),
            )
            m0, s0 = scrape_metrics(metrics_port), get_json(ready["rest"] + "/_sim/state")
            meter.begin(), emu_meter.begin(), tg_meter.begin()
            t0 = time.monotonic()
            bar.note("service window")
            samples: list[Sample] = []
            memory: list[dict[str, float]] = []
            max_streams = 0
            while time.monotonic() - t0 < seconds:
                time.sleep(min(SAMPLE_EVERY_S, max(0.1, seconds - (time.monotonic() - t0))))
                bar.advance_to(warmup + time.monotonic() - t0)
                try:
                    m, state = scrape_metrics(metrics_port), get_json(ready["rest"] + "/_sim/state", timeout=30)
                except OSError:  # an overloaded emulator answers late: skip this sample, keep measuring
                    continue
                samples.append(
                    Sample(
                        time.monotonic() - t0,
                        m.get("scanner_ring_lag_rows", 0.0),
                        _backlog(state),
                        m.get("scanner_frames_total", 0.0),
                    )
                )
                max_streams = max(
                    [max_streams] + [len(c.get("subscriptions", [])) for c in state.get("connections", [])]
                )
                if len(samples) % 2 == 0:
                    memory.append(meter.memory())
            dt = time.monotonic() - t0
            cpu_by_pid = meter.seconds_by_pid()
            cpu, emu_cpu, tg_cpu = sum(cpu_by_pid.values()), emu_meter.seconds(), tg_meter.seconds()
            m1, s1 = scrape_metrics(metrics_port), get_json(ready["rest"] + "/_sim/state")
            memory.append(meter.memory())
            try:
                table = get_json(f"http://127.0.0.1:{metrics_port}/healthz").get("processes", [])
            except (OSError, ValueError):
                table = []
            names = {int(p["pid"]): str(p["name"]) for p in table}
            frames = m1.get("scanner_frames_total", 0.0) - m0.get("scanner_frames_total", 0.0)
            result.service = {
                "cpu_pct_of_core": 100 * cpu / dt,
                "cpu_pct_of_machine": 100 * cpu / dt / CORES,
                "cpu_us_per_frame": 1e6 * cpu / max(frames, 1.0),
                "cpu_s_per_1000_frames": 1000 * cpu / max(frames, 1.0),
                "pss_mb": max(x["pss_mb"] for x in memory),
                "uss_mb": max(x["uss_mb"] for x in memory),
                "rss_mb_sum": max(x["rss_mb"] for x in memory),
                "processes": memory[-1]["processes"],
                # The last sample, per process: where the PSS goes (forked pages are shared, so
                # each process's PSS counts its share of them once across the service).
                "memory_by_process": {names.get(pid, str(pid)): {k: round(v, 1) for k, v in m.items()}
                                      for pid, m in memory[-1]["by_pid"].items()},
                # Where the CPU goes: % of one core per process (the sum is cpu_pct_of_core).
                "cpu_pct_of_core_by_process": {names.get(pid, str(pid)): round(100 * v / dt, 2)
                                               for pid, v in cpu_by_pid.items()},
                "frames_per_s": frames / dt,
                "rows_scored_per_s": (
                    m1.get("scanner_rows_scored_total", 0.0) - m0.get("scanner_rows_scored_total", 0.0)
                )
                / dt,
                "score_passes_per_s": (
                    m1.get("scanner_score_passes_total", 0.0) - m0.get("scanner_score_passes_total", 0.0)
                )
                / dt,
                "rows_dropped": m1.get("scanner_rows_dropped_total", 0.0),
                "ring_overflow": m1.get("scanner_ring_overflow_total", 0.0),
                "reconnects_in_window": m1.get("scanner_ws_reconnects_total", 0.0)
                - m0.get("scanner_ws_reconnects_total", 0.0),
                "decode_errors": m1.get("scanner_decode_errors_total", 0.0),
                "pairs_subscribed": m1.get("scanner_pairs_subscribed", 0.0),
                "shard_restarts": m1.get("scanner_shard_restarts_total", 0.0),
            }
            result.emulator = {
                "cpu_pct_of_core": 100 * emu_cpu / dt,
                "fake_telegram_cpu_pct_of_core": 100 * tg_cpu / dt,
                "frames_sent_per_s": (s1["frames_sent"] - s0["frames_sent"]) / dt,
                "links": s1["links"],
                "streams": s1["streams"],
                "closed": s1.get("close_counts", {}),
            }
            result.a7 = {"max_streams_per_connection": max_streams, "streams": s1["streams"], "links": s1["links"],
                         "pass": max_streams <= 30 and s1["streams"] <= 30 * s1["links"]}  # fmt: skip
            lags = [s.ring_lag for s in samples]
            backlogs = [float(s.backlog) for s in samples]
            result.lag = {
                "ring_lag_rows_max": max(lags, default=0.0),
                "emulator_backlog_frames_max": max(backlogs, default=0.0),
                "emulator_backlog_frames_last": backlogs[-1] if backlogs else 0.0,
                # Frames the shards counted over frames the feed wrote: a reader that falls behind
                # leaves frames in the kernel's socket buffers, where the feed's backlog cannot see them.
                "received_of_sent": frames / max(1.0, float(s1["frames_sent"] - s0["frames_sent"])),
                # A backlog of one 100 ms step's frames is normal; growth beyond it means falling behind.
                "bounded": bounded(lags, slack=1000.0) and bounded(backlogs, slack=max(50.0, rate / 10))
                and frames >= 0.98 * (s1["frames_sent"] - s0["frames_sent"]),
            }
            time.sleep(2.0)  # let the last cards reach the fake Bot API
            result.latency_ms = card_latencies(tg_ready["control"], data_dir)
            # Only pumps old enough to have fired by the window's end (this profile: ~60 s in) are owed a signal.
            fires_after = FIRES_AFTER_S_ALPHA1 if alpha1 else FIRES_AFTER_S
            owed = [p["symbol"] for p in pumps if p["start_s"] + fires_after + 30 <= time.monotonic() - started]
            if feed != "blast":
                result.pumps = pump_check(data_dir, [p["symbol"] for p in pumps], owed)
    finally:
        rc = stop(service, 30)
        stop(tg)
        result.service["exit_code"] = rc
    return result



def run_once(
    pairs: int,
    rate: int,
    warmup: float,
    seconds: float,
    baseline: bool,
    keep: bool = False,
    alpha1: bool = False,
    feed: str = "emulator",
) -> RunResult:
    """One configuration: the service, then (with baseline) the naive consumer on the same feed.

    Progress, per second of the run, goes to stderr (common/progress.py): minutes pass before any result.
    """
    total = warmup + seconds + (min(warmup, 20.0) + seconds if baseline else 0.0)
    with Progress(total, f"bench_load {pairs} pairs {rate} f/s", "s", leave=False) as bar:
        tmp = tempfile.mkdtemp(prefix="bench-load-")
        try:
            result = measure_service(pairs, rate, warmup, seconds, Path(tmp), alpha1, feed, bar)
        finally:
            if keep:
                print(f"# kept {tmp}", file=sys.stderr)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
        if baseline:
            result.baseline = measure_baseline(pairs, rate, warmup, seconds, feed, bar, offset=warmup + seconds)
    return result



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=6000, help="total frames/s the emulator aims at")
    parser.add_argument("--duration", type=float, default=60.0, help="measured window, seconds")
    parser.add_argument(
        "--warmup",
        type=float,
        default=200.0,
        help="seconds before the window: subscribe, seed, and 180 s of book history for CumDepthΔ",
    )
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--alpha1", action="store_true", help="the shipped Alpha-1 rules (VC < 0.5 on): pumps fire ~2.5 min in"
    )
    parser.add_argument("--sweep", action="store_true", help="pairs 200/1000/2000/3000 x rates 2k/10k/50k")
    parser.add_argument("--sweep-pairs", default="200,1000,2000,3000")
    parser.add_argument("--sweep-rates", default="2000,10000,50000")
    parser.add_argument("--json", default=None)
    parser.add_argument("--png", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work dir (config, scenario, service log, SQLite)")
    parser.add_argument(
        "--feed",
        choices=("emulator", "blast"),
        default="emulator",
        help="emulator: the simulated market with scripted pumps (cards, latency); blast: perf/blast_feed.py, "
        "synthetic frames at rates the emulator cannot make on 2 cores (CPU, throughput, lag; no cards)",
    )
    args = parser.parse_args(argv)

    results: list[RunResult] = []
    failed: list[dict[str, Any]] = []
    if args.sweep:
        grid = [(int(p), int(r)) for p in args.sweep_pairs.split(",") for r in args.sweep_rates.split(",")]
        for pairs, rate in progress(grid, len(grid), "bench_load sweep", "runs"):
            if rate > MAX_FRAMES_PER_PAIR_S * pairs:
                print(f"# sweep: {pairs} pairs cannot carry {rate} frames/s (at most {MAX_FRAMES_PER_PAIR_S} per pair); skipped",
                      file=sys.stderr, flush=True)  # fmt: skip
                continue
            print(f"# sweep: {pairs} pairs at {rate} frames/s", file=sys.stderr, flush=True)
            try:
                results.append(run_once(pairs, rate, args.warmup, args.duration, baseline=False, feed=args.feed))
            except (OSError, RuntimeError, ValueError) as exc:  # one overloaded configuration must not lose the sweep
                print(f"# sweep: {pairs} pairs at {rate} frames/s failed: {exc!r}", file=sys.stderr, flush=True)
                failed.append({"pairs": pairs, "rate": rate, "error": repr(exc)[:300]})
    else:
        results.append(
            run_once(
                args.pairs,
                args.rate,
                args.warmup,
                args.duration,
                baseline=not args.no_baseline,
                keep=args.keep,
                alpha1=args.alpha1,
                feed=args.feed,
            )
        )
    payload = bench_payload(results, failed, args.feed, args.alpha1, args.sweep)
    print(json.dumps(payload, indent=2, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(payload, indent=2, default=str))
    print_table(results)
    if args.sweep and args.png:
        plot(results, Path(args.png))
        print(f"plot: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
