"""What the whole-service benchmarks share: feeds, the service, its /metrics, CPU and memory.

perf/bench_load.py (CPU and latency under load) and perf/soak.py (hours under faults) drive the
same pieces the same way: the MEXC emulator or the blast feed and the fake Telegram Bot API as
subprocesses that announce themselves with one JSON line, `python -m supervisor` pointed at them
through its environment, the service's Prometheus text read back as numbers, and psutil for what
the processes cost. Kept in one place so both measure alike and a fix reaches both.

Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import psutil

REPO = Path(__file__).resolve().parent.parent
CORES = psutil.cpu_count() or 1

_METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


# --- processes -------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now: the service's /metrics port is chosen by the caller."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_json(
    cmd: list[str], env: dict[str, str] | None = None, timeout: float = 120.0
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start a subprocess that prints one JSON ready line; return it and the parsed line.

    The emulator, the blast feed, the fake Bot API and the naive consumer all announce their
    addresses this way once listening, so nothing has to poll a port or guess a delay.
    """
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


def stop(proc: subprocess.Popen[Any] | None, timeout: float = 20.0) -> int | None:
    """SIGTERM, then SIGKILL after `timeout`; the exit code (None when there was no process).

    SIGTERM first because the service's clean shutdown is itself checked (exit code 0).
    """
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)


def get_json(url: str, timeout: float = 10.0) -> Any:
    """GET a JSON document (the emulator's /_sim/state, the fake Bot API's /calls, /healthz)."""
    return json.loads(urllib.request.urlopen(url, timeout=timeout).read())


def post_json(url: str, body: dict[str, Any], timeout: float = 10.0) -> bytes:
    """POST a JSON body, return the raw answer: the emulator's and the fake Bot API's control side.

    Raw bytes: a caller that only needs the request to land (a fault) must not fail on the body.
    """
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    return bytes(urllib.request.urlopen(req, timeout=timeout).read())


def scrape_metrics(port: int) -> dict[str, float]:
    """The service's /metrics, summed over label sets (one figure per metric name).

    Each scrape costs the supervisor CPU, so callers read it every few seconds at most.
    """
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _METRIC_LINE.match(line)
        if match:
            with contextlib.suppress(ValueError):
                out[match.group(1)] = out.get(match.group(1), 0.0) + float(match.group(3))
    return out


def healthz(port: int) -> dict[str, Any]:
    """The service's /healthz document, also when it answers 503 (the body still lists processes); {} when unreachable."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            return dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        return dict(json.loads(exc.read()))
    except (OSError, ValueError):
        return {}


# --- the feed, the fake Bot API and the service ----------------------------------------------------


def feed_command(pairs: int, rate: int, feed: str = "emulator", scenario: Path | None = None,
                 speed: float | None = None, futures_contracts: int | None = None) -> list[str]:  # fmt: skip
    """The command line of a feed on seed 1, so every run and the naive baseline see the same market.

    feed "emulator": sim's market with scripted pumps (and the contract API, `futures_contracts`
    perpetuals; None = the emulator's default); "blast": perf/blast_feed.py's synthetic frames at
    rates the emulator cannot make on 2 cores (it takes no scenario and has no contract API).
    """
    if feed == "blast":
        cmd = [sys.executable, "-m", "perf.blast_feed", "--pairs", str(pairs), "--rate", str(rate), "--seed", "1"]
    else:
        cmd = [sys.executable, "-m", "sim", "serve", "--pairs", str(pairs), "--rate", str(rate), "--seed", "1"]
    if speed is not None:
        cmd += ["--speed", str(speed)]
    if scenario is not None and feed != "blast":
        cmd += ["--scenario", str(scenario)]
    if futures_contracts is not None and feed != "blast":
        cmd += ["--futures-contracts", str(futures_contracts)]
    return cmd


@contextlib.contextmanager
def emulator(
    pairs: int, rate: int, scenario: Path | None, feed: str = "emulator", futures_contracts: int | None = None
) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """A running feed (see feed_command) and its ready line (ws, rest[, futures_ws, futures_rest]); stopped on exit."""
    proc, ready = start_json(feed_command(pairs, rate, feed, scenario, futures_contracts=futures_contracts))
    try:
        yield proc, ready
    finally:
        stop(proc)


def start_fake_telegram(token: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """sim's fake Bot API for `token`; its ready line has base_url (for the bot) and control."""
    return start_json([sys.executable, "-m", "sim", "telegram", "--token", token])


