"""Event-grouped cross-validation of the flash profile's model on the replayed rows.

Why on the replay's rows: they are the rows the service scores (closed bars and candidate rows
at the 100 ms cadence, perf/eval_replay.py), so a model and threshold chosen here are judged on
exactly what it will see. Training uses the closed-bar rows only, labelled as supervisor.train
labels them (onset: cross10 - 15 s .. + 45 s of an event reaching +10 % in 20 min; negative:
background outside [T-2h, T+6h]); every row, candidates included, gets an out-of-fold
probability from the fold's model that never saw its event (GroupKFold by event).

Model kinds:
  logistic  detectors/model.py's logistic model (the shipped kind), fitted as supervisor.train
            does (median/IQR normalisation, log1p on counts, C=0.05, balanced classes)
  lgbm      LightGBM (a tool dependency only) on the same features, or on more (lgbm_more)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.rowspec import ROW_CANDIDATE, ROW_FLASH_READY
from detectors.model import Model, model_from_dict
from detectors.pump import FLASH
from perf.eval_data import EVENT_AFTER_MS, EVENT_BEFORE_MS, Event
from perf.eval_replay import Batches

SPEC: dict[str, Any] = FLASH.train_spec or {}
MORE_FEATURES = [*SPEC.get("features", []), "trades_10s", "buy_share_10s", "vsr", "pm"]
ONSET_S = (-15.0, 45.0)
NEG_STRIDE = 10
C = 0.05
LGBM_PARAMS: dict[str, Any] = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 200,
                               "subsample": 0.5, "subsample_freq": 1, "colsample_bytree": 0.8, "reg_lambda": 1.0,
                               "n_estimators": 150, "verbose": -1, "num_threads": 1, "seed": 7, "deterministic": True}  # fmt: skip


@dataclass
class Labelled:
    """One event's replayed rows with their training labels."""

    event: Event
    batches: Batches
    y: np.ndarray  # onset rows
    fit: np.ndarray  # rows a model is fitted on (closed bars, flash-ready, onset or background)
    background: np.ndarray


def label(event: Event, b: Batches) -> Labelled:
    rows = b.rows
    rel_s = (rows["row_time_ms"] - event.t_ms) / 1000.0
    cross = (event.cross10_ms - event.t_ms) / 1000.0 if event.cross10_ms is not None else math.nan
    if event.meets and math.isfinite(cross):
        y = (rel_s >= cross + ONSET_S[0]) & (rel_s <= cross + ONSET_S[1])
    else:
        y = np.zeros(len(rows), dtype=bool)
    background = (rel_s < -EVENT_BEFORE_MS / 1000) | (rel_s > EVENT_AFTER_MS / 1000)
    closed = (rows["flags"] & ROW_CANDIDATE) == 0
    ready = (rows["flags"] & ROW_FLASH_READY) != 0
    return Labelled(event, b, y, closed & ready & (y | background), background)


def logistic_model(rows: np.ndarray, y: np.ndarray, threshold: float | None = None) -> Model:
    """Fit the shipped kind of model on rows (all of them fitted) and return it as the service loads it."""
    from sklearn.linear_model import LogisticRegression

    norm = {}
    for name in SPEC["features"]:
        v = rows[name].astype(np.float64)
        if SPEC["transform"].get(name) == "log1p":
            with np.errstate(invalid="ignore"):
                v = np.log1p(np.maximum(v, 0.0))
        finite = v[np.isfinite(v)]
        lo, mid, hi = np.percentile(finite, [25, 50, 75]) if len(finite) else (0.0, 0.0, 1.0)
        norm[name] = {"center": float(mid), "scale": float(hi - lo) / 1.349 or float(np.std(finite)) or 1.0}
    base = {"profile": "flash", "features": SPEC["features"], "transform": SPEC["transform"], "norm": norm,
            "weights": dict.fromkeys(SPEC["features"], 0.0), "beta0": 0.0, "beta": 1.0}  # fmt: skip
    zero = model_from_dict(base)
    x = np.column_stack([zero.normalised(rows, name) for name in zero.features])
    clf = LogisticRegression(C=C, class_weight="balanced", max_iter=500).fit(x, y)
    weights = {name: round(float(w), 6) for name, w in zip(SPEC["features"], clf.coef_[0], strict=True)}
    return model_from_dict(dict(base, weights=weights, beta0=round(float(clf.intercept_[0]), 6)))


def matrix(rows: np.ndarray, features: list[str]) -> np.ndarray:
    return np.column_stack([rows[name].astype(np.float64) for name in features])


def lgbm_model(rows: np.ndarray, y: np.ndarray, features: list[str]) -> Any:
    """Every onset row and a fixed tenth of the others (weighted x10): the same ranking at a tenth of the
    cost; no class reweighting, so the top probabilities stay apart (thresholds there are not ties)."""
    import lightgbm as lgb

    keep = y | (np.arange(len(y)) % NEG_STRIDE == 0)
    weight = np.where(y[keep], 1.0, float(NEG_STRIDE))
    return lgb.LGBMClassifier(**LGBM_PARAMS).fit(matrix(rows[keep], features), y[keep], sample_weight=weight)


def fit(kind: str, rows: np.ndarray, y: np.ndarray) -> Any:
    if kind == "logistic":
        return logistic_model(rows, y)
    return lgbm_model(rows, y, SPEC["features"] if kind == "lgbm" else MORE_FEATURES)


def predict(kind: str, model: Any, rows: np.ndarray) -> np.ndarray:
    if kind == "logistic":
        return model.probability(rows)
    return model.predict_proba(matrix(rows, SPEC["features"] if kind == "lgbm" else MORE_FEATURES))[:, 1]


def oof(kind: str, data: list[Labelled], folds: list[list[int]], log: Any = None) -> list[np.ndarray]:
    """Out-of-fold probability of every row of every event (folds: event indices per fold)."""
    out: list[np.ndarray] = [np.zeros(0)] * len(data)
    for k, test in enumerate(folds):
        train = [i for i in range(len(data)) if i not in set(test)]
        rows = np.concatenate([data[i].batches.rows[data[i].fit] for i in train])
        y = np.concatenate([data[i].y[data[i].fit] for i in train])
        model = fit(kind, rows, y)
        for i in test:
            out[i] = predict(kind, model, data[i].batches.rows)
        if log is not None:
            print(f"eval_cv: {kind} fold {k + 1}/{len(folds)}: {len(rows)} rows, {int(y.sum())} onset", file=log, flush=True)
    return out


def group_folds(events: list[Event], n: int = 5) -> list[list[int]]:
    """Events into n folds, a coin's events together (a coin's files overlap in time), balanced by size."""
    coins: dict[str, list[int]] = {}
    for i, e in enumerate(events):
        coins.setdefault(e.symbol, []).append(i)
    folds: list[list[int]] = [[] for _ in range(n)]
    load = [0] * n
    for members in sorted(coins.values(), key=lambda m: (-sum(events[i].n_trades for i in m), events[m[0]].event_id)):
        k = int(np.argmin(load))
        folds[k].extend(members)
        load[k] += sum(events[i].n_trades for i in members)
    return [sorted(f) for f in folds]
