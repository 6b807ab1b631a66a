"""The futures child end to end: the emulator's contract API → feed → detector → episodes in SQLite and the log file.

The service runs with the shipped demo config (the futures feed is on by default) pointed at the
emulator's futures endpoints on loopback, and futures cards switched on by the saved-overrides file
(as `/cfg save` would write it). One scripted anomaly (last 60 % above fair for 12 s of market time)
gives exactly one strategy-1 episode for its contract, stored once and logged once in the original's
line format, and nothing for the other contracts; each episode's Telegram card is sent at its start
and edited in place at its end (duration, peak) through the fake Bot API — one message per episode,
no Buy button. Which strategies each anomaly shape must trigger is tested on exchange time, without
sockets, in tests/test_futures_scripted.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.test_pipeline_emulator import REPO, _free_port, _wait

SPEED = 4
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \| (?P<sym>[A-Z0-9]+_USDT) \| START=\d\d:\d\d:\d\d \| END=\d\d:\d\d:\d\d \| "
                  r"DURATION=(?P<dur>\d+)s \| PEAK_RATIO=(?P<ratio>[0-9.]+) \| PEAK_LAST=[0-9.]+ \| PEAK_MARK=[0-9.]+$")  # fmt: skip


def _episodes(db: Path) -> list[tuple]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT strategy, symbol, peak_ratio, ended_by FROM episodes ORDER BY start_ms").fetchall()
    except sqlite3.OperationalError:  # the table is created by the futures child when it starts
        return []


def test_a_scripted_anomaly_becomes_one_stored_and_logged_episode_and_an_edited_card(tmp_path: Path) -> None:
    scenario = tmp_path / "futures.yaml"
    scenario.write_text("futures_anomalies:\n  - {rank: 3, start_s: 80, duration_s: 12, premium_pct: 60, spike: true, book: thick}\n")
    emulator = subprocess.Popen([sys.executable, "-m", "sim", "serve", "--pairs", "20", "--speed", str(SPEED), "--seed", "5",
                                 "--futures-contracts", "12", "--futures-scenario", str(scenario)],
                                cwd=REPO, stdout=subprocess.PIPE, text=True)  # fmt: skip
    ready = json.loads(emulator.stdout.readline())  # type: ignore[union-attr]
    token, user = "424242:futures-card-token", 777
    tg = subprocess.Popen([sys.executable, "-m", "sim", "telegram", "--token", token], cwd=REPO, stdout=subprocess.PIPE, text=True)
    tg_ready = json.loads(tg.stdout.readline())  # type: ignore[union-attr]
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.overrides.yaml").write_text("futures.cards_enabled: 'true'\n")
    env = {**os.environ, "MEXC_WS_URL": ready["ws"], "MEXC_REST_URL": ready["rest"], "MEXC_FUTURES_WS_URL": ready["futures_ws"],
           "MEXC_FUTURES_REST_URL": ready["futures_rest"], "SCANNER_DATA_DIR": str(data), "METRICS_PORT": str(_free_port()),
           "TG_TOKEN": token, "TG_BASE_URL": tg_ready["base_url"], "ALLOWED_IDS": str(user)}  # fmt: skip
    with open(tmp_path / "service.log", "w") as err:
        service = subprocess.Popen([sys.executable, "-m", "supervisor", "--config", str(REPO / "config.demo.yaml")], cwd=REPO, env=env,
                                   stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
        try:
            # 80 s of market time to the anomaly (the service is up well before), 12 s of it, then the first ticker below the ratio ends it.
            assert _wait(lambda: any(e[0] == 1 for e in _episodes(data / "scanner.sqlite3")), timeout=90), "no strategy-1 episode stored"
            time.sleep(3)
            assert _wait(lambda: _card_calls(tg_ready["control"], "editMessageText"), timeout=20), "the start card was never edited"
            calls = _card_calls(tg_ready["control"], None)
        finally:
            service.send_signal(signal.SIGTERM)
            code = service.wait(30)
            for proc in (emulator, tg):
                proc.send_signal(signal.SIGTERM)
                proc.wait(10)
    assert code == 0
    episodes = _episodes(data / "scanner.sqlite3")
    assert len({e[1] for e in episodes}) == 1, episodes  # the scripted contract only: ordinary noise never reaches a 1.2 ratio
    strategy1 = [e for e in episodes if e[0] == 1]
    assert len(strategy1) == 1 and strategy1[0][2] >= 1.5 and strategy1[0][3] == "condition", episodes
    lines = (data / "logs" / "strategy1_episodes.log").read_text().splitlines()
    assert len(lines) == 1 and (m := LINE.match(lines[0])) and m["sym"] == strategy1[0][1], lines
    assert float(m["ratio"]) >= 1.5 and 10 <= int(m["dur"]) <= 12 + 10 + 4  # exchange time: the hold, then the default 10 s decay
    sent = [c for c in calls if c["method"] == "sendMessage"]
    edits = [c for c in calls if c["method"] == "editMessageText"]
    # One start card per strategy that fired, each edited once in place with its end; never a button.
    assert sent and len(edits) == len(sent) == len(episodes), (sent, edits, episodes)
    card = next(c for c in sent if "strategy 1" in c["params"]["text"])
    assert card["params"]["text"].startswith(f"📈 {strategy1[0][1]}: last") and "reply_markup" not in card["params"]
    edit = next(c for c in edits if int(c["params"]["message_id"]) == card["result"]["message_id"])
    assert edit["params"]["text"].startswith(card["params"]["text"]) and "ended (condition)" in edit["params"]["text"]
    assert f"peak last/fair {strategy1[0][2]:.4g}" in edit["params"]["text"]
    log = [json.loads(x) for x in (tmp_path / "service.log").read_text().splitlines()]
    assert any(r["proc"] == "futures" and r["msg"] == "futures episode" for r in log)


def _card_calls(control: str, method: str | None) -> list[dict[str, Any]]:
    """The fake Bot API's successful futures-card calls (sendMessage / editMessageText with a 📈 card)."""
    with urllib.request.urlopen(control + "/calls", timeout=10) as r:
        calls = json.loads(r.read())
    return [c for c in calls if c.get("ok", True) and (method is None or c["method"] == method)
            and c["method"] in ("sendMessage", "editMessageText") and "📈" in str(c["params"].get("text", ""))]  # fmt: skip
