"""Rule filter, model probability, cooldown and escalation; model.json validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.config import ScannerConfig
from core.rowspec import FEATURE_ROW_DTYPE, ROW_BOOK_VALID
from supervisor.model import ModelError, load_model, model_from_dict
from supervisor.scorer import Scorer

REPO = Path(__file__).resolve().parent.parent
MODEL = load_model(REPO / "model.json")


def _rows(n: int, **overrides: object) -> np.ndarray:
    rows = np.zeros(n, dtype=FEATURE_ROW_DTYPE)
    base = dict(vsr=10.0, vc=0.3, pm=0.05, obi=0.5, cum_depth_delta=3.0, spread=0.002, listing_age_s=10_000.0, last_price=1.0, flags=ROW_BOOK_VALID)
    for key, value in {**base, **overrides}.items():
        rows[key] = value
    rows["pair_id"] = 1
    rows["row_time_ms"] = 1_790_000_000_000 + np.arange(n) * 1000
    return rows


def test_shipped_model_meets_its_documented_calibration() -> None:
    at_threshold = _rows(1, vsr=5.0, pm=0.02, obi=0.25)
    clear = _rows(1)
    assert MODEL.probability(at_threshold)[0] == pytest.approx(0.5)
    assert MODEL.probability(clear)[0] >= 0.8


def test_a_clear_pump_signals_once_per_cooldown_and_escalates_once() -> None:
    scorer = Scorer(ScannerConfig(cooldown_s=600, realert_pm_factor=2.0, max_realerts=1), MODEL)
    first = scorer.score(_rows(1000))  # 1,000 passing rows of one pair in one batch: one signal
    assert len(first) == 1 and first[0].escalation == 0
    later = _rows(5, pm=0.05)
    later["row_time_ms"] += 10_000_000 // 100  # inside the cooldown
    assert scorer.score(later) == []
    bigger = _rows(1, pm=0.11)
    bigger["row_time_ms"] += 1_200_000
    again = scorer.score(bigger)
    assert len(again) == 1 and again[0].escalation == 1
    even_bigger = _rows(1, pm=0.5)
    even_bigger["row_time_ms"] += 1_300_000
    assert scorer.score(even_bigger) == []  # max_realerts reached
    after = _rows(1)
    after["row_time_ms"] += 999_000 + 600_000  # a full cooldown after the first alert (its newest row)
    assert [d.escalation for d in scorer.score(after)] == [0]


@pytest.mark.parametrize(
    "override",
    [dict(vsr=4.9), dict(vc=0.6), dict(pm=0.01), dict(obi=0.2), dict(cum_depth_delta=-1.0), dict(spread=0.02),
     dict(listing_age_s=100.0), dict(obi=float("nan")), dict(vsr=float("nan"))],
)  # fmt: skip
def test_each_rule_and_nan_blocks_a_signal(override: dict) -> None:
    assert Scorer(ScannerConfig(), MODEL).score(_rows(3, **override)) == []


def test_thresholds_come_from_config() -> None:
    rows = _rows(1, vsr=6.0)
    assert Scorer(ScannerConfig(vsr_min=7.0), MODEL).score(rows) == []
    assert len(Scorer(ScannerConfig(vsr_min=5.5), MODEL).score(rows)) == 1
    assert Scorer(ScannerConfig(prob_threshold=0.99), MODEL).score(rows) == []


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 20), st.floats(0, 1), st.floats(-0.1, 0.2), st.floats(-1, 1)), min_size=1, max_size=50))
def test_vectorised_filter_equals_a_plain_loop(values: list) -> None:
    rows = _rows(len(values))
    for i, (vsr, vc, pm, obi) in enumerate(values):
        rows[i]["vsr"], rows[i]["vc"], rows[i]["pm"], rows[i]["obi"] = vsr, vc, pm, obi
    config = ScannerConfig()
    scorer = Scorer(config, MODEL)
    mask = scorer.rule_mask(rows)
    for i, (vsr, vc, pm, obi) in enumerate(values):
        assert mask[i] == (vsr > 5 and vc < 0.5 and pm > 0.02 and obi > 0.25)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda m: m.pop("profile"), "profile"),
        (lambda m: m["weights"].update(nope=1.0), "weights.nope: unknown feature"),
        (lambda m: m["norm"]["vsr"].update(scale=0), "norm.vsr.scale"),
        (lambda m: m.update(beta="x"), "beta"),
        (lambda m: m["norm"].pop("pm"), "norm.pm: missing"),
    ],
)
def test_bad_model_files_are_refused_clearly(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    data = json.loads((REPO / "model.json").read_text())
    mutate(data)
    with pytest.raises(ModelError, match=message):
        model_from_dict(data)
