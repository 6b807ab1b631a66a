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
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from perf.bench_load import REPO, _free_port, _get_json, _metrics, _start_json, _stop, pump_symbols

TG_TOKEN = "777001:SOAK-TOKEN"
USER = 7001
WARMUP_EXCHANGE_S = 240  # subscribe, seed, 180 s of book history for CumDepthΔ
PUMP_S = 240
FIRES_WITHIN_S = 200  # Alpha-1 fires about 2 minutes into a scripted pump (see sim/scenarios/README.md)
STALL_S = 12.0


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


def write_config(path: Path) -> None:
    """config.demo.yaml with liveness limits short enough that a stall is noticed within the run."""
    config = yaml.safe_load((REPO / "config.demo.yaml").read_text())
    config["detectors"]["pump"]["profiles"]["alpha1"]["model_path"] = str(REPO / "model.json")
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
        env = dict(os.environ, MEXC_WS_URL=self.emu["ws"], MEXC_REST_URL=self.emu["rest"], SCANNER_DATA_DIR=str(self.workdir / "data"),
                   METRICS_PORT=str(self.metrics_port), TG_TOKEN=TG_TOKEN, TG_BASE_URL=self.tg["base_url"], ALLOWED_IDS=str(USER),
                   LOG_LEVEL="INFO")  # fmt: skip
        if self.log is None:
            self.log = open(self.workdir / "service.log", "ab")  # noqa: SIM115 - closed in main()
        self.service = subprocess.Popen([sys.executable, "-m", "supervisor", "--config", str(self.workdir / "soak.yaml")], cwd=REPO,
                                        env=env, stdout=self.log, stderr=subprocess.STDOUT)  # fmt: skip

    def health(self) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/healthz", timeout=5) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:  # 503 still carries the JSON
            return json.loads(exc.read())
        except (OSError, ValueError):
            return {}

    def fault(self, body: dict[str, Any]) -> None:
        req = urllib.request.Request(self.emu["rest"] + "/_sim/fault", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        urllib.request.urlopen(req, timeout=10).read()

    def tg_control(self, body: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(self.tg["control"] + "/inject", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        return json.loads(urllib.request.urlopen(req, timeout=10).read())

    def note(self, kind: str, **detail: Any) -> None:
        self.events.append({"t_s": round(time.monotonic() - self.t0, 1), "kind": kind, **detail})


def cards(world: World) -> list[dict[str, Any]]:
    """Every card the chat received: signal id, message id, arrival."""
    out = []
    for call in _get_json(world.tg["control"] + "/calls"):
        if call["method"] != "sendMessage" or not call["ok"]:
            continue
        markup = call["params"].get("reply_markup") or {}
        if isinstance(markup, str):
            markup = json.loads(markup)
        ids = {str(b.get("callback_data", "")).split(":", 1)[-1] for row in markup.get("inline_keyboard", []) for b in row}
        for signal_id in ids:
            out.append({"signal_id": signal_id, "message_id": (call.get("result") or {}).get("message_id", 0), "at_ns": call["at_ns"]})
    return out


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
            for _ in range(3):
                world.tg_control({"kind": "fail", "method": "sendMessage", "status": 429, "retry_after": 1})
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
            info = psutil.Process(int(proc["pid"])).memory_full_info()
            memory[proc["name"]] = round(getattr(info, "pss", info.rss) / 2**20, 1)
    try:
        m = _metrics(world.metrics_port)
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


def slope_mb_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB), in MB per hour."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    var = sum((p[0] - mx) ** 2 for p in points)
    if var == 0:
        return None
    return 3600 * sum((p[0] - mx) * (p[1] - my) for p in points) / var


# --- the verdict ------------------------------------------------------------------------------------


def blind_windows(events: list[dict[str, Any]], speed: float) -> list[tuple[float, float]]:
    """Wall-time windows in which some pairs could not be watched: killed shards, stalled links.

    A killed shard is forked again within a second, but its pairs must be re-subscribed and their
    klines re-seeded within the shard's REST budget (two requests per pair: ~25 s for 150 pairs),
    and then CumDepthΔ and VC need ~400 s of market time again.
    """
    rewarm = 30.0 + 400.0 / speed
    out = []
    for e in events:
        if e.get("fault") == "kill_child" and str(e.get("victim", "")).startswith("shard"):
            out.append((e["t_s"], e["t_s"] + rewarm))
        elif e.get("fault") == "stall":
            out.append((e["t_s"], e["t_s"] + STALL_S + 8.0 + rewarm))  # stalled, noticed after idle_timeout_s, re-warmed
    return out


def verdict(world: World, plan: Plan, speed: float, elapsed_wall: float, samples: list[dict[str, Any]],
            calm: dict[str, float], chaos_on: bool) -> dict[str, Any]:  # fmt: skip
    db = sqlite3.connect(world.workdir / "data" / "scanner.sqlite3")
    try:
        signals = db.execute("SELECT signal_id, symbol, escalation FROM signals").fetchall()
        orders = db.execute("SELECT signal_id, COUNT(*) FROM orders GROUP BY signal_id").fetchall()
        actions = dict(db.execute("SELECT signal_id, action FROM actions").fetchall())
    finally:
        db.close()
    exchange_end = elapsed_wall * speed
    # Each pump episode owns the signals of its pair from its start to 5 minutes after its end: the
    # 5-min windows still hold the pump then, and a pair blinded by a fault may be caught late.
    windows = [(p["symbol"], world.start_ms + 1000 * p["start_s"], world.start_ms + 1000 * (p["start_s"] + p["duration_s"] + 300))
               for p in plan.pumps]  # fmt: skip
    # Time compression has a cost: a fault that blinds a pair for a few wall seconds (a killed
    # shard re-subscribing and re-warming its windows, a stalled link) covers a whole pump at high
    # --speed. Such pumps are excused, and listed, not silently dropped.
    first_alerts: dict[int, int] = {}
    off_pump: list[str] = []
    for signal_id, symbol, escalation in signals:
        t_ms = int(signal_id.rsplit("-", 2)[1])
        episode = next((i for i, (sym, a, b) in enumerate(windows) if sym == symbol and a <= t_ms <= b), None)
        if episode is None:
            off_pump.append(signal_id)
        elif escalation == 0:
            first_alerts[episode] = first_alerts.get(episode, 0) + 1
    # Only a pump that a fault blinded AND that got no signal is excused; a blinded pump that was
    # signalled still counts (and must have been signalled exactly once).
    blind = blind_windows(world.events, speed)
    excused = [i for i, p in enumerate(plan.pumps) if i not in first_alerts
               and any(a < (p["start_s"] + FIRES_WITHIN_S) / speed and p["start_s"] / speed < b for a, b in blind)]  # fmt: skip
    owed_episodes = [i for i, p in enumerate(plan.pumps) if p["start_s"] + FIRES_WITHIN_S <= exchange_end and i not in excused]
    delivered: dict[str, int] = {}
    for card in cards(world):
        delivered[card["signal_id"]] = delivered.get(card["signal_id"], 0) + 1
    stored_ids = {s[0] for s in signals}
    orders_per_signal = dict(orders)
    pressed_ids = set(world.pressed)
    after_warmup = [s for s in samples if s["t_s"] >= plan.warmup_wall + 30 and s["pss_mb_total"]]
    slope = slope_mb_per_hour([(s["t_s"], s["pss_mb_total"]) for s in after_warmup])
    hours = elapsed_wall / 3600
    result = {
        "pumps": {"scripted": len(plan.pumps), "owed": len(owed_episodes),
                  "excused_blinded_by_a_fault": [plan.pumps[i] for i in excused],
                  "signalled_once": sum(1 for i in owed_episodes if first_alerts.get(i) == 1),
                  "missed": [plan.pumps[i] for i in owed_episodes if i not in first_alerts],
                  "first_alerts_more_than_once": {plan.pumps[i]["symbol"] + "@" + str(plan.pumps[i]["start_s"]): n
                                                  for i, n in first_alerts.items() if n > 1},
                  "signals_not_on_pumps": off_pump},
        "delivery": {"stored": len(stored_ids), "delivered_once": sum(1 for i in stored_ids if delivered.get(i) == 1),
                     "undelivered": sorted(stored_ids - set(delivered)), "duplicated": {i: n for i, n in delivered.items() if n > 1},
                     "unknown_cards": sorted(set(delivered) - stored_ids)},
        "orders": {"buy_pressed": len(pressed_ids), "double_taps": sum(1 for n in world.pressed.values() if n > 1),
                   "placed": sum(orders_per_signal.values()), "duplicate": {i: n for i, n in orders_per_signal.items() if n > 1},
                   "missing": sorted(i for i in pressed_ids if actions.get(i) == "buy" and i not in orders_per_signal),
                   "actions_recorded": sum(1 for i in pressed_ids if i in actions)},
        "processes": {"injected_kills": world.kills, "service_restarts": world.restarts,
                      "shard_restarts": samples[-1]["shard_restarts"] if samples else None,
                      "unexpected_exits": [e for e in world.events if e["kind"] == "service_exit"]},
        "reconnects": {"calm_per_hour": calm.get("per_hour"), "total_last": samples[-1]["reconnects"] if samples else None,
                       "under_chaos_per_hour": (((samples[-1]["reconnects"] or 0) / hours) if samples and hours and chaos_on else None)},
        "memory": {"slope_mb_per_hour": slope, "first_mb": after_warmup[0]["pss_mb_total"] if after_warmup else None,
                   "last_mb": after_warmup[-1]["pss_mb_total"] if after_warmup else None,
                   "max_mb": max((s["pss_mb_total"] for s in samples), default=None)},
        "simulated_hours": round(exchange_end / 3600, 2),
        "wall_minutes": round(elapsed_wall / 60, 2),
    }  # fmt: skip
    p, d, o = result["pumps"], result["delivery"], result["orders"]
    growth_ok = not after_warmup or after_warmup[-1]["pss_mb_total"] <= after_warmup[0]["pss_mb_total"] + 40
    result["invariants"] = {
        "every_owed_pump_signalled_once": p["signalled_once"] == p["owed"] and not p["first_alerts_more_than_once"],
        "no_signal_off_pumps": not p["signals_not_on_pumps"],
        "every_signal_delivered_once": d["delivered_once"] == d["stored"] and not d["unknown_cards"],
        "no_duplicate_order": not o["duplicate"] and not o["missing"],
        "no_unexpected_exit": not result["processes"]["unexpected_exits"],
        "memory_bounded": growth_ok,
    }
    result["pass"] = all(result["invariants"].values())
    return result


def plot_memory(samples: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    names = sorted({n for s in samples for n in s["pss_mb"]})
    for name in names:
        ax.plot([s["t_s"] / 60 for s in samples], [s["pss_mb"].get(name, float("nan")) for s in samples], label=name)
    ax.plot([s["t_s"] / 60 for s in samples], [s["pss_mb_total"] for s in samples], label="total", color="black")
    ax.set(xlabel="wall minutes", ylabel="PSS, MB", title="Soak: memory per process")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# --- main -------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    plan = plan_market(args.pairs, args.rate, args.speed, args.minutes, restart=args.chaos)
    (workdir / "scenario.yaml").write_text(yaml.safe_dump({"pumps": plan.pumps, "spikes": plan.spikes}))
    write_config(workdir / "soak.yaml")
    (workdir / "data").mkdir()
    emulator, emu = _start_json([sys.executable, "-m", "sim", "serve", "--pairs", str(args.pairs), "--rate", str(args.rate), "--seed", "1",
                                 "--speed", str(args.speed), "--scenario", str(workdir / "scenario.yaml")])  # fmt: skip
    ready_at = time.monotonic()
    telegram, tg = _start_json([sys.executable, "-m", "sim", "telegram", "--token", TG_TOKEN])
    world = World(workdir, emulator, emu, telegram, tg, _free_port())
    # Scenario times count from the market's start, which is the ready line give or take a step.
    state = _get_json(emu["rest"] + "/_sim/state")
    world.start_ms = int(state["exchange_ms"] - (time.monotonic() - ready_at) * args.speed * 1000)
    samples: list[dict[str, Any]] = []
    calm: dict[str, float] = {}
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
            assert world.service is not None
            if world.service.poll() is not None:
                world.note("service_exit", code=world.service.returncode)
                world.start_service()
            press_buy(world, rng)
            if not calm and now >= chaos_from:
                m = _metrics(world.metrics_port)
                calm = {"reconnects": m.get("scanner_ws_reconnects_total", 0.0), "seconds": now - t0,
                        "per_hour": 3600 * m.get("scanner_ws_reconnects_total", 0.0) / (now - t0)}  # fmt: skip
            if args.chaos and now >= next_chaos:
                chaos_step(world, step, rng, symbols)
                step += 1
                next_chaos = now + args.chaos_every
            if args.chaos and not restarted and plan.restart_at_wall is not None and now - t0 >= plan.restart_at_wall:
                restarted = True
                code = _stop(world.service, 30)
                world.note("restart", exit_code=code)
                if code != 0:
                    world.note("service_exit", code=code, during="SIGTERM")
                world.restarts += 1
                world.start_service()
            if now >= next_report:
                samples.append(sample(world, t0))
                print(json.dumps({"report": samples[-1]}), flush=True)
                next_report = now + args.report_every
        samples.append(sample(world, t0))
        elapsed = time.monotonic() - t0
        time.sleep(3.0)
        press_buy(world, rng)
        time.sleep(3.0)
        code = _stop(world.service, 30)
        if code != 0:
            world.note("service_exit", code=code, during="final SIGTERM")
        result = verdict(world, plan, args.speed, elapsed, samples, calm, args.chaos)
    finally:
        _stop(world.service)
        _stop(emulator)
        _stop(telegram)
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
    print(f"\n{'invariant':<34}result")
    for name, ok in result["invariants"].items():
        print(f"{name:<34}{'ok' if ok else 'FAIL'}")
    p, m, r = result["pumps"], result["memory"], result["reconnects"]
    print(f"pumps owed {p['owed']}, signalled once {p['signalled_once']}; delivered once {result['delivery']['delivered_once']}/"
          f"{result['delivery']['stored']}; orders {result['orders']['placed']} for {result['orders']['buy_pressed']} pressed; "
          f"kills {result['processes']['injected_kills']}; reconnects/h calm {r['calm_per_hour']}; "
          f"PSS slope {m['slope_mb_per_hour']} MB/h ({result['simulated_hours']} simulated h)")  # fmt: skip
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
