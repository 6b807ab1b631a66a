"""Where did the memory go: a perf/soak_long.py run directory read back, process by process.

PSS alone says a process grew, not why. This reads what the run left (samples.jsonl: PSS and
smaps_rollup of each process from outside; memprofile/*.jsonl: glibc's heap figures, gc object
counts and tracemalloc's top lines from inside, common/memprofile.py) and splits each process's
growth after the warm-up (--settle-min) into:

- Python objects (tracemalloc's traced total, where traced), with the source lines that grew most;
- the C heap in use (mallinfo2 uordblks: Python's own allocations plus C extensions' malloc);
- heap free but kept by malloc (fordblks: fragmentation or arenas not yet trimmed, not a leak);
- everything else in PSS (mapped files, shared memory, stacks, shared pages as their sharers change);
- and, apart, the anonymous memory by the region that holds it (malloc's main heap, its per-thread
  arenas, thread stacks, Python's own arenas and malloc's mmapped blocks, libraries' COW pages),
  which tells a malloc high-water mark from growth of Python's arenas that malloc never sees.

Works on a run still in progress (reads what is there). Prints JSON and a table; --png a plot of
PSS, heap in use and traced memory per process over the run.

Usage: python -m perf.soak_memory RUN_DIR [--settle-min 45] [--json OUT] [--png OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from perf.soak_verdict import longest_life, process_lives, service_slope, slope_mb_per_hour

MB = 2**20


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every JSON line of a file that may still be written (a torn last line is skipped)."""
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return rows


