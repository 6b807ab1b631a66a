"""The supervisor: composes children, planning, the signal pipeline, control and health.

Crash-only: starting and recovering are the same path. The supervisor owns the shared memory
(rings, stats blocks) and the SQLite store; a shard or bot that dies is forked again (with a
backoff) and re-receives its plan; a signal is stored before anyone is told about it, so a dead
bot loses nothing. Each concept lives in its own module; this one only wires them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from bot.entry import bot_main
from common import memprofile
from common.config import Config, ConfigError
from common.logs import install_crash_logging, setup_logging
from common.memtrim import release_free_memory
from common.messages import ArbStats, Blocked, ConfigChanged, FuturesStats, Message, Notice, OpenInterest, Stop
from store.retention import retention_loop
from store.spill import spill_loop
from store.spill import status as spill_status
from supervisor import early
from supervisor.arb_metrics import ArbCollector
from supervisor.children import ChildProcess
from supervisor.control import Control
from supervisor.detection import Detection, load_models
from supervisor.health import SAMPLE_EVERY_S, Health, HealthLimits
from supervisor.metrics import Metrics, serve_metrics
from supervisor.overrides import load_effective_config
from supervisor.pipeline import Pipeline
from supervisor.planning import Planning, ShardHandle
from supervisor.running_models import ModelInstaller, last_selftrain, summaries
from supervisor.sdnotify import SdNotifier

log = logging.getLogger("scanner.supervisor")


# Issue #23: the supervisor's bursts (health samples, /status, DB writes, model scoring) are not all
# followed by a scout pass's trim: in the 2-h soak its anonymous memory grew with malloc's free-kept pages (in use flat).
TRIM_EVERY_S = 300.0


class Supervisor:
    """Owns every process and part; run() returns when asked to stop."""

    def __init__(self, config_path: str | Path, config: Config | None = None) -> None:
        from store.history import Store

        self.config_path = Path(config_path)
        config = config or load_effective_config(self.config_path)
        self.n_shards = config.scanner.shards or (os.cpu_count() or 1)
        self.detection = Detection(config, load_models(config, self.config_path.parent))
        Path(config.storage.data_dir).mkdir(parents=True, exist_ok=True)
        self.store = Store(config.storage.data_dir)
        self.shards: list[ShardHandle] = []  # filled by run(): shared memory is created only by a running service
        self.bot: ChildProcess | None = None
        self.futures: ChildProcess | None = None
        self.futures_stats: dict[str, float] = {}
        self.arb: ChildProcess | None = None
        self.arb_stats: dict[str, Any] = {}
        self.metrics = Metrics(lambda: [(h.index, h.stats.view) for h in self.shards], self._extra_metrics,
                               lambda: [{"name": n, "pid": p} for n, p in self.health.processes()],
                               lambda: dict(self.pipeline.outcome_counts))  # fmt: skip
        self.metrics.registry.register(ArbCollector(lambda: self.arb_stats))
        self.planning = Planning(config, self.shards, lambda pid, sym: self.pipeline.on_new_pair(pid, sym))
        self.pipeline = Pipeline(config, self.detection, self.store, self.planning, self.metrics, self.tell_bot)
        self.pipeline.shorts.tell_futures = lambda m: self.futures is not None and self.futures.send(m)
        self.planning.on_scout = lambda scout: self.pipeline.on_scout(scout.universe)  # new listings (issue #22)
        self.planning.always_watch = self.pipeline.listings.watched
        self.control = Control(self.config_path, config, lambda c: load_models(c, self.config_path.parent), self._apply_config,
                               self.status, self.tell_bot)  # fmt: skip
        self.control.top = self.pipeline.top
        self.control.on_watch_prices = self.pipeline.exit_prices.watch  # the bot's held pairs -> their 1 s closes
        limits = HealthLimits(config.metrics.health_startup_grace_s, config.metrics.health_links_down_s)
        memory = self.metrics.processes.cached_memory if self.metrics.processes else (lambda pid: {})
        self.health = Health(self.shards, lambda: [c for c in (self.bot, self.futures, self.arb) if c], self.planning, limits, self._status_extra,
                             memory, lambda: self.futures_stats if self.config.futures.enabled else None)  # fmt: skip
        self.installer = ModelInstaller(self.control)  # self-trained models (supervisor/running_models.py)
        self.notifier = SdNotifier()
        self._stop = asyncio.Event()

    @property
    def config(self) -> Config:
        return self.control.config

    # --- wiring ----------------------------------------------------------------------------------

    def tell_bot(self, message: Message) -> bool:
        return self.bot is not None and self.bot.send(message)

    def _apply_config(self, config: Config, models: Any) -> None:
        self.detection.update(config, models)
        self.pipeline.update_config(config)
        self.planning.config = config
        self.planning.plan_event.set()
        self.tell_bot(ConfigChanged(config))

    def _on_shard_message(self, handle: ShardHandle, message: Message) -> None:
        if isinstance(message, Blocked):
            self.planning.on_blocked(handle, message.symbols)

    def _on_futures_message(self, message: Message) -> None:
        if isinstance(message, FuturesStats):
            self.futures_stats = message.values
        elif isinstance(message, Notice):  # an episode card (futures.cards_enabled, arb.cards_enabled)
            self.tell_bot(message)
        elif isinstance(message, OpenInterest):  # a short watch's contract (supervisor/shorts.py)
            self.pipeline.shorts.on_open_interest(message.symbol, message.t_ms, message.hold_vol)
        elif isinstance(message, ArbStats):
            self.arb_stats = message.values

    def _extra_metrics(self) -> dict[str, float]:
        return {**self.pipeline.figures(), **self.planning.figures(), "bot_restarts_total": float(self.bot.restarts if self.bot else 0),
                **self.futures_stats, "healthy": float(self.health.check()[0])}  # fmt: skip

    def _status_extra(self) -> dict[str, Any]:
        arb = {k: self.arb_stats[k] for k in ("best", "last_24h", "gauges") if k in self.arb_stats}
        return {"latency_p95_ms": self.metrics.latency_p95_ms(), "signals_last_hour": self.pipeline.signals_last_hour(), "arb": arb,
                "models": summaries(self.config, {n: s.models for n, s in self.detection.scorers.items()}),
                "selftrain_last": last_selftrain(self.config),
                "storage": spill_status(self.store)}  # issue #23: a full data dir is said here  # fmt: skip

    def status(self) -> dict[str, Any]:
        return self.health.status()

    def healthy(self) -> tuple[bool, dict[str, Any]]:
        return self.health.check()

    # --- children ----------------------------------------------------------------------------------

    def _start_children(self, loop: asyncio.AbstractEventLoop) -> None:
        from core.ring import FeatureRing
        from core.statsspec import StatsBlock
        from shards.worker import shard_main

        self.shards[:] = [ShardHandle(i, FeatureRing.create(self.config.scanner.ring_rows), StatsBlock.create()) for i in range(self.n_shards)]
        for handle in self.shards:
            loop.add_reader(handle.ring.notify_fd, self.pipeline.on_ring_ready, handle)
            handle.child = ChildProcess(f"shard{handle.index}", shard_main,
                                        lambda h=handle: (h.index, self.config, h.ring, h.stats, self.n_shards),
                                        on_message=lambda m, h=handle: self._on_shard_message(h, m),
                                        on_start=lambda h=handle: h.pairs and self.planning.send_plan(h),
                                        kind="shard", log_extra={"shard": handle.index},
                                        on_poisoned=lambda sym, n, h=handle: self.planning.quarantine(h, sym, n))  # fmt: skip
            handle.child.start()
        if self.config.telegram.token:
            self.bot = ChildProcess("bot", bot_main, lambda: (self.config,), on_message=self.control.handle)
            self.bot.start()
        if self.config.futures.enabled:
            from supervisor.futures import futures_main

            self.futures = ChildProcess("futures", futures_main, lambda: (self.config,), on_message=self._on_futures_message)
            self.futures.start()
        if self.config.arb.enabled:
            from supervisor.arb import arb_main

            self.arb = ChildProcess("arb", arb_main, lambda: (self.config,), on_message=self._on_futures_message)
            self.arb.start()

    def _announce(self) -> None:
        """One line saying where signals go, so a new user knows where to look."""
        telegram = self.config.telegram
        where = (f"Telegram ({len(telegram.allowed_ids)} allowed chat(s) via {telegram.base_url.split('/bot')[0] or telegram.base_url})"
                 if telegram.token else "stdout, one JSON line each (set TG_TOKEN for Telegram cards)")  # fmt: skip
        if telegram.token and not telegram.allowed_ids:
            where += "; ALLOWED_IDS is empty, so no chat will get a card"
        log.info(f"signals go to {where}", extra={"shards": self.n_shards, "ws": self.config.mexc.ws_url})

    # --- run -----------------------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # Handlers first: a SIGTERM during start-up (systemctl restart, docker stop) must still stop
        # cleanly. Children reset them at once (common/children.py: reset_child_signals).
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.control.on_sighup)
        if early.STOPS:  # SIGTERM arrived while Python was still importing and loading config
            self.request_stop()
        self.pipeline.resume_watches()
        self._start_children(loop)
        runner = None
        try:
            runner = await serve_metrics(self.metrics, self.healthy, self.config.metrics.host, self.config.metrics.port)
        except OSError as exc:
            log.error("metrics server could not start", extra={"error": str(exc)})
        tasks = [loop.create_task(self.planning.scout_loop(self._stop, self.n_shards)), loop.create_task(self._tick_loop()),
                 loop.create_task(retention_loop(self.store.db, lambda: self.config.storage.retention_days, self._stop)),  # issue #23
                 loop.create_task(spill_loop(self.store, self._stop, lambda text: self.tell_bot(Notice(text)))),  # issue #23: disk full
                 loop.create_task(self.pipeline.shorts.serve_intake(self._stop))]  # fmt: skip
        self._announce()
        await self._stop.wait()
        self.notifier.notify("STOPPING=1")
        await self._shutdown(tasks, runner)

    async def _tick_loop(self) -> None:
        """Every few seconds: sample the rates health and /status read; systemd READY and WATCHDOG=1 while healthy."""
        interval = self.notifier.watchdog_interval_s() if self.notifier.enabled else SAMPLE_EVERY_S
        ready, last_ok = False, True
        while not self._stop.is_set():
            self.installer.poll()
            self.health.sample()
            release_free_memory(TRIM_EVERY_S)
            ok, detail = self.health.check()
            if ok and not ready and self.notifier.enabled:
                ready = self.notifier.notify("READY=1")
            if ok and self.notifier.enabled:
                self.notifier.notify("WATCHDOG=1")
            if ok != last_ok:
                log.log(logging.INFO if ok else logging.ERROR, "healthy" if ok else "unhealthy", extra={"reasons": detail["reasons"]})
                if not ok:
                    self.tell_bot(Notice("⚠️ Scanner unhealthy: " + "; ".join(detail["reasons"])))
                last_ok = ok
            await asyncio.sleep(min(interval, 1.0) if self.notifier.enabled and not ready else min(interval, SAMPLE_EVERY_S))

    async def _shutdown(self, tasks: list[asyncio.Task[None]], runner: Any) -> None:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        loop = asyncio.get_running_loop()
        children = [h.child for h in self.shards if h.child is not None] + [c for c in (self.bot, self.futures, self.arb) if c]
        await asyncio.gather(*(child.stop(Stop()) for child in children))
        for handle in self.shards:
            with contextlib.suppress(Exception):
                loop.remove_reader(handle.ring.notify_fd)
        # Drain what the shards wrote before they stopped: nothing scored is lost on shutdown.
        for handle in self.shards:
            with contextlib.suppress(Exception):
                self.pipeline.on_ring_ready(handle)
        if runner is not None:
            await runner.cleanup()
        for handle in self.shards:
            handle.release()
        self.store.close()
        log.info("supervisor stopped")


def main(argv: list[str] | None = None) -> int:
    import argparse

    import uvloop

    parser = argparse.ArgumentParser(prog="python -m supervisor", description="Run the MEXC pump scanner.")
    parser.add_argument("--config", default="config.yaml", help="path to config.yaml (default: ./config.yaml)")
    parser.add_argument("--demo", action="store_true",
                        help="offline: start the built-in MEXC emulator on 127.0.0.1 and scan it (see python -m supervisor.demo -h)")  # fmt: skip
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--demo" in argv:  # everything else (including -h) belongs to the demo's own options
        from supervisor.demo import main as demo_main

        return demo_main([a for a in argv if a != "--demo"])
    early.install()  # until the event loop owns SIGTERM/SIGINT (python -m supervisor did it even sooner)
    args = parser.parse_args(argv)
    try:
        config = load_effective_config(args.config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.logging.level, "supervisor", config.secrets(), config.storage.data_dir, config.logging)
    install_crash_logging()
    memprofile.start("supervisor")  # issue #23: a no-op unless SCANNER_MEMPROFILE_DIR is set (perf/soak_long.py)
    try:
        supervisor = Supervisor(args.config, config)
        uvloop.run(supervisor.run())
    except (ConfigError, ValueError, OSError) as exc:
        log.error("could not start", extra={"error": str(exc)})
        return 1
    return 0
