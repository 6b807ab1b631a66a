"""Self-training on the recorder's ticks: a candidate that beats the running model on the held-back
day is swapped in while the service runs (the scorer fires with it, no restart); one that does not
beat it is kept out with the reason logged; the outcome table labels the service's own signals."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.config import Config
from common.messages import Notice
from detectors.scorer import Scorer
from supervisor import selftrain
from supervisor.control import Control
from supervisor.detection import Detection, load_models
from supervisor.overrides import load_effective_config, overrides_path
from supervisor.running_models import ModelInstaller, last_selftrain, write_install
from tests.test_supervisor_train import REPO, T_MS, _rows_of, _trades

DAY_MS = 86_400_000
NOW_MS = T_MS + 2 * DAY_MS + 3_600_000  # an hour after the third day's pumps
BLIND = {"profile": "flash", "features": ["ret_25s"], "norm": {"ret_25s": {"center": 0.0, "scale": 1.0}},
         "weights": {"ret_25s": 0.0}, "beta0": -20.0, "beta": 1.0}  # fmt: skip


def _record(ticks: Path) -> None:
    """Three days of recorder dumps: each day 3 pairs pump (from T + 5 s) and 2 trade calmly, 1 h each."""
    ticks.mkdir(parents=True)
    for day in range(3):
        ts, sym, price, qty, side = [], [], [], [], []
        for j in range(5):
            for t, s, p, q in _trades(100 * day + j, pump=j < 3, hours_before=1.0):
                ts.append(t + day * DAY_MS)
                sym.append(f"{'PUMP' if j < 3 else 'CALM'}{j}USDT")
                price.append(p)
                qty.append(q)
                side.append(1 if s == "buy" else 2)
        table = pa.table({"ts_ms": pa.array(ts, pa.int64()), "symbol": sym, "price": price, "qty": qty, "side": pa.array(side, pa.int8())})
        stamp = np.datetime64(T_MS + day * DAY_MS, "ms").astype("datetime64[h]").item().strftime("%Y%m%dT%H")
        pq.write_table(table, ticks / f"ticks-s0-{stamp}.parquet")
    (ticks / "ticks-s1-20991231T23.parquet.part").write_text("being written: never read")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A config whose flash model never fires, the recorded ticks, and a running Control + Detection."""
    root = tmp_path_factory.mktemp("selftrain")
    _record(root / "ticks")
    (root / "blind.json").write_text(json.dumps(BLIND))
    (root / "config.yaml").write_text(
        f"storage: {{data_dir: {root / 'data'}}}\nrecorder: {{dir: {root / 'ticks'}}}\n"
        "detectors: {pump: {enabled_profiles: [flash], profiles: {flash: {model_path: blind.json}}}}\n")  # fmt: skip
    config_path = root / "config.yaml"
    config = load_effective_config(config_path)
    detection = Detection(config, load_models(config, root))
    told: list[Any] = []
    control = Control(config_path, config, lambda c: load_models(c, root), detection.update, dict, lambda m: told.append(m) or True)
    return {"root": root, "config_path": config_path, "detection": detection, "control": control, "told": told,
            "installer": ModelInstaller(control)}  # fmt: skip


def _day3_pump_rows() -> np.ndarray:
    rows = _rows_of(_trades(200, pump=True, hours_before=1.0))
    rows["pair_id"] = 7
    return rows


def test_a_better_candidate_replaces_the_running_model_without_a_restart(service: dict[str, Any]) -> None:
    scorer: Scorer = service["detection"].scorers["pump"]
    assert scorer.score(_day3_pump_rows()) == []  # the blind model misses the held-back day's pump
    report = selftrain.run(service["config_path"], "flash", days=7, holdout_days=1, folds=3, min_coin_days=0.01, now_ms=NOW_MS)
    assert (report["events_fit"], report["pumps_fit"], report["pumps_held_back"]) == (10, 6, 3)
    assert report["installed"] and report["reason"].startswith("installed: beats the running model")
    assert report["candidate"]["recall"] == 1.0 and report["running"]["recall"] == 0.0
    assert service["installer"].poll() is True and service["installer"].poll() is False  # applied once
    assert ModelInstaller(service["control"]).poll() is False  # ... also after a restart
    model = scorer.models["flash"]
    assert model.trained is not None and model.trained["source"].startswith("self-training")
    assert model.trained["holdout"]["verdict"] == report["reason"]
    config: Config = service["control"].config
    assert config.detectors.pump.profiles.flash.prob_threshold == report["candidate_threshold"]
    decisions = scorer.score(_day3_pump_rows())  # the same scorer object, now with the new model
    assert [d.profile for d in decisions] == ["flash"]
    notice = [m for m in service["told"] if isinstance(m, Notice)]
    assert len(notice) == 1 and notice[0].text.startswith("🧠 New flash model running (model.flash.")
    saved = overrides_path(config).read_text()  # a restart or /reload keeps the new model
    assert report["model_path"] in saved and "prob_threshold" in saved
    last = last_selftrain(config)  # what /model shows under the models
    assert last is not None and last["installed"] is True and last["reason"] == report["reason"] and last["finished"]


