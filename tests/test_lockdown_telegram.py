"""Lock-down through Telegram: strangers get nothing, secrets appear in nothing the service writes or answers.

The whole service runs against the emulator and the fake Bot API with distinctive secrets in its
environment. A stranger and the owner both talk to the bot (/status, /cfg, a /cfg that tries to set
a secret, garbage button data), a shard is SIGKILLed (a crash report in the logs), the service is
stopped. Then every byte it produced is searched: stdout, stderr, every file in the data directory
(SQLite, alerts.log), /metrics, /healthz and every message the bot sent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from tests.test_pipeline_emulator import REPO, Service, _get, _health, _wait

TOKEN = "5150:LOCKDOWN-TELEGRAM-TOKEN-q7"
KEY = "mx0-LOCKDOWN-KEY-4411"
SECRET = "LOCKDOWN-SECRET-abcdef0123456789"
OWNER, STRANGER = 4242, 666


def _inject(control: str, body: dict) -> dict:
    req = urllib.request.Request(control + "/inject", data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=5).read())


def test_no_secret_in_anything_the_service_writes_or_answers_and_metrics_listen_on_loopback(tmp_path: Path) -> None:
    fake = subprocess.Popen([sys.executable, "-m", "sim", "telegram", "--token", TOKEN], cwd=REPO, stdout=subprocess.PIPE, text=True)
    tg = json.loads(fake.stdout.readline())  # type: ignore[union-attr]
    env = {"TG_TOKEN": TOKEN, "TG_BASE_URL": tg["base_url"], "ALLOWED_IDS": str(OWNER), "MEXC_KEY": KEY, "MEXC_SECRET": SECRET}
    svc = Service(tmp_path, env, pairs=60)
    try:
        assert _wait(lambda: _health(svc.metrics_port) == 200, timeout=60)
        listening = [c for c in psutil.Process(svc.supervisor.pid).net_connections(kind="tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr.port == svc.metrics_port]  # fmt: skip
        assert [c.laddr.ip for c in listening] == ["127.0.0.1"]
        for user in (STRANGER, OWNER):
            for text in ("/status", "/cfg", "/cfg telegram.token stolen", "/cfg mexc.api_secret x", "/health"):
                _inject(tg["control"], {"kind": "message", "user_id": user, "text": text})
            for data in ("buy:../../etc/passwd", "skip:' OR 1=1 --", "buy:" + "9" * 60, "\x00\xff"):
                _inject(tg["control"], {"kind": "callback", "user_id": user, "message_id": 1, "data": data})
        time.sleep(6)
        shard = next(p for p in _processes(svc.metrics_port) if p["name"].startswith("shard"))
        os.kill(int(shard["pid"]), signal.SIGKILL)  # a crash, reported in the logs
        assert _wait(lambda: _health(svc.metrics_port) == 200, timeout=30)
        answered = [c["params"] for c in json.loads(_get(tg["control"] + "/calls")) if c["method"] in ("sendMessage", "answerCallbackQuery")]
        served = _get(f"http://127.0.0.1:{svc.metrics_port}/metrics").decode() + _healthz(svc.metrics_port)
    finally:
        code = svc.stop()
        fake.send_signal(signal.SIGTERM)
        fake.wait(10)
    assert code == 0
    # The stranger got nothing at all; the owner got answers, including the refusal to set a secret.
    to_stranger = [p for p in answered if int(p.get("chat_id", 0) or 0) == STRANGER]
    assert to_stranger == []
    texts = " ".join(str(p.get("text", "")) for p in answered)
    assert "only from the environment" in texts and "Unknown button" in " ".join(json.dumps(p) for p in answered)
    everything = [json.dumps(answered), served]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            everything.append(path.read_bytes().decode("utf-8", "replace"))
    blob = "\n".join(everything)
    assert "shard" in blob and "exited" in blob or "restart" in blob  # the crash did leave a trace to search
    for secret in (TOKEN, KEY, SECRET, TOKEN.split(":")[1]):
        assert secret not in blob, f"secret {secret[:8]}... leaked"


def _healthz(port: int) -> str:
    """/healthz's JSON, also when it answers 503 (a shard restarting)."""
    try:
        return _get(f"http://127.0.0.1:{port}/healthz").decode()
    except urllib.error.HTTPError as exc:
        return exc.read().decode()


def _processes(port: int) -> list[dict]:
    return json.loads(_healthz(port))["processes"]
