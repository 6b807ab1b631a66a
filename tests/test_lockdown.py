"""Lock-down: what a stranger on the network or a leaked log could get from a running scanner.

The metrics socket is checked as actually bound, and refusals are checked on the real entry point
(`python -m supervisor`), since that is what a misconfigured deployment runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from common.config import config_from_mapping
from supervisor.metrics import Metrics, serve_metrics
from tests.test_bot_telegram import OWNER
from tests.test_pipeline_emulator import Service, _get, _wait

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
    text = text.replace(
        "model_path: model.json", f"model_path: {REPO / 'model.json'}", 1
    )  # relative to the config file
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


def _post(url: str, body: dict) -> None:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        resp.read()


def _try(fn):  # noqa: ANN001, ANN202 - a probe that may hit a socket not yet listening
    try:
        return fn()
    except OSError:
        return None


def test_no_secret_anywhere_the_service_writes_even_through_crashes_and_failures(tmp_path: Path) -> None:
    """Live mode with distinctive secrets; garbage REST bodies, a SIGKILLed shard, a failing order,
    /status, /cfg and a /cfg attempt on a secret; then grep every byte the service produced."""
    import psutil

    fake = subprocess.Popen(
        [sys.executable, "-m", "sim", "telegram", "--token", SECRETS["TG_TOKEN"]],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        tg = json.loads(fake.stdout.readline())  # type: ignore[union-attr]
        env = {**SECRETS, "TG_BASE_URL": tg["base_url"], "ALLOWED_IDS": str(OWNER)}
        svc = Service(tmp_path, env, config=_live_config(tmp_path))
        inject = tg["control"] + "/inject"
        try:

            def calls() -> list[dict]:
                return json.loads(_get(tg["control"] + "/calls"))

            def cards() -> list[dict]:
                return [c for c in calls() if c["method"] in ("sendMessage", "sendPhoto") and c["ok"]  # a card with a chart is a photo
                        and "🚀" in (c["params"].get("text") or c["params"].get("caption", ""))]

            assert _wait(lambda: _try(svc.metrics), timeout=30)
            # every REST answer is an HTML page for a while, and every order fails with a 500
            _post(svc.rest + "/_sim/fault", {"kind": "garbage", "endpoint": "*", "duration_s": 6})
            _post(
                svc.rest + "/_sim/fault",
                {"kind": "status", "endpoint": "POST /api/v3/order", "status": 500, "duration_s": 600},
            )
            for text in ("/status", "/cfg", "/cfg mexc.api_key stolen", "/cfg telegram.token x", "/health"):
                _post(inject, {"kind": "message", "user_id": OWNER, "text": text})
            # shard 0's pid from the supervisor's log: forked children share one command line and
            # may be forked within one clock tick, so neither tells them apart
            log_lines = (tmp_path / "service.log").read_text().splitlines()
            shard0 = next(json.loads(x) for x in log_lines if '"shard started"' in x and '"shard": 0' in x)
            psutil.Process(int(shard0["pid"])).kill()
            card = _wait(lambda: cards(), timeout=90)
            assert card, "no card reached the fake Bot API"
            data = card[0]["params"]["reply_markup"]
            data = json.loads(data) if isinstance(data, str) else data
            buy = next(
                b["callback_data"]
                for row in data["inline_keyboard"]
                for b in row
                if b["callback_data"].startswith("buy:")
            )
            _post(inject, {"kind": "callback", "user_id": OWNER, "message_id": 1, "data": buy})
            answers = _wait(lambda: [c for c in calls() if c["method"] == "answerCallbackQuery"], timeout=60)
            # the emulator does not know our key: the order fails and the user is told so
            assert (
                answers
                and answers[0]["params"].get("show_alert") is True
                and "not bought" in answers[0]["params"]["text"]
            )
            replies = _wait(
                lambda: [c for c in calls() if c["method"] == "sendMessage" and "🚀" not in c["params"]["text"]],
                timeout=30,
            )
            assert len(replies) >= 5, replies
            assert _wait(lambda: "shard died, restarting" in (tmp_path / "service.log").read_text(), timeout=30)
            assert svc.supervisor.poll() is None, "the service stopped under garbage and faults"
            assert _wait(lambda: _try(lambda: _get(f"http://127.0.0.1:{svc.metrics_port}/healthz")), timeout=30)
            written = [svc.metrics().encode(), json.dumps(calls(), ensure_ascii=False).encode()]
        finally:
            code = svc.stop()
        assert code == 0
        written += [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != "live.yaml"]
        for secret in SECRETS.values():
            for blob in written:
                assert secret.encode() not in blob, f"{secret} leaked"
    finally:
        fake.terminate()
        fake.wait(10)
