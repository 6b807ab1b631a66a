"""The futures last-vs-fair detector (issue #17): config section, strategies, episodes, log line."""

from __future__ import annotations

import calendar
import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.config import ConfigError, config_from_mapping, load_config, set_value
from common.futures_config import FuturesConfig, sensitive_preset
from detectors.futures import FairPriceDetector
from detectors.futures_episodes import (
    ENDED_BY,
    STRATEGIES,
    BookSummary,
    Episode,
    EpisodeEvent,
    format_log_line,
    price_text,
)

REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------- config


def test_futures_defaults_load_from_config_yaml() -> None:
    config = load_config(REPO / "config.yaml", environ={})
    assert config.futures == FuturesConfig()  # the file and the dataclass say the same
    f = config.futures
    assert f.enabled is True and f.symbols == [] and f.cards_enabled is False and f.per_symbol_seconds == 60  # on by default, cards off (#17)
    assert f.ws_url.startswith("wss://") and f.ws_url.endswith("/edge") and f.rest_url.startswith("https://")  # live MEXC unless overridden
    assert (f.strategy1.spread_ratio_min, f.strategy1.min_abs_diff, f.strategy1.min_price) == (1.5, 0.0001, 0.01)
    assert (f.strategy2.spread_ratio_min, f.strategy2.spike_lookback_secs, f.strategy2.spike_ratio_min) == (1.3, 5, 1.2)
    s3 = f.strategy3
    assert (s3.spread_ratio_min, s3.baseline_window_secs, s3.pump_vs_baseline_min, s3.mark_stability_max) == (
        1.2,
        60,
        1.5,
        0.05,
    )
    s4 = f.strategy4
    assert (s4.spread_ratio_min, s4.min_abs_diff, s4.max_spread_pct, s4.min_thick_depth_usdt, s4.depth_band_pct) == (
        1.5, 0.0001, 0.3, 10_000, 0.5)  # fmt: skip


def test_futures_urls_come_from_the_environment() -> None:
    env = {"MEXC_FUTURES_WS_URL": "ws://127.0.0.1:9/edge", "MEXC_FUTURES_REST_URL": "http://127.0.0.1:9"}
    config = load_config(REPO / "config.yaml", environ=env)
    assert config.futures.ws_url == "ws://127.0.0.1:9/edge" and config.futures.rest_url == "http://127.0.0.1:9"


def test_demo_config_runs_the_futures_feed_like_the_shipped_one() -> None:
    """The demo's futures section is the shipped one (on); supervisor/demo.py points its URLs at the emulator."""
    demo = load_config(REPO / "config.demo.yaml", environ={})
    assert demo.futures == FuturesConfig() and demo.futures.enabled


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"strategy2": {"spike_ratio_min": 0.5}},
            r"^futures\.strategy2\.spike_ratio_min: got 0\.5, expected a value >= 1\.0",
        ),
        (
            {"strategy3": {"mark_stability_max": "x"}},
            r"^futures\.strategy3\.mark_stability_max: got 'x', expected a number",
        ),
        ({"strategy4": {"depth_band": 1}}, r"^futures\.strategy4\.depth_band: unknown key"),
        ({"strategy1": 5}, r"^futures\.strategy1: got 5, expected a mapping"),
        ({"strategy5": {}}, r"^futures\.strategy5: unknown key"),
        ({"strategy1": {"enabled": "maybe"}}, r"^futures\.strategy1\.enabled: got 'maybe', expected a boolean"),
        (
            {"reconnect_min_s": 5, "reconnect_max_s": 1},
            r"^futures\.reconnect_max_s: got 1\.0, expected >= futures\.reconnect_min_s",
        ),
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
    with pytest.raises(
        ConfigError, match=r"^futures\.strategy2\.spike_ratio_min: got '0\.9', expected a value >= 1\.0"
    ):
        set_value(config, "futures.strategy2.spike_ratio_min", "0.9")
    with pytest.raises(ConfigError, match=r"^futures\.strategy2: a section, not a setting"):
        set_value(config, "futures.strategy2", "1")
    with pytest.raises(
        ConfigError, match=r"^futures\.reconnect_max_s: got 30\.0, expected >= futures\.reconnect_min_s \(100\.0\)"
    ):
        set_value(config, "futures.reconnect_min_s", "100")  # the copy is checked as a whole


