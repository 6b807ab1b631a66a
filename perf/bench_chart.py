"""The chart on a card: render time per chart and what charts cost the bot process in memory.

Three measures in one run:
1. render time per chart (p50/p99) and PNG size, with bot/chart.py (Pillow) in process and as the
   bot runs it (in_child: a child forked per chart, which pays Pillow's import), on N synthetic
   30-minute series (random walks, every fifth one pumping), each folded by the supervisor's own
   ChartHistory from feature rows; the baseline in the same run: the same picture (candles as
   bars, VWAP line, volume bars, signal marker) drawn with matplotlib's Agg backend, the library
   most projects would reach for first;
2. import cost, each in a fresh process: PSS after importing Pillow's drawing modules vs
   matplotlib.pyplot (Agg), over a bare interpreter;
3. the bot process's PSS with charts off and on: the real bot (bot/process.py run_bot, as the
   supervisor starts it) against the fake Bot API on 127.0.0.1, sending the same M stored cards,
   measured once every card has arrived.

Usage: python -m perf.bench_chart [--charts 300] [--cards 40] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from common.progress import Progress
from core.rowspec import FEATURE_ROW_DTYPE
from perf.harness import REPO
from supervisor.chart_history import ChartHistory

T0 = 1_790_000_000_000


def make_series(seed: int) -> tuple[dict[str, list[Any]], int, float]:
    """(series, signal ms, signal price): 30 minutes of one pair's 1 s rows folded by ChartHistory."""
    rng = np.random.default_rng(seed)
    n = 1800
    drift = np.where(np.arange(n) > n - 180, 0.0015, 0.0) if seed % 5 == 0 else np.zeros(n)
    price = float(10 ** rng.uniform(-6, 3)) * np.cumprod(1 + drift + rng.normal(0, 0.0008, n))
    rows = np.zeros(n, dtype=FEATURE_ROW_DTYPE)
    rows["pair_id"], rows["row_time_ms"], rows["last_price"] = 1, T0 + np.arange(n) * 1000, price
    rows["pm"], rows["quote_vol_5m"] = rng.normal(0.01, 0.005, n), np.abs(rng.normal(50_000, 20_000, n)).cumsum() / np.arange(1, n + 1)
    history = ChartHistory(pairs=2)
    for start in range(0, n, 50):
        history.update(rows[start:start + 50])
    now = int(T0 + (n - 1) * 1000)
    return history.series(1, now), now, float(price[-1])


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50": statistics.median(ordered), "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], "max": ordered[-1]}


