"""The futures last-vs-fair detector (issue #17): config section, strategies, episodes, log line."""

from __future__ import annotations

import calendar
import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.config import ConfigError, config_from_mapping, load_config, set_value
from common.futures_config import FuturesConfig
from detectors.futures import FairPriceDetector
from detectors.futures_episodes import STRATEGIES, Episode, EpisodeEvent, format_log_line, price_text

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


# ------------------------------------------------------------------------------------- log line

T0 = calendar.timegm((2025, 11, 20, 12, 34, 50)) * 1000  # 2025-11-20T12:34:50Z in ms


def test_the_log_line_reproduces_the_original_example() -> None:
    ep = Episode(1, "BTC_USDT", T0, 43500.0, 23513.5, 23500.0, None, None, 43500.0 / 23513.5, 43500.0, 23513.5, T0,
                 end_ms=T0 + 6000, ended_by="condition")  # fmt: skip
    assert format_log_line(ep) == (
        "2025-11-20T12:34:56Z | BTC_USDT | START=12:34:50 | END=12:34:56 | DURATION=6s | PEAK_RATIO=1.85"
        " | PEAK_LAST=43500.0 | PEAK_MARK=23513.5"
    )


def test_the_log_line_cuts_milliseconds_and_prints_small_prices_positionally() -> None:
    ep = Episode(3, "PEPE_USDT", T0 + 999, 1.5e-05, 1e-05, 1e-05, 0.1, 12_000.0, 1.0031, 1.234e-05, 1e-05, T0 + 999,
                 end_ms=T0 + 6998, ended_by="gap")  # fmt: skip
    line = format_log_line(ep)
    assert "START=12:34:50 | END=12:34:56 | DURATION=5s" in line  # 5.999 s elapsed: whole seconds, cut
    assert line.endswith("PEAK_RATIO=1.0031 | PEAK_LAST=0.00001234 | PEAK_MARK=0.00001")
    assert float(price_text(1.234e-05)) == 1.234e-05 and price_text(0.1) == "0.1"
    with pytest.raises(ValueError, match="still open"):
        format_log_line(dataclasses.replace(ep, end_ms=None))


# ------------------------------------------------------------------------------ scripted cases


def _cfg(**sections: Any) -> FuturesConfig:
    """FuturesConfig with only the named strategies enabled (each with its overrides); other
    keyword arguments are top-level futures keys."""
    raw: dict[str, object] = {f"strategy{k}": {"enabled": False} for k in STRATEGIES}
    for name, values in sections.items():
        raw[name] = {"enabled": True, **values} if name.startswith("strategy") else values
    return config_from_mapping({"futures": raw}, environ={}).futures


def _kinds(events: Sequence[EpisodeEvent]) -> list[tuple[str, int, int]]:
    return [(e.kind, e.episode.strategy, e.t_ms) for e in events]


def test_strategy1_thresholds_are_inclusive_and_each_one_blocks() -> None:
    det = FairPriceDetector(_cfg(strategy1={}))
    assert det.on_ticker("A_USDT", 0, 1.4999, 1.0, 1.0) == ()
    assert _kinds(det.on_ticker("A_USDT", 1, 1.5, 1.0, 1.0)) == [("started", 1, 1)]  # ratio exactly 1.5
    det = FairPriceDetector(_cfg(strategy1={}))
    assert det.on_ticker("B_USDT", 0, 0.009, 0.001, 0.001) == ()  # ratio 9 but below min_price 0.01
    det = FairPriceDetector(_cfg(strategy1={"min_price": 0.0}))
    assert det.on_ticker("B_USDT", 0, 0.00015, 0.000055, 0.0) == ()  # ratio 2.7, but last - fair < 0.0001
    assert det.on_ticker("B_USDT", 1, 0.00015, 0.00004, 0.0) != ()  # diff 0.00011


@pytest.mark.parametrize("bad", [math.nan, 0.0, -1.0, math.inf, -math.inf])
def test_a_bad_price_never_starts_or_ends_an_episode(bad: float) -> None:
    det = FairPriceDetector(_cfg(strategy1={}))
    for last, fair in [(bad, 1.0), (2.0, bad), (bad, bad)]:
        assert det.on_ticker("A_USDT", 0, last, fair, 1.0) == ()
    assert _kinds(det.on_ticker("A_USDT", 1, 2.0, 1.0, math.nan)) == [("started", 1, 1)]  # the index is only reported
    assert det.on_ticker("A_USDT", 2, bad, 1.0, 1.0) == () and det.on_ticker("A_USDT", 3, 2.0, bad, 1.0) == ()
    assert len(det.open_episodes()) == 1 and det.ignored == 5
    assert det.on_ticker("A_USDT", 0, 1.0, 1.0, 1.0) == ()  # time going back: ignored too
    assert len(det.open_episodes()) == 1 and det.ignored == 6


