"""A profile's model: a weighted, normalised score through a logistic link, read from its JSON file.

JSON, never pickle: a model file is data a trader may edit or download, so loading it must not
run code. Every field is validated; a bad file is refused with a message naming the field, and
the supervisor keeps the model it had (reload is atomic).

    x_norm = clip((t(value) - center) / scale, -CLIP, CLIP)   t: identity, or "log1p" per feature
    score  = sum(weight * x_norm)                 (a NaN feature contributes 0)
    prob   = sigmoid(beta0 + beta * score)

A file with "kind": "trees" is a gradient-boosted tree model instead (detectors/trees.py): the
same profile/features/trained keys, the same probability() interface.

Clipping keeps one extreme feature (VSR 400 on a dead pair waking up) from outvoting the others.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.rowspec import FEATURE_NAMES
from detectors.trees import TreeModel, TreeModelError, trees_from_dict

CLIP = 3.0
_TOP_LEVEL = {"profile", "description", "features", "norm", "weights", "beta0", "beta", "trained", "transform"}
_TREES_TOP_LEVEL = {"profile", "description", "features", "kind", "trees", "trained"}
# log1p(max(x, 0)): burst ratios are heavy-tailed counts; the log keeps a 50x burst from
# saturating the clip while a 3x one is still visible.
TRANSFORMS = ("log1p",)


class ModelError(ValueError):
    """model.json is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Model:
    """A validated model; build it with load_model() or model_from_dict()."""

    profile: str
    features: tuple[str, ...]
    weights: dict[str, float]
    centers: dict[str, float]
    scales: dict[str, float]
    beta0: float
    beta: float
    trained: dict[str, Any] | None
    transforms: dict[str, str] | None = None

    def normalised(self, rows: np.ndarray, name: str) -> np.ndarray:
        """One feature column normalised and clipped; NaN becomes 0 (the centre: no evidence)."""
        value = rows[name].astype(np.float64)
        if self.transforms and self.transforms.get(name) == "log1p":
            with np.errstate(invalid="ignore"):
                value = np.log1p(np.maximum(value, 0.0))
        x = np.minimum(np.maximum((value - self.centers[name]) / self.scales[name], -CLIP), CLIP)  # ±inf → ±CLIP
        x[np.isnan(x)] = 0.0  # not np.nan_to_num: its Python wrapper cost more than the whole column on a small batch
        return x

    def score(self, rows: np.ndarray) -> np.ndarray:
        """Weighted normalised score per row, vectorised over the batch."""
        total = np.zeros(len(rows))
        for name in self.features:
            total += self.weights[name] * self.normalised(rows, name)
        return total

    def probability(self, rows: np.ndarray) -> np.ndarray:
        """sigmoid(beta0 + beta * score) per row."""
        z = self.beta0 + self.beta * self.score(rows)
        with np.errstate(over="ignore"):  # exp overflow for a huge negative z is just prob 0
            return 1.0 / (1.0 + np.exp(-z))


def _number(data: dict[str, Any], key: str, where: str) -> float:
    if key not in data:
        raise ModelError(f"{where}{key}: missing, expected a finite number")
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelError(f"{where}{key}: got {value!r}, expected a finite number")
    return float(value)


def model_from_dict(data: Any) -> Model | TreeModel:
    """Validate a decoded model.json; every error names the offending field."""
    if not isinstance(data, dict):
        raise ModelError(f"model: expected a JSON object, got {type(data).__name__}")
    kind = data.get("kind", "logistic")
    if kind not in ("logistic", "trees"):
        raise ModelError(f"kind: got {kind!r}, expected logistic or trees")
    unknown = sorted(set(data) - (_TREES_TOP_LEVEL if kind == "trees" else _TOP_LEVEL))
    if unknown:
        raise ModelError(f"{unknown[0]}: unknown key (allowed: {', '.join(sorted(_TOP_LEVEL))})")
    profile = data.get("profile")
    if not isinstance(profile, str) or not profile.strip():
        raise ModelError(f"profile: got {profile!r}, expected a non-empty string")

    features = data.get("features")
    if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
        raise ModelError(f"features: got {features!r}, expected a non-empty list of feature names")
    for name in features:
        if name not in FEATURE_NAMES:
            raise ModelError(f"features: unknown feature {name!r} (known: {', '.join(FEATURE_NAMES)})")
    if len(set(features)) != len(features):
        raise ModelError(f"features: duplicate names in {features!r}")

    trained = data.get("trained")
    if trained is not None and not isinstance(trained, dict):
        raise ModelError(f"trained: got {trained!r}, expected an object or null")
    if kind == "trees":
        try:
            return trees_from_dict(profile, features, data.get("trees"), trained)
        except TreeModelError as exc:
            raise ModelError(str(exc)) from None
    weights_raw, norm_raw = data.get("weights"), data.get("norm")
    if not isinstance(weights_raw, dict):
        raise ModelError("weights: expected an object of feature -> weight")
    if not isinstance(norm_raw, dict):
        raise ModelError("norm: expected an object of feature -> {center, scale}")
    for section, table in (("weights", weights_raw), ("norm", norm_raw)):
        for name in table:
            if name not in features:
                raise ModelError(f"{section}.{name}: not in features {features!r}")

    weights: dict[str, float] = {}
    centers: dict[str, float] = {}
    scales: dict[str, float] = {}
    for name in features:
        weights[name] = _number(weights_raw, name, "weights.")
        spec = norm_raw.get(name)
        if not isinstance(spec, dict):
            raise ModelError(f"norm.{name}: missing; every feature needs {{\"center\": .., \"scale\": ..}}")
        extra = sorted(set(spec) - {"center", "scale"})
        if extra:
            raise ModelError(f"norm.{name}.{extra[0]}: unknown key (allowed: center, scale)")
        centers[name] = _number(spec, "center", f"norm.{name}.")
        scales[name] = _number(spec, "scale", f"norm.{name}.")
        if scales[name] <= 0:
            raise ModelError(f"norm.{name}.scale: got {scales[name]!r}, expected > 0")

    transform_raw = data.get("transform", {})
    if not isinstance(transform_raw, dict):
        raise ModelError("transform: expected an object of feature -> transform name")
    for name, kind in transform_raw.items():
        if name not in features:
            raise ModelError(f"transform.{name}: not in features {features!r}")
        if kind not in TRANSFORMS:
            raise ModelError(f"transform.{name}: got {kind!r}, expected one of {', '.join(TRANSFORMS)}")
    return Model(
        profile=profile,
        features=tuple(features),
        weights=weights,
        centers=centers,
        scales=scales,
        beta0=_number(data, "beta0", ""),
        beta=_number(data, "beta", ""),
        trained=trained,
        transforms=dict(transform_raw) or None,
    )


def load_model(path: str | Path) -> Model | TreeModel:
    """Read and validate model.json; ModelError (a ValueError) names the file and the field."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: cannot read model ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from None
    try:
        return model_from_dict(data)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from None
