"""The NumPy tree evaluator gives LightGBM's own probabilities (NaN, zero and plain splits), a
model file of kind "trees" loads through detectors/model.py like the logistic one, and a
malformed one is refused with the field named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.rowspec import FEATURE_ROW_DTYPE
from detectors.model import ModelError, load_model, model_from_dict
from detectors.trees import TreeModel, export_lightgbm

lgb = pytest.importorskip("lightgbm")  # a tool dependency (requirements-dev.txt), installed in CI
FEATURES = ["ret_25s", "buy_share_25s", "rush_5s", "trades_ratio_25s"]


def _rows(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = np.zeros(n, FEATURE_ROW_DTYPE)
    rows["ret_25s"] = rng.normal(0, 0.01, n)
    rows["buy_share_25s"] = np.where(rng.random(n) < 0.1, np.nan, rng.random(n))  # NaN: "nan" splits
    rows["rush_5s"] = np.where(rng.random(n) < 0.5, 0.0, rng.poisson(2, n))  # many zeros
    rows["trades_ratio_25s"] = rng.lognormal(0, 1, n)
    return rows


def _fit(rows: np.ndarray, **params: object) -> object:
    x = np.column_stack([rows[f] for f in FEATURES])
    y = (rows["ret_25s"] > 0.005) & ((rows["buy_share_25s"] > 0.6) | np.isnan(rows["buy_share_25s"])) | (rows["rush_5s"] > 3)
    clf = lgb.LGBMClassifier(n_estimators=40, num_leaves=15, min_child_samples=20, verbose=-1, num_threads=1, **params)
    return clf.fit(x, y)


@pytest.mark.parametrize("params", [{}, {"zero_as_missing": True}, {"use_missing": False}])
def test_numpy_trees_equal_lightgbm_predictions(params: dict[str, object]) -> None:
    clf = _fit(_rows(4000, 1), **params)
    doc = {"profile": "flash", "kind": "trees", "features": FEATURES, "trees": export_lightgbm(clf.booster_), "trained": None}
    model = model_from_dict(json.loads(json.dumps(doc)))
    assert isinstance(model, TreeModel)
    test = _rows(3000, 2)
    test["rush_5s"][:50] = np.nan  # NaN where training saw none
    expected = clf.predict_proba(np.column_stack([test[f] for f in FEATURES]))[:, 1]
    np.testing.assert_allclose(model.probability(test), expected, rtol=1e-12, atol=1e-12)
    assert model.probability(test[:0]).shape == (0,)


def test_a_trees_file_loads_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    clf = _fit(_rows(2000, 3))
    doc = {"profile": "flash", "kind": "trees", "features": FEATURES, "trees": export_lightgbm(clf.booster_), "trained": {"x": 1}}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(doc))
    assert load_model(path).profile == "flash"
    bad = json.loads(json.dumps(doc))
    bad["trees"][0]["left"][0] = 999
    with pytest.raises(ModelError, match=r"trees\[0\]\.left: child outside the tree"):
        model_from_dict(bad)
    bad = dict(doc, trees=[dict(doc["trees"][0], missing=["maybe"] * len(doc["trees"][0]["missing"]))])
    with pytest.raises(ModelError, match=r"trees\[0\]\.missing"):
        model_from_dict(bad)
    with pytest.raises(ModelError, match="weights: unknown key"):
        model_from_dict(dict(doc, weights={}))