def test_a_candidate_that_does_not_beat_the_running_model_is_kept_out_with_the_reason_logged(
        service: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    before = service["detection"].scorers["pump"].models["flash"]
    with caplog.at_level(logging.WARNING, logger="scanner.selftrain"):
        report = selftrain.run(service["config_path"], "flash", days=7, holdout_days=1, folds=3, min_coin_days=0.01, now_ms=NOW_MS)
    # the same days again: the candidate equals the model it would replace, which is not "better"
    assert not report["installed"] and report["reason"].startswith("kept out: does not beat the running model")
    assert any(r.getMessage() == "self-training: " + report["reason"] for r in caplog.records)
    assert service["installer"].poll() is False
    assert service["detection"].scorers["pump"].models["flash"] is before


def test_an_install_written_while_the_service_was_down_is_applied_at_start_and_a_bad_one_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(f"storage: {{data_dir: {tmp_path / 'data'}}}\n")
    config = load_effective_config(tmp_path / "config.yaml")
    told: list[Any] = []
    applied: list[Any] = []
    control = Control(tmp_path / "config.yaml", config, lambda c: load_models(c, tmp_path), lambda c, m: applied.append((c, m)), dict,
                      lambda m: told.append(m) or True)  # fmt: skip
    write_install(tmp_path / "data" / "models", {"id": "a", "detector": "pump", "profile": "alpha1",
                                                 "model_path": str(tmp_path / "missing.json"), "prob_threshold": 0.7})  # fmt: skip
    assert ModelInstaller(control).poll() is False  # the file is missing: refused, config unchanged, owner told
    assert applied == [] and control.config is config and "refused" in told[-1].text
    write_install(tmp_path / "data" / "models", {"id": "b", "detector": "pump", "profile": "alpha1",
                                                 "model_path": str(REPO / "model.json"), "prob_threshold": 0.7})  # fmt: skip
    assert ModelInstaller(control).poll() is True  # a new process (a restart) applies what it has not applied yet
    assert applied[-1][0].detectors.pump.profiles.alpha1.prob_threshold == 0.7


def test_outcome_labels_turn_the_services_own_signals_into_positives_and_negatives() -> None:
    trades = _trades(5, pump=False, hours_before=1.0)
    t = np.array([r[0] for r in trades], np.int64)
    ticks = (t, np.array([1 if r[1] == "buy" else 2 for r in trades], np.int32), np.array([r[2] for r in trades]),
             np.array([r[3] for r in trades]))  # fmt: skip
    plain = selftrain.symbol_events("X", ticks, [])
    rows = plain[0].rows["row_time_ms"]
    hit, miss = int(rows[100]), int(rows[200])
    (labelled,) = selftrain.symbol_events("X", ticks, [(hit, "hit"), (miss, "miss")])
    assert labelled.onset.sum() == 1 and labelled.onset[100] and not labelled.onset[200] and labelled.background[200]
    assert not plain[0].meets and plain[0].onset.sum() == 0


def test_verdict_needs_at_least_as_good_on_both_and_better_on_one() -> None:
    base = {"recall": 0.8, "false_signals_per_coin_day": 0.10, "background_coin_days": 5.0, "events_meeting_target": 5}
    assert selftrain.verdict({**base, "recall": 0.9}, base, 1.0)[0]
    assert selftrain.verdict({**base, "false_signals_per_coin_day": 0.05}, base, 1.0)[0]
    traded = selftrain.verdict({**base, "recall": 1.0, "false_signals_per_coin_day": 0.2}, base, 1.0)
    assert not traded[0] and "recall 100%, 0.200 false/coin-day vs running recall 80%, 0.100" in traded[1]
    short = selftrain.verdict({**base, "recall": 1.0, "background_coin_days": 0.5}, base, 1.0)
    assert short == (False, "kept out: held-back days hold 0.5 coin-days of background, fewer than 1.0")


def test_without_recorded_ticks_the_job_says_so_and_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.yaml").write_text(f"storage: {{data_dir: {tmp_path / 'data'}}}\nrecorder: {{dir: {tmp_path / 'none'}}}\n")
    (tmp_path / "none").mkdir()
    from supervisor import train

    assert train.main(["--self-train", "--config", str(tmp_path / "config.yaml")]) == 3
    assert "is recorder.enabled on?" in json.loads(capsys.readouterr().out)["reason"]
    assert not (tmp_path / "data" / "models" / "install.json").exists()


def test_the_symbol_cap_keeps_the_pumps_then_the_most_traded() -> None:
    def ticks(n: int, pump: bool) -> selftrain.Ticks:
        t = np.arange(n, dtype=np.int64) * 1000
        price = np.where(np.arange(n) > n // 2, 1.2, 1.0) if pump else np.ones(n)
        return t, np.ones(n, np.int32), price, np.ones(n)

    data = {"BUSY": ticks(500, False), "QUIET": ticks(100, False), "PUMP": ticks(50, True)}
    assert list(selftrain.choose(data, 2)) == ["PUMP", "BUSY"]
    assert selftrain.choose(data, 5) is data


def test_the_running_supervisor_picks_up_an_install_on_its_tick_without_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from supervisor import app
    from supervisor.app import Supervisor

    monkeypatch.setattr(app, "SAMPLE_EVERY_S", 0.01)  # one short tick, not five seconds

    (tmp_path / "config.yaml").write_text(f"storage: {{data_dir: {tmp_path / 'data'}}}\n"
                                          f"detectors: {{pump: {{profiles: {{alpha1: {{model_path: {REPO / 'model.json'}}}}}}}}}\n")  # fmt: skip
    sup = Supervisor(tmp_path / "config.yaml")
    scorer = sup.detection.scorers["pump"]
    before = scorer.models["alpha1"]
    model = json.loads((REPO / "model.json").read_text())
    model["trained"] = {"date": "2026-12-01T03:00:00Z", "source": "self-training: test"}
    (tmp_path / "new.json").write_text(json.dumps(model))
    write_install(tmp_path / "data" / "models", {"id": "t1", "detector": "pump", "profile": "alpha1",
                                                 "model_path": str(tmp_path / "new.json"), "prob_threshold": 0.65})  # fmt: skip
    polled = sup.installer.poll

    def poll_once() -> bool:
        sup.request_stop()
        return polled()

    sup.installer.poll = poll_once  # type: ignore[method-assign]
    asyncio.run(sup._tick_loop())
    try:
        assert scorer.models["alpha1"] is not before and scorer.models["alpha1"].trained["source"] == "self-training: test"
        assert sup.config.detectors.pump.profiles.alpha1.prob_threshold == 0.65
        (shown,) = sup.status()["models"]
        assert shown["model_path"] == str(tmp_path / "new.json") and shown["trained"]["source"] == "self-training: test"
    finally:
        sup.store.close()


def test_a_fit_that_cannot_run_keeps_the_running_model(tmp_path: Path) -> None:
    ticks = tmp_path / "ticks"
    ticks.mkdir()
    for day in range(2):  # one pump a day: the fold that tests it trains on no positive row
        rows = [(t + day * DAY_MS, f"{'PUMP' if j == 0 else 'CALM'}USDT", p, q, 1 if s == "buy" else 2)
                for j in range(2) for t, s, p, q in _trades(10 * day + j, pump=j == 0, hours_before=0.5)]  # fmt: skip
        ts, sym, price, qty, side = zip(*rows, strict=True)
        stamp = np.datetime64(T_MS + day * DAY_MS, "ms").astype("datetime64[h]").item().strftime("%Y%m%dT%H")
        pq.write_table(pa.table({"ts_ms": pa.array(ts, pa.int64()), "symbol": list(sym), "price": list(price), "qty": list(qty),
                                 "side": pa.array(side, pa.int8())}), ticks / f"ticks-s0-{stamp}.parquet")  # fmt: skip
    (tmp_path / "config.yaml").write_text(f"storage: {{data_dir: {tmp_path / 'data'}}}\nrecorder: {{dir: {ticks}}}\n")
    report = selftrain.run(tmp_path / "config.yaml", "flash", days=7, holdout_days=1, now_ms=NOW_MS)
    assert report["reason"].startswith("training failed, the running model stays:") and not report["installed"]
    assert not (tmp_path / "data" / "models" / "install.json").exists()