def test_strategy2_needs_a_spike_over_the_lookback() -> None:
    det = FairPriceDetector(_cfg(strategy2={}))  # ratio 1.3, 5 s, spike 1.2
    det.on_ticker("A_USDT", 0, 1.0, 1.0, 1.0)
    assert det.on_ticker("A_USDT", 4_999, 1.4, 1.0, 1.0) == ()  # no price 5 s old yet
    assert _kinds(det.on_ticker("A_USDT", 5_000, 1.4, 1.0, 1.0)) == [("started", 2, 5_000)]  # 1.4 / 1.0
    # 5 s after the spike the price in effect 5 s ago is 1.4 (at 4,999): 1.5 / 1.4 < 1.2 ends it
    assert _kinds(det.on_ticker("A_USDT", 10_000, 1.5, 1.0, 1.0)) == [("ended", 2, 10_000)]
    det = FairPriceDetector(_cfg(strategy2={}))
    det.on_ticker("B_USDT", 0, 1.2, 1.0, 1.0)
    assert det.on_ticker("B_USDT", 5_000, 1.4, 1.0, 1.0) == ()  # 1.4 / 1.2 = 1.17 < 1.2


def test_strategy3_needs_a_pump_over_the_baseline_with_a_still_fair_price() -> None:
    def run(fairs: list[float], pump: float) -> tuple[EpisodeEvent, ...]:
        det = FairPriceDetector(_cfg(strategy3={"baseline_window_secs": 10}))
        for i, fair in enumerate(fairs):
            det.on_ticker("A_USDT", i * 2_000, 1.0, fair, 1.0)
        return det.on_ticker("A_USDT", len(fairs) * 2_000, pump, fairs[-1], 1.0)

    assert _kinds(run([1.0] * 6, 1.5)) == [("started", 3, 12_000)]  # baseline 1.0 over [2 s, 12 s)
    assert run([1.0] * 4, 1.5) == ()  # watched only 8 s of the 10-s window
    assert run([1.0] * 6, 1.49) == ()
    assert run([1.0, 1.0, 1.0, 1.0, 1.06, 1.0], 1.6) == ()  # the fair price moved 6 % > 5 %
    assert _kinds(run([1.06, 1.0, 1.0, 1.0, 1.0, 1.0], 1.6)) == [("started", 3, 12_000)]  # 1.06 left the window


def _book(bid: float, ask: float, qty: float) -> tuple[list[tuple[float, float, int]], list[tuple[float, float, int]]]:
    return [(bid, qty, 1), (bid * 0.9, 1e9, 1)], [(ask, qty, 1), (ask * 1.1, 1e9, 1)]  # far levels: outside the band


def test_strategy4_needs_a_tight_deep_book() -> None:
    def run(bid: float, ask: float, qty: float, contract_size: float = 1.0) -> tuple[EpisodeEvent, ...]:
        det = FairPriceDetector(_cfg(strategy4={}))
        det.on_book("A_USDT", 0, *_book(bid, ask, qty), contract_size=contract_size)
        return det.on_ticker("A_USDT", 1, 2.0, 1.0, 1.0)

    assert FairPriceDetector(_cfg(strategy4={})).on_ticker("A_USDT", 1, 2.0, 1.0, 1.0) == ()  # no book
    started = run(1.999, 2.001, 2_600.0)  # spread 0.1 %, depth 2 * ~5,200 USDT
    assert _kinds(started) == [("started", 4, 1)]
    assert started[0].episode.start_spread_pct == pytest.approx(0.1) and started[0].episode.start_depth_usdt == pytest.approx(10_400)
    assert run(1.999, 2.001, 2_400.0) == ()  # 9,600 USDT < 10,000
    assert run(1.999, 2.001, 26_000.0, contract_size=0.1) != ()  # qty in contracts of 0.1
    assert run(1.996, 2.004, 1e6) == ()  # spread 0.4 % > 0.3 %
    assert run(2.001, 1.999, 1e6) == ()  # crossed: not a book


def test_episode_start_peak_end_cooldown() -> None:
    det = FairPriceDetector(_cfg(strategy1={}))
    assert _kinds(det.on_ticker("A_USDT", 1_000, 1.6, 1.0, 1.0)) == [("started", 1, 1_000)]
    assert det.on_ticker("A_USDT", 2_000, 1.9, 1.0, 1.0) == ()
    assert det.on_ticker("A_USDT", 3_000, 1.9, 1.0, 1.0) == ()  # a tie keeps the first peak
    assert det.on_ticker("A_USDT", 4_000, 1.7, 1.0, 1.0) == ()
    (ended,) = det.on_ticker("A_USDT", 5_000, 1.2, 1.0, 1.0)
    ep = ended.episode
    assert (ended.kind, ep.start_ms, ep.end_ms, ep.ended_by, ep.duration) == ("ended", 1_000, 5_000, "condition", 4.0)
    assert (ep.peak_ratio, ep.peak_last, ep.peak_fair, ep.peak_ms) == (1.9, 1.9, 1.0, 2_000)
    assert det.on_ticker("A_USDT", 64_999, 2.0, 1.0, 1.0) == ()  # per_symbol_seconds 60 from the end
    assert det.on_ticker("B_USDT", 64_999, 2.0, 1.0, 1.0) != ()  # per symbol
    assert _kinds(det.on_ticker("A_USDT", 65_000, 2.0, 1.0, 1.0)) == [("started", 1, 65_000)]


