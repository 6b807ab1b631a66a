"""Soak and chaos: the whole service for hours of market time under faults, then the invariants.

The MEXC emulator compresses time (`--speed`), and every feature, cooldown and pump script runs on
exchange time, so a simulated day passes in an hour of wall time at --speed 24. Around the service
(supervisor, shards, bot, paper trading) the run plays a trader and an unkind world:

- scripted pumps on distinct pairs all through the run, natural spikes as hard negatives;
- a trader who presses "Buy" on every card (and presses twice on some: a double tap);
- with --chaos, one fault every --chaos-every wall seconds, in turn: links dropped, a stall past the
  idle limit, a depth gap, malformed frames, a REST 429 storm turning into 418, REST 5xx, REST
  garbage bodies, Telegram
  429s, a Telegram outage, SIGKILL of a random shard or of the bot; and once, at the middle of the
  run, SIGTERM of the whole service and a fresh start on the same data directory.

Every --report-every seconds it prints one JSON line (memory per process, reconnects, restarts,
signals), and at the end a JSON summary with the invariants:

- every scripted pump owed by the end signalled exactly once (escalations aside), no signal on a
  spike or any other pair;
- every stored signal delivered to the chat exactly once, every Buy press placed at most one
  order, every stored signal's Buy answered by exactly one order;
- no process crashed except by the injected kills; reconnects per hour in calm and under chaos;
- memory: the slope of the service's summed PSS after warm-up (MB per hour).

Usage:
  python -m perf.soak --minutes 3 --speed 10 --pairs 300 --chaos --json OUT      # CI-sized
  python -m perf.soak --minutes 60 --speed 24 --pairs 300 --chaos --json OUT --png OUT   # a simulated day
Exit code 0 when every invariant holds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from common.progress import Progress
from perf.harness import (
    REPO,
    feed_command,
    free_port,
    get_json,
    healthz,
    post_json,
    pss_mb,
    pump_symbols,
    scrape_metrics,
    service_env,
    start_fake_telegram,
    start_json,
    start_service,
    stop,
    telegram_cards,
)
from perf.report import plot_memory, print_soak_summary
from perf.soak_verdict import STALL_S, verdict

TG_TOKEN = "777001:SOAK-TOKEN"
USER = 7001
WARMUP_EXCHANGE_S = 240  # subscribe, seed, 180 s of book history for CumDepthΔ
PUMP_S = 240


@dataclass
class Plan:
    pumps: list[dict[str, Any]]
    spikes: list[dict[str, Any]]
    restart_at_wall: float | None
    warmup_wall: float


def plan_market(pairs: int, rate: int, speed: float, minutes: float, restart: bool) -> Plan:
    """Pumps every few exchange minutes after warm-up, none straddling the planned restart."""
    span = minutes * 60 * speed
    restart_at = span / 2 if restart else None
    # Warm-up in market time, but never under 30 wall seconds: subscribing and seeding run on wall time.
    warmup = max(float(WARMUP_EXCHANGE_S), 30.0 * speed)
    starts: list[float] = []
    t = warmup
    while t + PUMP_S + 60 < span:
        # A restart empties the windows: a pump must not be running across it or start just after it.
        if restart_at is None or not (restart_at - PUMP_S - 30 < t < restart_at + warmup):
            starts.append(t)
        t += max(150.0, PUMP_S * 0.75)
    # A long run pumps pairs again, in turn: a pair's next pump starts long after its cooldown ended.
    symbols = pump_symbols(pairs, rate, min(len(starts), 40) + 3)
    pumped, spiked = symbols[:-3], symbols[-3:]
    pumps = [{"symbol": pumped[i % len(pumped)], "start_s": round(t0, 1), "duration_s": PUMP_S, "rise_pct": 15, "volume_mult": 20,
              "book_imbalance": 0.8} for i, t0 in enumerate(starts)]  # fmt: skip
    spikes = [{"symbol": spiked[i % 3], "start_s": round(warmup + 100 + i * 600.0, 1), "duration_s": 60, "volume_mult": 15}
              for i in range(max(1, int((span - warmup - 200) // 600)))]  # fmt: skip
    return Plan(pumps, spikes, None if restart_at is None else restart_at / speed, warmup / speed)


def soak_config() -> dict[str, Any]:
    """config.demo.yaml with the trained model, and a paper account that never runs dry.

    The soaks check one order per Buy press; with the demo's $1,000 the ninth stake emptied the
    account and every later press was refused (with an answer), which read as missing orders.
    """
    config = yaml.safe_load((REPO / "config.demo.yaml").read_text())
    config["detectors"]["pump"]["profiles"]["alpha1"]["model_path"] = str(REPO / "model.json")
    config["trading"]["paper_balance_usdt"] = 1e9
    return config


def write_config(path: Path) -> None:
    """The soak's config with liveness limits short enough that a stall is noticed within the run."""
    config = soak_config()
    config["ws"].update(ping_interval_s=4, idle_timeout_s=8)
    path.write_text(yaml.safe_dump(config))


