"""A-3: a small synthetic one-day tick dump with scripted pumps, and its expected signals.

    python -m perf.a3_dump            # regenerate tests/fixtures/a3_day.parquet and a3_day.json
    python -m perf.a3_dump --check    # replay the committed dump, compare with a3_day.json

The dump is the emulator's generated market (sim/market.py, seed SEED) at reduced activity:
PAIRS pairs, about RATE frames/s in total, one exchange day, with three scripted pumps after the
6 h warm-up and one volume spike without a rise (a hard negative). Only trades are stored (the
replay format has no depth), so it is replayed with the trades-only profile of perf.eval_pumps
through replay/lockstep.py. tests/test_a3_replay.py asserts the replay gives exactly the signals
recorded in a3_day.json; when the scorer, features or model.json change on purpose, regenerate
with this command and review the new count in the diff.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DUMP = REPO / "tests" / "fixtures" / "a3_day.parquet"
EXPECTED = REPO / "tests" / "fixtures" / "a3_day.json"
SEED = 20260801
PAIRS = 8
RATE = 1.0
DAY_MS = 86_400_000
START_MS = 1_790_000_000_000 - 1_790_000_000_000 % DAY_MS  # a UTC midnight
SCENARIO = {
    "pumps": [
        {"rank": 1, "start_s": 8 * 3600, "duration_s": 300, "rise_pct": 15, "volume_mult": 25},
        {"rank": 3, "start_s": 14 * 3600 + 600, "duration_s": 240, "rise_pct": 20, "volume_mult": 30},
        {"rank": 5, "start_s": 20 * 3600 + 1200, "duration_s": 360, "rise_pct": 12, "volume_mult": 20},
    ],
    "spikes": [{"rank": 2, "start_s": 11 * 3600, "duration_s": 90, "volume_mult": 25}],
}


def build_dump(out: Path) -> int:
    """Generate the day and write it in the replay format; returns the number of trades."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sim.market import build_market
    from sim.scenario import scenario_from_mapping

    market = build_market(PAIRS, SEED, START_MS, scenario_from_mapping(SCENARIO), rate=RATE)
    cols: dict[str, list[Any]] = {"ts_ms": [], "symbol": [], "price": [], "qty": [], "side": []}
    for hour in range(1, 25):
        for update in market.advance(START_MS + hour * 3_600_000):
            for t in update.trades:
                cols["ts_ms"].append(t.time_ms)
                cols["symbol"].append(update.symbol)
                # The emulator prints prices and quantities at the pair's decimals: store what a feed shows.
                cols["price"].append(float(market.fmt_price(update.symbol, t.price)))
                cols["qty"].append(float(market.fmt_qty(update.symbol, t.qty)))
                cols["side"].append(t.side)
    table = pa.table(
        {
            "ts_ms": pa.array(cols["ts_ms"], pa.int64()),
            "symbol": pa.array(cols["symbol"], pa.string()),
            "price": pa.array(cols["price"], pa.float64()),
            "qty": pa.array(cols["qty"], pa.float64()),
            "side": pa.array(cols["side"], pa.int8()),
        }
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out, compression="zstd", compression_level=19, use_dictionary=["symbol"])
    return table.num_rows


def replay_signals(dump: Path) -> list[dict[str, Any]]:
    """The signals a trades-only replay of the dump gives: symbol, exchange time, escalation."""
    from common.detector_config import PumpConfig
    from detectors.model import load_model
    from perf.eval_cards import trades_only_scorer
    from replay.lockstep import replay_lockstep

    config = PumpConfig()
    result = replay_lockstep(dump, trades_only_scorer(config, load_model(REPO / config.profiles.alpha1.model_path)))
    names = {pid: sym for sym, pid in result.pair_ids.items()}
    return [
        {"symbol": names[d.pair_id], "row_time_ms": int(d.row["row_time_ms"]), "escalation": d.escalation}
        for d in result.decisions
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m perf.a3_dump", description="A-3 synthetic tick dump")
    p.add_argument("--check", action="store_true", help="replay the committed dump and compare")
    args = p.parse_args(argv)
    if args.check:
        expected = json.loads(EXPECTED.read_text())
        got = replay_signals(DUMP)
        print(f"a3: {len(got)} signals, expected {expected['signals']}")
        return 0 if got == expected["signal_list"] else 1
    trades = build_dump(DUMP)
    signals = replay_signals(DUMP)
    pumped = sorted({s["symbol"] for s in signals})
    EXPECTED.write_text(
        json.dumps(
            {
                "command": "python -m perf.a3_dump",
                "seed": SEED,
                "pairs": PAIRS,
                "rate": RATE,
                "start_ms": START_MS,
                "scenario": SCENARIO,
                "profile": "trades-only",
                "trades": trades,
                "signals": len(signals),
                "signal_list": signals,
            },
            indent=1,
        )
        + "\n"
    )
    size = DUMP.stat().st_size
    print(f"a3: {trades} trades, {size / 1e6:.2f} MB, {len(signals)} signals on {pumped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
