"""Hot reload and /cfg on the real Supervisor object; the scout reacting to ticker changes (A-6)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from common.config import ScoutConfig
from common.detector_config import CooldownConfig
from sim.server import run_emulator
from supervisor.app import Supervisor
from supervisor.scout import Scout, select_pairs
from venues.mexc.rest import PacedRest

REPO = Path(__file__).resolve().parent.parent


def _supervisor(tmp_path: Path) -> Supervisor:
    # These scenarios start from alpha1 alone (the shipped default is flash: README, "Signal quality").
    text = (REPO / "config.yaml").read_text().replace("enabled_profiles: [flash]", "enabled_profiles: [alpha1]")
    (tmp_path / "config.yaml").write_text(text)
    shutil.copy(REPO / "model.json", tmp_path / "model.json")
    os.environ["SCANNER_DATA_DIR"] = str(tmp_path / "data")  # restored by the autouse fixture below
    return Supervisor(tmp_path / "config.yaml")


@pytest.fixture(autouse=True)
def _own_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCANNER_DATA_DIR", os.environ.get("SCANNER_DATA_DIR", ""))


def test_cfg_applies_valid_values_and_refuses_bad_ones_changing_nothing(tmp_path: Path) -> None:
    sup = _supervisor(tmp_path)
    ok, message = sup.control.set_value("detectors.pump.profiles.alpha1.vsr_min", "7.5")
    assert ok and sup.detection.scorers["pump"].config.profiles.alpha1.vsr_min == 7.5
    for key, value, reason in [("detectors.pump.profiles.alpha1.vsr_min", "lots", "expected a number"), ("scanner.nope", "1", "unknown key"),
                               ("telegram.token", "x", "only from the environment"), ("detectors.pump.profiles.alpha1.prob_threshold", "2", "<= 1.0"),
                               ("scanner.vsr_min", "6", "moved to detectors.pump.profiles.alpha1.vsr_min")]:  # fmt: skip
        ok, message = sup.control.set_value(key, value)
        assert not ok and reason in message
    assert sup.detection.scorers["pump"].config.profiles.alpha1.vsr_min == 7.5 and sup.config.detectors.pump.profiles.alpha1.prob_threshold == 0.6


def test_cfg_reaches_the_cooldown_and_flash_keys_of_the_scorer(tmp_path: Path) -> None:
    sup = _supervisor(tmp_path)
    for key, value in [("detectors.pump.cooldown.period_s", "600"), ("detectors.pump.cooldown.max_realerts", "2"),
                       ("detectors.pump.cooldown.realert_factor", "1.5"), ("detectors.pump.profiles.flash.rush_ratio_min", "3")]:  # fmt: skip
        ok, message = sup.control.set_value(key, value)
        assert ok, message
    assert sup.detection.scorers["pump"].config.cooldown == CooldownConfig(period_s=600.0, realert_factor=1.5, max_realerts=2)
    assert sup.detection.scorers["pump"].config.profiles.flash.rush_ratio_min == 3.0


def test_reload_applies_a_new_file_and_keeps_the_old_config_when_the_file_is_bad(tmp_path: Path) -> None:
    sup = _supervisor(tmp_path)
    text = (tmp_path / "config.yaml").read_text()
    (tmp_path / "config.yaml").write_text(text.replace("vsr_min: 5.0", "vsr_min: 8.0"))
    ok, _ = sup.control.reload()
    assert ok and sup.detection.scorers["pump"].config.profiles.alpha1.vsr_min == 8.0
    (tmp_path / "config.yaml").write_text(text.replace("vsr_min: 5.0", "vsr_min: eight"))
    ok, message = sup.control.reload()
    assert not ok and "detectors.pump.profiles.alpha1.vsr_min" in message and sup.detection.scorers["pump"].config.profiles.alpha1.vsr_min == 8.0
    (tmp_path / "config.yaml").write_text(text.replace("scanner:\n", "scanner:\n  vsr_min: 8.0\n"))  # an old flat key
    ok, message = sup.control.reload()
    assert not ok and "scanner.vsr_min: unknown key, moved to detectors.pump.profiles.alpha1.vsr_min" in message and sup.detection.scorers["pump"].config.profiles.alpha1.vsr_min == 8.0
    (tmp_path / "config.yaml").write_text(text)
    (tmp_path / "model.json").write_text("{not json")
    ok, message = sup.control.reload()
    assert not ok and "model" in message and sup.detection.scorers["pump"].config.profiles.alpha1.vsr_min == 8.0


def test_cfg_switches_profiles_on_only_with_a_valid_model_of_that_profile(tmp_path: Path) -> None:
    sup = _supervisor(tmp_path)
    ok, message = sup.control.set_value("detectors.pump.enabled_profiles", "alpha1,flash")
    assert not ok and "model.flash.json" in message and sup.detection.scorers["pump"].config.enabled_profiles == ["alpha1"]
    (tmp_path / "model.flash.json").write_text((REPO / "model.json").read_text())  # an alpha1 model
    ok, message = sup.control.set_value("detectors.pump.enabled_profiles", "alpha1,flash")
    assert not ok and "expected 'flash'" in message and set(sup.detection.scorers["pump"].models) == {"alpha1"}
    shutil.copy(REPO / "model.flash.json", tmp_path / "model.flash.json")
    ok, message = sup.control.set_value("detectors.pump.enabled_profiles", "alpha1,flash")
    assert ok and sup.detection.scorers["pump"].config.enabled_profiles == ["alpha1", "flash"] and set(sup.detection.scorers["pump"].models) == {"alpha1", "flash"}


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
    from supervisor.planning import ShardHandle
    from venues.mexc.market import SymbolInfo

    sup = _supervisor(tmp_path)
    sup.shards[:] = [ShardHandle(0, None, None), ShardHandle(1, None, None)]
    scout = Scout(None)  # type: ignore[arg-type]
    scout.universe = {s: SymbolInfo(s, "USDT", True, True) for s in ("AUSDT", "BUSDT", "CUSDT", "DUSDT")}
    scout.volumes = {"AUSDT": 1e6, "BUSDT": 1e6, "CUSDT": 1e6, "DUSDT": 1e6}
    sup.config.scout.min_quote_vol_usd = 0
    sup.planning.replan(scout)
    first = dict(sup.planning.assignment)
    assert sorted(first.values()) == [0, 0, 1, 1]
    # One pair becomes very busy: the planner rebalances, and the moved pair stays on its old shard
    # until the delayed second plan, so it is never unwatched.
    heavy = next(s for s, k in first.items() if k == 0)
    scout.volumes[heavy] = 1e9
    sup.planning.replan(scout)
    moved = [s for s in first if sup.planning.assignment[s] != first[s]]
    for symbol in moved:
        assert symbol in sup.shards[0].pairs and symbol in sup.shards[1].pairs
    sup.planning.finish_moves()
    for symbol, shard in sup.planning.assignment.items():
        assert symbol in sup.shards[shard].pairs and symbol not in sup.shards[1 - shard].pairs


def test_quality_drop_needs_five_minutes_of_data_and_rechecks_later(tmp_path: Path) -> None:
    import time

    import numpy as np

    from core.rowspec import FEATURE_ROW_DTYPE

    sup = _supervisor(tmp_path)
    planning = sup.planning
    planning.symbols = {1: "AUSDT", 2: "BUSDT"}
    now = time.monotonic()
    planning.watch_since = {"AUSDT": now - 1000, "BUSDT": now - 10}
    rows = np.zeros(2, dtype=FEATURE_ROW_DTYPE)
    rows["pair_id"] = [1, 2]
    rows["spread"] = 0.05  # 5 %: above the 1.5 % quality limit
    rows["quote_vol_5m"] = 1e6
    planning.quality_check(rows, keep=set())
    assert "AUSDT" in planning.dropped_until and "BUSDT" not in planning.dropped_until
    assert planning.dropped_until["AUSDT"] - now >= sup.config.scout.recheck_interval_s - 1


def test_a_restarted_supervisor_resumes_stored_cooldowns_and_does_not_alert_twice(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import time

    import numpy as np

    from common.signal import Signal, make_signal_id
    from core.rowspec import FEATURE_ROW_DTYPE, ROW_BASELINE_READY, ROW_BOOK_VALID, ROW_LISTING_KNOWN
    from store.history import Store
    from venues.mexc.market import SymbolInfo

    monkeypatch.setenv("SCANNER_DATA_DIR", str(tmp_path / "data"))
    t_alert = 1_790_000_000_000
    now = time.time_ns()
    store = Store(tmp_path / "data")
    for escalation, pm in ((0, 0.03), (1, 0.07)):  # the previous run: a first alert and its one re-alert
        t = t_alert + 60_000 * escalation
        store.add_signal(Signal(make_signal_id("AUSDT", t, escalation), "AUSDT", "alpha1", t, now, now, 1.0, 0.9, {"pm": pm}, [], escalation))
    store.close()

    sup = _supervisor(tmp_path)
    from supervisor.planning import ShardHandle

    sup.shards[:] = [ShardHandle(0, None, None)]
    scout = Scout(None)  # type: ignore[arg-type]
    scout.universe = {s: SymbolInfo(s, "USDT", True, True) for s in ("AUSDT", "BUSDT")}
    scout.volumes = {"AUSDT": 1e6, "BUSDT": 1e6}
    sup.config.scout.min_quote_vol_usd = 0
    sup.planning.replan(scout)

    def rows(symbol: str, t_ms: int, pm: float) -> np.ndarray:
        r = np.zeros(1, dtype=FEATURE_ROW_DTYPE)
        for key, value in dict(vsr=10.0, vc=0.3, pm=pm, obi=0.5, cum_depth_delta=3.0, spread=0.002, listing_age_s=1e5, last_price=1.0,
                               flags=ROW_BOOK_VALID | ROW_BASELINE_READY | ROW_LISTING_KNOWN, pair_id=sup.planning.pair_ids[symbol],
                               row_time_ms=t_ms, seq=1).items():  # fmt: skip
            r[key] = value
        return r

    cooldown_ms = sup.config.detectors.pump.cooldown.period_s * 1000
    # The pump is still running after the restart: no second alert, and the re-alert is used up.
    assert sup.detection.scorers["pump"].score(rows("AUSDT", t_alert + 120_000, 0.5)) == []
    # A pair with no stored alert signals as usual, and the restored cooldown still expires on time.
    assert [d.escalation for d in sup.detection.scorers["pump"].score(rows("BUSDT", t_alert + 120_000, 0.05))] == [0]
    assert [d.escalation for d in sup.detection.scorers["pump"].score(rows("AUSDT", t_alert + cooldown_ms, 0.05))] == [0]
    sup.store.close()


def test_the_offline_demo_is_one_flag_away_and_unknown_flags_are_refused() -> None:
    import subprocess
    import sys

    demo = subprocess.run([sys.executable, "-m", "supervisor", "--demo", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert demo.returncode == 0 and "python -m supervisor --demo" in demo.stdout and "--speed" in demo.stdout
    bad = subprocess.run([sys.executable, "-m", "supervisor", "--speed", "5"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unrecognized arguments: --speed 5" in bad.stderr


def test_sigterm_during_start_up_still_stops_cleanly(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "MEXC_WS_URL": "ws://127.0.0.1:9/ws", "MEXC_REST_URL": "http://127.0.0.1:9", "SCANNER_DATA_DIR": str(tmp_path),
           "METRICS_PORT": "0"}  # fmt: skip
    env.pop("TG_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "supervisor", "--config", str(REPO / "config.demo.yaml")], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    # Still importing (no event loop yet), but past the first lines that install the early handler:
    # wait for SIGTERM to show as caught in /proc, so a slow, loaded machine cannot make this flaky.
    def caught() -> bool:
        status = Path(f"/proc/{proc.pid}/status").read_text()
        mask = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
        return bool(mask & (1 << (signal.SIGTERM - 1)))

    deadline = time.monotonic() + 30
    while not caught() and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert '"msg": "supervisor stopped"' in err


def test_the_supervisor_never_loads_the_telegram_library_the_bot_child_does(tmp_path: Path) -> None:
    """python-telegram-bot is ~8 MB of modules: loaded in the supervisor before the bot's fork it
    cost both processes memory (PSS budget, perf/README.md). The bot child imports it itself."""
    import os
    import subprocess
    import sys

    code = """
