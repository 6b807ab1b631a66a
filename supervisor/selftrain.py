"""Self-training, the daily job: fit a profile's model on the recorder's MEXC ticks plus the outcome
table, and swap it in only if it beats the running model on the most recent held-back days.

    python -m supervisor.train --self-train [--config config.yaml] [--profile flash] [--days 7] [--holdout-days 1]

Data: the tick recorder's finished hourly dumps (recorder.dir, shards/recorder.py; needs
recorder.enabled: true) of the last --days days, per symbol, through the same feature code as the
offline trainer (supervisor/train.py: feature_rows). Trades only, so only trade-based profiles
(flash) are trained here. At most --max-symbols symbols (those that pumped, then the most traded):
the feature pass costs time and memory per traded second.

Labels, per symbol: a pump is the first trade >= 10 % above the lowest trade of the 20 minutes
before it (the target the outcome tracker checks, seen from the bottom); like train.py's onset
label, rows from 15 s before to 45 s after that crossing are positives and rows outside every
pump's [T-2h, T+6h] are background negatives. The outcome table then labels the service's own
signals: the row of a signal whose outcome was `hit` is a positive, of a `miss` a negative (what
the running model got wrong is what the next one should learn).

Held back: every pump and background day in the newest --holdout-days UTC days is kept out of the
fit. The candidate is fitted on the older days (train.train: GroupKFold by event, threshold from
the out-of-fold false-signal rate), then candidate and running model (at its running
prob_threshold, both under the running rule settings) are checked on the held-back days with the
same event check (train.event_check).
The candidate beats the running model when it is at least as good on both event recall and false
signals per coin-day and better on one; a tie or a trade-off keeps the running model, and so does
a held-back set shorter than --min-holdout-coin-days.

Install (supervisor/running_models.py): the winner is written to a new file
SCANNER_DATA_DIR/models/model.<profile>.<UTC stamp>.json, then models/install.json is replaced
atomically; the running supervisor applies it within seconds without a restart (log line + owner
notice). Every run's report goes to models/selftrain-last.json and stdout; the reason of a refusal
is logged. Exit 0: ran (installed or kept out); 1: the fit failed (e.g. too few pumps for --folds);
3: no data to train on (is the recorder on?).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from detectors.model import Model, ModelError, load_model, model_from_dict
from detectors.pump import PUMP
from supervisor import train
from supervisor.running_models import models_dir, write_install

log = logging.getLogger("scanner.selftrain")

DAY_MS = 86_400_000
LOOKBACK_S = 1200  # the 20-minute low a pump is measured from
BEFORE_MS, AFTER_MS = 2 * 3_600_000, 6 * 3_600_000  # a pump's window, as train.py's events
Ticks = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # time ms, side (1 buy / 2 sell), price, qty


def read_ticks(directory: Path, since_ms: int) -> dict[str, Ticks]:
    """Every finished hourly dump of the recorder from since_ms on, per symbol, in time order.

    Symbols are dictionary-encoded while reading: ~29 bytes per trade in memory, not a string each.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    names: dict[str, int] = {}
    parts: list[tuple[np.ndarray, ...]] = []
    for path in sorted(directory.glob("ticks-s*-*.parquet")):  # *.parquet.part is still being written
        try:
            hour_ms = int(dt.datetime.strptime(path.stem.rsplit("-", 1)[1], "%Y%m%dT%H").replace(tzinfo=dt.UTC).timestamp() * 1000)
        except ValueError:
            continue
        if hour_ms + 3_600_000 <= since_ms:
            continue
        table = pq.read_table(path, columns=["ts_ms", "symbol", "price", "qty", "side"])
        table = table.filter(pc.greater_equal(table["ts_ms"], since_ms)).combine_chunks()
        if table.num_rows == 0:
            continue
        codes = table["symbol"].dictionary_encode().combine_chunks()
        local = np.array([names.setdefault(str(n), len(names)) for n in codes.dictionary.to_pylist()], np.int32)
        parts.append((local[codes.indices.to_numpy()], table["ts_ms"].to_numpy(), table["side"].to_numpy().astype(np.int32),
                      table["price"].to_numpy(), table["qty"].to_numpy()))  # fmt: skip
    if not parts:
        return {}
    sym, t, side, price, qty = (np.concatenate(cols) for cols in zip(*parts, strict=True))
    order = np.lexsort((t, sym))  # stable per symbol: same-ms trades keep the recorder's order
    sym, t, side, price, qty = sym[order], t[order], side[order], price[order], qty[order]
    ids, starts = np.unique(sym, return_index=True)
    ends = np.append(starts[1:], len(sym))
    by_id = {v: k for k, v in names.items()}
    return {by_id[int(i)]: (t[a:b], side[a:b], price[a:b], qty[a:b]) for i, a, b in zip(ids, starts, ends, strict=True)}


