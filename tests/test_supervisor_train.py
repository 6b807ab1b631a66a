"""The offline trainer and the flash profile: training recovers a planted signal and writes a model
the service loads; the scorer fires the flash profile on a flash pump and not on calm trading,
once per pump across profiles; bad model files and profile settings are refused with a reason."""

from __future__ import annotations

import csv
import datetime as dt
import json
import lzma
import random
from pathlib import Path

import numpy as np
import pytest

from common.config import ConfigError, config_from_mapping, set_value
from common.detector_config import CooldownConfig, FlashConfig, PumpConfig, PumpProfilesConfig
from core.book import OrderBook
from core.features import fill_rows
from core.rowspec import FEATURE_ROW_DTYPE
from core.windows import TradeWindows
from detectors.model import ModelError, load_model, model_from_dict
from detectors.pump import PUMP
from detectors.scorer import Scorer
from supervisor import train

REPO = Path(__file__).resolve().parent.parent
T_ANNOUNCE = dt.datetime(2020, 3, 1, 17, 0, tzinfo=dt.UTC)
T_MS = int(T_ANNOUNCE.timestamp() * 1000)


def _trades(seed: int, pump: bool, hours_before: float = 3.0) -> list[tuple[int, str, float, float]]:
    """Calm trading (a deal every ~6 s, a 1 % random walk) from T - hours_before to T + 10 min;
    with pump, from T + 5 s one minute of market buys sweeping 2-4 levels each, price +25 %."""
    rng = random.Random(seed)
    out, t, price = [], T_MS - int(hours_before * 3600_000), 1e-5
    while t < T_MS + 600_000:
        t += rng.randint(1000, 11_000)
        price *= 1 + rng.gauss(0, 0.002)
        price = min(max(price, 0.97e-5), 1.03e-5)
        if pump and T_MS + 5000 <= t < T_MS + 65_000:
            continue
        out.append((t, rng.choice(["buy", "sell"]), price, rng.uniform(10, 200)))
    if pump:
        p = 1.0e-5
        for sec in range(60):
            for order in range(rng.randint(3, 6)):
                ms = T_MS + 5000 + sec * 1000 + order * 100
                for _ in range(rng.randint(2, 4)):  # one market order sweeping levels: same ms
                    p *= 1.0012
                    out.append((ms, "buy", p, rng.uniform(100, 1000)))
    return sorted(out, key=lambda r: r[0])


