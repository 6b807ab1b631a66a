"""An automatic exit is placed at most once across kill -9 of the whole service (issue #18).

The real entry point (`python -m supervisor`, live mode, a stop-loss / take-profit tight enough to
fire on the first look) runs against the emulator and the fake Bot API, both in this process on
loopback, with a live position bought before it starts. The whole process tree (the supervisor,
its shards, the bot, and whatever runs under a fork server: psutil children(recursive=True), never
only direct children) is SIGKILLed at a randomized moment around the exit: when the sell request
reaches the emulator (not executed), right after the emulator executed it (its answer never
arrives), a random 0-400 ms after the answer (while the fills and the journal are written), or a
random 0-400 ms after the bot's start-up check first reads myTrades (before, during or after the
exit, which follows within about 100 ms). The
service is started again on the same data dir; the emulator must then have seen at most one sell
(by count and by client order id), and the exit must be recorded exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from common.config import config_from_mapping
from common.signal import Signal, make_signal_id
from sim.fake_telegram import run_fake_telegram
from sim.rest_server import DEFAULT_API_KEY, DEFAULT_API_SECRET
from sim.server import run_emulator
from sim.spot_orders import OrderError
from store.history import Store
from trading.trader import Trader

REPO = Path(__file__).resolve().parent.parent
TOKEN = "4242:CHAOS-TOKEN"
OWNER = 7
MOMENTS = ("at_request", "after_fill", "settling", "random")


def _service_config(path: Path) -> None:
    """config.demo.yaml, live, with exits that fire on the first price seen (any move past 0.001 %)."""
    config = yaml.safe_load((REPO / "config.demo.yaml").read_text())
    config["detectors"]["pump"]["profiles"]["alpha1"]["model_path"] = str(REPO / "model.json")
    config["trading"].update(live=True, take_profit=0.00001, stop_loss=0.00001, exit_check_s=0.5)
    path.write_text(yaml.safe_dump(config))


def _tree_kill(pid: int) -> tuple[int, int | None]:
    """SIGKILL the process tree under pid (children(recursive=True), then the root): (processes killed, the root's exit code)."""
    try:
        root = psutil.Process(pid)
        tree = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return 0, None
    for proc in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    gone, _ = psutil.wait_procs(tree, timeout=10)
    return len(tree), next((p.returncode for p in gone if p.pid == pid), None)  # psutil reaps the root: Popen sees no code


def _leftovers(data_dir: Path) -> list[psutil.Process]:
    """Live processes of this service (they inherit SCANNER_DATA_DIR), e.g. one the supervisor forked while dying."""
    out = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.pid != os.getpid() and proc.status() != psutil.STATUS_ZOMBIE and proc.environ().get("SCANNER_DATA_DIR") == str(data_dir):
                out.append(proc)
    return out


def _db(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(data_dir / "scanner.sqlite3", timeout=10)) as conn:
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []


async def _until(check: Callable[[], bool], timeout: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        if proc is not None and proc.poll() is not None:
            return check()
        await asyncio.sleep(0.05)
    return check()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("moment", MOMENTS)
async def test_an_automatic_exit_is_placed_at_most_once_across_kill_9_of_the_whole_service(tmp_path: Path, moment: str) -> None:
    seed = int(os.environ.get("CHAOS_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    delay = rng.uniform(0.0, 0.4)
    print(f"chaos seed {seed} (CHAOS_SEED={seed} repeats it): kill {moment}" + (f" after {delay:.3f} s" if moment in ("settling", "random") else ""))
    data = tmp_path / "data"
    config_path = tmp_path / "chaos.yaml"
    _service_config(config_path)
    async with run_emulator(pairs=30, seed=11) as emu, run_fake_telegram(TOKEN) as tg:
        spec = next(s for s in emu.market.symbols if s.status == "1" and s.quote == "USDT" and s.api_tradable and s.market_order_allowed)
        trader = Trader(config_from_mapping({"mexc": {"rest_url": emu.rest_url, "api_key": DEFAULT_API_KEY, "api_secret": DEFAULT_API_SECRET},
                                             "telegram": {"allowed_ids": [OWNER]}, "trading": {"live": True}}, environ={}),
                        Store(data))  # fmt: skip
        now = time.time_ns()
        sig = Signal(make_signal_id(spec.symbol, 1_790_000_000_000, 0), spec.symbol, "alpha1", 1_790_000_000_000, now, now,
                     emu.market.best_bid_ask(spec.symbol)[2], 0.8, {}, [], 0)  # fmt: skip
        assert (await trader.buy(sig, OWNER)).ok
        await trader.close()
        env = {**os.environ, "MEXC_WS_URL": emu.ws_url, "MEXC_REST_URL": emu.rest_url, "SCANNER_DATA_DIR": str(data),
               "METRICS_PORT": "0", "TG_TOKEN": TOKEN, "TG_BASE_URL": tg.base_url, "ALLOWED_IDS": str(OWNER),
               "MEXC_KEY": DEFAULT_API_KEY, "MEXC_SECRET": DEFAULT_API_SECRET, "LOG_LEVEL": "INFO"}  # fmt: skip
        log = open(tmp_path / "service.log", "ab")  # noqa: SIM115 - closed below
        start = lambda: subprocess.Popen([sys.executable, "-m", "supervisor", "--config", str(config_path)], cwd=REPO, env=env,  # noqa: E731
                                         stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        service = start()
        killed: list[tuple[int, int | None]] = []
        spot, place = emu.rest.account.spot, emu.rest.account.spot.place
        loop = asyncio.get_running_loop()

        def hooked(spec_: Any, params: dict[str, str]) -> dict[str, Any]:
            """The emulator's order endpoint: the kill lands at the chosen moment of the first sell."""
            if params.get("side", "").upper() != "SELL" or killed:
                return place(spec_, params)
            if moment == "at_request":
                killed.append(_tree_kill(service.pid))
                raise OrderError(503, 0, "the service died before this order was executed")
            order = place(spec_, params)
            if moment == "after_fill":
                killed.append(_tree_kill(service.pid))  # executed; the answer goes to a dead socket
            else:
                killed.append((0, None))
                loop.call_later(delay, lambda: killed.append(_tree_kill(service.pid)))
            return order

        trades_of = spot.my_trades

        def first_look(params: dict[str, str]) -> list[dict[str, Any]]:
            """The bot's start-up check reads myTrades just before its first exit pass: the random kill is timed from here."""
            if not killed:
                killed.append((0, None))
                loop.call_later(delay, lambda: killed.append(_tree_kill(service.pid)))
            return trades_of(params)

        if moment == "random":  # a moment drawn around the exit: before, during or after it
            spot.my_trades = first_look  # type: ignore[method-assign]
        else:
            spot.place = hooked  # type: ignore[method-assign]
        try:
            assert await _until(lambda: len(killed) > 0 and killed[-1][0] > 0, 60, service), "the kill never came (no sell, no start-up check)"
            assert killed[-1][0] >= 3 and killed[-1][1] == -9, killed  # the supervisor and its children (shards, bot ...), all SIGKILL
            for proc in _leftovers(data):  # a child the supervisor forked while it was being killed
                proc.kill()
            sells_at_kill = [o for o in emu.rest.account.orders if o["side"] == "SELL"]
            spot.place, spot.my_trades = place, trades_of  # type: ignore[method-assign]
            service = start()  # the restart, on the same data dir

            def settled() -> bool:
                closed = _db(data, f"SELECT status FROM positions WHERE symbol = '{spec.symbol}'") == [("closed",)]
                doubt = _db(data, "SELECT COUNT(*) FROM exits WHERE status IN ('PENDING', 'UNKNOWN')")
                return closed and doubt == [(0,)]

            assert await _until(settled, 60, service), "the restarted service did not settle the exit"
        finally:
            _tree_kill(service.pid)
            for proc in _leftovers(data):
                proc.kill()
            log.close()
        sells = [o for o in emu.rest.account.orders if o["side"] == "SELL"]
        trades = [t for t in emu.rest.account.spot.trades if not t["isBuyer"]]
    assert len(sells) == 1 and len({o["clientOrderId"] for o in sells}) == 1, sells  # at most once: and the exit did happen
    assert len(sells_at_kill) == {"at_request": 0, "after_fill": 1, "settling": 1}.get(moment, len(sells_at_kill))
    exits = _db(data, f"SELECT client_order_id, status FROM exits WHERE symbol = '{spec.symbol}' ORDER BY created_ns")
    assert [cid for cid, status in exits if status not in ("REJECTED", "REFUSED")] == [sells[0]["clientOrderId"]], exits
    stored = _db(data, f"SELECT trade_id FROM fills WHERE side = 'SELL' AND client_order_id = '{sells[0]['clientOrderId']}'")
    assert sorted(t for (t,) in stored) == sorted(t["id"] for t in trades)  # recorded exactly once, every fill
    assert _db(data, "SELECT COUNT(*) FROM fills WHERE side = 'SELL'") == [(len(trades),)]
