"""perf/bench_load.py's latency profile: the pumps it scripts, the config it runs, what it is owed.

Cards need signals, and Alpha-1's VC < 0.5 needs minutes of a pump; so the bench runs the shipped
config with VC off (vc_max 1.0), a long cooldown and a scripted pump starting every few seconds,
and then checks from the outside (SQLite, the fake Bot API's calls) that each pump old enough was
signalled exactly once and how long each card took. Kept apart from the measuring loop so the
profile can be read, and changed, on its own.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import yaml

from perf.harness import REPO, percentile, telegram_cards

# When a scripted x20 pump fires after its start: about a minute with VC off, about 2.5 minutes with Alpha-1's VC < 0.5.
FIRES_AFTER_S = 60.0
FIRES_AFTER_S_ALPHA1 = 170.0


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


def card_latencies(control: str, data_dir: Path) -> dict[str, Any]:
    """Frame received (stored recv_ns) → card at the fake Bot API (its at_ns), per card."""
    arrivals: dict[str, int] = {}
    for card in telegram_cards(control):
        arrivals.setdefault(card["signal_id"], card["at_ns"])
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
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values, default=None),
        "frame_to_signal_ms": {"p50": percentile(to_signal, 50), "p95": percentile(to_signal, 95), "max": max(to_signal, default=None)},
        "signal_to_card_ms": {"p50": percentile(to_card, 50), "p95": percentile(to_card, 95), "max": max(to_card, default=None)},
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
