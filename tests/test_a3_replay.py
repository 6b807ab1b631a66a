"""A-3: the committed one-day synthetic tick dump replays to exactly its recorded signals."""

from __future__ import annotations

import json

from perf.a3_dump import DUMP, EXPECTED, START_MS, replay_signals


def test_a3_day_replay_gives_the_recorded_signals() -> None:
    expected = json.loads(EXPECTED.read_text())
    assert DUMP.stat().st_size < 1_000_000
    got = replay_signals(DUMP)
    assert len(got) == expected["signals"]
    assert got == expected["signal_list"]
    # Every first alert lies inside one of the scripted pumps (the spike is a hard negative).
    pumps = [
        (START_MS + p["start_s"] * 1000, START_MS + (p["start_s"] + p["duration_s"]) * 1000)
        for p in expected["scenario"]["pumps"]
    ]
    firsts = [s for s in got if s["escalation"] == 0]
    assert len(firsts) == len(pumps)
    assert all(any(a <= s["row_time_ms"] <= b for a, b in pumps) for s in firsts)