def _write_dataset(root: Path, n_pump: int, n_calm: int) -> None:
    (root / "trades").mkdir(parents=True)
    fields = ["event_id", "file", "announced_utc", "meets_10pct_20min", "cross10_rel_s",
              "lamorgia_labeled_start_5S_rel_s", "background_hours"]  # fmt: skip
    with (root / "events_index.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for k in range(n_pump + n_calm):
            pump = k < n_pump
            name = f"SYM{k}_2020-03-01_17.00"
            with lzma.open(root / "trades" / f"{name}.csv.xz", "wt", newline="") as out:
                cw = csv.writer(out)
                cw.writerow(["timestamp", "side", "price", "amount"])
                cw.writerows(_trades(k, pump))
            w.writerow({"event_id": name, "file": f"trades/{name}.csv.xz", "announced_utc": "2020-03-01 17:00",
                        "meets_10pct_20min": str(pump), "cross10_rel_s": "25.0" if pump else "",
                        "lamorgia_labeled_start_5S_rel_s": "5.0" if pump else "", "background_hours": "1.0"})  # fmt: skip


def _rows_of(trades: list[tuple[int, str, float, float]]) -> np.ndarray:
    t = np.array([r[0] for r in trades], np.int64)
    side = np.array([1 if r[1] == "buy" else 2 for r in trades], np.int32)
    return train.feature_rows(t, side, np.array([r[2] for r in trades]), np.array([r[3] for r in trades]))


def test_trainer_recovers_a_planted_pump_shape_and_writes_a_loadable_model(tmp_path: Path) -> None:
    _write_dataset(tmp_path / "data", n_pump=4, n_calm=2)
    out = tmp_path / "model.flash.json"
    assert train.main(["--data", str(tmp_path / "data"), "--out", str(out), "--folds", "3"]) == 0
    model = load_model(out)
    assert model.profile == "flash" and model.trained is not None
    trained = model.trained
    assert trained["events"] == 6 and trained["label"] == "onset"
    assert trained["auc_oof"] > 0.95  # pump rows vs calm rows: separable on rush orders and returns
    check = trained["event_check_oof"]
    assert check["events_meeting_target"] == 4 and check["events_detected"] == 4
    assert check["median_delay_after_cross10_s"] < 30
    assert len(trained["data_sha256_16"]) == 16
    # the weights point the right way: more rush orders and trades mean a pump
    assert model.weights["rush_5s"] + model.weights["rush_ratio_25s"] > 0 and model.weights["trades_ratio_25s"] > 0



def test_check_scores_a_model_file_event_by_event(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_dataset(tmp_path / "data", n_pump=2, n_calm=1)
    assert train.main(["--data", str(tmp_path / "data"), "--check", str(REPO / "model.flash.json")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["threshold"] == round(load_model(REPO / "model.flash.json").trained["threshold"], 5)
    assert report["events_meeting_target"] == 2 and report["events_detected"] == 2


def test_trainer_refuses_a_folder_without_an_index(tmp_path: Path) -> None:
    assert train.main(["--data", str(tmp_path), "--out", str(tmp_path / "m.json")]) == 2
    assert not (tmp_path / "m.json").exists()


def _score_row_by_row(scorer: Scorer, rows: np.ndarray) -> list:
    """As the service sees them: one batch per second (rows arrive as bars close)."""
    return [d for k in range(len(rows)) for d in scorer.score(rows[k : k + 1])]


def _pump(enabled: list[str], period_s: float = 1200.0, flash_prob_threshold: float | None = None) -> PumpConfig:
    """The shipped flash settings (FlashConfig's defaults are model.flash.json's), or another threshold."""
    flash = FlashConfig() if flash_prob_threshold is None else FlashConfig(prob_threshold=flash_prob_threshold)
    return PumpConfig(enabled_profiles=enabled, cooldown=CooldownConfig(period_s=period_s), profiles=PumpProfilesConfig(flash=flash))


def _flash_scorer(period_s: float = 1200.0) -> Scorer:
    config = _pump(["alpha1", "flash"], period_s)
    return Scorer(PUMP, config, {"alpha1": load_model(REPO / "model.json"), "flash": load_model(REPO / "model.flash.json")})


def test_shipped_flash_model_fires_on_a_flash_pump_and_not_on_calm_trading() -> None:
    scorer = _flash_scorer()
    pump = _score_row_by_row(scorer, _rows_of(_trades(1, pump=True)))
    calm = _score_row_by_row(_flash_scorer(), _rows_of(_trades(2, pump=False)))
    assert {d.profile for d in pump} == {"flash"}
    assert [d.escalation for d in pump][:1] == [0] and len(pump) <= 2  # one signal, at most the PM re-alert
    assert 5 <= (pump[0].row["row_time_ms"] - T_MS) / 1000 <= 20  # seconds after its start (T + 5 s)
    assert pump[0].prob >= scorer.config.profiles.flash.prob_threshold
    assert any(r.startswith("Rush orders vs usual (Rush25s) ") for r in pump[0].reasons)
    assert pump[0].model_trained and pump[0].reasons[-1].startswith("Pump prob ")  # model.flash.json was trained
    assert calm == []
    # alpha1 alone stays silent on the same stream: no book, and its windows are minutes long
    assert Scorer(PUMP, PumpConfig(), load_model(REPO / "model.json")).score(_rows_of(_trades(1, pump=True))) == []


def test_cooldown_is_per_pair_across_profiles() -> None:
    scorer = _flash_scorer(period_s=1200)
    rows = _rows_of(_trades(1, pump=True))
    first = scorer.score(rows[rows["row_time_ms"] <= T_MS + 30_000])
    assert [d.profile for d in first] == ["flash"]
    # the same pair's later rows inside the cooldown: nothing more, whichever profile would fire
    later = rows[rows["row_time_ms"] > first[0].row["row_time_ms"]].copy()
    later["vsr"], later["vc"], later["pm"], later["obi"] = 10.0, 0.3, 0.001, 0.5  # alpha1 would pass, pm not grown
    assert scorer.score(later) == []


def test_flash_profile_can_be_switched_off_at_run_time() -> None:
    rows = _rows_of(_trades(1, pump=True))
    scorer = _flash_scorer()
    scorer.update(_pump(["alpha1"]), scorer.models)
    assert scorer.score(rows) == []
    scorer.update(_pump(["alpha1", "flash"], flash_prob_threshold=1.0), scorer.models)
    assert scorer.score(rows) == []


def test_profiles_config_is_validated() -> None:
    config = config_from_mapping({"detectors": {"pump": {"enabled_profiles": ["alpha1", "flash"]}}}, environ={})
    assert config.detectors.pump.enabled_profiles == ["alpha1", "flash"]
    assert set_value(config, "detectors.pump.enabled_profiles", "flash").detectors.pump.enabled_profiles == ["flash"]
    with pytest.raises(ConfigError, match="detectors.pump.enabled_profiles: got 'fast'"):
        set_value(config, "detectors.pump.enabled_profiles", "alpha1,fast")
    with pytest.raises(ConfigError, match="detectors.pump.enabled_profiles"):
        config_from_mapping({"detectors": {"pump": {"enabled_profiles": []}}}, environ={})
    with pytest.raises(ConfigError, match="each profile once"):
        config_from_mapping({"detectors": {"pump": {"enabled_profiles": ["flash", "flash"]}}}, environ={})
    with pytest.raises(ConfigError, match="detectors.pump.profiles.flash.prob_threshold"):
        set_value(config, "detectors.pump.profiles.flash.prob_threshold", "1.5")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"transform": {"ret_25s": "sqrt"}}, "transform.ret_25s: got 'sqrt'"),
        ({"transform": {"vsr": "log1p"}}, "transform.vsr: not in features"),
        ({"transform": ["log1p"]}, "transform: expected an object"),
        ({"features": ["rush_ratio_25s", "rush_1h"]}, "unknown feature 'rush_1h'"),
        ({"beta0": float("nan")}, "beta0"),
    ],
)
def test_invalid_flash_model_files_are_refused_with_a_reason(tmp_path: Path, change: dict, reason: str) -> None:
    data = json.loads((REPO / "tests" / "fixtures" / "model.flash.logistic.json").read_text())  # a logistic flash model
    data.update(change)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=reason.replace("(", r"\(")):
        load_model(path)
    with pytest.raises(ModelError):
        model_from_dict(data)