# --- the running world ------------------------------------------------------------------------------


@dataclass
class World:
    workdir: Path
    emulator: subprocess.Popen[str]
    emu: dict[str, Any]
    telegram: subprocess.Popen[str]
    tg: dict[str, Any]
    metrics_port: int
    service: subprocess.Popen[bytes] | None = None
    log: Any = None
    events: list[dict[str, Any]] = field(default_factory=list)
    pressed: dict[str, int] = field(default_factory=dict)  # signal_id -> Buy presses sent
    kills: int = 0
    restarts: int = 0
    start_ms: int = 0  # the emulator's exchange time at its start: scenario times count from here
    t0: float = field(default_factory=time.monotonic)

    def start_service(self) -> None:
        env = service_env(self.emu, self.tg, self.workdir / "data", self.metrics_port, TG_TOKEN, USER)
        if self.log is None:
            self.log = open(self.workdir / "service.log", "ab")  # noqa: SIM115 - closed in main()
        self.service = start_service(self.workdir / "soak.yaml", env, self.log)

    def health(self) -> dict[str, Any]:
        return healthz(self.metrics_port)

    def fault(self, body: dict[str, Any]) -> None:
        post_json(self.emu["rest"] + "/_sim/fault", body)

    def tg_control(self, body: dict[str, Any]) -> dict[str, Any]:
        return json.loads(post_json(self.tg["control"] + "/inject", body))

    def note(self, kind: str, **detail: Any) -> None:
        self.events.append({"t_s": round(time.monotonic() - self.t0, 1), "kind": kind, **detail})


def cards(world: World) -> list[dict[str, Any]]:
    """Every card the chat received: signal id, message id, arrival."""
    return telegram_cards(world.tg["control"])


def tend(world: World, rng: random.Random, now: float, chaos_from: float, calm: dict[str, float]) -> None:
    """One tick of the soak's watchdog and trader (perf/soak.py and perf/soak_long.py share it).

    A service that exited is noted and started again, new cards get their Buy presses, and the
    first tick after the calm stretch fills `calm` (in place) with its reconnects per hour.
    """
    assert world.service is not None
    if world.service.poll() is not None:
        world.note("service_exit", code=world.service.returncode)
        world.start_service()
    press_buy(world, rng)
    if not calm and now >= chaos_from:
        m = scrape_metrics(world.metrics_port)
        reconnects = m.get("scanner_ws_reconnects_total", 0.0)
        calm.update({"reconnects": reconnects, "seconds": now - world.t0, "per_hour": 3600 * reconnects / (now - world.t0)})


def finish(world: World, rng: random.Random) -> None:
    """The last card's Buy, then a clean SIGTERM: the service must exit 0 (anything else is an event)."""
    time.sleep(3.0)
    press_buy(world, rng)
    time.sleep(3.0)
    code = stop(world.service, 30)
    if code != 0:
        world.note("service_exit", code=code, during="final SIGTERM")


