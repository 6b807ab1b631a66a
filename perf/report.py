"""Tables, plots and JSON of the whole-service benchmarks (perf/bench_load.py, perf/soak.py).

bench_payload builds bench_load's JSON record; the tables and plots are the human views of the
results, printed after the JSON, so what they show never differs from what was stored.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perf.harness import CORES, cpu_model

if TYPE_CHECKING:
    from perf.bench_load import RunResult


def _fmt(value: Any, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def bench_payload(results: list[RunResult], failed: list[dict[str, Any]], feed: str, alpha1: bool, sweep: bool) -> dict[str, Any]:
    """bench_load's JSON: the machine and profile with every run, and for a sweep the highest rate each pair count sustained.

    "Sustained" means the lag stayed bounded and no row was dropped.
    """
    payload: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": {"cpus": CORES, "python": sys.version.split()[0], "cpu_model": cpu_model()},
        "feed": feed,
        "profile": (
            "Alpha-1 as shipped (config.demo.yaml), cooldown 3600 s"
            if alpha1
            else "latency profile: config.demo.yaml with vc_max 1.0, cooldown 3600 s"
        )
        + ", a scripted pump starting every few seconds",
        "runs": [r.__dict__ for r in results],
        "failed_runs": failed,
    }
    if sweep:
        payload["sustained"] = {
            str(p): max((r.service["frames_per_s"] for r in results if r.pairs == p and r.lag["bounded"] and not r.service["rows_dropped"]),
                        default=None)
            for p in sorted({r.pairs for r in results})
        }  # fmt: skip
    return payload


def print_table(results: list[RunResult]) -> None:
    """bench_load: one line per run, and under it the naive baseline's line with the CPU ratio."""
    print(f"\n{'pairs':>6}{'rate':>7}{'recv f/s':>9}{'CPU %core':>10}{'%machine':>9}{'us/frame':>9}{'PSS MB':>8}{'USS MB':>8}"
          f"{'cards':>6}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'max ms':>8}{'dropped':>8}{'lag ok':>7}{'A-7':>5}")  # fmt: skip
    for r in results:
        s, lat = r.service, r.latency_ms
        print(f"{r.pairs:>6}{r.rate_target:>7}{s['frames_per_s']:>9.0f}{s['cpu_pct_of_core']:>10.1f}{s['cpu_pct_of_machine']:>9.1f}"
              f"{s['cpu_us_per_frame']:>9.1f}{s['pss_mb']:>8.0f}{s['uss_mb']:>8.0f}{lat.get('cards', 0):>6}{_fmt(lat.get('p50')):>8}"
              f"{_fmt(lat.get('p95')):>8}{_fmt(lat.get('p99')):>8}{_fmt(lat.get('max')):>8}{s['rows_dropped']:>8.0f}"
              f"{'yes' if r.lag['bounded'] else 'NO':>7}{'ok' if r.a7['pass'] else 'FAIL':>5}")  # fmt: skip
        if r.baseline:
            b = r.baseline
            ratio = b["cpu_us_per_frame"] / max(s["cpu_us_per_frame"], 1e-9)
            print(f"{'':>6}{'naive':>7}{b['frames_per_s']:>9.0f}{b['cpu_pct_of_core']:>10.1f}{b['cpu_pct_of_core'] / CORES:>9.1f}"
                  f"{b['cpu_us_per_frame']:>9.1f}{b['pss_mb']:>8.0f}{'':>8}{'':>6}  baseline: {ratio:.1f}x more CPU per frame")  # fmt: skip
        print(f"{'':>13}emulator {r.emulator['cpu_pct_of_core']:.0f}% of a core (excluded), {r.emulator['links']} links, "
              f"{r.emulator['streams']} streams; pumps owed {r.pumps.get('owed')}, signalled once "
              f"{r.pumps.get('signalled_once')}, other signals {sum(r.pumps.get('not_pumped', {}).values())}")  # fmt: skip


def plot(results: list[RunResult], path: Path) -> None:
    """bench_load --sweep: CPU, cost per frame and card latency against the rate, one line per pair count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_cpu, ax_us, ax_lat) = plt.subplots(1, 3, figsize=(15, 4.2))
    for pairs in sorted({r.pairs for r in results}):
        rows = sorted((r for r in results if r.pairs == pairs), key=lambda r: r.service["frames_per_s"])
        xs = [r.service["frames_per_s"] for r in rows]
        ax_cpu.plot(xs, [r.service["cpu_pct_of_machine"] for r in rows], marker="o", label=f"{pairs} pairs")
        ax_us.plot(xs, [r.service["cpu_us_per_frame"] for r in rows], marker="o", label=f"{pairs} pairs")
        ax_lat.plot(xs, [r.latency_ms.get("p99") or float("nan") for r in rows], marker="o", label=f"{pairs} pairs")
    ax_cpu.set(xlabel="frames/s received", ylabel="service CPU, % of the 2-core machine", title="CPU vs rate")
    ax_us.set(xlabel="frames/s received", ylabel="service CPU µs per frame", title="Cost per frame vs rate")
    ax_lat.set(xlabel="frames/s received", ylabel="frame → card p99, ms", title="Latency vs rate (emulator feed: cards)")
    if not any(r.latency_ms.get("p99") for r in results):  # the blast feed has no pumps, so no cards
        ax_lat.text(0.5, 0.5, "no cards in these runs (blast feed):\nlatency comes from --feed emulator runs",
                    ha="center", va="center", transform=ax_lat.transAxes)  # fmt: skip
    for ax in (ax_cpu, ax_us, ax_lat):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def print_soak_summary(result: dict[str, Any]) -> None:
    """soak: each invariant ok/FAIL, then one line of the figures behind them."""
    width = max(len("invariant"), *map(len, result["invariants"])) + 2
    print(f"\n{'invariant':<{width}}result")
    for name, ok in result["invariants"].items():
        print(f"{name:<{width}}{'ok' if ok else 'FAIL'}")
    p, m, r = result["pumps"], result["memory"], result["reconnects"]
    print(f"pumps owed {p['owed']}, signalled once {p['signalled_once']}; delivered once {result['delivery']['delivered_once']}/"
          f"{result['delivery']['stored']}; orders {result['orders']['placed']} for {result['orders']['buy_pressed']} pressed; "
          f"kills {result['processes']['injected_kills']}; reconnects/h calm {r['calm_per_hour']}; "
          f"PSS slope {m['slope_mb_per_hour']} MB/h ({result['simulated_hours']} simulated h)")  # fmt: skip


def plot_memory(samples: list[dict[str, Any]], path: Path) -> None:
    """soak: PSS per process and in total over the run (a leak shows as a slope)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    names = sorted({n for s in samples for n in s["pss_mb"]})
    for name in names:
        ax.plot([s["t_s"] / 60 for s in samples], [s["pss_mb"].get(name, float("nan")) for s in samples], label=name)
    ax.plot([s["t_s"] / 60 for s in samples], [s["pss_mb_total"] for s in samples], label="total", color="black")
    ax.set(xlabel="wall minutes", ylabel="PSS, MB", title="Soak: memory per process")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