@pytest.mark.parametrize("name", ["config.yaml", "config.demo.yaml"])
def test_the_documented_sensitive_preset_is_a_valid_section(name: str) -> None:
    preset = sensitive_preset(REPO / name)
    assert set(preset) == {"strategy1", "strategy2", "strategy3", "strategy4"}
    config = config_from_mapping({"futures": preset}, environ={})
    assert config.futures.strategy1.spread_ratio_min == 1.01


# ------------------------------------------------------------------------------------- log line

T0 = calendar.timegm((2025, 11, 20, 12, 34, 50)) * 1000  # 2025-11-20T12:34:50Z in ms


def test_the_log_line_reproduces_the_original_example() -> None:
    ep = Episode(1, "BTC_USDT", T0, 43500.0, 23513.5, 23500.0, None, None, 43500.0 / 23513.5, 43500.0, 23513.5, T0,
                 end_ms=T0 + 6000, ended_by="condition")  # fmt: skip
    assert format_log_line(ep) == (
        "2025-11-20T12:34:56Z | BTC_USDT | START=12:34:50 | END=12:34:56 | DURATION=6s | PEAK_RATIO=1.85"
        " | PEAK_LAST=43500.0 | PEAK_MARK=23513.5"
    )


def test_the_detector_writes_the_example_line_end_to_end() -> None:
    det = FairPriceDetector(_cfg(strategy1={}))
    det.on_ticker("BTC_USDT", T0 - 1_000, 23500.0, 23513.5, 23500.0)
    det.on_ticker("BTC_USDT", T0, 40000.0, 23513.5, 23500.0)
    det.on_ticker("BTC_USDT", T0 + 2_500, 43500.0, 23513.5, 23500.0)  # the peak
    (ended,) = det.on_ticker("BTC_USDT", T0 + 6_000, 23520.0, 23513.5, 23500.0)
    assert format_log_line(ended.episode) == (
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
    ep = started[0].episode
    assert ep.start_spread_pct == pytest.approx(0.1) and ep.start_depth_usdt == pytest.approx(10_400)
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


# --------------------------------------------------------------------- the reference (hypothesis)


def _pos(x: float) -> bool:
    return math.isfinite(x) and x > 0


def _ref_book(book: Any, band_pct: float) -> tuple[float, float] | None:
    """(spread_pct, depth_usdt) of a book, straight from the documented definition."""
    if book is None:
        return None
    bids, asks, size = book
    bids = [(lv[0], lv[1]) for lv in bids if _pos(lv[0]) and _pos(lv[1])]
    asks = [(lv[0], lv[1]) for lv in asks if _pos(lv[0]) and _pos(lv[1])]
    if not _pos(size) or not bids or not asks:
        return None
    bid, ask = max(p for p, _ in bids), min(p for p, _ in asks)
    if bid >= ask:
        return None
    mid = (bid + ask) / 2
    lo, hi = mid * (1 - band_pct / 100), mid * (1 + band_pct / 100)
    depth = math.fsum([p * q * size for p, q in bids if p >= lo] + [p * q * size for p, q in asks if p <= hi])
    return (ask - bid) / mid * 100, depth


def _ref_holds(k: int, cfg: FuturesConfig, hist: list[tuple[int, float, float]], t: int, last: float, fair: float,
               book: Any) -> bool:  # fmt: skip
    """Strategy k at an update, from the whole history since the last gap (no pruning, no state)."""
    ratio = last / fair
    if k == 1:
        s1 = cfg.strategy1
        return s1.enabled and ratio >= s1.spread_ratio_min and last - fair >= s1.min_abs_diff and last >= s1.min_price
    if k == 2:
        s2 = cfg.strategy2
        before = [h for h in hist if h[0] <= t - round(s2.spike_lookback_secs * 1000)]
        return (
            s2.enabled and ratio >= s2.spread_ratio_min and bool(before) and last / before[-1][1] >= s2.spike_ratio_min
        )
    if k == 3:
        s3 = cfg.strategy3
        cut = t - round(s3.baseline_window_secs * 1000)
        older = [h for h in hist if h[0] <= cut]
        if not (s3.enabled and ratio >= s3.spread_ratio_min and older):
            return False
        window = [older[-1]] + [h for h in hist if h[0] > cut]
        baseline = math.fsum(h[1] for h in window) / len(window)
        fairs = [h[2] for h in window] + [fair]
        return (
            last / baseline >= s3.pump_vs_baseline_min
            and (max(fairs) - min(fairs)) / min(fairs) <= s3.mark_stability_max
        )
    s4 = cfg.strategy4
    summary = _ref_book(book, s4.depth_band_pct)
    return (s4.enabled and ratio >= s4.spread_ratio_min and last - fair >= s4.min_abs_diff and summary is not None
            and summary[0] <= s4.max_spread_pct and summary[1] >= s4.min_thick_depth_usdt)  # fmt: skip


def _reference(cfg: FuturesConfig, ops: list[tuple[Any, ...]], end: tuple[int, str]) -> list[EpisodeEvent]:
    """The documented semantics, re-evaluated from the full history at every step."""
    hist: dict[str, list[tuple[int, float, float]]] = {}  # counted updates since the symbol's last gap
    last_t: dict[str, int] = {}
    books: dict[str, Any] = {}
    book_t: dict[str, int] = {}
    open_: dict[tuple[str, int], Episode] = {}
    cool: dict[tuple[str, int], int] = {}
    cooldown_ms = round(cfg.per_symbol_seconds * 1000)
    out: list[EpisodeEvent] = []

    def finish(ep: Episode, end_ms: int, t: int, by: str) -> None:
        ep.end_ms, ep.ended_by = end_ms, by
        del open_[(ep.symbol, ep.strategy)]
        cool[(ep.symbol, ep.strategy)] = end_ms + cooldown_ms
        out.append(EpisodeEvent("ended", t, ep))

    def gap(sym: str, t: int) -> None:
        for k in STRATEGIES:
            if (sym, k) in open_:
                finish(open_[(sym, k)], last_t[sym], t, "gap")
        hist[sym] = []
        books.pop(sym, None)

    for op in ops:
        kind, sym, t = op[0], op[1], op[2]
        if kind == "tick":
            last, fair, index = op[3], op[4], op[5]
            if not (_pos(last) and _pos(fair)) or t < last_t.get(sym, -(2**62)):
                continue
            past = hist.setdefault(sym, [])
            for k in STRATEGIES:
                holds = _ref_holds(k, cfg, past, t, last, fair, books.get(sym))
                ep = open_.get((sym, k))
                if ep is not None and not holds:
                    finish(ep, t, t, "condition")
                elif ep is not None and last / fair > ep.peak_ratio:
                    ep.peak_ratio, ep.peak_last, ep.peak_fair, ep.peak_ms = last / fair, last, fair, t
                elif ep is None and holds and t >= cool.get((sym, k), -(2**62)):
                    summary = _ref_book(books.get(sym), cfg.strategy4.depth_band_pct)
                    spread, depth = summary if summary else (None, None)
                    open_[(sym, k)] = Episode(k, sym, t, last, fair, index, spread, depth, last / fair, last, fair, t)
                    out.append(EpisodeEvent("started", t, dataclasses.replace(open_[(sym, k)])))
            past.append((t, last, fair))
            last_t[sym] = t
        elif kind == "book":
            if t >= book_t.get(sym, -(2**62)):
                books[sym], book_t[sym] = (op[3], op[4], op[5]), t
        elif sym in hist or sym in books or sym in book_t:
            gap(sym, t)
    t_end, reason = end
    for sym in sorted(set(hist) | set(book_t)):
        if reason == "gap":
            gap(sym, t_end)
        else:
            for k in STRATEGIES:
                if (sym, k) in open_:
                    finish(open_[(sym, k)], max(t_end, last_t[sym]), t_end, "shutdown")
    return out


def _run(cfg: FuturesConfig, ops: list[tuple[Any, ...]], end: tuple[int, str]) -> list[EpisodeEvent]:
    det = FairPriceDetector(cfg)
    out: list[EpisodeEvent] = []
    for op in ops:
        if op[0] == "tick":
            out += det.on_ticker(*op[1:])
        elif op[0] == "book":
            det.on_book(op[1], op[2], op[3], op[4], contract_size=op[5])
        else:
            out += det.gap(op[1], op[2])
    return out + list(det.close_all(*end))


_NASTY = [0.0, -1.0, math.nan, math.inf, -math.inf, 1e-300, 1e300]
_last = st.sampled_from([1.0, 1.1, 1.25, 1.3, 1.5, 1.6, 2.0, 2.5, 3.0, 10.0, 0.005]) | st.floats(0.5, 4.0)
_fair = st.sampled_from([1.0] * 6 + [1.02, 0.95, 1.3, 2.0]) | st.floats(0.5, 2.0)
_bad = st.sampled_from(_NASTY)
_bid = st.tuples(
    st.sampled_from([0.999, 0.998, 0.99, 0.9, 0.0, math.nan]),
    st.sampled_from([1.0, 100.0, 5_000.0, 20_000.0, 0.0, math.nan]),
)
_ask = st.tuples(
    st.sampled_from([1.0, 1.001, 1.01, 1.2, 0.95, math.nan]),
    st.sampled_from([1.0, 100.0, 5_000.0, 20_000.0, 0.0, math.nan]),
    st.just(3),
)  # MEXC's [price, contracts, orderCount]
_symbol = st.sampled_from(["A_USDT", "A_USDT", "B_USDT"])
_dt = st.sampled_from([0, 100, 500, 1_000, 1_000, 1_500, 2_500, 4_000, 9_000, -700])
_OPS = {
    "tick": st.tuples(st.just("tick"), _symbol, _dt, _last, _fair, st.sampled_from([1.0, 1.0, math.nan])),
    "bad": st.tuples(st.just("tick"), _symbol, _dt, _last | _bad, _fair | _bad, st.just(1.0)),  # never evidence
    "book": st.tuples(st.just("book"), _symbol, _dt, st.lists(_bid, max_size=4), st.lists(_ask, max_size=4),
                      st.sampled_from([1.0, 1.0, 0.5, 0.0])),
    "gap": st.tuples(st.just("gap"), _symbol, _dt),
}  # fmt: skip
_op = st.sampled_from(["tick"] * 8 + ["bad", "book", "gap"]).flatmap(_OPS.__getitem__)  # mostly good ticks


@st.composite
def _config(draw: st.DrawFn) -> FuturesConfig:
    b, pick = st.booleans(), st.sampled_from
    raw = {
        "per_symbol_seconds": draw(pick([0, 1, 3, 10])),
        "strategy1": {"enabled": draw(b), "spread_ratio_min": draw(pick([1.0, 1.2, 1.5])),
                      "min_abs_diff": draw(pick([0, 0.0001, 0.5])), "min_price": draw(pick([0, 0.01, 2.0]))},
        "strategy2": {"enabled": draw(b), "spread_ratio_min": draw(pick([1.0, 1.3])),
                      "spike_lookback_secs": draw(pick([0.1, 1, 2.5, 5])), "spike_ratio_min": draw(pick([1.0, 1.2, 1.5]))},
        "strategy3": {"enabled": draw(b), "spread_ratio_min": draw(pick([1.0, 1.2])),
                      "baseline_window_secs": draw(pick([1, 2, 5])), "pump_vs_baseline_min": draw(pick([1.0, 1.2, 1.5])),
                      "mark_stability_max": draw(pick([0, 0.05, 0.5]))},
        "strategy4": {"enabled": draw(b), "spread_ratio_min": draw(pick([1.0, 1.5])), "min_abs_diff": draw(pick([0, 0.0001])),
                      "max_spread_pct": draw(pick([0.3, 1, 100])), "min_thick_depth_usdt": draw(pick([0, 100, 10_000])),
                      "depth_band_pct": draw(pick([0.5, 5, 100]))},
    }  # fmt: skip
    return config_from_mapping({"futures": raw}, environ={}).futures


@settings(max_examples=400, deadline=None)
@given(cfg=_config(), steps=st.lists(_op, min_size=10, max_size=80), reason=st.sampled_from(["shutdown", "gap"]))
def test_the_detector_equals_the_reference(cfg: FuturesConfig, steps: list[tuple[Any, ...]], reason: str) -> None:
    ops, t = [], 1_700_000_000_000
    for step in steps:  # the drawn times are steps of one exchange clock (a negative one: a late update)
        t += step[2]
        ops.append((step[0], step[1], t, *step[3:]))
    end = (t + 1_000, reason)
    got = _run(cfg, ops, end)
    assert repr(got) == repr(_reference(cfg, ops, end))  # repr: NaN index values compare equal
    for event in got:
        ep = event.episode
        assert _pos(ep.start_last) and _pos(ep.start_fair) and _pos(ep.peak_last) and _pos(ep.peak_fair)
        assert ep.start_ms <= ep.peak_ms <= (ep.end_ms if ep.end_ms is not None else ep.peak_ms)
        assert ep.end_ms is None or ep.ended_by in ENDED_BY
    assert sum(e.kind == "started" for e in got) == sum(e.kind == "ended" for e in got)  # close_all ends them all


_BOOKS = [
    ([(0.999, 20_000.0)], [(1.001, 20_000.0, 3)]),  # tight and thick
    ([(0.999, 10.0)], [(1.001, 10.0, 3)]),  # tight and thin
    ([(0.9, 1e6)], [(1.1, 1e6, 3)]),  # wide
    ([(1.01, 1e6)], [(0.99, 1e6, 3)]),  # crossed
    ([], []),
    ([(math.nan, 5.0), (0.999, 20_000.0)], [(1.0005, 0.0, 3), (1.001, 20_000.0, 3)]),  # bad levels skipped
]
_busy_book = st.tuples(st.just("book"), _symbol, _dt, *map(st.just, (0, 0)), st.sampled_from([1.0, 0.5, 0.0])).flatmap(
    lambda op: st.sampled_from(_BOOKS).map(lambda book: (*op[:3], *book, op[5]))
)


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(_op | _busy_book, min_size=10, max_size=80), spread=st.sampled_from([0.3, 1, 100]), depth=st.sampled_from([0, 100, 10_000]),
       band=st.sampled_from([0.5, 5, 100]))  # fmt: skip
