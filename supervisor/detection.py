"""Every registered detector over the shards' rows: one Scorer each, built from detectors/registry.py.

Why a loop over the registry and not a pump scorer by name: a new detector that reads the spot
feature rows is a new module plus one registry line; the supervisor builds, reloads and runs it
here without a new branch anywhere (docs/adding-a-detector.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from common.config import Config
from detectors.base import Decision
from detectors.registry import DETECTORS
from detectors.scorer import Scorer

SPOT_ROWS = "spot_rows"  # the feed of detectors that read the shards' feature rings


def load_models(config: Config, base: Path) -> dict[str, dict[str, Any]]:
    """{detector: {profile: Model}} for every enabled profile; ModelError names the file and field of a bad one."""
    return {name: d.load_models(d.section(config.detectors), base) for name, d in DETECTORS.items() if d.feed == SPOT_ROWS}


class Detection:
    """The scorers of every detector that reads spot rows; decisions of one batch in exchange-time order."""

    def __init__(self, config: Config, models: dict[str, dict[str, Any]]) -> None:
        self.scorers: dict[str, Scorer] = {name: Scorer(DETECTORS[name], DETECTORS[name].section(config.detectors), m)
                                           for name, m in models.items()}  # fmt: skip

    def update(self, config: Config, models: dict[str, dict[str, Any]] | None) -> None:
        """Hot reload: new sections (and models when given); every cooldown memory is kept."""
        for name, scorer in self.scorers.items():
            scorer.update(scorer.detector.section(config.detectors), models[name] if models is not None else scorer.models)

    def remember_alert(self, profile: str, pair_id: int, last_alert_ms: int, last_magnitude: float, realerts: int) -> None:
        """Re-open a stored signal's cooldown in the detector that owns its profile."""
        for scorer in self.scorers.values():
            if any(p.name == profile for p in scorer.detector.profiles):
                scorer.remember_alert(pair_id, last_alert_ms, last_magnitude, realerts)
                return

    def score(self, rows: np.ndarray, now_ns: int) -> list[Decision]:
        if len(self.scorers) == 1:  # the common case: no merge needed
            return next(iter(self.scorers.values())).score(rows, now_ns)
        decisions = [d for scorer in self.scorers.values() for d in scorer.score(rows, now_ns)]
        decisions.sort(key=lambda d: (int(d.row["row_time_ms"]), d.pair_id))
        return decisions