def choose(ticks: dict[str, Ticks], max_symbols: int) -> dict[str, Ticks]:
    """At most max_symbols symbols (the feature pass costs time and memory per traded second):
    every symbol that pumped first, then the most traded ones."""
    if len(ticks) <= max_symbols:
        return ticks
    rank = sorted(ticks, key=lambda s: (-len(crossings(ticks[s][0], ticks[s][2])), -len(ticks[s][0]), s))
    return {s: ticks[s] for s in rank[:max_symbols]}


def crossings(t: np.ndarray, price: np.ndarray) -> list[int]:
    """Pump times (ms): the first trade >= 10 % above the lowest trade of the previous 20 min, windows apart."""
    from scipy.ndimage import minimum_filter1d

    sec = t // 1000
    sec0 = int(sec[0])
    lows = np.full(int(sec[-1]) - sec0 + 1, np.inf)
    np.minimum.at(lows, sec - sec0, price)
    trailing = minimum_filter1d(lows, size=LOOKBACK_S, origin=(LOOKBACK_S - 1) // 2, mode="nearest")  # [s-1199, s]
    hits = np.flatnonzero(price >= (1.0 + train.TARGET) * trailing[sec - sec0])
    out: list[int] = []
    for k in hits.tolist():
        if not out or int(t[k]) > out[-1] + BEFORE_MS + AFTER_MS:
            out.append(int(t[k]))
    return out


def symbol_events(symbol: str, ticks: Ticks, outcomes: list[tuple[int, str]]) -> list[train.Event]:
    """One Event per pump ([T-2h, T+6h]) and one per UTC day of the remaining background rows."""
    t, side, price, qty = ticks
    rows = train.feature_rows(t, side, price, qty)
    label = train.forward_label(rows["row_time_ms"], rows["last_price"], t, price)
    rt = rows["row_time_ms"]
    pumps = crossings(t, price)
    onset, in_pump = np.zeros(len(rows), bool), np.zeros(len(rows), bool)
    for cross in pumps:
        in_pump |= (rt >= cross - BEFORE_MS) & (rt <= cross + AFTER_MS)
        onset |= (rt >= cross - 15_000) & (rt <= cross + 45_000)
    background = ~in_pump
    for t_ms, outcome in outcomes:  # the service's own signals: hit = a good moment, miss = a false alarm
        k = int(np.searchsorted(rt, t_ms))
        if k < len(rt) and rt[k] - t_ms <= 1000:
            onset[k], background[k] = outcome == "hit", outcome != "hit"
    events = []
    for cross in pumps:
        m = (rt >= cross - BEFORE_MS) & (rt <= cross + AFTER_MS)
        events.append(train.Event(f"{symbol}@{cross}", cross, True, 0.0, math.nan, 0.0, rows[m], label[m], onset[m], background[m]))
    day = rt // DAY_MS
    for d in np.unique(day[~in_pump]).tolist():
        m = ~in_pump & (day == d)
        hours = max(float(rt[m].max() - rt[m].min()) / 3_600_000, 1 / 3600)
        events.append(train.Event(f"{symbol}@day{d}", 0, False, math.nan, math.nan, hours, rows[m], label[m], onset[m], background[m]))
    return events


def start_ms(event: train.Event) -> int:
    return event.t_ms if event.meets else int(event.rows["row_time_ms"].min())


def check(events: list[train.Event], model: Model, threshold: float, settings: Any) -> dict[str, Any]:
    """The event check of a model on events, as the scorer applies it (ready flag, the running rules, prob >= threshold)."""
    spec = train.PROFILES[model.profile]
    profile = PUMP.profile(model.profile)
    probs, readies = [], []
    for ev in events:
        ok = ((ev.rows["flags"] & spec["ready_flag"]) != 0) & profile.rule_mask(ev.rows, settings)
        probs.append(np.where(ok, model.probability(ev.rows), 0.0))
        readies.append(ok)
    return train.event_check(events, probs, readies, threshold)


def verdict(candidate: dict[str, Any], running: dict[str, Any] | None, min_coin_days: float) -> tuple[bool, str]:
    """(install?, why): at least as good on recall and false signals per coin-day, better on one."""
    days = candidate.get("background_coin_days") or 0.0
    if days < min_coin_days:
        return False, f"kept out: held-back days hold {days} coin-days of background, fewer than {min_coin_days}"
    rc, fc = candidate.get("recall") or 0.0, candidate.get("false_signals_per_coin_day") or 0.0
    if running is None:
        return True, f"installed: no running model to beat (candidate recall {rc:.0%}, {fc:.3f} false signals per coin-day)"
    rr, fr = running.get("recall") or 0.0, running.get("false_signals_per_coin_day") or 0.0
    figures = (f"held back {candidate.get('events_meeting_target', 0)} pumps, {days} coin-days: candidate recall {rc:.0%}, "
               f"{fc:.3f} false/coin-day vs running recall {rr:.0%}, {fr:.3f} false/coin-day")  # fmt: skip
    if rc >= rr and fc <= fr and (rc > rr or fc < fr):
        return True, "installed: beats the running model; " + figures
    return False, "kept out: does not beat the running model (needs >= on recall and <= on false signals, better on one); " + figures


def run(config_path: Path, profile: str, days: int, holdout_days: int, folds: int = 5, c: float = 0.05,
        max_fp: float = 0.1, min_coin_days: float = 1.0, install: bool = True, ticks_dir: Path | None = None,
        now_ms: int | None = None, max_symbols: int = 300) -> dict[str, Any]:  # fmt: skip
    """One self-training run; returns its report (also written to models/selftrain-last.json)."""
    from store.history import Store
    from supervisor.overrides import load_effective_config

    config = load_effective_config(config_path)
    directory = ticks_dir or Path(config.recorder.dir)
    now_ms = now_ms if now_ms is not None else int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    ticks = read_ticks(directory, now_ms - days * DAY_MS)
    report: dict[str, Any] = {"profile": profile, "ticks_dir": str(directory), "symbols_recorded": len(ticks), "installed": False}
    ticks = choose(ticks, max_symbols)
    report["symbols"] = len(ticks)
    store = Store(config.storage.data_dir)
    try:
        labelled = store.labelled_signals(now_ms - days * DAY_MS)
    finally:
        store.close()
    events: list[train.Event] = []
    for symbol, data in ticks.items():
        events += symbol_events(symbol, data, labelled.get(symbol, []))
    cutoff = (max((int(e.rows["row_time_ms"].max()) for e in events if len(e.rows)), default=0) // DAY_MS - holdout_days + 1) * DAY_MS
    fit = [e for e in events if start_ms(e) < cutoff and len(e.rows)]
    held = [e for e in events if start_ms(e) >= cutoff and len(e.rows)]
    report.update(events_fit=len(fit), events_held_back=len(held), pumps_fit=sum(e.meets for e in fit),
                  pumps_held_back=sum(e.meets for e in held), outcome_labels=sum(map(len, labelled.values())))  # fmt: skip
    if not any(e.meets for e in fit) or len(fit) < 2 or not held:
        report["reason"] = (f"no data: {len(fit)} events ({report['pumps_fit']} pumps) before the held-back days and {len(held)} in them;"
                            f" need a pump and 2 events to fit and held-back events: more than --holdout-days {holdout_days} days of "
                            f"recorded ticks in {directory} (is recorder.enabled on?)")  # fmt: skip
        return _finish(config, report)
    try:
        candidate = train.train(None, profile, folds, c, max_fp, events=fit)
    except ValueError as exc:  # e.g. a fold without a positive row: too few pumps for --folds
        report["reason"] = f"training failed, the running model stays: {exc}"
        return _finish(config, report)
    threshold = float(candidate["trained"]["threshold"])
    settings = PUMP.settings(config.detectors.pump, profile)
    cand_check = check(held, model_from_dict(candidate), threshold, settings)
    path = Path(settings.model_path) if Path(settings.model_path).is_absolute() else config_path.parent / settings.model_path
    try:
        running: Model | None = load_model(path)
    except ModelError as exc:
        log.warning("running model unreadable, the candidate only has to be valid", extra={"error": str(exc)[:200]})
        running = None
    run_check = check(held, running, settings.prob_threshold, settings) if running is not None else None
    ok, reason = verdict(cand_check, run_check, min_coin_days)
    candidate["trained"].update(source="self-training: recorder ticks + outcomes", outcome_labels=report["outcome_labels"],
                                holdout={"days": holdout_days, "candidate": cand_check, "running": run_check, "verdict": reason})  # fmt: skip
    candidate["description"] = (f"profile {profile}: logistic model self-trained by supervisor/selftrain.py on the recorder's MEXC "
                                f"ticks and the outcome table; installed only after beating the running model on held-back days")  # fmt: skip
    report.update(reason=reason, candidate=cand_check, running=run_check, candidate_threshold=threshold,
                  running_model=str(path), running_threshold=settings.prob_threshold)  # fmt: skip
    if ok and install:
        stamp = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        out, n = models_dir(config) / f"model.{profile}.{stamp}.json", 1
        while out.exists():  # never overwrite a file a running service may have loaded
            out, n = models_dir(config) / f"model.{profile}.{stamp}-{n}.json", n + 1
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(candidate, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, out)
        write_install(models_dir(config), {"id": out.stem, "detector": PUMP.name, "profile": profile, "model_path": str(out.resolve()),
                                           "prob_threshold": threshold, "reason": reason})  # fmt: skip
        report.update(installed=True, model_path=str(out.resolve()))
    return _finish(config, report)


def _finish(config: Any, report: dict[str, Any]) -> dict[str, Any]:
    report["finished"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    (log.info if report["installed"] else log.warning)("self-training: " + str(report.get("reason")), extra={"profile": report["profile"]})
    directory = models_dir(config)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "selftrain-last.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    from common.config import ConfigError
    from common.logs import setup_logging
    from supervisor.overrides import load_effective_config

    ap = argparse.ArgumentParser(prog="python -m supervisor.train --self-train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=Path("config.yaml"))
    ap.add_argument("--profile", default="flash", choices=sorted(train.PROFILES))
    ap.add_argument("--days", type=int, default=7, help="days of recorded ticks to use (default 7)")
    ap.add_argument("--holdout-days", type=int, default=1, help="newest days kept out of the fit to compare the models (default 1)")
    ap.add_argument("--min-holdout-coin-days", type=float, default=1.0)
    ap.add_argument("--ticks", type=Path, default=None, help="tick dumps folder (default: recorder.dir of the config)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--C", type=float, default=0.05)
    ap.add_argument("--max-fp-per-day", type=float, default=0.1)
    ap.add_argument("--max-symbols", type=int, default=300, help="symbols to train on: those that pumped, then the most traded")
    ap.add_argument("--dry-run", action="store_true", help="evaluate and report, never install")
    args = ap.parse_args(argv)
    try:
        config = load_effective_config(args.config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.logging.level, "selftrain", config.secrets(), config.storage.data_dir)
    report = run(args.config, args.profile, args.days, args.holdout_days, args.folds, args.C, args.max_fp_per_day,
                 args.min_holdout_coin_days, not args.dry_run, args.ticks, max_symbols=args.max_symbols)  # fmt: skip
    print(json.dumps(report, indent=2, default=str))
    reason = str(report.get("reason", ""))
    return 3 if reason.startswith("no data") else 1 if reason.startswith("training failed") else 0