def matplotlib_png(symbol: str, series: dict[str, list[Any]], signal_ms: int, signal_price: float) -> bytes:
    """The baseline: the same chart with matplotlib (Agg), 800x450."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.array(series["t"], dtype=float)
    o, c = np.array(series["o"], dtype=float), np.array(series["c"], dtype=float)
    h, lo = np.array(series["h"], dtype=float), np.array(series["l"], dtype=float)
    fig, (ax, axv) = plt.subplots(2, 1, figsize=(8, 4.5), dpi=100, sharex=True, gridspec_kw={"height_ratios": [4, 1]})
    colours = np.where(c >= o, "#26a69a", "#ef5350")
    ax.vlines(t + 30_000, lo, h, colors=colours, linewidth=1)
    ax.bar(t + 30_000, np.abs(c - o) + 1e-12, bottom=np.minimum(o, c), width=42_000, color=colours)
    ax.plot(t + 30_000, [v or np.nan for v in series["vwap"]], color="#ffb74d")
    ax.axvline(signal_ms, color="#42a5f5", linestyle="--")
    ax.plot([signal_ms], [signal_price], "o", color="#42a5f5")
    axv.bar(t + 30_000, [v or 0 for v in series["qv5"]], width=42_000, color="#5a6278")
    ax.set_title(f"{symbol} 1m")
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out.getvalue()


def bench_render(charts: int, progress: Progress) -> dict[str, Any]:
    from bot.chart import in_child, render_png

    inputs = [make_series(seed) for seed in range(charts)]
    result: dict[str, Any] = {}

    def forked(*args: Any) -> bytes:
        return in_child(render_png, *args)

    # forked first: the child must import Pillow itself, as in the bot (which never imports it)
    for name, draw in (("pillow_forked", forked), ("pillow", render_png), ("matplotlib", matplotlib_png)):
        draw("WARMUPUSDT", *inputs[0])  # imports and font caches are not a chart's cost
        times, sizes = [], []
        for series, when, price in inputs:
            start = time.perf_counter()
            png = draw("PEPEUSDT", series, when, price)
            times.append((time.perf_counter() - start) * 1000)
            sizes.append(len(png))
            progress.update(1)
        result[name] = {"render_ms": _percentiles(times), "png_bytes": _percentiles([float(s) for s in sizes])}
    result["matplotlib_over_pillow_p50"] = result["matplotlib"]["render_ms"]["p50"] / result["pillow"]["render_ms"]["p50"]
    return result


_IMPORT_PROBE = """
import sys, psutil
{imports}
print(psutil.Process().memory_full_info().pss)
"""


def import_pss_mb() -> dict[str, float]:
    """PSS of a fresh interpreter after each import set (MB)."""
    probes = {"bare": "", "pillow": "from PIL import Image, ImageDraw, ImageFont; ImageFont.load_default(size=12)",
              "matplotlib": "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot"}  # fmt: skip
    out = {}
    for name, imports in probes.items():
        text = subprocess.run([sys.executable, "-c", _IMPORT_PROBE.format(imports=imports)], cwd=REPO, capture_output=True, text=True, check=True)
        out[name] = int(text.stdout.strip()) / 2**20
    return out


def _bot_child(config: Any) -> None:
    from bot.process import run_bot

    ours, theirs = mp.Pipe()
    run_bot(config, theirs)
    ours.close()


async def bot_pss_mb(cards: int, chart: bool) -> dict[str, float]:
    """The real bot sending `cards` stored cards to the fake Bot API; its PSS once they all arrived."""
    from common.config import config_from_mapping
    from common.signal import Signal, make_signal_id
    from sim.fake_telegram import run_fake_telegram
    from store.cards import CardStore
    from store.history import Store

    with tempfile.TemporaryDirectory(prefix="bench-chart-") as tmp:
        async with run_fake_telegram() as fake:
            fake.long_poll_cap_s = 0.5
            config = config_from_mapping({"telegram": {"token": fake.token, "base_url": fake.base_url, "allowed_ids": [4242],
                                                       "cards": {"chart": chart, "rate_chat_per_s": 30, "chart_wait_s": 5}},
                                          "storage": {"data_dir": tmp}}, environ={})  # fmt: skip
            store = Store(tmp)
            for n in range(cards):
                series, when, price = make_series(n)
                sig = Signal(make_signal_id("PEPEUSDT", when + n, 0), "PEPEUSDT", "alpha1", when + n, time.time_ns(), time.time_ns(), price,
                             0.8, {"vsr": 7.0, "pm": 0.03}, ["VSR 7>5"], 0)  # fmt: skip
                CardStore(store.db).add_series(sig.signal_id, series)
                store.add_signal(sig)
            store.close()
            proc = mp.get_context("spawn").Process(target=_bot_child, args=(config,), daemon=True)
            proc.start()
            try:
                deadline = time.monotonic() + 120
                while len(fake.sent("sendPhoto" if chart else "sendMessage")) < cards and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                await asyncio.sleep(1.0)
                mem = psutil.Process(proc.pid).memory_full_info()
                delivered = len(fake.sent("sendPhoto" if chart else "sendMessage"))
            finally:
                proc.terminate()
                proc.join(20)
    return {"pss_mb": mem.pss / 2**20, "uss_mb": mem.uss / 2**20, "rss_mb": mem.rss / 2**20, "cards_delivered": float(delivered)}


def run(charts: int, cards: int) -> dict[str, Any]:
    with Progress(3 * charts, "bench_chart renders") as progress:
        render = bench_render(charts, progress)
    imports = import_pss_mb()
    bot_off = asyncio.run(bot_pss_mb(cards, chart=False))
    bot_on = asyncio.run(bot_pss_mb(cards, chart=True))
    return {"charts": charts, "cards": cards, "render": render, "import_pss_mb": imports,
            "bot_pss_mb": {"charts_off": bot_off, "charts_on": bot_on, "charts_cost_mb": bot_on["pss_mb"] - bot_off["pss_mb"]},
            "python": sys.version.split()[0], "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--charts", type=int, default=300)
    parser.add_argument("--cards", type=int, default=40)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    result = run(args.charts, args.cards)
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).write_text(text)
    print(text)
    r, imp, bot = result["render"], result["import_pss_mb"], result["bot_pss_mb"]
    print(f"\n{'per chart (800x450 PNG)':<26}{'p50 ms':>9}{'p99 ms':>9}{'PNG KB p50':>12}{'import PSS MB':>15}")
    for name in ("pillow", "pillow_forked", "matplotlib"):
        print(f"{name:<26}{r[name]['render_ms']['p50']:>9.1f}{r[name]['render_ms']['p99']:>9.1f}{r[name]['png_bytes']['p50'] / 1024:>12.1f}"
              f"{imp.get(name, imp['pillow']) - imp['bare']:>15.1f}")  # fmt: skip
    print(f"matplotlib / Pillow render time (p50): {r['matplotlib_over_pillow_p50']:.1f}x")
    print(f"\nbot process after {result['cards']} cards: charts off PSS {bot['charts_off']['pss_mb']:.1f} MB, "
          f"charts on {bot['charts_on']['pss_mb']:.1f} MB (+{bot['charts_cost_mb']:.1f} MB); "
          f"delivered {bot['charts_off']['cards_delivered']:.0f} / {bot['charts_on']['cards_delivered']:.0f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
