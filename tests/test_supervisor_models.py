"""/model shows what scores now: every enabled profile's model file, running threshold, when it was
trained and its validation figures; a model without a training record says its prob is a score."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from bot import commands
from bot.model_text import format_models
from common.config import config_from_mapping
from common.messages import StatusReply
from supervisor.detection import load_models
from supervisor.running_models import summaries

REPO = Path(__file__).resolve().parent.parent


class _Bot:
    def __init__(self, reply: Any) -> None:
        self.reply, self.request_timeout_s = reply, 1.0

    async def ask_supervisor(self, kind: type[Any], **fields: Any) -> Any:
        return self.reply


def test_model_shows_each_running_profile_with_its_training_and_validation() -> None:
    config = config_from_mapping({"detectors": {"pump": {"enabled_profiles": ["flash", "alpha1"]}}}, environ={})
    models = summaries(config, load_models(config, REPO))
    text = asyncio.run(commands.answer(_Bot(StatusReply(1, {"models": models})), "model", []))  # type: ignore[arg-type]
    flash, alpha1 = text.split("\nalpha1 ")
    shipped = json.loads((REPO / "model.flash.json").read_text())["trained"]  # the figures come from the running model's file
    cv = shipped["cv_nested"]
    assert flash.startswith(f"flash (pump): model.flash.json, 7 features, running threshold {config.detectors.pump.profiles.flash.prob_threshold:.4g}")
    assert f"trained {shipped['date']} (perf.eval_select), {shipped['events']} events" in flash
    assert (f"recall {100 * cv['recall']:.0f} % of {cv['events_meeting_10pct_20min']} pumps, median delay "
            f"{cv['delay_ms']['t_rel_cross10_ms']['median'] / 1000:.1f} s, {cv['false_signals_per_coin_day']:.3f} false signals per coin-day") in flash
    assert f"{cv['trader_fixed']['mean_ret_pct']:+.2f} % per card" in flash
    assert "running threshold 0.6" in alpha1 and "not trained: hand-set weights" in alpha1


def test_model_without_an_answer_or_with_odd_data_never_fails() -> None:
    no = asyncio.run(commands.answer(_Bot(None), "model", []))  # type: ignore[arg-type]
    assert no.startswith("The supervisor did not answer within 1 s") and "nothing changed" not in no
    assert format_models(None) == "No model is running (no enabled profile reported one)."
    odd = format_models([{"profile": "x", "trained": {"date": "d", "auc_oof": "bad"}, "check": None}, "junk"])
    assert "AUC n/a" in odd and "recall n/a" in odd
    assert "/model" in commands.HELP and "model" in commands.NAMES


def test_model_ends_with_the_last_self_training_run_so_the_owner_sees_the_job_ran() -> None:
    last = {"finished": "2026-12-06T03:07:12Z", "profile": "flash", "installed": False, "reason": "kept out: does not beat ..."}
    reply = StatusReply(1, {"models": [], "selftrain_last": last})
    text = asyncio.run(commands.answer(_Bot(reply), "model", []))  # type: ignore[arg-type]
    assert text.endswith("\nLast self-training run 2026-12-06T03:07:12Z (flash): kept out: does not beat ...")


def test_a_hand_edited_training_record_never_breaks_the_status() -> None:
    from common.config import Config
    from detectors.model import model_from_dict

    model = model_from_dict({"profile": "alpha1", "features": ["vsr"], "norm": {"vsr": {"center": 0, "scale": 1}}, "weights": {"vsr": 1},
                             "beta0": 0, "beta": 1, "trained": {"event_check_oof": 5, "date": "x"}})  # fmt: skip
    (shown,) = summaries(Config(), {"pump": {"alpha1": model}})
    assert shown["trained"] == {"date": "x"} and shown["check"]["recall"] is None
    assert "recall n/a" in format_models([shown])
