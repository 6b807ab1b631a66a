"""The whole service against the emulator on loopback: scripted pumps signal once, nothing else does.

One emulator and one supervisor (two shards) run for the module; the tests read what a user sees:
stdout JSON signals, the SQLite store, /metrics, /healthz, and the emulator's own view of the
connections (A-7: at most 30 streams per link).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SPEED = 6


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health(port: int) -> int:
    """/healthz's status code, 0 when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as resp:
            return resp.status
    except OSError:
        return 0


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read()


class Service:
    def __init__(self, tmp: Path, telegram: dict[str, str] | None = None, scenario: Path = REPO / "sim/scenarios/pumps.yaml",
                 config: Path = REPO / "config.demo.yaml", pairs: int = 300, speed: float = SPEED) -> None:  # fmt: skip
        self.tmp = tmp
        self.emulator = subprocess.Popen(
            [sys.executable, "-m", "sim", "serve", "--pairs", str(pairs), "--speed", str(speed), "--seed", "11", "--scenario", str(scenario)],
            cwd=REPO, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        ready = json.loads(self.emulator.stdout.readline())  # type: ignore[union-attr]
        self.rest = ready["rest"]
        self.metrics_port = _free_port()
        env = {**os.environ, "MEXC_WS_URL": ready["ws"], "MEXC_REST_URL": ready["rest"], "SCANNER_DATA_DIR": str(tmp / "data"),
               "METRICS_PORT": str(self.metrics_port), "LOG_LEVEL": "INFO"}  # fmt: skip
        env.pop("TG_TOKEN", None)
        env.update(telegram or {})
        self.stdout = open(tmp / "signals.jsonl", "w")  # noqa: SIM115 - closed in stop()
        self.stderr = open(tmp / "service.log", "w")  # noqa: SIM115
        self.supervisor = subprocess.Popen(
            [sys.executable, "-m", "supervisor", "--config", str(config)], cwd=REPO, env=env, stdout=self.stdout, stderr=self.stderr
        )

    def signals(self) -> list[dict]:
        text = (self.tmp / "signals.jsonl").read_text()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def metrics(self) -> str:
        return _get(f"http://127.0.0.1:{self.metrics_port}/metrics").decode()

    def state(self) -> dict:
        return json.loads(_get(self.rest + "/_sim/state"))

    def stop(self) -> int:
        self.supervisor.send_signal(signal.SIGTERM)
        try:
            code = self.supervisor.wait(20)
        finally:
            self.supervisor.kill()
            self.emulator.send_signal(signal.SIGTERM)
            self.emulator.wait(10)
            self.stdout.close()
            self.stderr.close()
        return code


def _wait(predicate, timeout: float, step: float = 0.5):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = Service(tmp_path_factory.mktemp("pipeline"))
    try:
        yield svc
    finally:
        svc.stop()


def _market_symbols(service: Service) -> list[str]:
    info = json.loads(_get(service.rest + "/api/v3/exchangeInfo"))
    return [s["symbol"] for s in info["symbols"]]


def test_every_scripted_pump_signals_exactly_once_and_nothing_else(service: Service) -> None:
    symbols = _market_symbols(service)
    pumps = {symbols[11], symbols[5], symbols[8]}
    # The pumps run for 300 exchange seconds from t=10..30 s; at speed 6 that is under a minute.
    _wait(lambda: pumps <= {s["symbol"] for s in service.signals()}, timeout=90)
    time.sleep(5)
    signals = service.signals()
    by_symbol: dict[str, list[dict]] = {}
    for s in signals:
        by_symbol.setdefault(s["symbol"], []).append(s)
    print("signals:", {k: [x["escalation"] for x in v] for k, v in by_symbol.items()})
    assert pumps <= set(by_symbol), f"missing pumps: {pumps - set(by_symbol)}"
    for symbol in pumps:
        assert [s["escalation"] for s in by_symbol[symbol]][:1] == [0]
        assert len(by_symbol[symbol]) <= 2  # one signal plus at most one escalation
    spikes_and_quiet = {symbols[4], symbols[6], symbols[12]}
    assert not spikes_and_quiet & set(by_symbol)
    assert set(by_symbol) <= pumps, f"false signals: {set(by_symbol) - pumps}"
    latencies = sorted(s["latency_ms"] for s in signals)
    print("frame-to-signal latency ms:", latencies)
    assert latencies[-1] < 100
    db = sqlite3.connect(service.tmp / "data" / "scanner.sqlite3")
    stored = {row[0] for row in db.execute("SELECT signal_id FROM signals")}
    assert stored == {s["signal_id"] for s in signals}


def test_streams_per_link_never_exceed_thirty_and_metrics_are_served(service: Service) -> None:
    state = service.state()
    counts = [len(c["subscriptions"]) + len(c["dead_subscriptions"]) for c in state["connections"]]
    assert counts and max(counts) <= 30
    assert all(not c["dead_subscriptions"] for c in state["connections"])
    text = service.metrics()
    assert 'scanner_frames_total{shard="0"}' in text and "scanner_latency_pipeline_ms_bucket" in text
    assert json.loads(_get(f"http://127.0.0.1:{service.metrics_port}/healthz"))["ok"] is True


def test_killed_shard_is_restarted_and_its_pairs_covered_again(service: Service) -> None:
    import psutil

    def shard_pids() -> dict[str, int]:
        return {name: pid for name, pid in _health_processes(service)[1].items() if name.startswith("shard")}

    before_pids = shard_pids()
    assert len(before_pids) >= 2
    victim = psutil.Process(before_pids["shard0"])
    before = service.state()
    victim.kill()
    start = time.monotonic()

    def covered() -> bool:
        now = shard_pids()
        state = service.state()
        streams = sum(len(c["subscriptions"]) for c in state["connections"])
        return (now.get("shard0") not in (None, victim.pid) and len(now) == len(before_pids)
                and all(psutil.pid_exists(p) for p in now.values())
                and streams >= sum(len(c["subscriptions"]) for c in before["connections"]))  # fmt: skip

    assert _wait(covered, timeout=15, step=0.2)
    print(f"shard restarted and resubscribed in {time.monotonic() - start:.1f}s")
    assert time.monotonic() - start < 10


def _health_processes(service: Service) -> tuple[bool, dict[str, int]]:
    """(healthy, {process name: pid}) from /healthz; a 503's body lists the processes too."""
    try:
        body, ok = _get(f"http://127.0.0.1:{service.metrics_port}/healthz"), True
    except urllib.error.HTTPError as exc:
        body, ok = exc.read(), False
    except OSError:  # not listening yet
        return False, {}
    return ok, {p["name"]: p["pid"] for p in json.loads(body)["processes"]}


def test_a_killed_forkserver_restarts_every_child_once_and_leaves_no_twin(tmp_path: Path) -> None:
    """The children are forked from a forkserver (supervisor/forkserver.py); if it dies, none may run twice."""
    import psutil

    service = Service(tmp_path, pairs=60)  # its own: this test kills every child of the service
    try:
        _forkserver_killed_and_recovered(service, psutil)
    finally:
        assert service.stop() == 0


def _forkserver_killed_and_recovered(service: Service, psutil: Any) -> None:
    assert _wait(lambda: _health_processes(service)[0], timeout=60, step=0.2), "the service never got healthy"
    _, before = _health_processes(service)
    children = {n: p for n, p in before.items() if n not in ("supervisor", "forkserver", "resource_tracker")}
    assert "forkserver" in before and {"shard0", "shard1"} <= set(children)
    psutil.Process(before["forkserver"]).kill()

    def recovered() -> bool:
        ok, now = _health_processes(service)
        return (ok and now.get("forkserver") not in (None, before["forkserver"]) and set(children) <= set(now)
                and all(now[n] != p and psutil.pid_exists(now[n]) for n, p in children.items()))  # fmt: skip

    assert _wait(recovered, timeout=30, step=0.3), _health_processes(service)
    alive_old = [p for p in children.values() if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not alive_old, f"children of the dead forkserver still run beside their restarts: {alive_old}"


def test_dropped_links_reconnect_and_malformed_frames_are_counted(service: Service) -> None:
    req = urllib.request.Request(service.rest + "/_sim/fault", data=json.dumps({"kind": "malformed", "frames": 5}).encode(), method="POST")
    urllib.request.urlopen(req, timeout=5).read()
    req = urllib.request.Request(service.rest + "/_sim/fault", data=json.dumps({"kind": "drop", "count": 2}).encode(), method="POST")
    urllib.request.urlopen(req, timeout=5).read()
    start = time.monotonic()

    def recovered() -> bool:
        text = service.metrics()
        errors = sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("scanner_decode_errors_total{"))
        reconnects = sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("scanner_ws_reconnects_total{"))
        state = service.state()
        return errors >= 1 and reconnects >= 2 and all(c["subscriptions"] for c in state["connections"])

    assert _wait(recovered, timeout=10, step=0.2)
    assert time.monotonic() - start < 5 + 1


