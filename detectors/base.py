"""The one small interface every detector implements, and the decision it hands the supervisor.

A detector (detectors/<name>.py) is data plus a few vectorised functions:

- a `Detector`: its name (its config section `detectors.<name>` and its registry key), the feed it
  reads (today only "spot_rows": the shards' FEATURE_ROW_DTYPE rings), the row field its re-alerts
  compare (the cooldown's magnitude) and its profiles, in the order they are tried;
- each `Profile`: its name (`detectors.<name>.profiles.<profile>` and model JSON's "profile"),
  the row fields it reads, a vectorised `rule_mask`, the card's `reasons`, and through the shared
  `fire` its model and `prob_threshold`.

Why profiles are stateless objects: their settings and model come in per call, so a /cfg change
or a SIGHUP reload is new arguments, never a rebuilt detector, and the cooldown (detectors/
cooldown.py, shared by every detector) is the only state that survives it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from detectors.model import Model, ModelError, load_model

SPOT_ROWS = "spot_rows"  # the shards' feature rings (core.rowspec.FEATURE_ROW_DTYPE)


@dataclass
class Decision:
    """One signal to send: the row that triggered it and why."""

    pair_id: int
    row: dict[str, Any]
    prob: float
    reasons: list[str]
    escalation: int  # 0 = first alert of a cooldown, n = n-th re-alert
    profile: str = "alpha1"
    model_trained: bool = False  # the profile's model file has `trained` set: prob is a probability, else a score


class Profile(ABC):
    """One way a detector fires: its rule filter, then its model, then its probability threshold."""

    name: ClassVar[str]
    fields: ClassVar[tuple[str, ...]]  # row fields the rules and reasons read
    # How supervisor/train.py fits this profile's model (features, transform, ready_flag); None: not trained here.
    train_spec: ClassVar[dict[str, Any] | None] = None

    @abstractmethod
    def rule_mask(self, rows: np.ndarray, settings: Any) -> np.ndarray:
        """Boolean per row: every rule passes. NaN and a missing validity flag must fail."""

    @abstractmethod
    def reasons(self, row: np.void | dict[str, Any], settings: Any, prob: float, trained: bool = False) -> list[str]:
        """Human-readable rules the row passed, e.g. "VSR 7.4>5", for the card and the signal log."""

    def fire(self, rows: np.ndarray, settings: Any, model: Model) -> tuple[np.ndarray, np.ndarray]:
        """(fires, prob) per row; prob is 0 where the rules fail (the model runs on passing rows only)."""
        mask = self.rule_mask(rows, settings)
        prob = np.zeros(len(rows))
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            return mask, prob
        prob[idx] = model.probability(rows[idx])
        return mask & (prob >= settings.prob_threshold), prob


@dataclass(frozen=True)
class Detector:
    """A named set of profiles sharing one feed and one per-pair cooldown."""

    name: str
    profiles: tuple[Profile, ...]
    magnitude: str  # row field compared by re-alerts (the cooldown's realert_factor)
    feed: str = SPOT_ROWS

    def section(self, detectors_config: Any) -> Any:
        """This detector's config section (common.detector_config), e.g. config.detectors.pump."""
        return getattr(detectors_config, self.name)

    def profile(self, name: str) -> Profile:
        for p in self.profiles:
            if p.name == name:
                return p
        raise KeyError(f"{self.name}: no profile {name!r} (known: {', '.join(p.name for p in self.profiles)})")

    def settings(self, section: Any, profile: str) -> Any:
        """One profile's settings: section.profiles.<profile>."""
        return getattr(section.profiles, profile)

    def enabled(self, section: Any) -> list[Profile]:
        """The enabled profiles in config order (the first that fires a row wins it)."""
        return [self.profile(name) for name in section.enabled_profiles]

    def load_models(self, section: Any, base_dir: Path) -> dict[str, Model]:
        """The model of every enabled profile (relative paths from base_dir); ModelError names the file."""
        models = {}
        for profile in section.enabled_profiles:
            path = Path(self.settings(section, profile).model_path)
            if not path.is_absolute():
                path = base_dir / path
            model = load_model(path)
            if model.profile != profile:
                raise ModelError(f"{path}: profile {model.profile!r}, expected {profile!r} "
                                 f"(detectors.{self.name}.enabled_profiles)")  # fmt: skip
            models[profile] = model
        return models
