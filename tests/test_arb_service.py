"""The triangle child in the running service, as a user starts it: only the documented environment
variables, the emulator's cross markets on loopback, one scripted dislocation -> one row in
arb_opportunities, its counters and duration histogram on /metrics."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from sim.market import Market
from sim.scenario import scenario_from_mapping
from tests.test_pipeline_emulator import REPO, _free_port, _wait

SPEED = 4


def _rows(db: Path) -> list[tuple]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT cycle, peak_bps, size_usdt, ended_by FROM arb_opportunities ORDER BY start_ms").fetchall()
    except sqlite3.OperationalError:  # the arb child creates the table when it starts
        return []


def test_a_dislocation_is_stored_by_the_running_service(tmp_path: Path) -> None:
    probe = Market(30, 5, 1_767_225_600_000, scenario_from_mapping({"cross": 6}))  # the same seed names the same pairs
    target = next(s.symbol for s in probe.symbols[30:] if s.quote == "BTC" and s.base != "ETH")
    scenario = tmp_path / "arb.yaml"
    scenario.write_text(f"cross: 6\ndislocations:\n  - {{symbol: {target}, start_s: 16, duration_s: 6, size_bps: 80, depth_usdt: 3000}}\n")
    emulator = subprocess.Popen([sys.executable, "-m", "sim", "serve", "--pairs", "30", "--speed", str(SPEED), "--seed", "5",
                                 "--scenario", str(scenario)], cwd=REPO, stdout=subprocess.PIPE, text=True)  # fmt: skip
    ready = json.loads(emulator.stdout.readline())  # type: ignore[union-attr]
    data = tmp_path / "data"
    port = _free_port()
    env = {**os.environ, "MEXC_WS_URL": ready["ws"], "MEXC_REST_URL": ready["rest"], "SCANNER_DATA_DIR": str(data), "METRICS_PORT": str(port)}
    env.pop("TG_TOKEN", None)
    with open(tmp_path / "service.log", "w") as err:
        service = subprocess.Popen([sys.executable, "-m", "supervisor", "--config", str(REPO / "config.demo.yaml")], cwd=REPO, env=env,
                                   stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
        try:
            assert _wait(lambda: _rows(data / "scanner.sqlite3"), timeout=60), "no opportunity stored"
            time.sleep(6)  # the child reports its figures every 5 s
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        finally:
            service.send_signal(signal.SIGTERM)
            code = service.wait(30)
            emulator.send_signal(signal.SIGTERM)
            emulator.wait(10)
    assert code == 0
    rows = _rows(data / "scanner.sqlite3")
    assert len(rows) == 1 and f"sell {target}" in rows[0][0] and rows[0][1] > 20.0 and rows[0][3] == "below", rows
    assert "scanner_arb_opportunities_total 1.0" in metrics and 'scanner_arb_opportunity_duration_seconds_count 1.0' in metrics
    log = [json.loads(x) for x in (tmp_path / "service.log").read_text().splitlines()]
    assert any(r["proc"] == "arb" and r["msg"] == "arb opportunity" for r in log)
