"""CI-sized soak: three wall minutes (half an hour of market time) of the whole service under chaos.

perf/soak.py drives the service against the emulator and the fake Bot API while faults land every
12 s (links dropped, a stall past the idle limit, a depth gap, malformed frames, REST 429 → 418 and
5xx, Telegram 429s and an outage, SIGKILL of a shard or the bot) and the whole service is stopped
with SIGTERM and started again half-way. The trader presses Buy on every card. What a user relies
on is then checked from the outside: SQLite, the cards the chat received, the orders placed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(480)
def test_ci_soak_under_chaos_keeps_every_invariant(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [sys.executable, "-m", "perf.soak", "--minutes", "3", "--speed", "10", "--pairs", "300", "--chaos", "--chaos-every", "12",
         "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=420,
    )  # fmt: skip
    print(proc.stdout[-4000:], proc.stderr[-4000:])
    result = json.loads(out.read_text())
    faults = {e.get("fault") for e in result["events"] if e["kind"] == "chaos"}
    # The schedule really ran: most fault kinds fired, a process was killed, the service restarted cleanly.
    assert {"drop", "stall", "depth_gap", "malformed", "rest_429_418", "rest_5xx", "telegram_429", "kill_child", "rest_garbage"} <= faults
    assert result["processes"]["injected_kills"] >= 1
    assert [e["exit_code"] for e in result["events"] if e["kind"] == "restart"] == [0]
    # Enough happened for the invariants to mean something.
    assert result["pumps"]["owed"] >= 3
    assert result["orders"]["buy_pressed"] >= 3
    for name, ok in result["invariants"].items():
        assert ok, f"{name}: {json.dumps({k: result[k] for k in ('pumps', 'delivery', 'orders', 'processes', 'memory')})}"
    assert proc.returncode == 0
