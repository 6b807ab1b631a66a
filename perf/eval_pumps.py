"""Replay real pump events through the scanner; score every profile's cards as a trader would.

    python -m perf.eval_pumps --data /path/to/pumps --json OUT [--events N | --only SYM...]
                              [--cache DIR] [--latency-ms 1000] [--workers 2]

Each event's trades (trades/*.csv.xz: timestamp, side, price, amount; BTC-quoted) are converted
to the emulator's replay format in a temporary directory and replayed through the emulator's
frames, the shard engine and the ring at the live cadence: the rows are scored after every
100 ms deals push (perf/eval_replay.py, replay/lockstep.py push_ms=100), so a card's time is the
push that made it and delays are in milliseconds. On those batches every profile is scored
through the supervisor's Scorer with its cooldown (perf/eval_cards.py):

  default   config.yaml's detectors.pump (enabled_profiles, thresholds, model files) as shipped
  alpha1    the specification's profile, book rules off (the data has no order book)
  flash     the flash profile alone
and, on the trades themselves, the popular scanners' rules (perf/eval_baselines.py). Every card,
event and background, re-alerts included, gets the trader's figures (perf/eval_trader.py). The
whole file is replayed: the days before T are the warm-up, and outside [T-2h, T+6h] the
background for false cards. Events run one per process; two runs give identical JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common.detector_config import PumpConfig
from common.progress import progress
from detectors.model import Model
from perf.eval_baselines import BASELINES, baseline_cards
from perf.eval_cards import TRADES_ONLY_PUMP, score_batches, trades_only_scorer
from perf.eval_data import HOUR_MS, Event, event_holes, load_episodes, load_events, read_trades, rnd
from perf.eval_measure import measure, summarise
from perf.eval_replay import PUSH_MS, replay_batches
from perf.eval_table import summary_table
from perf.eval_trader import FEE, HORIZON_MS, LATENCY_MS, SL, TP, TRAIL, Trader

REPO = Path(__file__).resolve().parent.parent
Spec = tuple[PumpConfig, dict[str, Model]]


def shipped_pump_config() -> PumpConfig:
    """config.yaml's detectors.pump: what `make run` scores with."""
    from common.config import load_config

    return load_config(REPO / "config.yaml", environ={}).detectors.pump


def profile_specs(config: PumpConfig | None = None) -> dict[str, Spec]:
    """The scanner profiles to evaluate: the default as configured, then each profile alone."""
    config = config or shipped_pump_config()
    specs: dict[str, Spec] = {"default": (config, TRADES_ONLY_PUMP.load_models(config, REPO))}
    for name in ("alpha1", "flash"):
        alone = dataclasses.replace(config, enabled_profiles=[name])
        specs[name] = (alone, TRADES_ONLY_PUMP.load_models(alone, REPO))
    return specs


def evaluate_event(event: Event, others_t_ms: list[int], episodes: list[tuple[int, bool, float]], workdir: Path,
                   specs: dict[str, Spec], cache: Path | None = None, latency_ms: int = LATENCY_MS) -> dict[str, Any]:  # fmt: skip
    """Replay one event once; every profile's and baseline's cards measured on it (a worker process)."""
    trades = read_trades(event.file)
    batches = replay_batches(event, trades, workdir, cache)
    ts = trades["ts_ms"]
    first_ms, last_ms = int(ts[0]), int(ts[-1])
    holes, background_ms = event_holes(event, others_t_ms, episodes, first_ms, last_ms)
    trader = Trader(trades, latency_ms)
    cards = {name: score_batches(batches, trades_only_scorer(config, models)) for name, (config, models) in specs.items()}
    cards.update({name: baseline_cards(name, trades) for name in BASELINES})
    by_profile, signals = {}, []
    for name, its in cards.items():
        m = measure(event, its, trades, trader, holes, episodes)
        signals.extend({"profile": name, **s} for s in m.pop("signals"))
        by_profile[name] = m
    t = event.t_ms
    return {
        "event_id": event.event_id,
        "symbol": event.symbol,
        "meets_10pct_20min": event.meets,
        "trades": int(len(ts)),
        "rows": int(len(batches.rows)),
        "data_hours_before_T": rnd((t - first_ms) / HOUR_MS, 2),
        "warmup_hours_to_baseline": rnd((batches.first_baseline_ms - first_ms) / HOUR_MS, 2)
        if batches.first_baseline_ms is not None else None,
        "background_hours": rnd(background_ms / HOUR_MS, 2),
        "excluded_windows": len(holes) - 1,
        "background_episodes": [{"start_rel_T_h": rnd((s - t) / HOUR_MS, 2), "listed_pump": listed, "max_rise_pct": rise}
                                for s, listed, rise in episodes],
        "by_profile": by_profile,
        "signals": signals,
    }  # fmt: skip


def _worker(args: tuple[Event, list[int], list[tuple[int, bool, float]], str, dict[str, Spec], Path | None, int]) -> dict[str, Any]:
    event, others, episodes, workdir, specs, cache, latency_ms = args
    return evaluate_event(event, others, episodes, Path(workdir), specs, cache, latency_ms)