def press_buy(world: World, rng: random.Random) -> None:
    """The trader presses Buy on each new card; one card in four gets a double tap."""
    for card in cards(world):
        if card["signal_id"] in world.pressed:
            continue
        taps = 2 if rng.random() < 0.25 else 1
        for _ in range(taps):
            with contextlib.suppress(OSError):
                world.tg_control({"kind": "callback", "user_id": USER, "chat_id": USER, "message_id": card["message_id"],
                                  "data": f"buy:{card['signal_id']}"})  # fmt: skip
        world.pressed[card["signal_id"]] = taps


CHAOS = ("drop", "stall", "depth_gap", "malformed", "rest_429_418", "rest_5xx", "telegram_429", "telegram_outage", "kill_child",
         "rest_garbage")  # fmt: skip


def chaos_step(world: World, step: int, rng: random.Random, symbols: list[str]) -> None:
    kind = CHAOS[step % len(CHAOS)]
    try:
        if kind == "drop":
            world.fault({"kind": "drop", "count": 2})
        elif kind == "stall":
            world.fault({"kind": "stall", "seconds": STALL_S, "count": 1})  # past ws.idle_timeout_s (8 s in this config)
        elif kind == "depth_gap":
            world.fault({"kind": "depth_gap", "symbol": rng.choice(symbols)})
        elif kind == "malformed":
            world.fault({"kind": "malformed", "frames": 5})
        elif kind == "rest_429_418":
            world.fault({"kind": "status", "status": 429, "duration_s": 3, "retry_after": 1})
            world.fault({"kind": "status", "status": 418, "duration_s": 2, "retry_after": 2})
        elif kind == "rest_5xx":
            world.fault({"kind": "status", "status": 503, "duration_s": 3})
        elif kind == "rest_garbage":  # bodies that are not what the endpoint promises
            world.fault({"kind": "garbage", "duration_s": 3})
        elif kind == "telegram_429":
            for method in ("sendMessage", "sendPhoto", "sendPhoto"):  # cards with a chart are photos
                world.tg_control({"kind": "fail", "method": method, "status": 429, "retry_after": 1})
        elif kind == "telegram_outage":
            world.tg_control({"kind": "outage", "on": True})
            time.sleep(4)
            world.tg_control({"kind": "outage", "on": False})
        elif kind == "kill_child":
            procs = [p for p in world.health().get("processes", []) if p["name"] != "supervisor"]
            if procs:
                victim = rng.choice(procs)
                os.kill(int(victim["pid"]), signal.SIGKILL)
                world.kills += 1
                world.note("chaos", fault=kind, victim=victim["name"])
                return
        world.note("chaos", fault=kind)
    except (OSError, ValueError) as exc:
        world.note("chaos_error", fault=kind, error=repr(exc))


# --- sampling ---------------------------------------------------------------------------------------


def sample(world: World, t0: float) -> dict[str, Any]:
    memory: dict[str, float] = {}
    for proc in world.health().get("processes", []):
        with contextlib.suppress(psutil.Error):
            memory[proc["name"]] = round(pss_mb(int(proc["pid"])), 1)
    try:
        m = scrape_metrics(world.metrics_port)
    except OSError:
        m = {}
    return {
        "t_s": round(time.monotonic() - t0, 1),
        "pss_mb": memory,
        "pss_mb_total": round(sum(memory.values()), 1),
        "reconnects": m.get("scanner_ws_reconnects_total"),
        "shard_restarts": m.get("scanner_shard_restarts_total"),
        "frames": m.get("scanner_frames_total"),
        "decode_errors": m.get("scanner_decode_errors_total"),
        "resyncs": m.get("scanner_resyncs_total"),
        "ring_overflow": m.get("scanner_ring_overflow_total"),
        "rows_dropped": m.get("scanner_rows_dropped_total"),
        "signals_per_hour": m.get("scanner_signals_per_hour"),
    }



# --- main -------------------------------------------------------------------------------------------


