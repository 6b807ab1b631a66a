"""Offline trainer: fit a profile's logistic model on real pump trades and write its model JSON.

    python -m supervisor.train --data DIR --out model.flash.json [--profile flash]

DIR is a folder laid out like ../shared/data/pumps (events_index.csv + trades/*.csv.xz with
timestamp,side,price,amount). It is read by path and never copied.

Why the same core code: every trade goes through core.windows.TradeWindows and
core.features.fill_rows exactly as a shard feeds them (deals in time order, bars closed on
exchange time, one row per second that traded, written at the end of that second), so the model
sees the features the service will compute. No sockets, no book (book features stay NaN).

Labels (--label):
  onset (default)  positive: the rows of an event that reaches +10 % within 20 min, from 15 s
                   before to 45 s after its cross10 (the moment the scanner's target first holds);
                   negative: every background row (outside [T-2h, T+6h]); rows in between are left
                   out (pre-pump drift, the pump's own aftermath: neither a clean yes nor a no).
                   A detector of the pump's first minute learns the shape of that minute.
  forward          positive when a trade in the next 20 min is >= 10 % above the row's last
                   price, on every row: the target itself, but most positives lie minutes before
                   anything visible, and the fit then rewards slow drift (tried: 30 % event
                   recall, 5 min median delay at 0.1 false signals per coin-day).
The events' labelled 5-s start chunk is noisy (up to 120 s before the move, one chunk per event,
missing for some) and is used only to report delays.

Validation: GroupKFold over events (an event's file, background included, is one group), so no
pump is scored by a model that saw it. The threshold is picked on the out-of-fold probabilities:
the lowest whose background false-signal rate (20 min cooldown, rows outside [T-2h, T+6h]) is
<= --max-fp-per-day. scikit-learn is imported here only: it is a tool dependency
(requirements-dev.txt), never one of the service.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import lzma
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.book import OrderBook
from core.features import fill_rows
from core.rowspec import FEATURE_ROW_DTYPE
from core.windows import TradeWindows
from detectors.model import Model, model_from_dict
from detectors.pump import PUMP

HORIZON_S = 1200
TARGET = 0.10
COOLDOWN_S = 1200
# The profiles this trainer can fit: those whose detectors/pump.py class carries a train_spec.
PROFILES: dict[str, dict[str, Any]] = {p.name: p.train_spec for p in PUMP.profiles if p.train_spec is not None}


@dataclass
class Event:
    """One trade file: its rows and the clocks of its pump."""

    event_id: str
    t_ms: int
    meets: bool
    cross10_s: float
    labelled_s: float
    background_hours: float
    rows: np.ndarray
    label: np.ndarray  # the forward target per row
    onset: np.ndarray  # rows in [cross10 - 15 s, cross10 + 45 s] of an event meeting the target
    background: np.ndarray  # rows outside [T-2h, T+6h]


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def read_trades(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(time_ms, side 1 buy / 2 sell, price, qty) of one trades/*.csv.xz file, in file order."""
    t, side, price, qty = [], [], [], []
    with lzma.open(path, "rt", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        if header[:4] != ["timestamp", "side", "price", "amount"]:
            raise ValueError(f"{path}: header {header!r}, expected timestamp,side,price,amount")
        for row in reader:
            t.append(int(row[0]))
            side.append(1 if row[1] == "buy" else 2)
            price.append(float(row[2]))
            qty.append(float(row[3]))
    return np.array(t, np.int64), np.array(side, np.int32), np.array(price), np.array(qty)


def feature_rows(t: np.ndarray, side: np.ndarray, price: np.ndarray, qty: np.ndarray) -> np.ndarray:
    """One FEATURE_ROW_DTYPE row per traded second, taken when that second's bar closes."""
    win, book = TradeWindows(), OrderBook()
    secs = t // 1000
    cuts = np.flatnonzero(np.diff(secs)) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [len(t)]))
    out = np.zeros(len(starts), FEATURE_ROW_DTYPE)
    listing, ids = np.array([1], np.int64), np.array([0], np.uint32)
    for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
        win.replay_trades(price[a:b], qty[a:b], side[a:b], t[a:b])
        end_ms = (int(secs[a]) + 1) * 1000
        win.advance(end_ms)
        fill_rows([book], [win], end_ms, listing, ids, out[i : i + 1])
    return out