def select_events(all_events: list[Event], events_n: int | None, only: list[str] | None) -> list[Event]:
    """--only coins or event ids, then the first --events N."""
    chosen = all_events
    if only:
        wanted = {s.upper() for s in only}
        chosen = [e for e in chosen if e.event_id.upper() in wanted or e.symbol.upper() in wanted
                  or e.event_id.split("_")[0].upper() in wanted]  # fmt: skip
        if not chosen:
            raise SystemExit(f"eval_pumps: no event matches {' '.join(only)}")
    return chosen[:events_n] if events_n is not None else chosen


def run(data: Path, events_n: int | None = None, only: list[str] | None = None, workers: int = 2,
        config: PumpConfig | None = None, cache: Path | None = None, latency_ms: int = LATENCY_MS) -> dict[str, Any]:  # fmt: skip
    """Evaluate the selected events; returns the JSON-ready report (no wall-clock values in it)."""
    all_events = load_events(data)
    chosen = select_events(all_events, events_n, only)
    specs = profile_specs(config)
    episodes = load_episodes(data)
    with tempfile.TemporaryDirectory(prefix="eval_pumps_") as workdir:
        jobs = []
        for e in sorted(chosen, key=lambda e: -e.n_trades):  # big ones first: better packing
            others = [o.t_ms for o in all_events if o.symbol == e.symbol and o.event_id != e.event_id]
            jobs.append((e, others, episodes.get(e.event_id, []), workdir, specs, cache, latency_ms))
        # One event takes seconds to minutes: count them on stderr (common/progress.py), never in the report.
        if workers <= 1:
            results = list(progress(map(_worker, jobs), len(jobs), "eval_pumps", "events"))
        else:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                results = list(progress(pool.imap_unordered(_worker, jobs), len(jobs), "eval_pumps", "events"))
    results.sort(key=lambda r: r["event_id"])
    default = specs["default"][0]
    names = [*specs, *BASELINES]
    return {
        "data": "Binance spot SYM/BTC pairs 2018-06 .. 2022-02 (not MEXC), trades only (no order book)",
        "profiles": {
            "default": f"config.yaml detectors.pump: enabled_profiles {default.enabled_profiles}",
            "alpha1": "the specification's profile (model.json); book rules off: the data has no order book",
            "flash": f"flash alone (model.flash.json, prob >= {default.profiles.flash.prob_threshold})",
            **{name: "baseline on trades, one card per 20 min (perf/eval_baselines.py)" for name in BASELINES},
        },
        "scanner": {"enabled_profiles": default.enabled_profiles, "cooldown_s": default.cooldown.period_s,
                    "flash_prob_threshold": default.profiles.flash.prob_threshold,
                    "alpha1_prob_threshold": default.profiles.alpha1.prob_threshold},  # fmt: skip
        "trader": {"latency_ms": latency_ms, "fee_per_side": FEE, "take_profit": TP, "stop_loss": SL,
                   "trailing_stop": TRAIL, "horizon_s": HORIZON_MS // 1000},  # fmt: skip
        "definitions": {
            "detected": "a card in [T-30 min, T+30 min] (the window in which cross10 is searched)",
            "background": "outside [T-2h, T+6h], minus [T'-2h, T'+6h] of other listed pumps of the coin in the file",
            "cards": "event cards (detection window) and background cards, re-alerts included; others not counted",
            "replay": f"replay/lockstep.py at push_ms={PUSH_MS}: emulator frames -> ShardEngine -> ring -> Scorer after every deals push",
            "delay_ms": "card time (end of the push that made it) minus the La Morgia labelled 5-s start / the cross10 trade",
        },
        "summaries": {name: summarise(results, name) for name in names},
        "summary": summarise(results, "default"),
        "events": results,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m perf.eval_pumps", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, type=Path, help="the pumps folder (events_index.csv, trades/)")
    p.add_argument("--json", required=True, type=Path, help="where to write the report")
    p.add_argument("--events", type=int, default=None, help="only the first N events (by event id)")
    p.add_argument("--only", nargs="+", default=None, metavar="SYM", help="only these coins or event ids")
    p.add_argument("--workers", type=int, default=2, help="processes (events run one per process)")
    p.add_argument("--cache", type=Path, default=None, help="keep the replayed batches here between runs")
    p.add_argument("--latency-ms", type=int, default=LATENCY_MS, help="card to tap, before the buy")
    args = p.parse_args(argv)
    started = time.monotonic()
    report = run(args.data, args.events, args.only, args.workers, cache=args.cache, latency_ms=args.latency_ms)
    args.json.write_text(json.dumps(report, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    s = report["summary"]
    print(json.dumps({k: s[k] for k in ("events", "events_meeting_10pct_20min", "detected", "recall", "delay_ms", "precision",
                                        "background_coin_days", "false_signals_per_coin_day", "trader_fixed")}, indent=1))  # fmt: skip
    print(summary_table(report))
    print(f"eval_pumps: {len(report['events'])} events in {time.monotonic() - started:.0f} s -> {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