def open_world(workdir: Path, plan: Any, pairs: int, rate: int, speed: float) -> World:
    """Write the scenario, start the emulator and the fake Bot API, line scenario time up with the market.

    Scenario times count from the market's start, which is the emulator's ready line give or take
    a step; perf/soak.py and perf/soak_long.py both start their world this way.
    """
    (workdir / "scenario.yaml").write_text(yaml.safe_dump({"pumps": plan.pumps, "spikes": plan.spikes}))
    emulator, emu = start_json(feed_command(pairs, rate, scenario=workdir / "scenario.yaml", speed=speed))
    ready_at = time.monotonic()
    telegram, tg = start_fake_telegram(TG_TOKEN)
    world = World(workdir, emulator, emu, telegram, tg, free_port())
    state = get_json(emu["rest"] + "/_sim/state")
    world.start_ms = int(state["exchange_ms"] - (time.monotonic() - ready_at) * speed * 1000)
    return world


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    plan = plan_market(args.pairs, args.rate, args.speed, args.minutes, restart=args.chaos)
    write_config(workdir / "soak.yaml")
    (workdir / "data").mkdir()
    world = open_world(workdir, plan, args.pairs, args.rate, args.speed)
    samples: list[dict[str, Any]] = []
    calm: dict[str, float] = {}
    # Wall seconds of the run on stderr (common/progress.py); stdout keeps the JSON report lines.
    bar = Progress(args.minutes * 60, "soak", "s")
    try:
        world.start_service()
        t0 = world.t0 = time.monotonic()
        end = t0 + args.minutes * 60
        next_report = t0 + args.report_every
        # Calm first (no faults until warm-up is over and a calm stretch measured), chaos after.
        chaos_from = t0 + plan.warmup_wall + args.calm_s
        next_chaos, step = chaos_from, 0
        restarted = False
        symbols = [p["symbol"] for p in plan.pumps] or ["X"]
        while time.monotonic() < end:
            time.sleep(1.0)
            now = time.monotonic()
            tend(world, rng, now, chaos_from, calm)
            if args.chaos and now >= next_chaos:
                chaos_step(world, step, rng, symbols)
                step += 1
                next_chaos = now + args.chaos_every
            if args.chaos and not restarted and plan.restart_at_wall is not None and now - t0 >= plan.restart_at_wall:
                restarted = True
                code = stop(world.service, 30)
                world.note("restart", exit_code=code)
                if code != 0:
                    world.note("service_exit", code=code, during="SIGTERM")
                world.restarts += 1
                world.start_service()
            if now >= next_report:
                samples.append(sample(world, t0))
                bar.write(json.dumps({"report": samples[-1]}))
                next_report = now + args.report_every
            phase = "warm-up" if now - t0 < plan.warmup_wall else "calm" if now < chaos_from or not args.chaos else f"chaos, {step} faults"
            bar.note(f"{phase}, {len(world.pressed)} cards")
            bar.advance_to(now - t0)
        bar.close()
        samples.append(sample(world, t0))
        elapsed = time.monotonic() - t0
        finish(world, rng)
        result = verdict(world, plan, args.speed, elapsed, samples, calm, args.chaos)
    finally:
        bar.close()
        stop(world.service)
        stop(world.emulator)
        stop(world.telegram)
        if world.log is not None:
            world.log.close()
    result["events"] = world.events
    result["samples"] = samples
    result["config"] = {"pairs": args.pairs, "rate": args.rate, "speed": args.speed, "minutes": args.minutes, "chaos": args.chaos,
                        "chaos_every_s": args.chaos_every, "workdir": str(workdir)}  # fmt: skip
    if args.png:
        plot_memory(samples, Path(args.png))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0, help="wall-clock length")
    parser.add_argument("--speed", type=float, default=10.0, help="exchange seconds per wall second")
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--rate", type=int, default=300, help="frames per exchange second (x speed per wall second)")
    parser.add_argument("--chaos", action="store_true")
    parser.add_argument("--chaos-every", type=float, default=15.0)
    parser.add_argument("--calm-s", type=float, default=20.0, help="calm wall seconds after warm-up before chaos starts")
    parser.add_argument("--report-every", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", default=None)
    parser.add_argument("--png", default=None)
    args = parser.parse_args(argv)
    result = run(args)
    summary = {k: v for k, v in result.items() if k not in ("samples", "events")}
    print(json.dumps(summary, indent=2, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    print_soak_summary(result)
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
