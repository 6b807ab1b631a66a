"""Soak at full size and real time: the whole service on 2,000 pairs at 1x for hours, memory watched.

perf/soak.py compresses a day into an hour (--speed 24) on 300 pairs; what it cannot show is the
real universe at the real cadence for long enough to tell allocator warm-up from a leak. This run
keeps the emulator at --speed 1 and slows the chaos to a realistic rate, each fault on its own
clock: a link dropped every --drop-every-s (default 5 min), a REST 429 burst every
--rest-burst-every-s (1 h), SIGKILL of one shard every --kill-every-s (1 h; always --kill-victim,
so the other shard and the supervisor keep one process each for the whole run), one Telegram
outage of --tg-outage-s at --tg-outage-at-min. The trader presses Buy on every card (and double
taps some), as in perf/soak.py, whose verdict (perf/soak_verdict.py) it shares.

Memory: every --report-every seconds the PSS and smaps_rollup of each process (read from /proc
outside the service), and inside it common/memprofile.py (SCANNER_MEMPROFILE_DIR): glibc malloc
statistics in every process and tracemalloc top lines in --trace (default supervisor and shard0).
Slopes are per process, over each process's own lifetime (a killed shard starts a new series),
after --settle-min of warm-up.

Everything lands in --out (default perf/out/soak_long, git-ignored): samples.jsonl as it goes (a 24 h run cut
short by SIGTERM still gives its verdict; an abort still leaves its data), memprofile/*.jsonl, service.log, and at the end result.json
and memory.png. One JSON line per report on stdout, the progress bar on stderr.

Usage:
  python -m perf.soak_long --minutes 120 --pairs 2000 --out /tmp/soak-2h          # a development machine
  python -m perf.soak_long --minutes 1440 --pairs 2000 --out /var/tmp/soak-day    # a day on a VPS
Exit code 0 when every invariant holds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from common.memprofile import smaps_rollup
from common.progress import Progress
from perf.harness import stop
from perf.soak import World, finish, open_world, plan_market, sample, soak_config, tend
from perf.soak_verdict import longest_life, process_lives, service_slope, slope_mb_per_hour, verdict

A2_RECONNECTS_PER_HOUR = 5  # the specification's A-2: at most 5 reconnects an hour (not counting the ones we forced)


def write_config(path: Path, shards: int) -> None:
    """The soak's config (perf/soak.soak_config) with the shipped liveness limits and a fixed shard count."""
    config = soak_config()
    config["scanner"]["shards"] = shards
    path.write_text(yaml.safe_dump(config))


class Schedule:
    """Each fault kind on its own wall clock (seconds after chaos starts), so rates are per hour, not per step."""

    def __init__(self, args: argparse.Namespace, chaos_from: float) -> None:
        self.every = {"drop": args.drop_every_s, "rest_429": args.rest_burst_every_s, "kill_shard": args.kill_every_s}
        # Staggered first firings: a kill, a burst and a drop never land in the same minute.
        self.next = {"drop": chaos_from + 30, "rest_429": chaos_from + 0.4 * args.rest_burst_every_s,
                     "kill_shard": chaos_from + 0.7 * args.kill_every_s}  # fmt: skip
        self.tg_on = chaos_from + args.tg_outage_at_min * 60
        self.tg_off = self.tg_on + args.tg_outage_s
        self.tg_state = "before"

    def due(self, now: float) -> list[str]:
        out = []
        for kind, at in self.next.items():
            if self.every[kind] > 0 and now >= at:
                out.append(kind)
                self.next[kind] = now + self.every[kind]
        if self.tg_state == "before" and now >= self.tg_on:
            out.append("tg_outage_on")
            self.tg_state = "on"
        elif self.tg_state == "on" and now >= self.tg_off:
            out.append("tg_outage_off")
            self.tg_state = "done"
        return out


def inject(world: World, kind: str, victim: str) -> None:
    """One fault; noted in world.events the way perf/soak_verdict.py reads them (fault=..., victim=...).

    Called on a thread of its own: a busy emulator may take seconds to answer a control request,
    and the run loop (Buy presses, samples) must not wait for it.
    """
    try:
        if kind == "drop":
            world.fault({"kind": "drop", "count": 1})
            world.note("chaos", fault="drop")
        elif kind == "rest_429":
            world.fault({"kind": "status", "status": 429, "duration_s": 20, "retry_after": 2})
            world.note("chaos", fault="rest_429")
        elif kind == "kill_shard":
            procs = {p["name"]: p for p in world.health().get("processes", [])}
            if victim in procs and procs[victim].get("pid"):
                os.kill(int(procs[victim]["pid"]), signal.SIGKILL)
                world.kills += 1
                world.note("chaos", fault="kill_child", victim=victim)
        elif kind in ("tg_outage_on", "tg_outage_off"):
            world.tg_control({"kind": "outage", "on": kind == "tg_outage_on"})
            world.note("chaos", fault="telegram_outage" if kind == "tg_outage_on" else "telegram_back")
    except (OSError, ValueError) as exc:
        world.note("chaos_error", fault=kind, error=repr(exc))


