"""Replay real pump events through the scanner and score its signals.

    python -m perf.eval_pumps --data /path/to/pumps --json OUT [--events N | --only SYM...]

Each event's trades (trades/*.csv.xz: timestamp, side, price, amount; BTC-quoted) are converted
to the emulator's replay format (sim/replay.py Parquet) in a temporary directory, then replayed
in lock-step through the emulator's frames, the shard engine and the supervisor's scorer
(replay/lockstep.py: exchange-time driven, deterministic, idle time skipped). Events run one per
process (separate engines), so two runs give identical JSON.

Profile "trades-only": the data has no order book, so the book rules (OBI, CumDepthΔ, spread and
the book-valid flag) are off; the other Alpha-1 rules, the model (its OBI term is NaN, i.e. 0)
and the cooldown are the shipped ones. The whole file is replayed: the days before T are the
warm-up (VSR's 6 h baseline) and, outside [T-2h, T+6h], the background for false signals.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import lzma
import math
import multiprocessing
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from common.detector_config import Alpha1Config, PumpConfig
from common.progress import progress
from detectors.model import Model, load_model
from detectors.pump import FLASH, PUMP, Alpha1
from detectors.scorer import Scorer

HOUR_MS = 3_600_000
DETECT_BEFORE_MS = 30 * 60_000  # a signal in [T - 30 min, T + 30 min] detects the event (cross10's window)
DETECT_AFTER_MS = 30 * 60_000
EVENT_BEFORE_MS = 2 * HOUR_MS  # background = outside [T - 2 h, T + 6 h] (the README's definition)
EVENT_AFTER_MS = 6 * HOUR_MS
EPISODE_MATCH_MS = (30 * 60_000, 60 * 60_000)  # a signal this close to a background ≥10 % episode "saw" it
PEAK_HORIZON_MS = 20 * 60_000
PROFILE = "trades-only"
PROFILE_NOTE = (
    "book rules off (OBI, CumDepthΔ, spread, book-valid flag): the data has no order book; "
    "VSR/VC/PM/ListingAge rules, model.json and the cooldown as shipped"
)
REPO = Path(__file__).resolve().parent.parent


class TradesOnlyAlpha1(Alpha1):
    """Alpha-1 with the book rules removed (reasons, model and threshold are inherited)."""

    def rule_mask(self, rows: np.ndarray, settings: Any) -> np.ndarray:
        from core.rowspec import ROW_BASELINE_READY, ROW_LISTING_KNOWN

        c: Alpha1Config = settings
        flags = rows["flags"]
        with np.errstate(invalid="ignore"):
            return (
                ((flags & ROW_BASELINE_READY) != 0)
                & (rows["vsr"] > c.vsr_min)
                & (rows["vc"] < c.vc_max)
                & (rows["pm"] > c.pm_min)
                & ((flags & ROW_LISTING_KNOWN) != 0)
                & (rows["listing_age_s"] > c.listing_age_min_s)
            )


TRADES_ONLY_ALPHA1 = TradesOnlyAlpha1()
# The pump detector as the data allows it: the same name, cooldown and flash profile.
TRADES_ONLY_PUMP = dataclasses.replace(PUMP, profiles=(TRADES_ONLY_ALPHA1, FLASH))


def trades_only_scorer(config: PumpConfig, model: Model | dict[str, Model]) -> Scorer:
    """The supervisor's scorer over TRADES_ONLY_PUMP (everything but alpha1's book rules as shipped)."""
    return Scorer(TRADES_ONLY_PUMP, config, model)


@dataclass(frozen=True)
class Event:
    event_id: str
    symbol: str  # replay symbol: the pair without "/", e.g. ADXBTC
    file: Path
    t_ms: int
    labelled_ms: int | None
    cross10_ms: int | None
    meets: bool
    p_ref: float
    peak_price: float
    n_trades: int


def _utc_ms(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    fmt = "%Y-%m-%d %H:%M:%S" if text.count(":") == 2 else "%Y-%m-%d %H:%M"
    return int(datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp() * 1000)


def load_events(data: Path) -> list[Event]:
    """events_index.csv as Event records, sorted by event id."""
    path = data / "events_index.csv"
    if not path.is_file():
        raise SystemExit(f"eval_pumps: {path} not found (--data must be the pumps folder)")
    out = []
    with path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            t_ms = _utc_ms(r["announced_utc"])
            assert t_ms is not None
            cross = r["cross10_rel_s"].strip()
            out.append(
                Event(
                    event_id=r["event_id"],
                    symbol=r["pair"].replace("/", ""),
                    file=data / r["file"],
                    t_ms=t_ms,
                    labelled_ms=_utc_ms(r["lamorgia_labeled_start_5S"]),
                    cross10_ms=t_ms + round(float(cross) * 1000) if cross else None,
                    meets=r["meets_10pct_20min"] == "True",
                    p_ref=float(r["p_ref"]),
                    peak_price=float(r["peak_price"]),
                    n_trades=int(r["n_trades"]),
                )
            )
    return sorted(out, key=lambda e: e.event_id)


def load_episodes(data: Path) -> dict[str, list[tuple[int, bool, float]]]:
    """background_episodes.csv per event: (start ms, matches a listed pump, max rise %)."""
    out: dict[str, list[tuple[int, bool, float]]] = {}
    path = data / "background_episodes.csv"
    if path.is_file():
        with path.open(newline="") as fh:
            for r in csv.DictReader(fh):
                start = _utc_ms(r["episode_start_utc"])
                assert start is not None
                listed = bool(r["known_pump_within_60min_utc"].strip())
                out.setdefault(r["event_id"], []).append((start, listed, float(r["max_rise_vs_trailing20m_min_pct"])))
    return out


def read_trades(path: Path) -> dict[str, np.ndarray]:
    """One event's CSV (xz) as arrays; side becomes 1 (taker buy) / 2 (taker sell)."""
    import pyarrow.csv as pacsv

    with lzma.open(path) as fh:
        table = pacsv.read_csv(io.BytesIO(fh.read()))
    side = np.array(table.column("side").to_pylist())
    bad = ~np.isin(side, ("buy", "sell"))
    if bad.any():
        raise ValueError(f"{path}: side must be buy or sell, got {side[bad][0]!r}")
    return {
        "ts_ms": table.column("timestamp").to_numpy().astype(np.int64),
        "price": table.column("price").to_numpy().astype(np.float64),
        "qty": table.column("amount").to_numpy().astype(np.float64),
        "side": np.where(side == "buy", 1, 2).astype(np.int8),
    }