import asyncio, sys
from bot.entry import bot_main
from supervisor.app import Supervisor
from supervisor.children import ChildProcess
sup = Supervisor(sys.argv[1])
async def main():
    sup.bot = ChildProcess("bot", bot_main, lambda: (sup.config,))
    sup.bot.start()
    await asyncio.sleep(0.2)
    print("child alive", sup.bot.alive())
    print("telegram in supervisor", "telegram" in sys.modules)
    sup.bot.process.kill()
    sup.bot.process.join(5)
asyncio.run(main())
"""
    env = {**os.environ, "TG_TOKEN": "1:TEST", "TG_BASE_URL": "http://127.0.0.1:9/bot", "SCANNER_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code, str(REPO / "config.demo.yaml")], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert "child alive True" in out.stdout, out.stderr[-2000:]
    assert "telegram in supervisor False" in out.stdout


def test_cfg_changes_say_they_are_temporary_and_cfg_save_keeps_them_across_reload_and_restart(tmp_path: Path) -> None:
    from common.config import ConfigError
    from common.messages import Notice
    from supervisor.overrides import load_effective_config

    sup = _supervisor(tmp_path)
    told: list = []
    sup.control.tell_bot = lambda m: told.append(m) or True
    ok, message = sup.control.set_value("detectors.pump.profiles.alpha1.vsr_min", "6")
    assert ok and "until the next /reload or restart" in message and "/cfg save" in message
    ok, message = sup.control.reload()
    assert ok and "unsaved /cfg changes dropped: detectors.pump.profiles.alpha1.vsr_min" in message and sup.detection.scorers["pump"].config.profiles.alpha1.vsr_min == 5.0
    assert sup.control.save() == (False, sup.control.save()[1]) and "nothing to save" in sup.control.save()[1]
    assert sup.control.set_value("detectors.pump.profiles.alpha1.vsr_min", "6")[0] and sup.control.set_value("outcome.stop_loss", "0.04")[0]
    ok, message = sup.control.save()
    assert ok and "detectors.pump.profiles.alpha1.vsr_min" in message and "outcome.stop_loss" in message
    ok, _ = sup.control.reload()
    assert ok and sup.detection.scorers["pump"].config.profiles.alpha1.vsr_min == 6.0 and sup.pipeline.tracker.config.stop_loss == 0.04
    restarted = _supervisor(tmp_path)  # a restart reads config.yaml, then the saved overrides
    assert restarted.detection.scorers["pump"].config.profiles.alpha1.vsr_min == 6.0 and restarted.config.outcome.stop_loss == 0.04
    # A saved override that no longer validates stops a start with the file and key named ...
    overrides = tmp_path / "data" / "config.overrides.yaml"
    overrides.write_text(overrides.read_text() + "scanner.vsr_min_typo: '3'\n")
    with pytest.raises(ConfigError, match=r"config.overrides.yaml: scanner.vsr_min_typo: unknown key"):
        load_effective_config(tmp_path / "config.yaml")
    # ... and a refused SIGHUP reload keeps the running config and tells the owner in Telegram.
    sup.control.on_sighup()
    assert sup.detection.scorers["pump"].config.profiles.alpha1.vsr_min == 6.0
    assert len(told) == 1 and isinstance(told[0], Notice) and "Reload (SIGHUP) refused" in told[0].text and "vsr_min_typo" in told[0].text


def test_a_signal_carries_its_price_changes_24h_volume_and_whether_its_model_was_trained(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue #24: the card context comes from rows the supervisor already read and the scout's last ticker, no REST call."""
    import numpy as np

    from core.rowspec import FEATURE_ROW_DTYPE, ROW_BASELINE_READY, ROW_BOOK_VALID, ROW_LISTING_KNOWN
    from supervisor.planning import ShardHandle

    sup = _supervisor(tmp_path)
    sup.planning.symbols, sup.planning.pair_ids = {3: "AUSDT"}, {"AUSDT": 3}
    sup.planning.volumes_24h = {"AUSDT": 2.5e6}  # what the scout loop copies from Scout.volumes after each ticker/24hr poll
    t0 = 1_790_000_040_000 // 60_000 * 60_000

    class Ring:
        batches: list[np.ndarray] = []

        def drain_notify(self) -> None:
            pass

        def read_new(self) -> np.ndarray:
            return self.batches.pop(0)

    def row(t_ms: int, price: float, vsr: float) -> np.ndarray:
        r = np.zeros(1, dtype=FEATURE_ROW_DTYPE)
        for key, value in dict(vsr=vsr, vc=0.3, pm=0.05, obi=0.5, cum_depth_delta=3.0, spread=0.002, listing_age_s=1e5, last_price=price,
                               flags=ROW_BOOK_VALID | ROW_BASELINE_READY | ROW_LISTING_KNOWN, pair_id=3, row_time_ms=t_ms, seq=1).items():  # fmt: skip
            r[key] = value
        return r

    handle = ShardHandle(0, Ring(), None)
    for minute in range(17):  # quiet rows (VSR 1: no signal), one a minute, price 1.00, 1.01, ...
        Ring.batches.append(row(t0 + minute * 60_000 + 30_000, 1.0 + minute / 100, 1.0))
        sup.pipeline.on_ring_ready(handle)
    fire_t = t0 + 17 * 60_000 + 10_000
    Ring.batches.append(row(fire_t, 1.25, 10.0))
    sup.pipeline.on_ring_ready(handle)
    (sig,) = sup.store.signals_without_outcome()
    assert sig.model_trained is False and sig.quote_volume_24h == 2.5e6  # the shipped model.json is hand-set
    # the price before the start of minute 16, 12 and 2: the closes of minutes 15, 11 and 1
    assert sig.change_1m is not None and abs(sig.change_1m - (1.25 / 1.15 - 1)) < 1e-12
    assert sig.change_5m is not None and abs(sig.change_5m - (1.25 / 1.11 - 1)) < 1e-12
    assert sig.change_15m is not None and abs(sig.change_15m - (1.25 / 1.01 - 1)) < 1e-12
    sup.store.close()
