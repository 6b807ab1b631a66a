"""Hot reload and /cfg on the real Supervisor object; the scout reacting to ticker changes (A-6)."""

from __future__ import annotations

import shutil
from pathlib import Path

from common.config import ScoutConfig
from sim.server import run_emulator
from supervisor.app import Supervisor
from supervisor.scout import Scout, select_pairs
from venues.mexc.rest import PacedRest

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
    from venues.mexc.market import SymbolInfo

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
    sup._build_store()
    sup.n_shards = 1
    from supervisor.app import ShardHandle

    sup.shards = [ShardHandle(0, None, None)]
    scout = Scout(None)  # type: ignore[arg-type]
    scout.universe = {s: SymbolInfo(s, "USDT", True, True) for s in ("AUSDT", "BUSDT")}
    scout.volumes = {"AUSDT": 1e6, "BUSDT": 1e6}
    sup.config.scout.min_quote_vol_usd = 0
    sup._replan(scout)

    def rows(symbol: str, t_ms: int, pm: float) -> np.ndarray:
        r = np.zeros(1, dtype=FEATURE_ROW_DTYPE)
        for key, value in dict(vsr=10.0, vc=0.3, pm=pm, obi=0.5, cum_depth_delta=3.0, spread=0.002, listing_age_s=1e5, last_price=1.0,
                               flags=ROW_BOOK_VALID | ROW_BASELINE_READY | ROW_LISTING_KNOWN, pair_id=sup.pair_ids[symbol],
                               row_time_ms=t_ms, seq=1).items():  # fmt: skip
            r[key] = value
        return r

    cooldown_ms = sup.config.scanner.cooldown_s * 1000
    # The pump is still running after the restart: no second alert, and the re-alert is used up.
    assert sup.scorer.score(rows("AUSDT", t_alert + 120_000, 0.5)) == []
    # A pair with no stored alert signals as usual, and the restored cooldown still expires on time.
    assert [d.escalation for d in sup.scorer.score(rows("BUSDT", t_alert + 120_000, 0.05))] == [0]
    assert [d.escalation for d in sup.scorer.score(rows("AUSDT", t_alert + cooldown_ms, 0.05))] == [0]
    sup.store.close()


def test_the_offline_demo_is_one_flag_away_and_unknown_flags_are_refused() -> None:
    import subprocess
    import sys

    demo = subprocess.run([sys.executable, "-m", "supervisor", "--demo", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert demo.returncode == 0 and "python -m supervisor.demo" in demo.stdout and "--speed" in demo.stdout
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
    time.sleep(0.3)  # still importing: no event loop yet
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
from supervisor.app import Supervisor
sup = Supervisor(sys.argv[1])
async def main():
    sup._start_bot()
    await asyncio.sleep(0.2)
    print("child alive", sup.bot_process.is_alive())
    print("telegram in supervisor", "telegram" in sys.modules)
    sup.bot_process.kill()
    sup.bot_process.join(5)
asyncio.run(main())
"""
    env = {**os.environ, "TG_TOKEN": "1:TEST", "TG_BASE_URL": "http://127.0.0.1:9/bot", "SCANNER_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code, str(REPO / "config.demo.yaml")], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert "child alive True" in out.stdout, out.stderr[-2000:]
    assert "telegram in supervisor False" in out.stdout
