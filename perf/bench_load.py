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
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

REPO = Path(__file__).resolve().parent.parent
TG_TOKEN = "424242:BENCH-TOKEN"
CHAT_ID = 4242
CORES = psutil.cpu_count() or 1
SAMPLE_EVERY_S = 3.0  # lag, backlog and memory samples in the window (see the module docstring)
# When a scripted x20 pump fires after its start: about a minute with VC off, about 2.5 minutes with Alpha-1's VC < 0.5.
FIRES_AFTER_S = 60.0
FIRES_AFTER_S_ALPHA1 = 170.0
# Deals and depth windows of 100 ms: a pair can push at most 2 frames per step.
MAX_FRAMES_PER_PAIR_S = 20


# --- processes -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_json(
    cmd: list[str], env: dict[str, str] | None = None, timeout: float = 120.0
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start a subprocess that prints one JSON ready line; return it and the parsed line."""
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{cmd[2:4]} exited before it was ready (code {proc.wait(5)})")
        with contextlib.suppress(json.JSONDecodeError):
            return proc, json.loads(line)
    proc.kill()
    raise RuntimeError(f"{cmd[2:4]} not ready within {timeout} s")


def _stop(proc: subprocess.Popen[Any] | None, timeout: float = 20.0) -> int | None:
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)


def _get_json(url: str, timeout: float = 10.0) -> Any:
    return json.loads(urllib.request.urlopen(url, timeout=timeout).read())


def _metrics(port: int) -> dict[str, float]:
    """The service's /metrics, summed over label sets (one figure per metric name)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$", line)
        if match:
            with contextlib.suppress(ValueError):
                out[match.group(1)] = out.get(match.group(1), 0.0) + float(match.group(3))
    return out


class CpuMeter:
    """CPU seconds of a process tree between two reads, counting processes that appear later."""

    def __init__(self, root_pid: int, tree: bool = True) -> None:
        self.root_pid, self.tree = root_pid, tree
        self.start: dict[int, float] = {}
        self.procs: dict[int, psutil.Process] = {}

    def _scan(self) -> dict[int, float]:
        try:
            root = psutil.Process(self.root_pid)
            procs = [root] + (root.children(recursive=True) if self.tree else [])
        except psutil.Error:
            return {}
        times: dict[int, float] = {}
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                times[proc.pid] = t.user + t.system
                self.procs[proc.pid] = proc
        return times

    def begin(self) -> None:
        self.start = self._scan()

    def seconds(self) -> float:
        return sum(self.seconds_by_pid().values())

    def seconds_by_pid(self) -> dict[int, float]:
        now = self._scan()
        return {pid: v - self.start.get(pid, 0.0) for pid, v in now.items()}

    def memory(self) -> dict[str, Any]:
        """PSS and USS summed over the tree, MB, and each process's own (by_pid)."""
        pss = uss = rss = 0.0
        by_pid: dict[int, dict[str, float]] = {}
        for pid in list(self._scan()):
            with contextlib.suppress(psutil.Error):
                proc = self.procs[pid]
                mem = proc.memory_full_info()
                pss += getattr(mem, "pss", mem.rss)
                uss += mem.uss
                rss += mem.rss
                by_pid[pid] = {"pss_mb": getattr(mem, "pss", mem.rss) / 2**20, "uss_mb": mem.uss / 2**20}
        return {"pss_mb": pss / 2**20, "uss_mb": uss / 2**20, "rss_mb": rss / 2**20, "processes": len(by_pid), "by_pid": by_pid}


# --- the scenario and config of the latency profile ------------------------------------------------


