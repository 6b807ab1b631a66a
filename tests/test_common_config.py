"""config.yaml loading: env substitution, validation messages, /cfg updates."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest

from common.config import Config, ConfigError, MexcConfig, config_from_mapping, load_config, set_value
from common.logs import JsonFormatter, setup_logging

REPO = Path(__file__).resolve().parent.parent


def test_shipped_config_loads_with_documented_defaults() -> None:
    config = load_config(REPO / "config.yaml", environ={})
    assert config.mexc.ws_url == MexcConfig().ws_url  # the live default, named once in common/config.py
    assert config.detectors.pump.profiles.alpha1.prob_threshold == 0.60
    assert config.detectors.pump.enabled_profiles == ["flash"] and config.detectors.pump.cooldown.period_s == 1200  # perf.eval_select
    assert config.ws.max_streams_per_conn == 30
    assert config.trading.live is False
    assert config.telegram.allowed_ids == []
    assert config.metrics.host == "127.0.0.1"


def test_environment_overrides_the_file() -> None:
    env = {
        "MEXC_WS_URL": "ws://127.0.0.1:9/ws",
        "MEXC_REST_URL": "http://127.0.0.1:9",
        "TG_TOKEN": "123:abc",
        "ALLOWED_IDS": "11, 22",
        "SCANNER_DATA_DIR": "/tmp/x",
        "METRICS_PORT": "9100",
    }
    config = load_config(REPO / "config.yaml", environ=env)
    assert config.mexc.ws_url == "ws://127.0.0.1:9/ws"
    assert config.mexc.rest_url == "http://127.0.0.1:9"
    assert config.telegram.token == "123:abc"
    assert config.telegram.allowed_ids == [11, 22]
    assert config.storage.data_dir == "/tmp/x"
    assert config.metrics.port == 9100


def test_required_env_variable_missing_names_key_and_variable() -> None:
    with pytest.raises(ConfigError, match=r"telegram\.token: environment variable NOPE_TOKEN is not set"):
        config_from_mapping({"telegram": {"token": "${NOPE_TOKEN}"}}, environ={})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"detectors": {"pump": {"profiles": {"alpha1": {"vsr_min": "high"}}}}},
         r"detectors\.pump\.profiles\.alpha1\.vsr_min: got 'high', expected a number"),
        ({"ws": {"max_streams_per_conn": 31}}, r"ws\.max_streams_per_conn: got 31, expected a value <= 30"),
        ({"detectors": {"pump": {"profiles": {"flash": {"prob_threshold": 1.5}}}}},
         r"detectors\.pump\.profiles\.flash\.prob_threshold: got 1\.5, expected a value <= 1\.0"),
        ({"scanner": {"vsr_mni": 5}}, r"scanner\.vsr_mni: unknown key"),
        ({"scaner": {}}, r"scaner: unknown section"),
        ({"trading": {"live": "maybe"}}, r"trading\.live: got 'maybe', expected a boolean"),
        ({"telegram": {"allowed_ids": "12,abc"}}, r"telegram\.allowed_ids\[1\]: got 'abc', expected an integer"),
        ({"mexc": {"deals_interval": "1s"}}, r"mexc\.deals_interval: got '1s', expected one of 100ms, 10ms"),
        ({"scanner": "x"}, r"scanner: got 'x', expected a mapping"),
        ({"ws": {"reconnect_min_s": 5, "reconnect_max_s": 1}}, r"ws\.reconnect_max_s"),
    ],
)
def test_bad_values_are_refused_with_key_value_and_expectation(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(raw, environ={})


def test_live_trading_needs_keys_and_allowed_ids() -> None:
    with pytest.raises(ConfigError, match="mexc.api_key"):
        config_from_mapping({"trading": {"live": True}}, environ={})
    with pytest.raises(ConfigError, match="allowed_ids"):
        config_from_mapping({"trading": {"live": True}, "mexc": {"api_key": "k", "api_secret": "s"}}, environ={})


def test_unreadable_and_invalid_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("scanner: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_set_value_returns_new_config_and_never_mutates_on_error() -> None:
    config = Config()
    changed = set_value(config, "detectors.pump.profiles.alpha1.vsr_min", "6.5")
    assert changed.detectors.pump.profiles.alpha1.vsr_min == 6.5
    assert config.detectors.pump.profiles.alpha1.vsr_min == 5.0
    for key, value, message in [
        ("scanner.nope", "1", "unknown key"),
        ("nope.x", "1", "unknown key"),
        ("detectors.pump.profiles.alpha1.vsr_min", "abc", "expected a number"),
        ("detectors.pump.profiles.alpha1.nope", "1", "unknown key"),
        ("detectors.pump.profiles", "1", "a section, not a setting"),
        ("detectors.pump.profiles.alpha1.vsr_min.x", "1", "unknown key"),
        ("scanner.vsr_min", "6", "moved to detectors.pump.profiles.alpha1.vsr_min"),
        ("scanner.flash_prob_threshold", "0.9", "moved to detectors.pump.profiles.flash.prob_threshold"),
        ("mexc.api_secret", "x", "only from the environment"),
        ("trading.live", "true", "mexc.api_key"),
    ]:
        with pytest.raises(ConfigError, match=message):
            set_value(config, key, value)
    assert config.detectors.pump.profiles.alpha1.vsr_min == 5.0


def test_public_dict_masks_secrets() -> None:
    config = config_from_mapping({"telegram": {"token": "123:SECRETTOKEN"}, "mexc": {"api_secret": "abcdsecret"}}, environ={})
    text = json.dumps(config.to_public_dict())
    assert "SECRETTOKEN" not in text and "abcdsecret" not in text
    assert config.to_public_dict()["telegram"]["token"] == "***"
    assert set(config.secrets()) == {"123:SECRETTOKEN", "abcdsecret"}


def test_log_lines_are_json_and_never_contain_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", "test", secrets=["123:SECRETTOKEN"])
    log = logging.getLogger("scanner.test")
    log.info("calling http://127.0.0.1:9/bot123:SECRETTOKEN/getMe", extra={"pair": "BTCUSDT"})
    try:
        raise RuntimeError("boom with 123:SECRETTOKEN inside")
    except RuntimeError:
        log.exception("failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert len(lines) == 2
    assert lines[0]["pair"] == "BTCUSDT" and lines[0]["level"] == "INFO" and lines[0]["proc"] == "test"
    assert all("SECRETTOKEN" not in json.dumps(line) for line in lines)
    assert "***" in lines[0]["msg"] and "***" in lines[1]["exc"]
    assert isinstance(JsonFormatter("x"), logging.Formatter)


def test_demo_config_loads_and_differs_only_where_documented() -> None:
    demo = load_config(REPO / "config.demo.yaml", environ={})
    live = load_config(REPO / "config.yaml", environ={})
    assert demo.scout.min_quote_vol_usd == 0 and demo.scout.quality_min_quote_vol_5m == 0
    assert demo.ws == live.ws and demo.trading == live.trading
    # the card budget is off in the demo (its emulator scripts a pump every few minutes): config.demo.yaml says so
    assert (demo.scanner.max_cards_per_hour, demo.scanner.max_cards_per_day) == (0, 0) and live.scanner.max_cards_per_hour > 0
    assert dataclasses.replace(demo.scanner, max_cards_per_hour=0, max_cards_per_day=0) == dataclasses.replace(
        live.scanner, max_cards_per_hour=0, max_cards_per_day=0)


@pytest.mark.parametrize(
    ("old", "new"),
    [("profiles", "detectors.pump.enabled_profiles"), ("cooldown_s", "detectors.pump.cooldown.period_s"),
     ("realert_pm_factor", "detectors.pump.cooldown.realert_factor"), ("max_realerts", "detectors.pump.cooldown.max_realerts"),
     ("model_path", "detectors.pump.profiles.alpha1.model_path"), ("vsr_min", "detectors.pump.profiles.alpha1.vsr_min"), ("listing_age_min_s", "detectors.pump.profiles.alpha1.listing_age_min_s"),
     ("flash_model_path", "detectors.pump.profiles.flash.model_path"),
     ("flash_rush_ratio_min", "detectors.pump.profiles.flash.rush_ratio_min")],
)  # fmt: skip
def test_an_old_flat_config_names_the_new_key(old: str, new: str) -> None:
    with pytest.raises(ConfigError, match=f"^scanner.{old}: unknown key, moved to {new} "):
        config_from_mapping({"scanner": {"shards": 1, old: 1}}, environ={})


def test_nested_detector_sections_are_validated_like_any_other() -> None:
    for doc, message in [
        ({"detectors": {"pump": {"profiles": {"alpha1": {"vsr_min": -1}}}}}, "detectors.pump.profiles.alpha1.vsr_min: got -1, expected a value >= 0.0"),
        ({"detectors": {"pump": {"profiles": {"alpha1": {"vsr": 6}}}}}, "detectors.pump.profiles.alpha1.vsr: unknown key"),
        ({"detectors": {"pump": {"cooldown": {"max_realerts": 11}}}}, "detectors.pump.cooldown.max_realerts: got 11"),
        ({"detectors": {"pump": {"cooldown": 5}}}, "detectors.pump.cooldown: got 5, expected a mapping"),
        ({"detectors": {"spot": {}}}, "detectors.spot: unknown key"),
        ({"detectors": {"pump": {"enabled_profiles": ["alpha2"]}}}, "detectors.pump.enabled_profiles: got 'alpha2'"),
    ]:  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            config_from_mapping(doc, environ={})
    config = config_from_mapping({"detectors": {"pump": {"profiles": {"flash": {"prob_threshold": 0.9}}}}}, environ={})
    assert config.detectors.pump.profiles.flash.prob_threshold == 0.9 and config.detectors.pump.profiles.alpha1.vsr_min == 5.0
    public = config.to_public_dict()["detectors"]
    assert public["pump.profiles.flash.prob_threshold"] == 0.9 and public["pump.enabled_profiles"] == ["alpha1"]
