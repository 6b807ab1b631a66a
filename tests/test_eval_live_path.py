"""The evaluation scores what the service scores: real pump trades replayed through the live path
(replay/lockstep.py scoring after every 100 ms push with the shipped config and models) give the
same cards as the evaluation path (recorded batches -> the Scorer, perf/eval_cards.py), as the selection's
fast path (fast_cards) and as its out-of-fold lookup model fed the shipped model's probabilities.
And the flash settings the service runs are the ones perf.eval_select wrote, not copies.

The trades are read from the shared data folder (never copied into the repository); a short
slice of each event keeps this fast.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest

from common.detector_config import FlashConfig
from perf.eval_cards import fast_cards, score_batches, trades_only_scorer
from perf.eval_data import load_events, read_trades, write_dump
from perf.eval_pumps import REPO, shipped_pump_config
from perf.eval_replay import replay_batches
from perf.eval_select import LookupModel

DATA = Path(os.environ.get("PUMPS_DATA", REPO.parent / "shared" / "data" / "pumps"))
EVENTS = ("NAS_2022-02-01_15.00", "AST_2020-05-09_16.00", "LUN_2020-03-18_19.00")
SLICE_MS = (40 * 60_000, 5 * 60_000)  # T - 40 min .. T + 5 min: time to get ready, then the pump


def _slice(event_id: str) -> tuple[object, dict[str, np.ndarray]]:
    event = next(e for e in load_events(DATA) if e.event_id == event_id)
    trades = read_trades(event.file)
    keep = (trades["ts_ms"] >= event.t_ms - SLICE_MS[0]) & (trades["ts_ms"] <= event.t_ms + SLICE_MS[1])
    return event, {k: v[keep] for k, v in trades.items()}


@pytest.mark.skipif(not (DATA / "events_index.csv").is_file(), reason=f"no pump data at {DATA} (set PUMPS_DATA)")
@pytest.mark.parametrize("event_id", EVENTS)
def test_live_scoring_and_the_evaluation_give_the_same_cards(event_id: str, tmp_path: Path) -> None:
    from replay.lockstep import replay_lockstep

    event, trades = _slice(event_id)
    config = shipped_pump_config()
    models = trades_only_scorer(config, {}).detector.load_models(config, REPO)
    dump = tmp_path / "e.parquet"
    write_dump(trades, event.symbol, dump)
    live = replay_lockstep(dump, trades_only_scorer(config, models), push_ms=100)
    live_cards = [(t, d.profile, d.escalation, round(d.prob, 9)) for t, d in zip(live.decision_ms, live.decisions, strict=True)]
    assert live_cards, "the shipped default sees this pump"

    batches = replay_batches(event, trades, tmp_path)  # type: ignore[arg-type]
    cards = score_batches(batches, trades_only_scorer(config, models))
    assert [(c.t_ms, c.profile, c.escalation, round(c.prob or 0.0, 9)) for c in cards] == live_cards

    detector = trades_only_scorer(config, models).detector
    fired = [(p.name, *p.fire(batches.rows, detector.settings(config, p.name), models[p.name])) for p in detector.enabled(config)]
    fast = fast_cards(batches, fired, config.cooldown)
    assert [(c.t_ms, c.profile, c.escalation, round(c.prob or 0.0, 9)) for c in fast] == live_cards

    flash = models["flash"]
    lookup = {**models, "flash": LookupModel(batches.rows["seq"], flash.probability(batches.rows))}
    selected = score_batches(batches, trades_only_scorer(config, lookup))
    assert [(c.t_ms, c.profile, c.escalation) for c in selected] == [c[:3] for c in live_cards]


def test_the_service_runs_the_threshold_the_selection_wrote() -> None:
    """config.yaml's flash keys and FlashConfig's defaults are model.flash.json's trained choice."""
    trained = json.loads((REPO / "model.flash.json").read_text())["trained"]
    assert trained["by"] == "perf.eval_select"
    flash = shipped_pump_config().profiles.flash
    assert (flash.prob_threshold, flash.ret_25s_min) == (trained["threshold"], trained["ret_25s_min"])
    assert (FlashConfig().prob_threshold, FlashConfig().ret_25s_min) == (trained["threshold"], trained["ret_25s_min"])
    expected = ["flash", "alpha1"] if trained["with_alpha1"] else ["flash"]
    assert shipped_pump_config().enabled_profiles == expected
    assert dataclasses.replace(shipped_pump_config(), enabled_profiles=["alpha1"]).profiles.alpha1.model_path == "model.json"


