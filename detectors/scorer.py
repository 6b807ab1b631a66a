"""Scorer: every new row of a batch at once through a detector's profiles and the shared cooldown.

Vectorised with NumPy: each profile's rule filter and probability and the choice of one row per
pair are array operations over the whole batch; Python only touches the (few) pairs that fire.
Cooldown runs on exchange time (row_time_ms), so a replay gives the same signals at any speed,
and the scorer is pure: the same rows in the same order always give the same decisions.

Generic over detectors: it knows profiles only through detectors/base.py (fire, reasons) and
never compares a profile's name. A row fires for the first enabled profile (in config order)
that passes. Per pair and batch at most one decision, made on the pair's newest row that fired
(the freshest price for the card), then detectors/cooldown.py decides whether it may alert.
The rows need pair_id, row_time_ms and the detector's magnitude field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.base import Decision, Detector
from detectors.cooldown import Cooldown
from detectors.model import Model


def _as_models(model: Model | dict[str, Model]) -> dict[str, Model]:
    return dict(model) if isinstance(model, dict) else {model.profile: model}


@dataclass
class Scorer:
    """One detector's profiles + models + cooldown over batches of rows.

    config: the detector's section (e.g. config.detectors.pump). model: one Model (its profile is
    the only one scored) or {profile: Model}; an enabled profile without a model here is skipped
    (the app refuses to start without it).
    """

    detector: Detector
    config: Any
    model: Model | dict[str, Model]
    cooldown: Cooldown = field(default_factory=Cooldown)

    def __post_init__(self) -> None:
        self.models = _as_models(self.model)

    def update(self, config: Any, model: Model | dict[str, Model]) -> None:
        """Hot reload: new thresholds and models; cooldown memory is kept."""
        self.config, self.model = config, model
        self.models = _as_models(model)

    def remember_alert(self, pair_id: int, last_alert_ms: int, last_magnitude: float, realerts: int) -> None:
        """Resume a cooldown the previous run opened (see Cooldown.remember)."""
        self.cooldown.remember(pair_id, last_alert_ms, last_magnitude, realerts)

    def score(self, rows: np.ndarray, now_ns: int = 0) -> list[Decision]:
        """Decisions for one batch of new rows, ordered by exchange time then pair id.

        now_ns is accepted for the caller's bookkeeping only: decisions depend on exchange time,
        never on the wall clock.
        """
        if len(rows) == 0:
            return []
        which = None  # index into `enabled` of the profile that fired, -1 for none; made on the first fire
        prob_all = None
        enabled = [p for p in self.detector.enabled(self.config) if p.name in self.models]
        settings = [self.detector.settings(self.config, p.name) for p in enabled]
        for k, profile in enumerate(enabled):
            fires, prob = profile.fire(rows, settings[k], self.models[profile.name])
            if not fires.any():
                continue
            if which is None or prob_all is None:
                which, prob_all = np.full(len(rows), -1), np.zeros(len(rows))
            first = fires & (which < 0)
            which[first] = k
            prob_all[first] = prob[first]
        if which is None or prob_all is None:  # the common batch: nothing fired
            return []
        idx = np.flatnonzero(which >= 0)
        probs = prob_all[idx]
        # Newest row per pair: sort by (pair, time, position) and keep each pair's last entry.
        pairs = rows["pair_id"][idx]
        order = np.lexsort((idx, rows["row_time_ms"][idx], pairs))
        last_of_pair = np.ones(len(order), dtype=bool)
        last_of_pair[:-1] = pairs[order][1:] != pairs[order][:-1]
        chosen = order[last_of_pair]
        chosen = chosen[np.lexsort((pairs[chosen], rows["row_time_ms"][idx[chosen]]))]
        decisions = []
        for k in chosen.tolist():
            row = rows[idx[k]]
            magnitude = float(row[self.detector.magnitude])
            escalation = self.cooldown.allow(int(row["pair_id"]), int(row["row_time_ms"]), magnitude, self.config.cooldown)
            if escalation is None:
                continue
            prob = float(probs[k])
            p = int(which[idx[k]])
            values = {name: row[name].item() for name in rows.dtype.names}
            trained = self.models[enabled[p].name].trained is not None
            reasons = enabled[p].reasons(row, settings[p], prob, trained)
            decisions.append(Decision(int(row["pair_id"]), values, prob, reasons, escalation, enabled[p].name, trained))
        return decisions
