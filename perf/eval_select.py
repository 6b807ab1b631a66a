"""Choose the default by the trader's figures under event-grouped cross-validation, and ship it.

    python -m perf.eval_select --data DIR --cache DIR [--json OUT] [--write]

Why here: the threshold the service runs must come from the code that measures it, never be
copied by hand. This script scores every candidate on the replayed batches (perf/eval_replay.py)
through the supervisor's Scorer (perf/eval_cards.py) with out-of-fold probabilities
(perf/eval_cv.py), prices every card (perf/eval_trader.py) and picks, by one rule fixed in
advance (RULE), the candidate; --write fits the chosen model on every event and writes
model.flash.json and the flash keys of config.yaml. Candidates: model kind (logistic, lgbm,
lgbm_more) x the flash rule ret_25s_min x the probability threshold, alone or followed by alpha1.

Honesty: folds group a coin's events (perf/eval_cv.group_folds). The figures reported as "cv"
come from nested selection: for each fold the rule picks a candidate on the other folds' events
and that candidate's cards on the fold's own events are kept; so the selection itself is judged
on events it never saw. The held-out split (../pumps-holdout) is not readable here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.detector_config import Alpha1Config, CooldownConfig, FlashConfig
from common.progress import progress
from detectors.model import load_model
from detectors.pump import FLASH
from perf.eval_cards import TRADES_ONLY_ALPHA1, fast_cards
from perf.eval_cv import Labelled, group_folds, label, oof
from perf.eval_data import event_holes, load_episodes, load_events, read_trades
from perf.eval_measure import measure, summarise
from perf.eval_replay import replay_batches
from perf.eval_trader import Trader

REPO = Path(__file__).resolve().parent.parent
MAX_FALSE_PER_COIN_DAY = 0.05
MIN_RECALL = 0.90
RULE = (f"among candidates with recall >= {MIN_RECALL} and <= {MAX_FALSE_PER_COIN_DAY} false cards per coin-day, the "
        "highest total return per coin-day (Buy on every card, 1 s latency, fees, fixed TP/SL exits); if none, the "
        "highest recall among those within the false-card bound; if none, the fewest false cards")  # fmt: skip
RET_MINS = (0.0, 0.01)
LEVELS = tuple(float(x) for x in np.round(np.linspace(2.0, 4.5, 11), 2))  # -log10 of the share of background rows above


@dataclass
class Ctx:
    """One event, ready to be scored many times."""

    data: Labelled
    trades: dict[str, np.ndarray]
    trader: Trader
    holes: list[tuple[int, int]]
    episodes: list[tuple[int, bool, float]]
    background_hours: float
    alpha1: tuple[np.ndarray, np.ndarray]  # the specification's profile (trades only): fires, prob
    flash_rules: dict[float, np.ndarray]  # ret_25s_min -> the flash profile's rules pass


class LookupModel:
    """A model whose probabilities were computed beforehand (out of fold), found by the row's ring seq."""

    profile = "flash"
    trained: dict[str, Any] | None = {"kind": "out-of-fold"}

    def __init__(self, seq: np.ndarray, prob: np.ndarray) -> None:
        self.seq, self.prob = seq, prob

    def probability(self, rows: np.ndarray) -> np.ndarray:
        return self.prob[np.searchsorted(self.seq, rows["seq"])]


def load(data: Path, cache: Path, limit: int | None = None) -> list[Ctx]:
    import tempfile

    events = load_events(data)[:limit]
    episodes = load_episodes(data)
    out = []
    with tempfile.TemporaryDirectory(prefix="eval_select_") as work:
        for e in progress(events, len(events), "eval_select: events", "events"):
            trades = read_trades(e.file)
            b = replay_batches(e, trades, Path(work), cache)
            others = [o.t_ms for o in events if o.symbol == e.symbol and o.event_id != e.event_id]
            holes, bg_ms = event_holes(e, others, episodes.get(e.event_id, []), int(trades["ts_ms"][0]), int(trades["ts_ms"][-1]))
            alpha1 = TRADES_ONLY_ALPHA1.fire(b.rows, Alpha1Config(), load_model(REPO / Alpha1Config().model_path))
            rules = {r: FLASH.rule_mask(b.rows, FlashConfig(ret_25s_min=r)) for r in RET_MINS}
            out.append(Ctx(label(e, b), trades, Trader(trades), holes, episodes.get(e.event_id, []), bg_ms / 3_600_000,
                           alpha1, rules))  # fmt: skip
    return out