def forward_label(row_ms: np.ndarray, row_price: np.ndarray, t: np.ndarray, price: np.ndarray) -> np.ndarray:
    """True where a trade in (row time, row time + 20 min] is >= 10 % above the row's last price."""
    from scipy.ndimage import maximum_filter1d

    sec0 = int(t[0] // 1000)
    n = int(t[-1] // 1000) - sec0 + 2
    per_sec = np.full(n, -np.inf)
    np.maximum.at(per_sec, (t // 1000 - sec0).astype(np.int64), price)
    # forward max over seconds [s, s + HORIZON_S): a window of size H starting at s
    fwd = maximum_filter1d(per_sec, size=HORIZON_S, origin=-(HORIZON_S // 2), mode="constant", cval=-np.inf)
    idx = (row_ms // 1000 - sec0).astype(np.int64)  # row at the end of second s-1 = start of s
    idx = np.clip(idx, 0, n - 1)
    return fwd[idx] >= (1.0 + TARGET) * row_price


def load_events(data: Path, limit: int = 0) -> list[Event]:
    from common.progress import progress  # the feature pass takes minutes: one tick per event on stderr

    index = data / "events_index.csv"
    with index.open(newline="") as fh:
        entries = list(csv.DictReader(fh))
    if limit:
        entries = entries[:limit]
    events = []
    for e in progress(entries, len(entries), "feature pass", "events"):
        t, side, price, qty = read_trades(data / e["file"])
        order = np.argsort(t, kind="stable")
        t, side, price, qty = t[order], side[order], price[order], qty[order]
        rows = feature_rows(t, side, price, qty)
        label = forward_label(rows["row_time_ms"], rows["last_price"], t, price)
        t_ms = int(dt.datetime.strptime(e["announced_utc"], "%Y-%m-%d %H:%M").replace(tzinfo=dt.UTC).timestamp() * 1000)
        meets, cross10 = e["meets_10pct_20min"] == "True", _float(e["cross10_rel_s"])
        rel = (rows["row_time_ms"] - t_ms) / 1000.0
        onset = (rel >= cross10 - 15) & (rel <= cross10 + 45) if meets and math.isfinite(cross10) else np.zeros(len(rows), bool)
        background = (rel < -2 * 3600) | (rel > 6 * 3600)
        events.append(Event(e["event_id"], t_ms, meets, cross10, _float(e["lamorgia_labeled_start_5S_rel_s"]),
                            _float(e["background_hours"]), rows, label, onset, background))  # fmt: skip
    return events


def data_hash(data: Path) -> str:
    h = hashlib.sha256((data / "events_index.csv").read_bytes())
    for path in sorted((data / "trades").glob("*.csv.xz")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def design(rows: np.ndarray, spec: dict[str, Any]) -> tuple[np.ndarray, dict[str, dict[str, float]]]:
    """Transformed features and their normalisation (median / IQR-based scale) for this spec."""
    norm = {}
    for name in spec["features"]:
        v = rows[name].astype(np.float64)
        if spec["transform"].get(name) == "log1p":
            with np.errstate(invalid="ignore"):
                v = np.log1p(np.maximum(v, 0.0))
        finite = v[np.isfinite(v)]
        lo, mid, hi = np.percentile(finite, [25, 50, 75]) if len(finite) else (0.0, 0.0, 1.0)
        scale = float(hi - lo) / 1.349 or float(np.std(finite)) or 1.0
        norm[name] = {"center": float(mid), "scale": scale}
    return np.empty(0), norm


def model_matrix(model: Model, rows: np.ndarray) -> np.ndarray:
    """Exactly what the service computes before the weights: Model.normalised per feature."""
    return np.column_stack([model.normalised(rows, name) for name in model.features])


def signals(times_ms: np.ndarray, fire: np.ndarray) -> np.ndarray:
    """Signal times with a per-pair cooldown (one signal per pump)."""
    out, last = [], None
    for k in np.flatnonzero(fire):
        if last is None or times_ms[k] - last >= COOLDOWN_S * 1000:
            last = int(times_ms[k])
            out.append(last)
    return np.array(out, np.int64)


def event_check(events: list[Event], probs: list[np.ndarray], ready: list[np.ndarray], thr: float) -> dict[str, Any]:
    """Event recall, delays and background false signals per coin-day at threshold thr."""
    hits, delays_cross, delays_lab, bg_signals, bg_days, bg_true = 0, [], [], 0, 0.0, 0
    meets = 0
    for ev, p, ok in zip(events, probs, ready, strict=True):
        times = ev.rows["row_time_ms"]
        sig = signals(times, (p >= thr) & ok)
        rel = (sig - ev.t_ms) / 1000.0
        in_event = rel[(rel >= -1800) & (rel <= 1800)]
        background = ev.background
        bg_sig = sig[(sig < ev.t_ms - 2 * 3600_000) | (sig > ev.t_ms + 6 * 3600_000)]
        bg_signals += len(bg_sig)
        bg_true += int(np.isin(bg_sig, times[ev.label & background]).sum())
        bg_days += ev.background_hours / 24.0
        if ev.meets:
            meets += 1
            if len(in_event):
                hits += 1
                first = float(in_event[0])
                if math.isfinite(ev.cross10_s):
                    delays_cross.append(first - ev.cross10_s)
                if math.isfinite(ev.labelled_s):
                    delays_lab.append(first - ev.labelled_s)
    return {
        "threshold": round(thr, 5),
        "events_meeting_target": meets,
        "events_detected": hits,
        "recall": round(hits / meets, 4) if meets else None,
        "median_delay_after_cross10_s": round(float(np.median(delays_cross)), 1) if delays_cross else None,
        "p90_delay_after_cross10_s": round(float(np.percentile(delays_cross, 90)), 1) if delays_cross else None,
        "median_delay_after_labelled_start_s": round(float(np.median(delays_lab)), 1) if delays_lab else None,
        "background_signals": bg_signals,
        "background_signals_before_a_10pct_rise": bg_true,
        "background_coin_days": round(bg_days, 1),
        "false_signals_per_coin_day": round((bg_signals - bg_true) / bg_days, 4) if bg_days else None,
        "signals_per_coin_day": round(bg_signals / bg_days, 4) if bg_days else None,
    }


def rules_mask(rows: np.ndarray, profile: str) -> np.ndarray:
    """The profile's rule filter at the config defaults: what the scorer applies before the model."""
    from common.detector_config import PumpConfig

    return PUMP.profile(profile).rule_mask(rows, PUMP.settings(PumpConfig(), profile))


def train(data: Path | None, profile: str, folds: int = 5, c: float = 0.05, max_fp: float = 0.1,
          limit: int = 0, label: str = "onset", log: Any = sys.stderr, events: list[Event] | None = None) -> dict[str, Any]:  # fmt: skip
    """Build rows, cross-validate, fit on all rows; returns the model JSON as a dict.

    events: already built (supervisor/selftrain.py, from the recorder's ticks) instead of read from data.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    from common.progress import progress  # stderr (log) only: the model JSON and stdout stay as they were

    spec = PROFILES[profile]
    started = time.monotonic()
    if events is None:
        assert data is not None, "train() needs data or events"
        events = load_events(data, limit)
    print(f"feature pass: {len(events)} events, {sum(len(e.rows) for e in events)} rows, "
          f"{time.monotonic() - started:.0f} s", file=log)  # fmt: skip
    rows = np.concatenate([e.rows for e in events])
    if label == "onset":
        y = np.concatenate([e.onset for e in events])
        usable = np.concatenate([e.onset | e.background for e in events])
    else:
        y = np.concatenate([e.label for e in events])
        usable = np.ones(len(rows), bool)
    groups = np.concatenate([np.full(len(e.rows), i) for i, e in enumerate(events)])
    ready = (rows["flags"] & spec["ready_flag"]) != 0
    fit_rows = ready & usable
    rules = rules_mask(rows, profile)
    _, norm = design(rows[ready], spec)
    base = {"profile": profile, "features": spec["features"], "transform": spec["transform"], "norm": norm,
            "weights": dict.fromkeys(spec["features"], 0.0), "beta0": 0.0, "beta": 1.0}  # fmt: skip
    x = model_matrix(model_from_dict(base), rows)
    oof = np.zeros(len(rows))
    aucs = []
    n_folds = min(folds, len(events))
    folds_split = GroupKFold(n_splits=n_folds).split(x, y, groups)
    for train_idx, test_idx in progress(folds_split, n_folds, "cross-validation", "folds", stream=log):
        tr = train_idx[fit_rows[train_idx]]
        clf = LogisticRegression(C=c, class_weight="balanced", max_iter=500)
        clf.fit(x[tr], y[tr])
        oof[test_idx] = clf.predict_proba(x[test_idx])[:, 1]
        te = test_idx[fit_rows[test_idx]]
        if 0 < y[te].sum() < len(te):
            aucs.append(float(roc_auc_score(y[te], oof[te])))
    auc_oof = float(roc_auc_score(y[fit_rows], oof[fit_rows]))
    oof[~(ready & rules)] = 0.0  # the rule filter comes before the model, as in the scorer
    split = np.cumsum([len(e.rows) for e in events])[:-1]
    probs, readies = np.split(oof, split), np.split(ready, split)
    # the lowest threshold whose out-of-fold background false-signal rate meets max_fp
    chosen = None
    grid = np.concatenate((np.arange(0.50, 0.95, 0.01), np.arange(0.95, 0.999, 0.001), np.arange(0.999, 0.99999, 0.0001)))
    for thr in np.round(grid, 5):
        check = event_check(events, probs, readies, float(thr))
        if check["false_signals_per_coin_day"] is not None and check["false_signals_per_coin_day"] <= max_fp:
            chosen = check
            break
    if chosen is None:
        chosen = event_check(events, probs, readies, 0.999)
    thr = chosen["threshold"]
    fire = (oof >= thr) & fit_rows
    tp = int((fire & y).sum())
    final = LogisticRegression(C=c, class_weight="balanced", max_iter=500).fit(x[fit_rows], y[fit_rows])
    weights = {name: round(float(w), 6) for name, w in zip(spec["features"], final.coef_[0], strict=True)}
    model = dict(base, weights=weights, beta0=round(float(final.intercept_[0]), 6))
    model["description"] = (f"profile {profile}: logistic model trained by supervisor.train on real pump trades "
                            f"(label: {label}, see supervisor/train.py); signal when prob >= trained.threshold "
                            f"(config detectors.pump.profiles.{profile}.prob_threshold) and the profile's rules pass")  # fmt: skip
    model["trained"] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data_sha256_16": data_hash(data) if data is not None else None,
        "events": len(events),
        "rows": int(len(rows)),
        "rows_fitted": int(fit_rows.sum()),
        "positives": int(y[fit_rows].sum()),
        "label": label,
        "cv": f"GroupKFold by event, {n_folds} folds",
        "regularisation_C": c,
        "auc_oof": round(auc_oof, 4),
        "auc_per_fold": [round(a, 4) for a in aucs],
        "threshold": thr,
        "precision_rows": round(tp / max(int(fire.sum()), 1), 4),
        "recall_rows": round(tp / max(int((y & fit_rows).sum()), 1), 4),
        "event_check_oof": chosen,
        "seconds": round(time.monotonic() - started, 1),
    }
    model_from_dict(model)  # what the service will load
    return model


def check(data: Path, model_path: Path, threshold: float, limit: int = 0) -> dict[str, Any]:
    """The event-level check of a model file as the scorer applies it (rules, prob >= threshold)."""
    from detectors.model import load_model

    model = load_model(model_path)
    events = load_events(data, limit)
    spec = PROFILES[model.profile]
    probs, readies = [], []
    for ev in events:
        ok = ((ev.rows["flags"] & spec["ready_flag"]) != 0) & rules_mask(ev.rows, model.profile)
        probs.append(np.where(ok, model.probability(ev.rows), 0.0))
        readies.append(ok)
    return event_check(events, probs, readies, threshold)


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if "--self-train" in argv:  # the daily job on the recorder's ticks (supervisor/selftrain.py)
        from supervisor.selftrain import main as selftrain_main

        return selftrain_main([a for a in argv if a != "--self-train"])
    ap = argparse.ArgumentParser(prog="python -m supervisor.train", description=__doc__.split("\n\n")[0],
                                 epilog="python -m supervisor.train --self-train -h: the daily self-training job")  # fmt: skip
    ap.add_argument("--data", required=True, type=Path, help="folder with events_index.csv and trades/")
    ap.add_argument("--out", type=Path, help="model JSON to write")
    ap.add_argument("--check", type=Path, help="instead of training: event-level check of this model file")
    ap.add_argument("--threshold", type=float, default=None, help="--check threshold (default: the file's trained one)")
    ap.add_argument("--profile", default="flash", choices=sorted(PROFILES))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--C", type=float, default=0.05, help="inverse L2 regularisation strength")
    ap.add_argument("--max-fp-per-day", type=float, default=0.1)
    ap.add_argument("--label", default="onset", choices=("onset", "forward"))
    ap.add_argument("--limit", type=int, default=0, help="use only the first N events (smoke runs)")
    args = ap.parse_args(argv)
    if not (args.data / "events_index.csv").is_file():
        print(f"{args.data}: no events_index.csv", file=sys.stderr)
        return 2
    if args.check:
        trained = json.loads(args.check.read_text(encoding="utf-8")).get("trained") or {}
        thr = args.threshold if args.threshold is not None else float(trained.get("threshold", 0.5))
        print(json.dumps(check(args.data, args.check, thr, args.limit), indent=2))
        return 0
    if args.out is None:
        print("--out is required when training", file=sys.stderr)
        return 2
    model = train(args.data, args.profile, args.folds, args.C, args.max_fp_per_day, args.limit, args.label)
    args.out.write_text(json.dumps(model, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(model["trained"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