def test_strategy4_equals_the_reference_on_busy_books(steps: list[tuple[Any, ...]], spread: float, depth: float,
                                                      band: float) -> None:  # fmt: skip
    """Strategy 4 alone at ratio 1.0, so the book decides nearly every update (a rare case above)."""
    cfg = _cfg(strategy4={"spread_ratio_min": 1.0, "min_abs_diff": 0, "max_spread_pct": spread,
                          "min_thick_depth_usdt": depth, "depth_band_pct": band})  # fmt: skip
    ops, t = [], 1_700_000_000_000
    for step in steps:
        t += step[2]
        ops.append((step[0], step[1], t, *step[3:]))
    assert repr(_run(cfg, ops, (t, "shutdown"))) == repr(_reference(cfg, ops, (t, "shutdown")))


def test_the_book_summary_follows_new_books_and_the_configured_band() -> None:
    det = FairPriceDetector(_cfg(strategy4={}))
    assert det.book_summary("A_USDT") is None
    det.on_book("A_USDT", 10, [(99.0, 10.0)], [(101.0, 10.0)])
    wide = det.book_summary("A_USDT")
    assert wide is not None and wide.spread_pct == 2.0 and wide.depth_usdt == 0.0  # ±0.5 % of 100 holds neither level
    det.set_config(_cfg(strategy4={"depth_band_pct": 1.0}))
    assert det.book_summary("A_USDT") == BookSummary(2.0, 2000.0)
    det.on_book("A_USDT", 9, [(99.9, 1.0)], [(100.1, 1.0)])  # older than the one held: ignored
    assert det.book_summary("A_USDT") == BookSummary(2.0, 2000.0)
    det.on_book("A_USDT", 11, [(99.9, 1.0)], [(100.1, 1.0)])
    summary = det.book_summary("A_USDT")
    assert summary is not None and summary.spread_pct == pytest.approx(0.2) and summary.depth_usdt == 200.0
    det.gap("A_USDT", 12)
    assert det.book_summary("A_USDT") is None  # a gap drops the book with the history