def test_sigterm_stops_everything_cleanly(tmp_path: Path) -> None:
    svc = Service(tmp_path)
    time.sleep(4)
    assert svc.stop() == 0
    log = (tmp_path / "service.log").read_text()
    assert "supervisor stopped" in log and "Traceback" not in log


def test_with_telegram_cards_arrive_and_a_killed_bot_loses_nothing(tmp_path: Path) -> None:
    import psutil

    fake = subprocess.Popen([sys.executable, "-m", "sim", "telegram", "--token", "777:SECRET-TOKEN-XYZ"], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        tg = json.loads(fake.stdout.readline())  # type: ignore[union-attr]
        svc = Service(tmp_path, {"TG_TOKEN": "777:SECRET-TOKEN-XYZ", "TG_BASE_URL": tg["base_url"], "ALLOWED_IDS": "4242"})

        def cards() -> list[dict]:
            calls = json.loads(_get(tg["control"] + "/calls"))
            cards = [c["params"] for c in calls if c["method"] in ("sendMessage", "sendPhoto") and c["ok"]]  # a card with a chart is a photo
            return [{**p, "text": p.get("text") or p.get("caption", "")} for p in cards if "🚀" in (p.get("text") or p.get("caption", ""))]

        try:
            first = _wait(lambda: cards(), timeout=90)
            assert first, "no card reached the fake Bot API"
            # The bot's pid from the supervisor's own log (children share the forkserver's command line,
            # and the shards and the bot may be forked within one clock tick); kill it while signals keep flowing.
            started = [json.loads(line) for line in (tmp_path / "service.log").read_text().splitlines() if '"bot started"' in line]
            victim = psutil.Process(int(started[0]["pid"]))
            assert victim.pid in {c.pid for c in psutil.Process(svc.supervisor.pid).children(recursive=True)}
            victim.kill()
            _wait(lambda: len(cards()) >= 3, timeout=90)
            time.sleep(3)
            texts = [c["text"] for c in cards()]
            symbols = [t.split("*")[1] for t in texts]
            assert len(symbols) == len(set(symbols)), f"a card was sent twice: {symbols}"
            db = sqlite3.connect(tmp_path / "data" / "scanner.sqlite3")
            unsent = db.execute("SELECT COUNT(*) FROM signals WHERE card_sent_ns IS NULL AND suppressed IS NULL").fetchone()[0]
            stored = db.execute("SELECT COUNT(*) FROM signals").fetchone()[0]
            assert unsent == 0 and stored == len(texts)
            assert svc.stop() == 0
            log = (tmp_path / "service.log").read_text()
            assert "SECRET-TOKEN-XYZ" not in log and "SECRET-TOKEN-XYZ" not in (tmp_path / "signals.jsonl").read_text()
            assert "bot died, restarting" in log
        finally:
            if svc.supervisor.poll() is None:
                svc.stop()
    finally:
        fake.terminate()
        fake.wait(10)