def write_dump(trades: dict[str, np.ndarray], symbol: str, out: Path) -> None:
    """Trades in the emulator's replay format (ts_ms, symbol, price, qty, side)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    keep = trades["qty"] > 0  # the replay refuses zero quantities; Binance never prints one
    n = int(keep.sum())
    table = pa.table(
        {
            "ts_ms": pa.array(trades["ts_ms"][keep], pa.int64()),
            "symbol": pa.array([symbol] * n, pa.string()),
            "price": pa.array(trades["price"][keep], pa.float64()),
            "qty": pa.array(trades["qty"][keep], pa.float64()),
            "side": pa.array(trades["side"][keep], pa.int8()),
        }
    )
    pq.write_table(table, out)


def _minus(span: tuple[int, int], holes: list[tuple[int, int]]) -> int:
    """Length of span minus the union of holes (all in ms)."""
    lo, hi = span
    total, cursor = 0, lo
    for a, b in sorted(holes):
        a, b = max(a, lo), min(b, hi)
        if b <= cursor:
            continue
        if a > cursor:
            total += a - cursor
        cursor = max(cursor, b)
    return total + max(0, hi - cursor)


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def evaluate_event(event: Event, others_t_ms: list[int], episodes: list[tuple[int, bool, float]], workdir: Path,
                   config: PumpConfig, model: Model) -> dict[str, Any]:  # fmt: skip
    """Replay one event and measure its signals (runs in a worker process)."""
    from replay.lockstep import replay_lockstep

    trades = read_trades(event.file)
    dump = workdir / f"{event.event_id}.parquet"
    write_dump(trades, event.symbol, dump)
    scorer = trades_only_scorer(config, model)
    window: list[np.ndarray] = []

    def keep_window(rows: np.ndarray) -> None:
        t_row = rows["row_time_ms"]
        inside = rows[(t_row >= event.t_ms - DETECT_BEFORE_MS) & (t_row <= event.t_ms + DETECT_AFTER_MS)]
        if len(inside):
            window.append(inside)

    result = replay_lockstep(dump, scorer, on_rows=keep_window)
    dump.unlink()
    ts, price = trades["ts_ms"], trades["price"]
    first_ms, last_ms = int(ts[0]), int(ts[-1])
    t = event.t_ms
    # Other known pumps of the coin inside this file (other events, listed background episodes)
    # are not background: their [T'-2h, T'+6h] is cut out like the event's own window.
    excluded = [(o - EVENT_BEFORE_MS, o + EVENT_AFTER_MS) for o in others_t_ms if first_ms <= o <= last_ms]
    excluded += [(s - EVENT_BEFORE_MS, s + EVENT_AFTER_MS) for s, listed, _ in episodes if listed]
    holes = [(t - EVENT_BEFORE_MS, t + EVENT_AFTER_MS)] + excluded
    background_ms = _minus((first_ms, last_ms), holes)

    signals, in_window, background, near_episode = [], [], [], 0
    for d in result.decisions:
        st = int(d.row["row_time_ms"])
        sig = {"t_rel_T_s": _r((st - t) / 1000.0, 1), "price": d.row["last_price"], "pm": _r(d.row["pm"], 4),
               "vsr": _r(d.row["vsr"], 2), "vc": _r(d.row["vc"], 3), "prob": _r(d.prob, 3), "escalation": d.escalation}  # fmt: skip
        signals.append(sig)
        if t - DETECT_BEFORE_MS <= st <= t + DETECT_AFTER_MS:
            in_window.append((st, d))
        elif not any(a <= st <= b for a, b in holes):
            background.append(sig)
            if any(s - EPISODE_MATCH_MS[0] <= st <= s + EPISODE_MATCH_MS[1] for s, listed, _ in episodes if not listed):
                near_episode += 1

    first: dict[str, Any] | None = None
    if in_window:
        st, d = in_window[0]
        p = float(d.row["last_price"])
        behind = ts[(ts >= st - 20 * 60_000) & (ts <= st)]
        trailing_min = float(price[(ts >= st - 20 * 60_000) & (ts <= st)].min()) if len(behind) else p
        after = price[(ts > st) & (ts <= st + PEAK_HORIZON_MS)]
        first = {
            "t_rel_T_s": _r((st - t) / 1000.0, 1),
            "t_rel_labelled_s": _r((st - event.labelled_ms) / 1000.0, 1) if event.labelled_ms is not None else None,
            "t_rel_cross10_s": _r((st - event.cross10_ms) / 1000.0, 1) if event.cross10_ms is not None else None,
            "price": p,
            "rise_behind_vs_p_ref_pct": _r(100.0 * (p / event.p_ref - 1.0), 2),
            "rise_behind_vs_20m_min_pct": _r(100.0 * (p / trailing_min - 1.0), 2),
            "peak_after_pct": _r(100.0 * (float(after.max()) / p - 1.0), 2) if len(after) else 0.0,
            "vsr": _r(d.row["vsr"], 2), "vc": _r(d.row["vc"], 3), "pm": _r(d.row["pm"], 4), "prob": _r(d.prob, 3),
        }  # fmt: skip
    baseline = result.first_baseline_ms.get(event.symbol)
    return {
        "event_id": event.event_id,
        "symbol": event.symbol,
        "meets_10pct_20min": event.meets,
        "trades": int(len(ts)),
        "rows": result.rows,
        "data_hours_before_T": _r((t - first_ms) / HOUR_MS, 2),
        "warmup_hours_to_baseline": _r((baseline - first_ms) / HOUR_MS, 2) if baseline is not None else None,
        "background_hours": _r(background_ms / HOUR_MS, 2),
        "excluded_windows": len(excluded),
        "detected": first is not None,
        "event_window_rules": _rule_diagnosis(np.concatenate(window) if window else None, scorer),
        "first_signal": first,
        "signals_in_event_window": len(in_window),
        "background_signals": len(background),
        "background_signals_near_unlisted_episode": near_episode,
        "background_episodes": [
            {"start_rel_T_h": _r((s - t) / HOUR_MS, 2), "listed_pump": listed, "max_rise_pct": rise}
            for s, listed, rise in episodes
        ],  # fmt: skip
        "signals": signals,
    }


def _rule_diagnosis(rows: np.ndarray | None, scorer: Scorer) -> dict[str, Any]:
    """Rows of [T-30 min, T+30 min]: how many pass each rule, and which rule alone kept the rest out."""
    from core.rowspec import ROW_BASELINE_READY

    if rows is None or len(rows) == 0:
        return {"rows": 0, "blocked_by": "no rows"}
    c: Alpha1Config = scorer.config.profiles.alpha1
    with np.errstate(invalid="ignore"):
        rules = {
            "baseline": (rows["flags"] & ROW_BASELINE_READY) != 0,
            "vsr": rows["vsr"] > c.vsr_min,
            "vc": rows["vc"] < c.vc_max,
            "pm": rows["pm"] > c.pm_min,
        }
    every = TRADES_ONLY_ALPHA1.rule_mask(rows, c)
    prob_ok = np.zeros(len(rows), dtype=bool)
    if every.any():
        prob_ok[every] = scorer.model.probability(rows[every]) >= c.prob_threshold
    blocked = "none" if prob_ok.any() else "prob" if every.any() else "several rules"
    if not every.any():
        for name in ("vc", "vsr", "pm", "baseline"):
            others = np.logical_and.reduce([m for k, m in rules.items() if k != name]) & (
                rows["listing_age_s"] > c.listing_age_min_s
            )
            if others.any():
                blocked = name
                break
    out: dict[str, Any] = {
        "rows": len(rows),
        "blocked_by": blocked,
        "pass_all_rules": int(every.sum()),
        "pass_prob": int(prob_ok.sum()),
    }
    out.update({f"pass_{k}": int(m.sum()) for k, m in rules.items()})
    out["max_vsr"] = _r(float(np.nanmax(rows["vsr"])), 2) if np.isfinite(rows["vsr"]).any() else None
    out["min_vc"] = _r(float(np.nanmin(rows["vc"])), 3) if np.isfinite(rows["vc"]).any() else None
    out["max_pm"] = _r(float(np.nanmax(rows["pm"])), 4) if np.isfinite(rows["pm"]).any() else None
    return out


def _pct(values: list[float], q: float) -> float | None:
    return _r(float(np.percentile(np.array(values), q)), 1) if values else None


def summarise(events: list[dict[str, Any]]) -> dict[str, Any]:
    meets = [e for e in events if e["meets_10pct_20min"]]
    found = [e for e in meets if e["detected"]]
    delays = {k: [e["first_signal"][k] for e in found if e["first_signal"][k] is not None]
              for k in ("t_rel_T_s", "t_rel_labelled_s", "t_rel_cross10_s")}  # fmt: skip
    tp = sum(e["signals_in_event_window"] for e in events)
    fp = sum(e["background_signals"] for e in events)
    days = sum(e["background_hours"] for e in events) / 24.0
    fp_unexplained = fp - sum(e["background_signals_near_unlisted_episode"] for e in events)
    return {
        "events": len(events),
        "events_meeting_10pct_20min": len(meets),
        "detected": len(found),
        "recall": _r(len(found) / len(meets), 4) if meets else None,
        "detected_weak_events": sum(1 for e in events if not e["meets_10pct_20min"] and e["detected"]),
        "delay_s": {k: {"n": len(v), "median": _pct(v, 50), "p90": _pct(v, 90)} for k, v in delays.items()},
        "signals_in_event_windows": tp,
        "background_signals": fp,
        "background_signals_not_near_an_unlisted_episode": fp_unexplained,
        "precision": _r(tp / (tp + fp), 4) if tp + fp else None,
        "background_coin_days": _r(days, 2),
        "false_signals_per_coin_day": _r(fp / days, 4) if days else None,
        "false_signals_per_coin_day_excl_unlisted_episodes": _r(fp_unexplained / days, 4) if days else None,
        "median_rise_behind_vs_p_ref_pct": _pct([e["first_signal"]["rise_behind_vs_p_ref_pct"] for e in found], 50),
        "missed_blocked_by": {
            k: sum(1 for e in meets if not e["detected"] and e["event_window_rules"]["blocked_by"] == k)
            for k in sorted({e["event_window_rules"]["blocked_by"] for e in meets if not e["detected"]})
        },  # fmt: skip
        "median_peak_after_pct": _pct([e["first_signal"]["peak_after_pct"] for e in found], 50),
    }


def _worker(args: tuple[Event, list[int], list[tuple[int, bool, float]], str, PumpConfig, Model]) -> dict[str, Any]:
    event, others, episodes, workdir, config, model = args
    return evaluate_event(event, others, episodes, Path(workdir), config, model)


def run(data: Path, events_n: int | None = None, only: list[str] | None = None, workers: int = 2,
        model_path: Path | None = None, config: PumpConfig | None = None) -> dict[str, Any]:  # fmt: skip
    """Evaluate the selected events; returns the JSON-ready report (no wall-clock values in it)."""
    all_events = load_events(data)
    chosen = all_events
    if only:
        wanted = {s.upper() for s in only}
        chosen = [e for e in chosen if e.event_id.upper() in wanted or e.symbol.upper() in wanted
                  or e.event_id.split("_")[0].upper() in wanted]  # fmt: skip
        if not chosen:
            raise SystemExit(f"eval_pumps: no event matches {' '.join(only)}")
    if events_n is not None:
        chosen = chosen[:events_n]
    config = config or PumpConfig()
    model = load_model(model_path or REPO / config.profiles.alpha1.model_path)
    if model.profile not in config.enabled_profiles:  # --model model.flash.json evaluates that profile alone
        config = dataclasses.replace(config, enabled_profiles=[model.profile])
    episodes = load_episodes(data)
    with tempfile.TemporaryDirectory(prefix="eval_pumps_") as workdir:
        jobs = []
        for e in sorted(chosen, key=lambda e: -e.n_trades):  # big ones first: better packing
            others = [o.t_ms for o in all_events if o.symbol == e.symbol and o.event_id != e.event_id]
            jobs.append((e, others, episodes.get(e.event_id, []), workdir, config, model))
        # One event takes seconds to minutes: count them on stderr (common/progress.py), never in the report.
        if workers <= 1:
            results = list(progress(map(_worker, jobs), len(jobs), "eval_pumps", "events"))
        else:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                results = list(progress(pool.imap_unordered(_worker, jobs), len(jobs), "eval_pumps", "events"))
    results.sort(key=lambda r: r["event_id"])
    excluded = [{"event_id": r["event_id"], "start_rel_T_h": ep["start_rel_T_h"], "reason": "listed pump within 60 min"}
                for r in results for ep in r["background_episodes"] if ep["listed_pump"]]  # fmt: skip
    return {
        "profile": PROFILE,
        "profile_note": PROFILE_NOTE,
        "model": model.profile,
        # Key names as in reports before the per-detector config (detectors.pump.profiles.alpha1.*, cooldown.period_s).
        "scanner": {
            **{k: getattr(config.profiles.alpha1, k) for k in ("prob_threshold", "vsr_min", "vc_max", "pm_min", "listing_age_min_s")},
            "cooldown_s": config.cooldown.period_s,
        },
        "definitions": {
            "detected": "a signal in [T-30 min, T+30 min] (the window in which cross10 is searched)",
            "background": "outside [T-2h, T+6h], minus [T'-2h, T'+6h] of other listed pumps of the coin in the file",
            "precision": "signals in event windows / (those + background signals); other signals near T are ignored",
            "replay": "replay/lockstep.py: emulator frames -> ShardEngine -> ring -> supervisor Scorer, exchange time, one second per step",
        },
        "excluded_background_episodes": excluded,
        "summary": summarise(results),
        "events": results,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m perf.eval_pumps", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, type=Path, help="the pumps folder (events_index.csv, trades/)")
    p.add_argument("--json", required=True, type=Path, help="where to write the report")
    p.add_argument("--events", type=int, default=None, help="only the first N events (by event id)")
    p.add_argument("--only", nargs="+", default=None, metavar="SYM", help="only these coins or event ids")
    p.add_argument("--workers", type=int, default=2, help="processes (events run one per process)")
    p.add_argument("--model", type=Path, default=None, help="model.json (default: the repository's)")
    args = p.parse_args(argv)
    started = time.monotonic()
    report = run(args.data, args.events, args.only, args.workers, args.model)
    args.json.write_text(json.dumps(report, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    s = report["summary"]
    print(json.dumps({k: s[k] for k in ("events", "events_meeting_10pct_20min", "detected", "recall", "delay_s", "precision",
                                        "background_coin_days", "false_signals_per_coin_day")}, indent=1))  # fmt: skip
    print(
        f"eval_pumps: {len(report['events'])} events in {time.monotonic() - started:.0f} s -> {args.json}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
