"""Triangle episodes, their table, their metrics and config: one episode per opportunity with its
peak, stored once, counted and timed on /metrics, every key validated."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from common.config import ConfigError, load_config
from detectors.arb_cycles import Cycle, Leg
from detectors.arb_episodes import ArbEpisodes
from store.arb import ArbStore, Opportunity
from supervisor.arb import select_cycles
from supervisor.arb_metrics import ArbCollector

PROFITABLE, BELOW, STALE = 1, 0, 5


def test_an_opportunity_is_one_episode_with_its_peak_and_end_reason() -> None:
    eps = ArbEpisodes()
    assert eps.on_result(3, BELOW, 1000, float("nan"), 0.0, float("nan"), (0, 0, 0)) is None
    started = eps.on_result(3, PROFITABLE, 1100, 8.0, 500.0, 5.0, (0, 10, 20))
    assert started is not None and started.kind == "started"
    assert eps.on_result(3, PROFITABLE, 1200, 12.5, 900.0, 5.1, (1, 2, 3)) is None
    assert eps.on_result(3, PROFITABLE, 1300, 9.0, 400.0, 5.0, (4, 5, 6)) is None
    ended = eps.on_result(3, STALE, 1400, float("nan"), 0.0, float("nan"), (0, 0, 9000))
    assert ended is not None and ended.kind == "ended"
    ep = ended.episode
    assert (ep.start_ms, ep.end_ms, ep.peak_ms, ep.peak_bps, ep.size, ep.ages_ms, ep.updates, ep.ended_by) == (
        1100, 1400, 1200, 12.5, 900.0, (1, 2, 3), 3, "stale")  # fmt: skip
    assert eps.open == {} and eps.on_result(3, BELOW, 1500, 0.0, 0.0, 0.0, (0, 0, 0)) is None
    eps.on_result(4, PROFITABLE, 2000, 6.0, 50.0, 5.0, (0, 0, 0))
    (closed,) = eps.close_all(2500, "shutdown")
    assert closed.episode.ended_by == "shutdown" and closed.episode.duration_ms == 500


def _opp(start_ms: int, peak: float) -> Opportunity:
    legs = [("BTCUSDT", "buy"), ("XYZBTC", "buy"), ("XYZUSDT", "sell")]
    return Opportunity("USDT→BTC→XYZ→USDT (buy BTCUSDT, buy XYZBTC, sell XYZUSDT)", "USDT", legs, start_ms, start_ms + 1500,
                       start_ms + 100, peak, 321.0, 5.2, [1, 2, 3], 7, "below")  # fmt: skip


def test_the_table_keeps_each_episode_once_and_summarises_a_day(tmp_path: Path) -> None:
    store = ArbStore(tmp_path)
    assert store.add(_opp(1_000, 9.5)) and not store.add(_opp(1_000, 9.5))
    assert store.add(_opp(5_000, 20.0))
    rows = store.since(0)
    assert [o.peak_bps for o in rows] == [20.0, 9.5] and rows[0].legs[1] == ("XYZBTC", "buy") and rows[0].leg_ages_ms == [1, 2, 3]
    summary = store.summary(2_000)
    assert summary["count"] == 1 and summary["best"][0]["peak_bps"] == 20.0 and summary["median_duration_ms"] == 1500
    with pytest.raises(ValueError, match="non-finite"):
        store.add(_opp(9_000, float("nan")))
    store.close()
    again = ArbStore(tmp_path)  # CREATE TABLE IF NOT EXISTS: reopening keeps the rows
    assert len(again.since(0)) == 2


def test_metrics_are_counters_gauges_and_a_duration_histogram() -> None:
    values = {"counters": {"arb_opportunities_total": 3.0}, "gauges": {"arb_cycles": 120.0}, "duration_buckets": [0.5, 5.0],
              "duration_counts": [1, 2, 0], "duration_sum": 4.25}  # fmt: skip
    registry = CollectorRegistry()
    registry.register(ArbCollector(lambda: values))
    text = generate_latest(registry).decode()
    assert "scanner_arb_opportunities_total 3.0" in text and "scanner_arb_cycles 120.0" in text
    assert 'scanner_arb_opportunity_duration_seconds_bucket{le="5.0"} 3.0' in text
    assert 'scanner_arb_opportunity_duration_seconds_bucket{le="+Inf"} 3.0' in text
    assert "scanner_arb_opportunity_duration_seconds_sum 4.25" in text


def test_config_defaults_and_bad_values(tmp_path: Path) -> None:
    arb = load_config("config.yaml").arb
    assert arb.enabled and arb.start_assets == ["USDT", "USDC"] and arb.taker_fee == 0.0005 and not arb.cards_enabled
    bad = tmp_path / "c.yaml"
    bad.write_text("arb:\n  start_assets: [usdt]\n")
    with pytest.raises(ConfigError, match=r"arb.start_assets\[0\]"):
        load_config(bad)
    bad.write_text("arb:\n  channel: trades\n")
    with pytest.raises(ConfigError, match="arb.channel"):
        load_config(bad)
    bad.write_text("arb:\n  max_leg_age: 5\n")
    with pytest.raises(ConfigError, match="max_leg_age"):
        load_config(bad)


def test_max_pairs_keeps_whole_cycles() -> None:
    def cyc(a: str, b: str, c: str) -> Cycle:
        return Cycle(("USDT", "X", "Y"), (Leg(a, True), Leg(b, True), Leg(c, False)))

    cycles = [cyc("A", "B", "C"), cyc("A", "D", "E"), cyc("A", "B", "F"), cyc("G", "H", "I")]
    assert select_cycles(cycles, 0) == cycles
    assert select_cycles(cycles, 4) == [cycles[0], cycles[2]]
    assert select_cycles(cycles, 5) == cycles[:2]