def test_strategies_are_independent() -> None:
    det = FairPriceDetector(_cfg(strategy1={}, strategy2={"spike_lookback_secs": 1}))
    det.on_ticker("A_USDT", 0, 1.0, 1.0, 1.0)
    assert _kinds(det.on_ticker("A_USDT", 1_000, 1.6, 1.0, 1.0)) == [("started", 1, 1_000), ("started", 2, 1_000)]
    assert _kinds(det.on_ticker("A_USDT", 2_000, 1.6, 1.0, 1.0)) == [("ended", 2, 2_000)]  # no new spike
    assert [ep.strategy for ep in det.open_episodes()] == [1]


def test_a_gap_ends_at_the_last_update_and_restarts_the_lookbacks() -> None:
    det = FairPriceDetector(_cfg(strategy1={}, strategy2={"spike_lookback_secs": 1}))
    det.on_ticker("A_USDT", 0, 1.0, 1.0, 1.0)
    det.on_ticker("A_USDT", 1_000, 1.6, 1.0, 1.0)
    det.on_ticker("A_USDT", 1_500, 1.6, 1.0, 1.0)
    events = det.gap("A_USDT", 9_000)
    assert [(e.kind, e.t_ms, e.episode.strategy, e.episode.end_ms, e.episode.ended_by) for e in events] == [
        ("ended", 9_000, 1, 1_500, "gap"), ("ended", 9_000, 2, 1_500, "gap")]  # fmt: skip
    assert det.open_episodes() == [] and det.gap("A_USDT", 9_000) == () and det.gap("NOPE_USDT", 9_000) == ()
    det.on_ticker("B_USDT", 70_000, 1.0, 1.0, 1.0)
    # after the cooldown: strategy 1 restarts at once, strategy 2 has no price 1 s before (history dropped)
    assert _kinds(det.on_ticker("A_USDT", 70_000, 1.6, 1.0, 1.0)) == [("started", 1, 70_000)]


def test_shutdown_cuts_every_open_episode_at_its_time() -> None:
    det = FairPriceDetector(_cfg(strategy1={}))
    det.on_ticker("B_USDT", 1_000, 2.0, 1.0, 1.0)
    det.on_ticker("A_USDT", 2_000, 2.0, 1.0, 1.0)
    det.on_ticker("C_USDT", 2_000, 1.0, 1.0, 1.0)
    events = det.close_all(5_000)
    assert [(e.episode.symbol, e.episode.end_ms, e.episode.ended_by, e.t_ms) for e in events] == [
        ("A_USDT", 5_000, "shutdown", 5_000), ("B_USDT", 5_000, "shutdown", 5_000)]  # fmt: skip
    assert det.open_episodes() == [] and det.close_all(6_000) == ()
    with pytest.raises(ValueError, match="reason"):
        det.close_all(6_000, "condition")


def test_started_events_are_snapshots_and_open_episodes_are_copies() -> None:
    det = FairPriceDetector(_cfg(strategy1={}))
    (started,) = det.on_ticker("A_USDT", 0, 1.6, 1.0, 1.0)
    det.on_ticker("A_USDT", 1, 3.0, 1.0, 1.0)
    assert started.episode.peak_last == 1.6 and det.open_episodes()[0].peak_last == 3.0
    det.open_episodes()[0].peak_last = 99.0
    assert det.open_episodes()[0].peak_last == 3.0


def test_a_config_change_applies_to_the_next_update() -> None:
    det = FairPriceDetector(_cfg(strategy1={}))
    det.on_ticker("A_USDT", 0, 1.6, 1.0, 1.0)
    det.set_config(_cfg(strategy1={"spread_ratio_min": 2.0}))
    assert _kinds(det.on_ticker("A_USDT", 1, 1.6, 1.0, 1.0)) == [("ended", 1, 1)]
    det.set_config(set_value(config_from_mapping({}, environ={}), "futures.strategy1.enabled", "false").futures)
    assert det.on_ticker("B_USDT", 1, 1.6, 1.0, 1.0) == ()  # /cfg switched strategy 1 off (2-4 lack history/book)
    det.set_config(config_from_mapping({}, environ={}).futures)
    assert _kinds(det.on_ticker("B_USDT", 2, 1.6, 1.0, 1.0)) == [("started", 1, 2)]