def service_env(feed: dict[str, Any], tg: dict[str, Any], data_dir: Path, metrics_port: int, token: str,
                allowed_id: int) -> dict[str, str]:  # fmt: skip
    """The environment that points `python -m supervisor` at the feed and the fake Bot API.

    The service is configured exactly as a user deploys it (environment plus a YAML file), so the
    benchmarks measure the shipped entry point and not a test double. The futures feed (on by
    default) goes to the feed's contract API, or to a closed loopback port when the feed has none:
    a benchmark never reaches the real exchange.
    """
    return dict(os.environ, MEXC_WS_URL=feed["ws"], MEXC_REST_URL=feed["rest"], SCANNER_DATA_DIR=str(data_dir),
                METRICS_PORT=str(metrics_port), TG_TOKEN=token, TG_BASE_URL=tg["base_url"], ALLOWED_IDS=str(allowed_id),
                MEXC_FUTURES_WS_URL=feed.get("futures_ws", "ws://127.0.0.1:9/edge"),
                MEXC_FUTURES_REST_URL=feed.get("futures_rest", "http://127.0.0.1:9"), LOG_LEVEL="INFO")  # fmt: skip


def start_service(config: Path, env: dict[str, str], log: IO[Any]) -> subprocess.Popen[bytes]:
    """`python -m supervisor --config CONFIG` with its stdout and stderr in `log`."""
    return subprocess.Popen([sys.executable, "-m", "supervisor", "--config", str(config)], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip


def telegram_cards(control: str) -> list[dict[str, Any]]:
    """Every card the fake Bot API delivered, in arrival order: signal_id, message_id, at_ns.

    A card is a successful sendMessage, or sendPhoto (a card with its chart), whose inline keyboard
    carries `action:signal_id` buttons.
    """
    out = []
    for call in get_json(control + "/calls"):
        if call["method"] not in ("sendMessage", "sendPhoto") or not call.get("ok", True):
            continue
        markup = call["params"].get("reply_markup") or {}
        if isinstance(markup, str):
            markup = json.loads(markup)
        ids = {str(b.get("callback_data", "")).split(":", 1)[-1] for row in markup.get("inline_keyboard", []) for b in row}
        for signal_id in ids:
            out.append({"signal_id": signal_id, "message_id": (call.get("result") or {}).get("message_id", 0),
                        "at_ns": int(call["at_ns"])})  # fmt: skip
    return out


# --- the market ------------------------------------------------------------------------------------


def pump_symbols(pairs: int, rate: int, count: int) -> list[str]:
    """Pairs to pump: online, API-tradable, long-listed USDT pairs of the same deterministic market.

    Built from sim.market with the emulator's seed, so the names are the emulator's own. Picked
    where a x20 pump can still raise the trade rate: the market caps a pair at MAX_TRADES_PER_S,
    and at high total rates the busiest pairs already sit at that cap.
    """
    from sim.market import Market
    from sim.universe import MAX_TRADES_PER_S

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


# --- CPU and memory --------------------------------------------------------------------------------


class CpuMeter:
    """CPU seconds of a process tree between two reads, counting processes that appear later.

    The service forks its shards after start and re-forks a killed one, so the tree is rescanned
    on every read instead of being fixed at begin().
    """

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
        """Mark the start of the measured window."""
        self.start = self._scan()

    def seconds(self) -> float:
        """CPU seconds of the whole tree since begin()."""
        return sum(self.seconds_by_pid().values())

    def seconds_by_pid(self) -> dict[int, float]:
        """CPU seconds since begin() per live process (a process born later counts from zero)."""
        now = self._scan()
        return {pid: v - self.start.get(pid, 0.0) for pid, v in now.items()}

    def memory(self) -> dict[str, Any]:
        """PSS and USS summed over the tree, MB, and each process's own (by_pid).

        PSS, not RSS: forked processes share pages, which RSS counts once per process.
        """
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


def pss_mb(pid: int) -> float:
    """One process's PSS in MB (RSS where the kernel reports no PSS); raises psutil.Error when it is gone."""
    info = psutil.Process(pid).memory_full_info()
    return float(getattr(info, "pss", info.rss)) / 2**20


def cpu_model() -> str:
    """The CPU's model name, recorded with every result: figures only compare on the same CPU."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


# --- series ----------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank q-th percentile, None for no values (a run without cards)."""
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def bounded(samples: list[float], slack: float) -> bool:
    """A series stays bounded when its last third does not sit above its first third by more than slack."""
    if len(samples) < 6:
        return True
    third = len(samples) // 3
    return statistics.mean(samples[-third:]) <= statistics.mean(samples[:third]) + slack
