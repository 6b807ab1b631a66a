"""Cards: the signals a profile would send on one replayed event, with the time each was made.

Why the Scorer itself: the cards of the evaluation must be the service's cards, so each batch
the replay recorded (perf/eval_replay.py) goes through detectors/scorer.py with its cooldown.
Only batches where some row fires are handed to it: a profile's rules and model are row-wise
and the cooldown only moves on a fire, so a batch in which no row fires yields no decision and
changes nothing; skipping it gives the same cards (tests/test_eval_live_path.py checks this
against the replay scoring every push) at a hundredth of the cost.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.detector_config import Alpha1Config, CooldownConfig, PumpConfig
from detectors.cooldown import Cooldown
from detectors.model import Model
from detectors.pump import FLASH, PUMP, Alpha1
from detectors.scorer import Scorer
from perf.eval_replay import Batches


@dataclass(frozen=True)
class Card:
    """One signal: when it was made (exchange ms), who made it and what it saw."""

    t_ms: int
    profile: str
    price: float
    prob: float | None = None
    escalation: int = 0
    pm: float | None = None


class TradesOnlyAlpha1(Alpha1):
    """Alpha-1 with the book rules removed (reasons, model and threshold are inherited): the data
    has no order book, so OBI, CumDepthΔ, spread and the book-valid flag cannot be judged."""

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


def firing_rows(rows: np.ndarray, scorer: Scorer) -> np.ndarray:
    """Rows where some enabled profile of the scorer fires (rules and model, before the cooldown)."""
    fires = np.zeros(len(rows), dtype=bool)
    for profile in scorer.detector.enabled(scorer.config):
        model = scorer.models.get(profile.name)
        if model is not None and len(rows):
            fires |= profile.fire(rows, scorer.detector.settings(scorer.config, profile.name), model)[0]
    return fires


def score_batches(b: Batches, scorer: Scorer, fires: np.ndarray | None = None) -> list[Card]:
    """The scorer's cards over the recorded batches, in order (fires: firing_rows, if known)."""
    fires = firing_rows(b.rows, scorer) if fires is None else fires
    cards = []
    for k in np.unique(b.batch[fires]).tolist():
        lo, hi = np.searchsorted(b.batch, [k, k + 1])
        for d in scorer.score(b.rows[lo:hi]):
            cards.append(Card(int(b.batch_ms[k]), d.profile, float(d.row["last_price"]), float(d.prob), d.escalation,
                              float(d.row["pm"])))  # fmt: skip
    return cards


def fast_cards(b: Batches, fired: list[tuple[str, np.ndarray, np.ndarray]], cooldown: CooldownConfig) -> list[Card]:
    """score_batches' cards for a one-pair replay, from precomputed (profile, fires, prob) in config order.

    Why: choosing a threshold scores thousands of candidates; this is the Scorer's choice (the
    newest firing row of each batch, the first profile that fires it, then the cooldown) without
    a Python call per batch. tests/test_eval_live_path.py proves it equal to the Scorer's cards.
    """
    every = np.zeros(len(b.rows), dtype=bool)
    for _, fires, _ in fired:
        every |= fires
    idx = np.flatnonzero(every)
    if len(idx) == 0:
        return []
    rows = b.rows
    batch = b.batch[idx]
    order = np.lexsort((idx, rows["row_time_ms"][idx], batch))
    last = np.ones(len(order), dtype=bool)
    last[:-1] = batch[order][1:] != batch[order][:-1]
    gate = Cooldown()
    cards = []
    for i in idx[order][last].tolist():
        row = rows[i]
        escalation = gate.allow(int(row["pair_id"]), int(row["row_time_ms"]), float(row["pm"]), cooldown)
        if escalation is None:
            continue
        name, _, prob = next(f for f in fired if f[1][i])
        cards.append(Card(int(b.batch_ms[b.batch[i]]), name, float(row["last_price"]), float(prob[i]), escalation, float(row["pm"])))
    return cards