def event_measure(ctx: Ctx, fired: list[tuple[str, np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """One candidate's cards on one event (perf/eval_cards.fast_cards: the Scorer's choice, proven equal)."""
    cards = fast_cards(ctx.data.batches, fired, CooldownConfig())
    return measure(ctx.data.event, cards, ctx.trades, ctx.trader, ctx.holes, ctx.episodes)


def fired_by(ctx: Ctx, cand: dict[str, Any], prob: np.ndarray | None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(profile, fires, prob) in the candidate's profile order."""
    out = []
    if prob is not None:
        out.append(("flash", ctx.flash_rules[cand["ret_25s_min"]] & (prob >= cand["threshold"]), prob))
    if cand["kind"] is None or cand.get("with_alpha1"):
        out.append(("alpha1", *ctx.alpha1))
    return out


def summary(ctxs: list[Ctx], measures: list[dict[str, Any]]) -> dict[str, Any]:
    events = [{"meets_10pct_20min": c.data.event.meets, "background_hours": c.background_hours, "by_profile": {"c": m},
               "signals": [dict(s, profile="c") for s in m["signals"]]} for c, m in zip(ctxs, measures, strict=True)]  # fmt: skip
    return summarise(events, "c")


def _grade(s: dict[str, Any]) -> tuple[float, ...]:
    """RULE as a sort key (larger is better)."""
    fp, recall = s["false_signals_per_coin_day"], s["recall"] or 0.0
    total = s["trader_fixed"]["total_ret_pct_per_coin_day"]
    if fp <= MAX_FALSE_PER_COIN_DAY and recall >= MIN_RECALL:
        return (2.0, -1e9 if total is None else total)
    if fp <= MAX_FALSE_PER_COIN_DAY:
        return (1.0, recall)
    return (0.0, -fp)


def better(a: dict[str, Any], b: dict[str, Any] | None) -> bool:
    """RULE: is summary a better than b? (ties keep b: the earlier, simpler candidate)"""
    return b is None or _grade(a) > _grade(b)


def thresholds(ctxs: list[Ctx], probs: list[np.ndarray]) -> dict[float, float]:
    """Level -> probability: the share 10**-level of flash-ready background rows lies above it."""
    bg = np.concatenate([p[c.data.background & c.data.fit] for c, p in zip(ctxs, probs, strict=True)])
    return {lv: float(np.quantile(bg, 1.0 - 10.0**-lv)) for lv in LEVELS}


def grid(ctxs: list[Ctx], kinds: list[str], folds: list[list[int]], log: Any) -> tuple[list[dict[str, Any]], dict[str, list[np.ndarray]]]:
    """Every candidate's per-event measures (out-of-fold probabilities)."""
    probs = {kind: oof(kind, [c.data for c in ctxs], folds, log) for kind in kinds}
    cands: list[dict[str, Any]] = [{"name": "alpha1", "kind": None}]
    for kind in kinds:
        for lv, thr in thresholds(ctxs, probs[kind]).items():
            for r in RET_MINS:
                for a1 in ((False, True) if kind == "logistic" else (False,)):
                    name = f"{kind}{'+alpha1' if a1 else ''} ret25>{r} level {lv}"
                    cands.append({"name": name, "kind": kind, "level": lv, "ret_25s_min": r, "threshold": thr, "with_alpha1": a1})
    for c in progress(cands, len(cands), "eval_select: candidates", "candidates", stream=log):
        c["measures"] = [event_measure(x, fired_by(x, c, probs[c["kind"]][i] if c["kind"] else None)) for i, x in enumerate(ctxs)]
    return cands, probs


def pick(ctxs: list[Ctx], cands: list[dict[str, Any]], idx: list[int]) -> tuple[dict[str, Any], dict[str, Any]]:
    best, best_s = cands[0], None
    for c in cands:
        s = summary([ctxs[i] for i in idx], [c["measures"][i] for i in idx])
        if better(s, best_s):
            best, best_s = c, s
    assert best_s is not None
    return best, best_s


def _brief(s: dict[str, Any]) -> dict[str, Any]:
    keys = ("recall", "detected", "events_meeting_10pct_20min", "delay_ms", "false_signals_per_coin_day",
            "false_cards_per_day_at_2000_pairs", "cards_per_pump", "trader_fixed", "trader_trailing")  # fmt: skip
    return {k: s[k] for k in keys}


def nested(ctxs: list[Ctx], cands: list[dict[str, Any]], folds: list[list[int]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each fold's events measured with the candidate RULE picks on the other folds."""
    held: list[dict[str, Any]] = [{}] * len(ctxs)
    per_fold = []
    for test in folds:
        train = [i for i in range(len(ctxs)) if i not in set(test)]
        chosen, s = pick(ctxs, cands, train)
        for i in test:
            held[i] = chosen["measures"][i]
        per_fold.append({"chosen": chosen["name"], "events": len(test), "train": _brief(s)})
    return held, per_fold


def select(data: Path, cache: Path, kinds: list[str], limit: int | None = None, log: Any = sys.stderr) -> dict[str, Any]:
    """Nested, event-grouped selection; returns the report (choice, cv figures, every candidate)."""
    ctxs = load(data, cache, limit)
    folds = group_folds([c.data.event for c in ctxs])
    cands, _ = grid(ctxs, kinds, folds, log)
    every = list(range(len(ctxs)))
    held, per_fold = nested(ctxs, cands, folds)
    per_kind = {kind: _brief(summary(ctxs, nested(ctxs, [c for c in cands if c["kind"] == kind and not c.get("with_alpha1")], folds)[0]))
                for kind in kinds}  # fmt: skip
    chosen, s_all = pick(ctxs, cands, every)
    by_kind = {}
    for kind in [None, *kinds]:
        its = [c for c in cands if c["kind"] == kind and not c.get("with_alpha1")]
        best, bs = pick(ctxs, its, every)
        by_kind[kind or "alpha1"] = {"best": best["name"], **_brief(bs)}
    return {
        "rule": RULE,
        "folds": [[ctxs[i].data.event.event_id for i in f] for f in folds],
        "chosen": {k: v for k, v in chosen.items() if k != "measures"},
        "chosen_in_sample_oof": _brief(s_all),
        "cv_nested": _brief(summary(ctxs, held)),
        "cv_nested_per_kind": per_kind,
        "per_fold": per_fold,
        "best_per_kind_oof": by_kind,
        "candidates": [{"name": c["name"], **_brief(summary(ctxs, c["measures"]))} for c in cands],
        "_ctxs": ctxs,
    }


def ship(report: dict[str, Any], ctxs: list[Ctx]) -> dict[str, Any]:
    """Fit the chosen kind on every event and write model.flash.json + config.yaml's flash keys."""
    from detectors.model import model_from_dict
    from detectors.trees import export_lightgbm
    from perf.eval_cv import MORE_FEATURES, SPEC, fit

    chosen = report["chosen"]
    rows = np.concatenate([c.data.batches.rows[c.data.fit] for c in ctxs])
    y = np.concatenate([c.data.y[c.data.fit] for c in ctxs])
    fitted = fit(chosen["kind"], rows, y)
    if chosen["kind"] == "logistic":
        m = fitted
        body: dict[str, Any] = {"features": list(m.features), "transform": m.transforms,
                                "norm": {n: {"center": m.centers[n], "scale": m.scales[n]} for n in m.features},
                                "weights": m.weights, "beta0": m.beta0, "beta": m.beta}  # fmt: skip
    else:
        features = SPEC["features"] if chosen["kind"] == "lgbm" else MORE_FEATURES
        body = {"kind": "trees", "features": list(features), "trees": export_lightgbm(fitted.booster_)}
    model = model_from_dict({"profile": "flash", **body, "trained": None})  # the service's own evaluator from here on
    bg = np.concatenate([model.probability(c.data.batches.rows[c.data.background & c.data.fit]) for c in ctxs])
    thr = round(float(np.quantile(bg, 1.0 - 10.0 ** -chosen["level"])), 6)  # the same share of background rows
    doc = {"profile": "flash", **body,
           "description": f"profile flash: {chosen['kind']} model and threshold chosen by perf.eval_select (trader's figures under "
                          "event-grouped cross-validation on real pump trades); config detectors.pump.profiles.flash "
                          "prob_threshold and ret_25s_min are trained.threshold and trained.ret_25s_min",
           "trained": {"by": "perf.eval_select", "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "rule": report["rule"], "threshold": thr,
                       "ret_25s_min": chosen["ret_25s_min"], "background_level": chosen["level"],
                       "with_alpha1": chosen["with_alpha1"], "kind": chosen["kind"], "events": len(ctxs), "rows_fitted": int(len(y)),
                       "positives": int(y.sum()), "cv_nested": report["cv_nested"]}}  # fmt: skip
    text = json.dumps(doc, indent=2) if chosen["kind"] == "logistic" else json.dumps(doc, separators=(",", ":"))  # trees: compact
    (REPO / "model.flash.json").write_text(text + "\n", encoding="utf-8")
    enabled = ["flash", "alpha1"] if chosen["with_alpha1"] else ["flash"]
    write_flash_keys(REPO / "config.yaml", thr, chosen["ret_25s_min"], enabled)
    write_flash_keys(REPO / "config.demo.yaml", thr, chosen["ret_25s_min"], None)  # the emulator's demo keeps its profiles
    return doc


def write_flash_keys(path: Path, threshold: float, ret_min: float, enabled: list[str] | None) -> None:
    """Set detectors.pump.profiles.flash's prob_threshold and ret_25s_min (and enabled_profiles) in a config file."""
    import re

    cfg = path.read_text(encoding="utf-8")
    if enabled is not None:
        cfg = re.sub(r"(\n    enabled_profiles: )\[[^\]]*\]", rf"\g<1>[{', '.join(enabled)}]", cfg, count=1)
    cfg = re.sub(r"(\n        prob_threshold: )[0-9.]+(\s+# trained)", rf"\g<1>{threshold}\g<2>", cfg, count=1)
    cfg = re.sub(r"(\n        ret_25s_min: )[0-9.]+", rf"\g<1>{ret_min}", cfg, count=1)
    path.write_text(cfg, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m perf.eval_select", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, type=Path, help="the pumps folder (events_index.csv, trades/)")
    p.add_argument("--cache", required=True, type=Path, help="replayed batches (perf/eval_replay.py), made if missing")
    p.add_argument("--json", type=Path, default=None, help="where to write the selection report")
    p.add_argument("--kinds", nargs="+", default=["logistic", "lgbm", "lgbm_more"], choices=["logistic", "lgbm", "lgbm_more"])
    p.add_argument("--events", type=int, default=None, help="only the first N events (smoke runs)")
    p.add_argument("--write", action="store_true", help="write model.flash.json and config.yaml's flash keys")
    args = p.parse_args(argv)
    report = select(args.data, args.cache, args.kinds, args.events)
    ctxs = report.pop("_ctxs")
    if args.json:  # before shipping: a refused choice still leaves its report
        args.json.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    if args.write:
        report["shipped"] = ship(report, ctxs)["trained"]
        if args.json:
            args.json.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    print(json.dumps({k: report[k] for k in ("chosen", "cv_nested", "cv_nested_per_kind")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
