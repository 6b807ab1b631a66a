"""perf/soak_long.py's own logic (the long run itself is a script, its results in perf/results)."""

from __future__ import annotations

import argparse
from pathlib import Path

from perf.soak_long import Schedule, per_process_slopes


def test_the_chaos_clock_gives_each_fault_its_own_rate_and_one_telegram_outage() -> None:
    args = argparse.Namespace(drop_every_s=300.0, rest_burst_every_s=3600.0, kill_every_s=3600.0, tg_outage_at_min=30.0, tg_outage_s=120.0)
    schedule = Schedule(args, chaos_from=1000.0)
    fired: dict[str, list[float]] = {}
    for now in range(1000, 1000 + 2 * 3600, 2):
        for kind in schedule.due(float(now)):
            fired.setdefault(kind, []).append(float(now))
    assert len(fired["drop"]) == 24 and len(fired["rest_429"]) == 2 and len(fired["kill_shard"]) == 2
    assert fired["tg_outage_on"] == [1000.0 + 1800] and fired["tg_outage_off"] == [1000.0 + 1920]
    # A kill, a burst and a drop never land in the same minute.
    assert all(abs(k - b) > 60 for k in fired["kill_shard"] for b in fired["rest_429"])


def test_memory_slopes_follow_each_process_life_not_its_name() -> None:
    samples = []
    for i in range(120):  # shard1 killed at 60 min: a fresh process, lower PSS, is not a memory drop of one process
        t = i * 60.0
        samples.append({"t_s": t, "pid": {"supervisor": 1, "shard1": 2 if i < 60 else 3},
                        "pss_mb": {"supervisor": 50.0 + t / 3600, "shard1": (40.0 if i < 60 else 30.0) + 2 * t / 3600}})  # fmt: skip
    slopes = per_process_slopes(samples, settle_s=600.0)
    assert abs(slopes["supervisor"]["slope_mb_per_hour"] - 1.0) < 1e-6 and slopes["supervisor"]["lives_after_settle"] == 1
    assert abs(slopes["shard1"]["slope_mb_per_hour"] - 2.0) < 1e-6 and slopes["shard1"]["lives_after_settle"] == 2


def test_the_memory_profile_names_the_line_that_grew(tmp_path: Path) -> None:
    import json
    import tracemalloc

    from common.memprofile import MemProfile

    tracemalloc.start(1)
    try:
        profile = MemProfile("shard0", tmp_path, trace=True)
        profile.sample()
        hoard = [bytes(1000) + bytes([i % 256]) for i in range(3000)]  # ~3 MB held on one line
        row = profile.sample()
    finally:
        tracemalloc.stop()
    assert row["smaps_kb"]["Pss"] > 0 and row["malloc"]["uordblks"] > 0 and row["traced"]["current"] >= 3_000_000
    top = row["top_growth"][0]
    assert top["where"].endswith(f"test_soak_long.py:{_line_of('hoard = [')}") and top["size_diff"] >= 3_000_000
    assert len(hoard) == 3000
    lines = [json.loads(x) for x in (tmp_path / "shard0.jsonl").read_text().splitlines()]
    assert [x["proc"] for x in lines] == ["shard0", "shard0"]


def _line_of(text: str) -> int:
    return next(i for i, line in enumerate(Path(__file__).read_text().splitlines(), 1) if text in line and "_line_of" not in line)


def test_anonymous_memory_is_split_by_the_allocator_that_holds_it() -> None:
    import mmap

    from common.memprofile import ARENA_ALIGN, _region, anon_regions

    assert _region(0x1000, 4000, "[heap]") == "malloc_main_heap"
    assert _region(7 * ARENA_ALIGN, 132, "") == "malloc_thread_arenas"
    assert _region(7 * ARENA_ALIGN + 4096, 8192, "") == "thread_stacks"
    assert _region(7 * ARENA_ALIGN + 4096, 1024, "") == "other_anon"
    assert _region(0x1000, 8, "/usr/lib/libc.so.6") == "file_private" and _region(0x1000, 8, "[vvar]") is None
    before = anon_regions()
    block = mmap.mmap(-1, 24 * 2**20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # what pymalloc and malloc do for big blocks: an anonymous mapping
    block.write(b"x" * len(block))
    after = anon_regions()
    assert after["other_anon"] - before.get("other_anon", 0) >= 23 * 1024
    block.close()


def test_the_service_slope_is_split_into_its_own_memory_and_the_file_pages_outsiders_share() -> None:
    from perf.soak_memory import totals

    samples = []
    for minute in range(0, 181, 5):
        outsider = 60 <= minute < 170  # a test run imports the same libraries: the service's share of them falls
        file_mb = 10.0 - (4.0 if outsider else 0.0)
        anon_mb = 100.0 + 0.5 * minute / 60  # the service itself grows 0.5 MB/h
        samples.append({"t_s": minute * 60.0, "pss_mb_total": anon_mb + file_mb,
                        "smaps_kb": {"supervisor": {"Pss_Anon": anon_mb * 1024}}})  # fmt: skip
    t = totals(samples, settle_s=3600.0)
    assert abs(t["pss_anon_slope_mb_per_hour"] - 0.5) < 0.01
    assert t["pss_slope_mb_per_hour"] > 1.0  # PSS alone reads the outsider's end as growth
    assert t["pss_file_and_shmem_mb_range"] == [6.0, 10.0]


def test_a_first_sigterm_ends_the_long_run_with_its_verdict_and_a_second_aborts() -> None:
    import pytest

    from perf import soak_long

    soak_long.STOP_REQUESTED.clear()
    try:
        soak_long._interrupt(15, None)  # the loop ends at its next tick and the verdict is written
        assert soak_long.STOP_REQUESTED.is_set()
        with pytest.raises(KeyboardInterrupt):
            soak_long._interrupt(15, None)
    finally:
        soak_long.STOP_REQUESTED.clear()
