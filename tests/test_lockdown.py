"""Lock-down: what a stranger on the network or a leaked log could get from a running scanner.

The metrics socket is checked as actually bound, and refusals are checked on the real entry point
(`python -m supervisor`), since that is what a misconfigured deployment runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from common.config import config_from_mapping
from supervisor.metrics import Metrics, serve_metrics

REPO = Path(__file__).resolve().parent.parent
SECRETS = {
    "TG_TOKEN": "991:LOCKDOWN-TG-TOKEN-7f3a",
    "MEXC_KEY": "mx0LOCKDOWNKEY51c2",
    "MEXC_SECRET": "LOCKDOWN-SECRET-e9d4b0",
}


def _live_config(tmp: Path) -> Path:
    path = tmp / "live.yaml"
    text = (REPO / "config.demo.yaml").read_text()
    assert "  live: false" in text
    path.write_text(text.replace("  live: false", "  live: true", 1))
    return path


def test_live_trading_without_allowed_ids_refuses_to_start(tmp_path: Path) -> None:
    env = {**os.environ, **SECRETS, "SCANNER_DATA_DIR": str(tmp_path / "data"), "MEXC_REST_URL": "http://127.0.0.1:9",
           "MEXC_WS_URL": "ws://127.0.0.1:9/ws"}  # fmt: skip
    env.pop("ALLOWED_IDS", None)
    proc = subprocess.run([sys.executable, "-m", "supervisor", "--config", str(_live_config(tmp_path))], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode != 0
    assert "trading.live" in proc.stderr and "ALLOWED_IDS" in proc.stderr
    assert not (tmp_path / "data" / "scanner.sqlite3").exists()  # refused before anything was opened
    for secret in SECRETS.values():
        assert secret not in proc.stderr + proc.stdout


async def test_metrics_socket_is_bound_to_loopback_by_default() -> None:
    config = config_from_mapping({"metrics": {"port": 0}}, environ={})
    assert config.metrics.host == "127.0.0.1"
    runner = await serve_metrics(
        Metrics(lambda: [], lambda: {}), lambda: (True, {}), config.metrics.host, config.metrics.port
    )
    try:
        hosts = {addr[0] for addr in runner.addresses}  # getsockname() of the listening sockets
        assert hosts == {"127.0.0.1"}, hosts
    finally:
        await runner.cleanup()


async def test_metrics_host_is_configurable() -> None:
    runner = await serve_metrics(Metrics(lambda: [], lambda: {}), lambda: (True, {}), "0.0.0.0", 0)
    try:
        assert {addr[0] for addr in runner.addresses} == {"0.0.0.0"}
    finally:
        await runner.cleanup()