def _longest_life(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of the pid that lived longest (a killed shard's successors are new processes)."""
    lives: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        if "pid" in row and "smaps_kb" in row:
            lives.setdefault(int(row["pid"]), []).append(row)
    return max(lives.values(), key=lambda r: r[-1]["t"] - r[0]["t"], default=[])


def profile_growth(rows: list[dict[str, Any]], settle_t: float) -> dict[str, Any]:
    """One process's inside view: first sample after settle_t vs the last, in MB, and the lines that grew."""
    life = [r for r in _longest_life(rows) if r["t"] >= settle_t]
    if len(life) < 2:
        return {"samples": len(life)}
    a, b = life[0], life[-1]
    hours = (b["t"] - a["t"]) / 3600

    def delta(get: Any) -> float | None:
        try:
            return round((get(b) - get(a)) / MB, 2)
        except (KeyError, TypeError):
            return None

    out: dict[str, Any] = {
        "pid": a["pid"], "from_t": a["t"], "hours": round(hours, 2), "samples": len(life),
        "pss_mb": [round(a["smaps_kb"]["Pss"] / 1024, 1), round(b["smaps_kb"]["Pss"] / 1024, 1)],
        "pss_growth_mb": delta(lambda r: r["smaps_kb"]["Pss"] * 1024),
        # PSS = its anonymous part + mapped files + shared memory (the rings), each split by its sharers.
        "pss_anon_growth_mb": delta(lambda r: r["smaps_kb"]["Pss_Anon"] * 1024),
        "pss_file_growth_mb": delta(lambda r: r["smaps_kb"]["Pss_File"] * 1024),
        "pss_shmem_growth_mb": delta(lambda r: r["smaps_kb"]["Pss_Shmem"] * 1024),
        "anonymous_growth_mb": delta(lambda r: r["smaps_kb"]["Anonymous"] * 1024),
        "heap_in_use_growth_mb": delta(lambda r: r["malloc"]["uordblks"] + r["malloc"]["hblkhd"]),
        "heap_free_kept_growth_mb": delta(lambda r: r["malloc"]["fordblks"]),
        "heap_in_use_mb": [round((r["malloc"]["uordblks"] + r["malloc"]["hblkhd"]) / MB, 1) for r in life],
        "gc_objects": [r.get("gc_objects") for r in life],
    }  # fmt: skip
    if "anon_kb" in a and "anon_kb" in b:
        out["anon_by_region_growth_mb"] = {k: round((b["anon_kb"].get(k, 0) - a["anon_kb"].get(k, 0)) / 1024, 2)
                                           for k in sorted(set(a["anon_kb"]) | set(b["anon_kb"]))}  # fmt: skip
        out["pymalloc_blocks_growth"] = b.get("pymalloc_blocks", 0) - a.get("pymalloc_blocks", 0)
    if "traced" in a and "traced" in b:
        out["traced_growth_mb"] = delta(lambda r: r["traced"]["current"])
        out["tracemalloc_overhead_growth_mb"] = delta(lambda r: r["traced"]["overhead"])
        before = {e["where"]: e["size"] for e in a.get("top_size", [])}
        after = {e["where"]: e["size"] for e in b.get("top_size", [])}
        growth = {w: after[w] - before.get(w, 0) for w in after}
        # top_growth is against the process's first sample (start-up included); top_size differences are after settle.
        out["lines_grown_after_settle_kb"] = {w: round(g / 1024, 1) for w, g in sorted(growth.items(), key=lambda kv: -kv[1])[:12] if g}
        out["top_growth_since_start_kb"] = {e["where"]: round(e["size_diff"] / 1024, 1) for e in b.get("top_growth", [])[:12]}
    return out


def outside_view(samples: list[dict[str, Any]], settle_s: float) -> dict[str, Any]:
    """PSS per process per hour and slopes after settle_s, from the outside samples (each process's longest life)."""
    out: dict[str, Any] = {}
    for name in sorted({n for s in samples for n in s.get("pss_mb", {})}):
        lives = process_lives(samples, name)
        pid, points = longest_life(lives)
        settled = [p for p in points if p[0] >= settle_s]
        # PSS and private pages move when a process sharing pages with this one dies or is forked (a
        # shard restart); its anonymous resident memory does not: the measure of its own growth.
        own = [s for s in samples if s.get("pid", {}).get(name) == pid and name in s.get("smaps_kb", {}) and s["t_s"] >= settle_s]
        private = [(s["t_s"], s["smaps_kb"][name]["Private_Dirty"] / 1024) for s in own]
        anonymous = [(s["t_s"], s["smaps_kb"][name]["Anonymous"] / 1024) for s in own]
        hourly = {f"{int(t // 900) * 15} min": mb for t, mb in points}  # the last PSS sample of the quarter hour starting then
        out[name] = {"pid": pid, "lives": len(lives), "pss_mb_each_quarter_hour": dict(sorted(hourly.items(), key=lambda kv: int(kv[0].split()[0]))),
                     "slope_after_settle_mb_per_hour": slope_mb_per_hour(settled),
                     "private_dirty_slope_after_settle_mb_per_hour": slope_mb_per_hour(private),
                     "anonymous_slope_after_settle_mb_per_hour": slope_mb_per_hour(anonymous),
                     "slope_before_settle_mb_per_hour": slope_mb_per_hour([p for p in points if p[0] < settle_s])}  # fmt: skip
    return out


def totals(samples: list[dict[str, Any]], settle_s: float) -> dict[str, Any]:
    """The whole service after settle_s: the PSS slope the soak's invariant reads, and its anonymous part's.

    PSS splits each shared page among every process that maps it, outsiders included: on a
    development machine a test run importing the same numpy and libpython lowers the service's
    share of those file pages for as long as it runs, and its end raises it again. Pss_Anon (the
    heap, Python's arenas, stacks) is shared only among the service's own processes, so its slope
    is the service's growth whatever else runs; the gap between the two is that file-page share.
    """
    after = [s for s in samples if s["t_s"] >= settle_s and s.get("pss_mb_total")]
    # One (t, PSS, anonymous) per sample that has both, so the file part is never PSS of one sample less anon of another.
    rows = [(s["t_s"], s["pss_mb_total"], sum(v["Pss_Anon"] for v in s["smaps_kb"].values()) / 1024) for s in after if s.get("smaps_kb")]
    anon = [(t, mb) for t, _, mb in rows]
    file_and_shmem = [(t, pss - mb) for t, pss, mb in rows]
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    def slope(points: list[tuple[float, float]]) -> float | None:
        return rounded(slope_mb_per_hour(points))

    return {"pss_slope_mb_per_hour": rounded(service_slope(samples, settle_s)),
            "pss_anon_slope_mb_per_hour": slope(anon),
            "pss_file_and_shmem_slope_mb_per_hour": slope(file_and_shmem),
            "pss_file_and_shmem_mb_range": [round(min((v for _, v in file_and_shmem), default=0), 1),
                                            round(max((v for _, v in file_and_shmem), default=0), 1)]}  # fmt: skip


def analyse(run: Path, settle_min: float) -> dict[str, Any]:
    samples = read_jsonl(run / "samples.jsonl")
    profiles = {p.stem: read_jsonl(p) for p in sorted((run / "memprofile").glob("*.jsonl"))}
    t_start = min((r["t"] for rows in profiles.values() for r in rows if "t" in r), default=0.0)
    settle_t = t_start + settle_min * 60
    return {"run": str(run), "settle_min": settle_min, "wall_minutes": round(samples[-1]["t_s"] / 60, 1) if samples else 0,
            "total_after_settle": totals(samples, settle_min * 60), "outside": outside_view(samples, settle_min * 60),
            "inside": {name: profile_growth(rows, settle_t) for name, rows in profiles.items()}}  # fmt: skip


def print_table(result: dict[str, Any]) -> None:
    print(f"\n{'process':<11}{'PSS slope before/after settle MB/h':>36}{'PSS Δ':>9}{'anon Δ':>8}{'shmem Δ':>9}{'heap in use Δ':>15}"
          f"{'free kept Δ':>13}{'traced Δ':>10}")  # fmt: skip
    for name, o in result["outside"].items():
        i = result["inside"].get(name, {})
        before, after = o["slope_before_settle_mb_per_hour"], o["slope_after_settle_mb_per_hour"]
        print(f"{name:<11}{(f'{before:.1f}' if before is not None else '-'):>26} / {(f'{after:.2f}' if after is not None else '-'):<7}"
              f"{str(i.get('pss_growth_mb', '-')):>9}{str(i.get('pss_anon_growth_mb', '-')):>8}{str(i.get('pss_shmem_growth_mb', '-')):>9}"
              f"{str(i.get('heap_in_use_growth_mb', '-')):>15}"
              f"{str(i.get('heap_free_kept_growth_mb', '-')):>13}{str(i.get('traced_growth_mb', '-')):>10}")  # fmt: skip
    t = result["total_after_settle"]
    print(f"\nwhole service after settle: PSS {t['pss_slope_mb_per_hour']} MB/h = anonymous {t['pss_anon_slope_mb_per_hour']} MB/h"
          f" + file pages and shared memory {t['pss_file_and_shmem_slope_mb_per_hour']} MB/h (range {t['pss_file_and_shmem_mb_range']} MB)")
    print("\nanonymous memory growth after settle, MB, by region:")
    for name, i in result["inside"].items():
        if i.get("anon_by_region_growth_mb"):
            print(f"  {name:<11}" + "  ".join(f"{k} {v:+.2f}" for k, v in i["anon_by_region_growth_mb"].items()))


def plot(run: Path, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = read_jsonl(run / "samples.jsonl")
    profiles = {p.stem: read_jsonl(p) for p in sorted((run / "memprofile").glob("*.jsonl"))}
    t0 = min((r["t"] for rows in profiles.values() for r in rows if "t" in r), default=0.0)
    fig, (ax_pss, ax_heap) = plt.subplots(1, 2, figsize=(14, 4.5))
    for name in sorted({n for s in samples for n in s["pss_mb"]}):
        ax_pss.plot([s["t_s"] / 60 for s in samples], [s["pss_mb"].get(name, float("nan")) for s in samples], label=name)
    ax_pss.plot([s["t_s"] / 60 for s in samples], [s["pss_mb_total"] for s in samples], label="total", color="black")
    kills = [e for e in json.loads((run / "result.json").read_text()).get("events", [])] if (run / "result.json").exists() else []
    for e in kills:
        if e.get("fault") == "kill_child":
            ax_pss.axvline(e["t_s"] / 60, color="red", alpha=0.3, lw=1)
    ax_pss.set(xlabel="wall minutes", ylabel="PSS, MB", title="PSS per process (red: shard1 SIGKILLed)")
    for name, rows in profiles.items():
        life = [r for r in rows if "malloc" in r]
        ax_heap.plot([(r["t"] - t0) / 60 for r in life], [(r["malloc"]["uordblks"] + r["malloc"]["hblkhd"]) / MB for r in life], marker=".",
                     label=f"{name} heap in use")  # fmt: skip
        traced = [r for r in life if "traced" in r]
        if traced:
            ax_heap.plot([(r["t"] - t0) / 60 for r in traced], [r["traced"]["current"] / MB for r in traced], ls="--",
                         label=f"{name} Python objects (tracemalloc)")  # fmt: skip
    ax_heap.set(xlabel="wall minutes", ylabel="MB", title="Inside: glibc heap in use, tracemalloc")
    for ax in (ax_pss, ax_heap):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--settle-min", type=float, default=45.0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--png", default=None)
    args = parser.parse_args(argv)
    result = analyse(args.run, args.settle_min)
    print(json.dumps(result, indent=2))
    print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if args.png:
        plot(args.run, Path(args.png))
    return 0


if __name__ == "__main__":
    sys.exit(main())
