"""The futures last-vs-fair detector (issue #17): config section, strategies, episodes, log line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from common.config import ConfigError, config_from_mapping, load_config, set_value
from common.futures_config import FuturesConfig

REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------- config


def test_futures_defaults_load_from_config_yaml() -> None:
    config = load_config(REPO / "config.yaml", environ={})
    assert config.futures == FuturesConfig()  # the file and the dataclass say the same
    f = config.futures
    assert f.enabled is True and f.symbols == [] and f.cards_enabled is False and f.per_symbol_seconds == 60
    assert f.ws_url == "wss://contract.mexc.com/edge" and f.rest_url == "https://contract.mexc.com"
    assert (f.strategy1.spread_ratio_min, f.strategy1.min_abs_diff, f.strategy1.min_price) == (1.5, 0.0001, 0.01)
    assert (f.strategy2.spread_ratio_min, f.strategy2.spike_lookback_secs, f.strategy2.spike_ratio_min) == (1.3, 5, 1.2)
    s3 = f.strategy3
    assert (s3.spread_ratio_min, s3.baseline_window_secs, s3.pump_vs_baseline_min, s3.mark_stability_max) == (1.2, 60, 1.5, 0.05)
    s4 = f.strategy4
    assert (s4.spread_ratio_min, s4.min_abs_diff, s4.max_spread_pct, s4.min_thick_depth_usdt, s4.depth_band_pct) == (
        1.5, 0.0001, 0.3, 10_000, 0.5)  # fmt: skip


def test_futures_urls_come_from_the_environment() -> None:
    env = {"MEXC_FUTURES_WS_URL": "ws://127.0.0.1:9/edge", "MEXC_FUTURES_REST_URL": "http://127.0.0.1:9"}
    config = load_config(REPO / "config.yaml", environ=env)
    assert config.futures.ws_url == "ws://127.0.0.1:9/edge" and config.futures.rest_url == "http://127.0.0.1:9"


def test_demo_config_keeps_the_futures_feed_off() -> None:
    """The demo runs against the emulator on loopback; it has no futures feed to connect to."""
    demo = load_config(REPO / "config.demo.yaml", environ={})
    assert demo.futures == dataclasses.replace(FuturesConfig(), enabled=False)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"strategy2": {"spike_ratio_min": 0.5}}, r"^futures\.strategy2\.spike_ratio_min: got 0\.5, expected a value >= 1\.0"),
        ({"strategy3": {"mark_stability_max": "x"}}, r"^futures\.strategy3\.mark_stability_max: got 'x', expected a number"),
        ({"strategy4": {"depth_band": 1}}, r"^futures\.strategy4\.depth_band: unknown key"),
        ({"strategy1": 5}, r"^futures\.strategy1: got 5, expected a mapping"),
        ({"strategy5": {}}, r"^futures\.strategy5: unknown key"),
        ({"strategy1": {"enabled": "maybe"}}, r"^futures\.strategy1\.enabled: got 'maybe', expected a boolean"),
        ({"reconnect_min_s": 5, "reconnect_max_s": 1}, r"^futures\.reconnect_max_s: got 1\.0, expected >= futures\.reconnect_min_s"),
        ({"symbols": ["BTC_USDT", "btcusdt"]}, r"^futures\.symbols\[1\]: got 'btcusdt', expected a futures symbol"),
    ],
)
def test_a_bad_futures_value_names_its_full_dotted_key(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_mapping({"futures": raw}, environ={})


def test_cfg_sets_a_nested_futures_key_and_refuses_a_bad_one() -> None:
    config = config_from_mapping({}, environ={})
    new = set_value(config, "futures.strategy2.spike_ratio_min", "1.35")
    assert new.futures.strategy2.spike_ratio_min == 1.35
    assert config.futures.strategy2.spike_ratio_min == 1.2  # the old config is untouched
    assert new.to_public_dict()["futures"]["strategy2.spike_ratio_min"] == 1.35
    assert set_value(config, "futures.strategy4.enabled", "off").futures.strategy4.enabled is False
    assert set_value(config, "futures.symbols", "BTC_USDT, ETH_USDT").futures.symbols == ["BTC_USDT", "ETH_USDT"]
    with pytest.raises(ConfigError, match=r"^futures\.strategy2\.spike_ratio_min: got '0\.9', expected a value >= 1\.0"):
        set_value(config, "futures.strategy2.spike_ratio_min", "0.9")
    with pytest.raises(ConfigError, match=r"^futures\.strategy2: a section, not a setting"):
        set_value(config, "futures.strategy2", "1")
    with pytest.raises(ConfigError, match=r"^futures\.reconnect_max_s: got 30\.0, expected >= futures\.reconnect_min_s \(100\.0\)"):
        set_value(config, "futures.reconnect_min_s", "100")  # the copy is checked as a whole


def _preset_block(path: Path) -> dict[str, object]:
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index("  # BEGIN sensitive preset") + 1
    end = lines.index("  # END sensitive preset")
    return yaml.safe_load("\n".join(line.strip().removeprefix("# ") for line in lines[start:end]))


@pytest.mark.parametrize("name", ["config.yaml", "config.demo.yaml"])
def test_the_documented_sensitive_preset_is_a_valid_section(name: str) -> None:
    preset = _preset_block(REPO / name)
    assert set(preset) == {"strategy1", "strategy2", "strategy3", "strategy4"}
    config = config_from_mapping({"futures": preset}, environ={})
    assert config.futures.strategy1.spread_ratio_min == 1.003
