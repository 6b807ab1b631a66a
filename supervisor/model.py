"""The scoring model: a weighted, normalised score through a logistic link, read from model.json.

JSON, never pickle: a model file is data a trader may edit or download, so loading it must not
run code. Every field is validated; a bad file is refused with a message naming the field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.rowspec import FEATURE_NAMES

CLIP = 3.0


class ModelError(ValueError):
    """model.json is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Model:
    profile: str
    weights: dict[str, float]
    centers: dict[str, float]
    scales: dict[str, float]
    beta0: float
    beta: float
    trained: dict[str, Any] | None

    def score(self, rows: np.ndarray) -> np.ndarray:
        """Weighted normalised score per row (NaN features count as 0 after normalisation)."""
        total = np.zeros(len(rows))
        for name, weight in self.weights.items():
            x = (rows[name] - self.centers[name]) / self.scales[name]
            total += weight * np.clip(np.nan_to_num(x, nan=0.0), -CLIP, CLIP)
        return total

    def probability(self, rows: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.beta0 + self.beta * self.score(rows))))


def _number(data: dict[str, Any], key: str, where: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelError(f"{where}.{key}: got {value!r}, expected a finite number")
    return float(value)


def model_from_dict(data: Any) -> Model:
    if not isinstance(data, dict):
        raise ModelError("model: expected a JSON object")
    profile = data.get("profile")
    if not isinstance(profile, str) or not profile:
        raise ModelError(f"profile: got {profile!r}, expected a non-empty string")
    weights_raw, norm_raw = data.get("weights"), data.get("norm")
    if not isinstance(weights_raw, dict) or not weights_raw:
        raise ModelError("weights: expected an object of feature -> weight")
    if not isinstance(norm_raw, dict):
        raise ModelError("norm: expected an object of feature -> {center, scale}")
    weights, centers, scales = {}, {}, {}
    for name in weights_raw:
        if name not in FEATURE_NAMES:
            raise ModelError(f"weights.{name}: unknown feature (known: {', '.join(FEATURE_NAMES)})")
        weights[name] = _number(weights_raw, name, "weights")
        spec = norm_raw.get(name)
        if not isinstance(spec, dict):
            raise ModelError(f"norm.{name}: missing; every weighted feature needs a center and scale")
        centers[name] = _number(spec, "center", f"norm.{name}")
        scales[name] = _number(spec, "scale", f"norm.{name}")
        if scales[name] <= 0:
            raise ModelError(f"norm.{name}.scale: got {scales[name]!r}, expected > 0")
    trained = data.get("trained")
    if trained is not None and not isinstance(trained, dict):
        raise ModelError("trained: expected an object or null")
    return Model(profile, weights, centers, scales, _number(data, "beta0", "model"), _number(data, "beta", "model"), trained)


def load_model(path: str | Path) -> Model:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(f"{path}: cannot read model ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from None
    return model_from_dict(data)
