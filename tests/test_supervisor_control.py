"""Hot reload and /cfg on the real Supervisor object; the scout reacting to ticker changes (A-6)."""

from __future__ import annotations

import shutil
from pathlib import Path

from common.config import ScoutConfig
from common.rest import PacedRest
from sim.server import run_emulator
from supervisor.app import Supervisor
from supervisor.scout import Scout, select_pairs

REPO = Path(__file__).resolve().parent.parent


def _supervisor(tmp_path: Path) -> Supervisor:
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    shutil.copy(REPO / "model.json", tmp_path / "model.json")
    sup = Supervisor(tmp_path / "config.yaml")
    sup._build_scoring()
    return sup


def test_cfg_applies_valid_values_and_refuses_bad_ones_changing_nothing(tmp_path: Path) -> None:
    sup = _supervisor(tmp_path)
    ok, message = sup.set_config_value("scanner.vsr_min", "7.5")
    assert ok and sup.scorer.config.vsr_min == 7.5
    for key, value, reason in [("scanner.vsr_min", "lots", "expected a number"), ("scanner.nope", "1", "unknown key"),
                               ("telegram.token", "x", "only from the environment"), ("scanner.prob_threshold", "2", "<= 1.0")]:  # fmt: skip
        ok, message = sup.set_config_value(key, value)
        assert not ok and reason in message
    assert sup.scorer.config.vsr_min == 7.5 and sup.config.scanner.prob_threshold == 0.6


def test_reload_applies_a_new_file_and_keeps_the_old_config_when_the_file_is_bad(tmp_path: Path) -> None:
    sup = _supervisor(tmp_path)
    text = (tmp_path / "config.yaml").read_text()
    (tmp_path / "config.yaml").write_text(text.replace("vsr_min: 5.0", "vsr_min: 8.0"))
    ok, _ = sup.reload()
    assert ok and sup.scorer.config.vsr_min == 8.0
    (tmp_path / "config.yaml").write_text(text.replace("vsr_min: 5.0", "vsr_min: eight"))
    ok, message = sup.reload()
    assert not ok and "scanner.vsr_min" in message and sup.scorer.config.vsr_min == 8.0
    (tmp_path / "config.yaml").write_text(text)
    (tmp_path / "model.json").write_text("{not json")
    ok, message = sup.reload()
    assert not ok and "model" in message and sup.scorer.config.vsr_min == 8.0


def test_cfg_switches_profiles_on_only_with_a_valid_model_of_that_profile(tmp_path: Path) -> None:
    sup = _supervisor(tmp_path)
    ok, message = sup.set_config_value("scanner.profiles", "alpha1,flash")
    assert not ok and "model.flash.json" in message and sup.scorer.config.profiles == ["alpha1"]
    (tmp_path / "model.flash.json").write_text((REPO / "model.json").read_text())  # an alpha1 model
    ok, message = sup.set_config_value("scanner.profiles", "alpha1,flash")
    assert not ok and "expected 'flash'" in message and set(sup.scorer.models) == {"alpha1"}
    shutil.copy(REPO / "model.flash.json", tmp_path / "model.flash.json")
    ok, message = sup.set_config_value("scanner.profiles", "alpha1,flash")
    assert ok and sup.scorer.config.profiles == ["alpha1", "flash"] and set(sup.scorer.models) == {"alpha1", "flash"}


async def test_scout_reacts_to_a_changed_ticker(tmp_path: Path) -> None:
    async with run_emulator(pairs=50, seed=3) as emu:
        rest = PacedRest(emu.rest_url)
        scout = Scout(rest)
        await scout.refresh_universe()
        await scout.refresh_volumes()
        config = ScoutConfig(min_quote_vol_usd=sorted(scout.volumes.values())[-10])
        before = {c.symbol for c in select_pairs(scout.universe, scout.volumes, config)}
        quiet = next(s.symbol for s in emu.market.symbols if s.status == "1" and s.quote == "USDT" and s.symbol not in before)
        emu.market.set_ticker_override(quiet, 10 * config.min_quote_vol_usd)
        await scout.refresh_volumes()
        after = {c.symbol for c in select_pairs(scout.universe, scout.volumes, config)}
        await rest.close()
        assert quiet in after and quiet not in before


async def test_moved_pairs_are_added_before_they_are_removed(tmp_path: Path) -> None:
    from supervisor.app import ShardHandle
    from supervisor.scout import SymbolInfo

    sup = _supervisor(tmp_path)
    sup.n_shards = 2
    sup.shards = [ShardHandle(0, None, None), ShardHandle(1, None, None)]
    scout = Scout(None)  # type: ignore[arg-type]
    scout.universe = {s: SymbolInfo(s, "USDT", True, True) for s in ("AUSDT", "BUSDT", "CUSDT", "DUSDT")}
    scout.volumes = {"AUSDT": 1e6, "BUSDT": 1e6, "CUSDT": 1e6, "DUSDT": 1e6}
    sup.config.scout.min_quote_vol_usd = 0
    sup._replan(scout)
    first = dict(sup.assignment)
    assert sorted(first.values()) == [0, 0, 1, 1]
    # One pair becomes very busy: the planner rebalances, and the moved pair stays on its old shard
    # until the delayed second plan, so it is never unwatched.
    heavy = next(s for s, k in first.items() if k == 0)
    scout.volumes[heavy] = 1e9
    sup._replan(scout)
    moved = [s for s in first if sup.assignment[s] != first[s]]
    for symbol in moved:
        assert symbol in sup.shards[0].pairs and symbol in sup.shards[1].pairs
    sup._finish_moves(sup.assignment)
    for symbol, shard in sup.assignment.items():
        assert symbol in sup.shards[shard].pairs and symbol not in sup.shards[1 - shard].pairs


def test_quality_drop_needs_five_minutes_of_data_and_rechecks_later(tmp_path: Path) -> None:
    import time

    import numpy as np

    from core.rowspec import FEATURE_ROW_DTYPE

    sup = _supervisor(tmp_path)
    sup.symbols = {1: "AUSDT", 2: "BUSDT"}
    now = time.monotonic()
    sup.watch_since = {"AUSDT": now - 1000, "BUSDT": now - 10}
    rows = np.zeros(2, dtype=FEATURE_ROW_DTYPE)
    rows["pair_id"] = [1, 2]
    rows["spread"] = 0.05  # 5 %: above the 1.5 % quality limit
    rows["quote_vol_5m"] = 1e6
    sup._quality_check(rows)
    assert "AUSDT" in sup.dropped_until and "BUSDT" not in sup.dropped_until
    assert sup.dropped_until["AUSDT"] - now >= sup.config.scout.recheck_interval_s - 1
