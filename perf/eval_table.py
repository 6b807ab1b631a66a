"""The signal-quality table, made from perf.eval_pumps' JSON (never typed by hand).

    python -m perf.eval_table --json perf/results/eval_pumps.json [--readme README.md ...]

Prints the markdown table; with --readme, replaces the block between the markers
<!-- eval_pumps:table --> and <!-- /eval_pumps:table --> in each file, so the READMEs say what
the last full run measured.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- eval_pumps:table -->", "<!-- /eval_pumps:table -->"


def _pc(x: float | None, nd: int = 2, sign: str = "+") -> str:
    return "—" if x is None else f"{x:{sign}.{nd}f} %"


def summary_table(report: dict[str, Any]) -> str:
    """The side-by-side table printed after a run (and pasted in the READMEs)."""
    head = ("| profile | recall | median delay after labelled start | false cards / coin-day | cards / day at 2,000 pairs "
            "| mean / median return per card | win rate | total return / coin-day | trailing: mean per card |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    first = [n for n in ("default", "alpha1", "flash") if n in report["summaries"]]
    for name in first + sorted(set(report["summaries"]) - set(first)):
        s = report["summaries"][name]
        f, tr = s["trader_fixed"], s["trader_trailing"]
        d = s["delay_ms"]["t_rel_labelled_ms"]["median"]
        lines.append(f"| {name} | {s['detected']}/{s['events_meeting_10pct_20min']} ({100 * (s['recall'] or 0):.0f} %) "
                     f"| {'—' if d is None else f'{d / 1000:.1f} s'} | {s['false_signals_per_coin_day']} "
                     f"| {s['false_cards_per_day_at_2000_pairs']} + {s['cards_per_pump']} per pump "
                     f"| {_pc(f['mean_ret_pct'])} / {_pc(f['median_ret_pct'])} ({f['cards']}) "
                     f"| {_pc(None if f['win_rate'] is None else 100 * f['win_rate'], 0, '')} "
                     f"| {_pc(f['total_ret_pct_per_coin_day'], 3)} | {_pc(tr['mean_ret_pct'])} |")  # fmt: skip
    return "\n".join(lines)


def replace_block(text: str, table: str) -> str:
    """text with the marked block's content replaced by table (ValueError when the markers are missing)."""
    a, b = text.find(BEGIN), text.find(END)
    if a < 0 or b < a:
        raise ValueError(f"markers {BEGIN} ... {END} not found")
    return text[: a + len(BEGIN)] + "\n" + table + "\n" + text[b:]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m perf.eval_table", description=__doc__.split("\n\n")[0])
    p.add_argument("--json", required=True, type=Path, help="a perf.eval_pumps report")
    p.add_argument("--readme", nargs="*", type=Path, default=[], help="files whose marked block gets the table")
    args = p.parse_args(argv)
    table = summary_table(json.loads(args.json.read_text(encoding="utf-8")))
    print(table)
    for path in args.readme:
        path.write_text(replace_block(path.read_text(encoding="utf-8"), table), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