def pump_symbols(pairs: int, rate: int, count: int) -> list[str]:
    """Pairs to pump: online, API-tradable, long-listed USDT pairs of the same deterministic market.

    Built from sim.market with the emulator's seed, so the names are the emulator's own. Picked
    where a x20 pump can still raise the trade rate: the market caps a pair at MAX_TRADES_PER_S,
    and at high total rates the busiest pairs already sit at that cap.
    """
    from sim.market import MAX_TRADES_PER_S, Market

    market = Market(pairs, seed=1, start_ms=int(time.time() * 1000), rate=rate)
    day_ms = 86_400_000
    ok = [
        s.symbol
        for s in market.symbols[5:]
        if s.quote == "USDT" and s.status == "1" and s.api_tradable and s.listing_ms < market.start_ms - day_ms
    ]  # fmt: skip
    room = [s for s in ok if market.spec(s).activity * 10 <= MAX_TRADES_PER_S]  # type: ignore[union-attr]
    if len(room) < count:  # a saturated market: take the quietest pairs there are
        room = sorted(ok, key=lambda s: market.spec(s).activity)[:count]  # type: ignore[union-attr]
    step = max(1, len(room) // max(1, count))
    return room[::step][:count]


def write_scenario(path: Path, symbols: list[str], first_s: float, every_s: float) -> list[dict[str, Any]]:
    """One pump per symbol, starting every `every_s` exchange seconds from `first_s`."""
    pumps = [
        {"symbol": symbol, "start_s": round(first_s + i * every_s, 1), "duration_s": 240, "rise_pct": 15, "volume_mult": 20,
         "book_imbalance": 0.8}
        for i, symbol in enumerate(symbols)
    ]  # fmt: skip
    path.write_text(yaml.safe_dump({"pumps": pumps}))
    return pumps


def write_config(path: Path, alpha1: bool = False) -> None:
    """config.demo.yaml with the latency profile's changes (see the module docstring), or as shipped."""
    config = yaml.safe_load((REPO / "config.demo.yaml").read_text())
    pump = config["detectors"]["pump"]
    pump["cooldown"].update(period_s=3600, max_realerts=0)
    pump["profiles"]["alpha1"]["model_path"] = str(REPO / "model.json")
    if not alpha1:
        pump["profiles"]["alpha1"]["vc_max"] = 1.0
    path.write_text(yaml.safe_dump(config))


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


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _backlog(state: dict[str, Any]) -> int:
    return int(sum(int(c.get("queued", 0)) for c in state.get("connections", [])))


def _bounded(samples: list[float], slack: float) -> bool:
    """A series stays bounded when its last third does not sit above its first third by more than slack."""
    if len(samples) < 6:
        return True
    third = len(samples) // 3
    return statistics.mean(samples[-third:]) <= statistics.mean(samples[:third]) + slack


@contextlib.contextmanager
def emulator(
    pairs: int, rate: int, scenario: Path | None, feed: str = "emulator"
) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    if feed == "blast":  # perf/blast_feed.py: the emulator's REST and control side, synthetic frames
        cmd = [sys.executable, "-m", "perf.blast_feed", "--pairs", str(pairs), "--rate", str(rate), "--seed", "1"]
    else:
        cmd = [sys.executable, "-m", "sim", "serve", "--pairs", str(pairs), "--rate", str(rate), "--seed", "1"]
    if scenario is not None and feed != "blast":
        cmd += ["--scenario", str(scenario)]
    proc, ready = _start_json(cmd)
    try:
        yield proc, ready
    finally:
        _stop(proc)


def measure_service(
    pairs: int, rate: int, warmup: float, seconds: float, workdir: Path, alpha1: bool = False, feed: str = "emulator"
) -> RunResult:
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
    tg, tg_ready = _start_json([sys.executable, "-m", "sim", "telegram", "--token", TG_TOKEN])
    service: subprocess.Popen[str] | None = None
    try:
        with emulator(pairs, rate, scenario, feed) as (emu, ready):
            metrics_port = _free_port()
            env = dict(os.environ, MEXC_WS_URL=ready["ws"], MEXC_REST_URL=ready["rest"], SCANNER_DATA_DIR=str(data_dir),
                       METRICS_PORT=str(metrics_port), TG_TOKEN=TG_TOKEN, TG_BASE_URL=tg_ready["base_url"],
                       ALLOWED_IDS=str(CHAT_ID), LOG_LEVEL="INFO")  # fmt: skip
            log = open(workdir / "service.log", "w")  # noqa: SIM115 - closed below
            service = subprocess.Popen([sys.executable, "-m", "supervisor", "--config", str(config)], cwd=REPO, env=env,
                                       stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
            started = time.monotonic()
            while time.monotonic() - started < warmup:
                if service.poll() is not None:
                    log.flush()
                    tail = (workdir / "service.log").read_text()[-3000:]
                    raise RuntimeError(f"service exited during warm-up (code {service.returncode}):\n{tail}")
                time.sleep(1.0)
            meter, emu_meter, tg_meter = (
                CpuMeter(service.pid),
                CpuMeter(emu.pid, tree=False),
                CpuMeter(tg.pid, tree=False),
            )
            m0, s0 = _metrics(metrics_port), _get_json(ready["rest"] + "/_sim/state")
            meter.begin(), emu_meter.begin(), tg_meter.begin()
            t0 = time.monotonic()
            samples: list[Sample] = []
            memory: list[dict[str, float]] = []
            max_streams = 0
            while time.monotonic() - t0 < seconds:
                time.sleep(min(SAMPLE_EVERY_S, max(0.1, seconds - (time.monotonic() - t0))))
                try:
                    m, state = _metrics(metrics_port), _get_json(ready["rest"] + "/_sim/state", timeout=30)
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
            m1, s1 = _metrics(metrics_port), _get_json(ready["rest"] + "/_sim/state")
            memory.append(meter.memory())
            try:
                table = _get_json(f"http://127.0.0.1:{metrics_port}/healthz").get("processes", [])
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
                "bounded": _bounded(lags, slack=1000.0) and _bounded(backlogs, slack=max(50.0, rate / 10))
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
        rc = _stop(service, 30)
        _stop(tg)
        result.service["exit_code"] = rc
    return result


def card_latencies(control: str, data_dir: Path) -> dict[str, Any]:
    """Frame received (stored recv_ns) → card at the fake Bot API (its at_ns), per card."""
    calls = _get_json(control + "/calls")
    arrivals: dict[str, int] = {}
    for call in calls:
        if call["method"] != "sendMessage" or not call.get("ok", True):
            continue
        markup = call["params"].get("reply_markup")
        if isinstance(markup, str):
            markup = json.loads(markup)
        for row in (markup or {}).get("inline_keyboard", []):
            for button in row:
                signal_id = str(button.get("callback_data", "")).split(":")[-1]
                arrivals.setdefault(signal_id, int(call["at_ns"]))
    db = sqlite3.connect(data_dir / "scanner.sqlite3")
    try:
        stored = {sid: (recv, created) for sid, recv, created in db.execute("SELECT signal_id, recv_ns, created_ns FROM signals")}
    finally:
        db.close()
    cards = [(sid, at) for sid, at in arrivals.items() if sid in stored]
    values = [(at - stored[sid][0]) / 1e6 for sid, at in cards]
    # Where a slow card spent its time: frame → signal decided (shard + ring + scorer) and
    # signal → card at the Bot API (pipe, bot, HTTP), each card's own split.
    to_signal = [(stored[sid][1] - stored[sid][0]) / 1e6 for sid, _ in cards]
    to_card = [(at - stored[sid][1]) / 1e6 for sid, at in cards]
    return {
        "signals_stored": len(stored),
        "cards": len(values),
        "p50": _percentile(values, 50),
        "p95": _percentile(values, 95),
        "p99": _percentile(values, 99),
        "max": max(values, default=None),
        "frame_to_signal_ms": {"p50": _percentile(to_signal, 50), "p95": _percentile(to_signal, 95), "max": max(to_signal, default=None)},
        "signal_to_card_ms": {"p50": _percentile(to_card, 50), "p95": _percentile(to_card, 95), "max": max(to_card, default=None)},
    }


def pump_check(data_dir: Path, pumped: list[str], owed: list[str]) -> dict[str, Any]:
    """Each owed pump signalled exactly once (no re-alerts in this profile), nothing else signalled."""
    db = sqlite3.connect(data_dir / "scanner.sqlite3")
    try:
        counts = dict(db.execute("SELECT symbol, COUNT(*) FROM signals GROUP BY symbol").fetchall())
    finally:
        db.close()
    return {
        "pumps": len(pumped),
        "owed": len(owed),
        "signalled_once": sum(1 for s in owed if counts.get(s) == 1),
        "missed": [s for s in owed if s not in counts],
        "duplicated": {s: n for s, n in counts.items() if n > 1},
        "not_pumped": {s: n for s, n in counts.items() if s not in pumped},
        "pass": all(counts.get(s) == 1 for s in owed)
        and all(s in pumped for s in counts)
        and all(n == 1 for n in counts.values()),
    }


def measure_baseline(pairs: int, rate: int, warmup: float, seconds: float, feed: str = "emulator") -> dict[str, Any]:
    """The naive consumer against the same feed, no pumps needed (no cards).

    Frames are counted by the consumer itself (SIGUSR1 at the window's edges), not as sent: a
    consumer that falls behind leaves frames in the kernel's socket buffers, which the feed never
    sees; its delay (now - sendTime of the frames it parses) then grows.
    """
    with emulator(pairs, rate, None, feed) as (emu, ready):
        proc, hello = _start_json([sys.executable, "-m", "perf.naive_consumer", "--ws", ready["ws"], "--rest", ready["rest"],
                                   "--pairs", str(pairs)])  # fmt: skip

        def counters() -> dict[str, Any]:
            proc.send_signal(signal.SIGUSR1)
            return json.loads(proc.stdout.readline())  # type: ignore[union-attr]

        try:
            time.sleep(min(warmup, 20.0))
            meter = CpuMeter(proc.pid, tree=False)
            s0, c0 = _get_json(ready["rest"] + "/_sim/state"), counters()
            meter.begin()
            t0 = time.monotonic()
            delays = []
            while time.monotonic() - t0 < seconds:
                time.sleep(2.0)
                delays.append(float(counters()["delay_ms_max"]))
            dt = time.monotonic() - t0
            cpu = meter.seconds()
            s1, c1 = _get_json(ready["rest"] + "/_sim/state"), counters()
            memory = meter.memory()
        finally:
            _stop(proc)
    frames = c1["frames"] - c0["frames"]
    sent = s1["frames_sent"] - s0["frames_sent"]
    return {
        "links": hello.get("links"),
        "cpu_pct_of_core": 100 * cpu / dt,
        "cpu_us_per_frame": 1e6 * cpu / max(frames, 1),
        "cpu_s_per_1000_frames": 1000 * cpu / max(frames, 1),
        "frames_per_s": frames / dt,
        "frames_sent_per_s": sent / dt,
        "pss_mb": memory["pss_mb"],
        "delay_ms_max": max(delays, default=0.0),
        "delay_ms_last": delays[-1] if delays else 0.0,
        # Keeping up: it parsed (nearly) all that was sent, and its delay did not grow.
        "bounded": frames >= 0.98 * sent and _bounded(delays, slack=250.0),
    }


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
    tmp = tempfile.mkdtemp(prefix="bench-load-")
    try:
        result = measure_service(pairs, rate, warmup, seconds, Path(tmp), alpha1, feed)
    finally:
        if keep:
            print(f"# kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if baseline:
        result.baseline = measure_baseline(pairs, rate, warmup, seconds, feed)
    return result


# --- output ----------------------------------------------------------------------------------------


def _fmt(value: Any, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def print_table(results: list[RunResult]) -> None:
    print(f"\n{'pairs':>6}{'rate':>7}{'recv f/s':>9}{'CPU %core':>10}{'%machine':>9}{'us/frame':>9}{'PSS MB':>8}{'USS MB':>8}"
          f"{'cards':>6}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'max ms':>8}{'dropped':>8}{'lag ok':>7}{'A-7':>5}")  # fmt: skip
    for r in results:
        s, lat = r.service, r.latency_ms
        print(f"{r.pairs:>6}{r.rate_target:>7}{s['frames_per_s']:>9.0f}{s['cpu_pct_of_core']:>10.1f}{s['cpu_pct_of_machine']:>9.1f}"
              f"{s['cpu_us_per_frame']:>9.1f}{s['pss_mb']:>8.0f}{s['uss_mb']:>8.0f}{lat.get('cards', 0):>6}{_fmt(lat.get('p50')):>8}"
              f"{_fmt(lat.get('p95')):>8}{_fmt(lat.get('p99')):>8}{_fmt(lat.get('max')):>8}{s['rows_dropped']:>8.0f}"
              f"{'yes' if r.lag['bounded'] else 'NO':>7}{'ok' if r.a7['pass'] else 'FAIL':>5}")  # fmt: skip
        if r.baseline:
            b = r.baseline
            ratio = b["cpu_us_per_frame"] / max(s["cpu_us_per_frame"], 1e-9)
            print(f"{'':>6}{'naive':>7}{b['frames_per_s']:>9.0f}{b['cpu_pct_of_core']:>10.1f}{b['cpu_pct_of_core'] / CORES:>9.1f}"
                  f"{b['cpu_us_per_frame']:>9.1f}{b['pss_mb']:>8.0f}{'':>8}{'':>6}  baseline: {ratio:.1f}x more CPU per frame")  # fmt: skip
        print(f"{'':>13}emulator {r.emulator['cpu_pct_of_core']:.0f}% of a core (excluded), {r.emulator['links']} links, "
              f"{r.emulator['streams']} streams; pumps owed {r.pumps.get('owed')}, signalled once "
              f"{r.pumps.get('signalled_once')}, other signals {sum(r.pumps.get('not_pumped', {}).values())}")  # fmt: skip


def plot(results: list[RunResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_cpu, ax_us, ax_lat) = plt.subplots(1, 3, figsize=(15, 4.2))
    for pairs in sorted({r.pairs for r in results}):
        rows = sorted((r for r in results if r.pairs == pairs), key=lambda r: r.service["frames_per_s"])
        xs = [r.service["frames_per_s"] for r in rows]
        ax_cpu.plot(xs, [r.service["cpu_pct_of_machine"] for r in rows], marker="o", label=f"{pairs} pairs")
        ax_us.plot(xs, [r.service["cpu_us_per_frame"] for r in rows], marker="o", label=f"{pairs} pairs")
        ax_lat.plot(xs, [r.latency_ms.get("p99") or float("nan") for r in rows], marker="o", label=f"{pairs} pairs")
    ax_cpu.set(xlabel="frames/s received", ylabel="service CPU, % of the 2-core machine", title="CPU vs rate")
    ax_us.set(xlabel="frames/s received", ylabel="service CPU µs per frame", title="Cost per frame vs rate")
    ax_lat.set(xlabel="frames/s received", ylabel="frame → card p99, ms", title="Latency vs rate (emulator feed: cards)")
    if not any(r.latency_ms.get("p99") for r in results):  # the blast feed has no pumps, so no cards
        ax_lat.text(0.5, 0.5, "no cards in these runs (blast feed):\nlatency comes from --feed emulator runs",
                    ha="center", va="center", transform=ax_lat.transAxes)  # fmt: skip
    for ax in (ax_cpu, ax_us, ax_lat):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


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
        for pairs in (int(p) for p in args.sweep_pairs.split(",")):
            for rate in (int(r) for r in args.sweep_rates.split(",")):
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
    payload = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": {"cpus": CORES, "python": sys.version.split()[0], "cpu_model": _cpu_model()},
        "feed": args.feed,
        "profile": (
            "Alpha-1 as shipped (config.demo.yaml), cooldown 3600 s"
            if args.alpha1
            else "latency profile: config.demo.yaml with vc_max 1.0, cooldown 3600 s"
        )
        + ", a scripted pump starting every few seconds",
        "runs": [r.__dict__ for r in results],
        "failed_runs": failed,
    }
    if args.sweep:
        payload["sustained"] = {
            str(p): max((r.service["frames_per_s"] for r in results if r.pairs == p and r.lag["bounded"] and not r.service["rows_dropped"]),
                        default=None)
            for p in sorted({r.pairs for r in results})
        }  # fmt: skip
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