def long_sample(world: World, t0: float) -> dict[str, Any]:
    """perf/soak.py's sample plus pid and smaps_rollup (kB) per process: a new pid starts a new series."""
    row = sample(world, t0)
    procs = world.health().get("processes", [])
    row["pid"] = {p["name"]: p.get("pid") for p in procs}
    row["smaps_kb"] = {p["name"]: {k: v for k, v in smaps_rollup(int(p["pid"])).items() if k in ("Rss", "Pss", "Pss_Anon", "Anonymous",
                                                                                                 "Private_Dirty", "Swap")}
                       for p in procs if p.get("pid")}  # fmt: skip
    return row


def per_process_slopes(samples: list[dict[str, Any]], settle_s: float) -> dict[str, dict[str, Any]]:
    """PSS slope (MB/h) of each process over its longest life after settle_s, and its PSS per hour of that life."""
    out: dict[str, dict[str, Any]] = {}
    for name in sorted({n for s in samples for n in s["pss_mb"]}):
        lives = process_lives(samples, name, since_s=settle_s)
        if not lives:
            continue
        pid, points = longest_life(lives)
        hourly = {}
        for t, mb in points:
            hourly.setdefault(int(t // 3600), mb)
        out[name] = {"pid": pid, "lives_after_settle": len(lives), "from_s": points[0][0], "to_s": points[-1][0],
                     "first_mb": points[0][1], "last_mb": points[-1][1], "slope_mb_per_hour": slope_mb_per_hour(points),
                     "pss_mb_at_hour": hourly}  # fmt: skip
    return out


def reconnect_figures(world: World, samples: list[dict[str, Any]], calm: dict[str, float], hours: float) -> dict[str, Any]:
    """Reconnects per hour: all, the ones we forced (drops, killed shards' links), and the rest against A-2."""
    total = (samples[-1].get("reconnects") or 0.0) if samples else 0.0
    drops = sum(1 for e in world.events if e.get("fault") == "drop")
    unforced = max(0.0, total - drops)
    return {"total": total, "injected_drops": drops, "per_hour": total / hours if hours else None,
            "unforced_per_hour": unforced / hours if hours else None, "calm_per_hour": calm.get("per_hour"),
            "a2_limit_per_hour": A2_RECONNECTS_PER_HOUR}  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    out = Path(args.out)
    (out / "data").mkdir(parents=True, exist_ok=True)
    plan = plan_market(args.pairs, args.rate, args.speed, args.minutes, restart=False)
    write_config(out / "soak.yaml", args.shards)
    os.environ.update({"SCANNER_MEMPROFILE_DIR": str(out / "memprofile"), "SCANNER_MEMPROFILE_EVERY_S": str(args.memprofile_every_s),
                       "SCANNER_MEMPROFILE_TRACE": args.trace})  # fmt: skip
    world = open_world(out, plan, args.pairs, args.rate, args.speed)
    samples: list[dict[str, Any]] = []
    calm: dict[str, float] = {}
    bar = Progress(args.minutes * 60, "soak_long", "s")
    log = (out / "samples.jsonl").open("a", encoding="utf-8")
    try:
        world.start_service()
        t0 = world.t0 = time.monotonic()
        end = t0 + args.minutes * 60
        chaos_from = t0 + plan.warmup_wall + args.calm_min * 60
        schedule = Schedule(args, chaos_from)
        next_report = t0 + 10
        while time.monotonic() < end and not STOP_REQUESTED.is_set():
            STOP_REQUESTED.wait(2.0)
            now = time.monotonic()
            tend(world, rng, now, chaos_from, calm)
            if now >= chaos_from:
                for kind in schedule.due(now):
                    threading.Thread(target=inject, args=(world, kind, args.kill_victim), daemon=True).start()
            if now >= next_report:
                samples.append(long_sample(world, t0))
                log.write(json.dumps(samples[-1]) + "\n")
                log.flush()
                bar.write(json.dumps({"t_s": samples[-1]["t_s"], "pss_mb": samples[-1]["pss_mb"], "reconnects": samples[-1]["reconnects"],
                                      "cards": len(world.pressed), "faults": sum(1 for e in world.events if e["kind"] == "chaos")}))  # fmt: skip
                next_report = now + args.report_every
            phase = "warm-up" if now - t0 < plan.warmup_wall else "calm" if now < chaos_from else "chaos"
            bar.note(f"{phase}, {len(world.pressed)} cards, {sum(1 for e in world.events if e['kind'] == 'chaos')} faults")
            bar.advance_to(now - t0)
        bar.close()
        samples.append(long_sample(world, t0))
        elapsed = time.monotonic() - t0
        finish(world, rng)
        result = verdict(world, plan, args.speed, elapsed, samples, calm, True)
    finally:
        bar.close()
        log.close()
        stop(world.service)
        stop(world.emulator)
        stop(world.telegram)
        if world.log is not None:
            world.log.close()
    hours = elapsed / 3600
    settle = args.settle_min * 60
    procs = per_process_slopes(samples, settle)
    result["memory"]["per_process"] = procs
    result["memory"]["settle_min"] = args.settle_min
    result["memory"]["slope_after_settle_mb_per_hour"] = service_slope(samples, settle)
    # The service's slope without the killed shard's restarts: the processes that lived the whole run.
    steady = [n for n, p in procs.items() if p["lives_after_settle"] == 1]
    result["memory"]["steady_processes"] = steady
    result["memory"]["steady_slope_mb_per_hour"] = sum(procs[n]["slope_mb_per_hour"] or 0.0 for n in steady)
    result["reconnects"] = reconnect_figures(world, samples, calm, hours)
    r = result["reconnects"]
    result["invariants"]["reconnects_calm_at_most_1_per_hour"] = (r["calm_per_hour"] or 0.0) <= 1.0
    result["invariants"]["reconnects_unforced_within_a2"] = (r["unforced_per_hour"] or 0.0) <= A2_RECONNECTS_PER_HOUR
    if hours >= 2 * args.settle_min / 60:  # a slope over less than the settle time again says little
        result["invariants"]["pss_slope_at_most_1_mb_per_hour"] = (result["memory"]["slope_after_settle_mb_per_hour"] or 0.0) <= 1.0
    result["pass"] = all(result["invariants"].values())
    result["events"] = world.events
    result["samples"] = samples
    result["config"] = {k: v for k, v in vars(args).items()}
    result["command"] = "python -m perf.soak_long " + " ".join(sys.argv[1:])
    return result


STOP_REQUESTED = threading.Event()


def _interrupt(signum: int, frame: Any) -> None:
    """The first SIGTERM ends the run early with its verdict (a day on a VPS cut short still says what held); a second one aborts."""
    if STOP_REQUESTED.is_set():
        raise KeyboardInterrupt
    STOP_REQUESTED.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=120.0, help="wall-clock length (1440 = a day)")
    parser.add_argument("--speed", type=float, default=1.0, help="exchange seconds per wall second (1 = real time)")
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=6000, help="frames per exchange second (the emulator's default: 3 x pairs)")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--calm-min", type=float, default=10.0, help="calm minutes after warm-up before the first fault")
    parser.add_argument("--drop-every-s", type=float, default=300.0)
    parser.add_argument("--rest-burst-every-s", type=float, default=3600.0)
    parser.add_argument("--kill-every-s", type=float, default=3600.0)
    parser.add_argument("--kill-victim", default="shard1", help="the process killed each time (not one that is traced)")
    parser.add_argument("--tg-outage-at-min", type=float, default=30.0, help="minutes after chaos starts")
    parser.add_argument("--tg-outage-s", type=float, default=120.0)
    parser.add_argument("--trace", default="supervisor,shard0", help="processes that run tracemalloc (common/memprofile.py)")
    parser.add_argument("--memprofile-every-s", type=float, default=600.0)
    parser.add_argument("--report-every", type=float, default=60.0)
    parser.add_argument("--settle-min", type=float, default=60.0, help="warm-up excluded from the PSS slope")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", default="perf/out/soak_long")
    args = parser.parse_args(argv)
    # SIGTERM (a VPS run stopped early) ends the run at the next tick: the last Buy, a clean stop
    # and the verdict over the time that ran (result.json). A second SIGTERM or Ctrl-C aborts: the
    # service, the emulator and the fake Bot API are stopped by run()'s finally, samples.jsonl kept.
    signal.signal(signal.SIGTERM, _interrupt)
    result = run(args)
    out = Path(args.out)
    (out / "result.json").write_text(json.dumps(result, indent=2, default=str))
    from perf.report import plot_memory, print_soak_summary

    plot_memory(result["samples"], out / "memory.png")
    print(json.dumps({k: v for k, v in result.items() if k not in ("samples", "events")}, indent=2, default=str))
    print_soak_summary(result)
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