def test_log1p_transform_is_applied_before_the_normalisation() -> None:
    model = model_from_dict({"profile": "flash", "features": ["rush_ratio_25s"], "transform": {"rush_ratio_25s": "log1p"},
                             "norm": {"rush_ratio_25s": {"center": 0.0, "scale": 1.0}},
                             "weights": {"rush_ratio_25s": 1.0}, "beta0": 0.0, "beta": 1.0})  # fmt: skip
    rows = np.zeros(3, FEATURE_ROW_DTYPE)
    rows["rush_ratio_25s"] = [np.e - 1, -5.0, np.nan]
    assert model.score(rows).tolist() == pytest.approx([1.0, 0.0, 0.0])


def test_feature_rows_are_what_the_core_computes_deal_by_deal() -> None:
    trades = _trades(3, pump=True, hours_before=0.5)
    rows = _rows_of(trades)
    win, book = TradeWindows(), OrderBook()
    k = 0
    want = np.zeros(1, FEATURE_ROW_DTYPE)
    for n, (t, side, price, qty) in enumerate(trades):
        win.on_trade(price, qty, 1 if side == "buy" else 2, t)
        if n + 1 == len(trades) or trades[n + 1][0] // 1000 != t // 1000:
            end = (t // 1000 + 1) * 1000
            win.advance(end)
            fill_rows([book], [win], end, np.array([1], np.int64), np.array([0], np.uint32), want)
            assert rows[k].tobytes() == want[0].tobytes()
            k += 1
    assert k == len(rows)


def test_the_service_does_not_import_the_training_libraries() -> None:
    import subprocess
    import sys

    code = ("import sys, supervisor.app, detectors.scorer, detectors.pump, detectors.model, bot.cards; "
            "bad = [m for m in ('sklearn', 'scipy', 'supervisor.train') if m in sys.modules]; print(bad)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_flash_card_shows_its_profile_and_its_own_evidence() -> None:
    from bot.cards import card_text
    from common.signal import Signal

    sig = Signal("ABCUSDT-1790000000000-0", "ABCUSDT", "flash", 1_790_000_000_000, 0, 0, 1.0, 0.99,
                 features={"vsr": float("nan"), "rush_ratio_25s": 12.5, "ret_25s": 0.061})  # fmt: skip
    text = card_text(sig, now_ns=0)
    assert "Rush x12\\.5" in text and "25s \\+6\\.10%" in text and "profile flash" in text and "VSR" not in text
