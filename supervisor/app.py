"""The supervisor: forks shards and the bot, scouts pairs, scores rows, emits signals.

Crash-only: starting and recovering are the same path. The supervisor owns the shared memory
(rings, stats blocks) and the SQLite store; a shard or bot that dies is forked again and
re-receives its plan; a signal is stored before anyone is told about it, so a dead bot loses
nothing (it sends unsent cards when it comes back).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing as mp
import os
import signal
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from common.config import Config, ConfigError, load_config, set_value
from common.logs import setup_logging
from common.memtrim import release_free_memory
from common.signal import Signal, make_signal_id
from supervisor import early
from supervisor.metrics import Metrics, serve_metrics
from supervisor.outcome import OutcomeTracker
from supervisor.planner import plan_shards
from supervisor.scout import Scout, select_pairs
from supervisor.sdnotify import SdNotifier
from venues.mexc.rest import PacedRest, RestError

log = logging.getLogger("scanner.supervisor")

_FORK = mp.get_context("fork")
# How far back stored signals re-open cooldowns after a restart (wall time; expired ones are harmless).
RESTORE_ALERTS_NS = 24 * 3600 * 10**9
RESTART_DELAY_S = 0.5
# Row fields stored with every signal: Alpha-1's and the flash profile's (card, storage, stdout).
_SIGNAL_FEATURES = ("vsr", "vc", "pm", "obi", "cum_depth_delta", "spread", "listing_age_s", "quote_vol_5m",
                    "rush_5s", "rush_ratio_25s", "trades_ratio_25s", "buy_share_25s", "ret_25s", "ret_60s")  # fmt: skip


@dataclass
class ShardHandle:
    index: int
    ring: Any
    stats: Any
    process: Any = None
    conn: Connection | None = None
    started_at: float = 0.0
    restarts: int = 0
    pairs: dict[str, int] = field(default_factory=dict)  # symbol -> pair_id


class Supervisor:
    """Owns every process and the scoring loop. run() returns when asked to stop."""

    def __init__(self, config_path: str | Path, config: Config | None = None) -> None:
        self.config_path = Path(config_path)
        self.config = config or load_config(self.config_path)
        self.n_shards = self.config.scanner.shards or (os.cpu_count() or 1)
        self.shards: list[ShardHandle] = []
        self.bot_process: Any = None
        self.bot_conn: Connection | None = None
        self.symbols: dict[int, str] = {}
        self.pair_ids: dict[str, int] = {}
        self.assignment: dict[str, int] = {}
        self.blocked: set[str] = set()
        self.dropped_until: dict[str, float] = {}
        self.watch_since: dict[str, float] = {}
        self.signals_emitted: list[float] = []
        self.restored_alerts: dict[str, tuple[int, float, int]] = {}
        self.rows_scored = 0
        self.score_passes = 0  # batches scored: rows_scored / score_passes is the batching the shards' wake-up floor buys
        self.started = time.time()
        self._stop = asyncio.Event()
        self._stopping = False
        self._plan_event = asyncio.Event()
        self.outcome_counts: dict[tuple[str, str], int] = {}
        self.tracker = OutcomeTracker(self.config.outcome)
        self.metrics = Metrics(self._stats_views, self._extra_metrics, self.process_table, lambda: dict(self.outcome_counts))
        self.notifier = SdNotifier()

    # --- set-up ------------------------------------------------------------------------------

    def _load_models(self, scanner: Any) -> dict[str, Any]:
        """The model of every enabled profile; ModelError names the file and field of a bad one."""
        from supervisor.model import ModelError, load_model

        models = {}
        for profile in scanner.profiles:
            path = Path(scanner.model_path if profile == "alpha1" else scanner.flash_model_path)
            if not path.is_absolute():
                path = self.config_path.parent / path
            model = load_model(path)
            if model.profile != profile:
                raise ModelError(f"{path}: profile {model.profile!r}, expected {profile!r} (scanner.profiles)")
            models[profile] = model
        return models

    def _build_scoring(self) -> None:
        from supervisor.scorer import Scorer

        self.models = self._load_models(self.config.scanner)
        self.scorer = Scorer(self.config.scanner, self.models)

    def _build_store(self) -> None:
        from store.history import Store

        Path(self.config.storage.data_dir).mkdir(parents=True, exist_ok=True)
        self.store = Store(self.config.storage.data_dir)
        # Cooldowns opened by a previous run, applied when each pair gets its id (see _replan).
        self.restored_alerts = self.store.recent_alerts(time.time_ns() - RESTORE_ALERTS_NS)

    def _resume_watches(self) -> None:
        """Re-open a watch for every stored signal that has no outcome yet.

        Why re-open rather than close at once: a restart (deploy, crash) usually lasts seconds,
        and the rest of the horizon is still worth watching; supervisor/outcome.py closes those
        whose horizon ended during the downtime as `unknown` once exchange time is known.
        """
        self.outcome_counts = self.store.outcome_counts()
        resumed = 0
        for sig in self.store.signals_without_outcome():
            resumed += self.tracker.open(sig.signal_id, sig.symbol, sig.profile, self._pair_id(sig.symbol), sig.exchange_time_ms, sig.price,
                                         resumed=True)  # fmt: skip
        if resumed:
            log.info("outcome watches resumed", extra={"count": resumed})

    def _pair_id(self, symbol: str) -> int:
        """The pair's id, allocated on first use (the planner reuses it)."""
        if symbol not in self.pair_ids:
            pair_id = len(self.pair_ids) + 1
            self.pair_ids[symbol] = pair_id
            self.symbols[pair_id] = symbol
            if symbol in self.restored_alerts:
                self.scorer.remember_alert(pair_id, *self.restored_alerts.pop(symbol))
        return self.pair_ids[symbol]

    def _create_shard_memory(self) -> None:
        from core.ring import FeatureRing
        from core.statsspec import StatsBlock

        for index in range(self.n_shards):
            ring = FeatureRing.create(self.config.scanner.ring_rows)
            stats = StatsBlock.create()
            self.shards.append(ShardHandle(index, ring, stats))

    # --- children ----------------------------------------------------------------------------

    def _start_shard(self, handle: ShardHandle) -> None:
        from shards.worker import shard_main

        parent, child = _FORK.Pipe(duplex=True)
        process = _FORK.Process(
            target=shard_main,
            args=(handle.index, self.config, handle.ring, handle.stats, child, self.n_shards),
            name=f"shard{handle.index}",
            daemon=True,
        )
        _fork_frozen(process)
        child.close()
        handle.process, handle.conn, handle.started_at = process, parent, time.time()
        loop = asyncio.get_running_loop()
        loop.add_reader(process.sentinel, self._on_child_exit, "shard", handle.index)
        _watch_pipe(loop, parent, self._on_shard_message, handle)
        if handle.pairs:
            self._send_plan(handle)
        log.info("shard started", extra={"shard": handle.index, "pid": process.pid})

    def _start_bot(self) -> None:
        if not self.config.telegram.token:
            return
        parent, child = _FORK.Pipe(duplex=True)
        process = _FORK.Process(target=_run_bot_child, args=(self.config, child), name="bot", daemon=True)
        _fork_frozen(process)
        child.close()
        self.bot_process, self.bot_conn = process, parent
        loop = asyncio.get_running_loop()
        loop.add_reader(process.sentinel, self._on_child_exit, "bot", 0)
        _watch_pipe(loop, parent, self._on_bot_message)
        log.info("bot started", extra={"pid": process.pid})

    def _on_child_exit(self, kind: str, index: int) -> None:
        loop = asyncio.get_running_loop()
        if kind == "shard":
            handle = self.shards[index]
            loop.remove_reader(handle.process.sentinel)
            if handle.conn is not None:
                loop.remove_reader(handle.conn.fileno())
                handle.conn.close()
                handle.conn = None
            handle.process.join(timeout=1.0)  # the sentinel fires as the child closes its fds, just before it is reapable
            if self._stopping:
                return
            handle.restarts += 1
            log.error("shard died, restarting", extra={"shard": index, "exitcode": handle.process.exitcode, "restarts": handle.restarts})
            loop.call_later(RESTART_DELAY_S, self._start_shard, handle)
        else:
            loop.remove_reader(self.bot_process.sentinel)
            if self.bot_conn is not None:
                loop.remove_reader(self.bot_conn.fileno())
                self.bot_conn.close()
                self.bot_conn = None
            self.bot_process.join(timeout=1.0)
            if self._stopping:
                return
            log.error("bot died, restarting", extra={"exitcode": self.bot_process.exitcode})
            loop.call_later(RESTART_DELAY_S, self._start_bot)

    def _on_shard_message(self, handle: ShardHandle) -> None:
        conn = handle.conn
        if conn is None:
            return
        try:
            while conn.poll():
                message = conn.recv()
                if isinstance(message, dict) and message.get("type") == "blocked":
                    for symbol in map(str, message.get("symbols", [])):
                        self.blocked.add(symbol)
                        handle.pairs.pop(symbol, None)
                    log.warning("pairs blocked by exchange", extra={"count": len(message.get("symbols", []))})
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(conn.fileno())

    def _send_plan(self, handle: ShardHandle) -> None:
        if handle.conn is None:
            return
        try:
            handle.conn.send({"type": "plan", "pairs": [[pid, sym] for sym, pid in sorted(handle.pairs.items())]})
        except (OSError, ValueError):
            log.warning("could not send plan", extra={"shard": handle.index})

    # --- bot control -------------------------------------------------------------------------

    def _on_bot_message(self) -> None:
        conn = self.bot_conn
        if conn is None:
            return
        try:
            while conn.poll():
                self._handle_bot_message(conn.recv())
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(conn.fileno())

    def _handle_bot_message(self, message: Any) -> None:
        if not isinstance(message, dict):
            return
        kind, req_id = message.get("type"), message.get("req_id")
        if kind == "status_request":
            self._bot_send({"type": "status_reply", "req_id": req_id, "status": self.status()})
        elif kind == "cfg_set":
            ok, text = self.set_config_value(str(message.get("key", "")), str(message.get("value", "")))
            self._bot_send({"type": "cfg_reply", "req_id": req_id, "ok": ok, "message": text, "config": self.config.to_public_dict()})
        elif kind == "reload":
            ok, text = self.reload()
            self._bot_send({"type": "cfg_reply", "req_id": req_id, "ok": ok, "message": text, "config": self.config.to_public_dict()})

    def _bot_send(self, message: dict[str, Any]) -> None:
        if self.bot_conn is not None:
            try:
                self.bot_conn.send(message)
            except (OSError, ValueError):
                log.warning("bot pipe send failed")

    # --- configuration -------------------------------------------------------------------------

    def _apply_config(self, new: Config) -> None:
        self.config = new
        self.scorer.update(new.scanner, self.models)
        self.tracker.update_config(new.outcome)
        self._plan_event.set()
        self._bot_send({"type": "config", "values": new.to_public_dict()})

    def set_config_value(self, key: str, value: str) -> tuple[bool, str]:
        """The /cfg path: validate as a whole, apply, or change nothing and say why."""
        try:
            new = set_value(self.config, key, value)
            if key in ("scanner.model_path", "scanner.flash_model_path", "scanner.profiles"):
                models = self._load_models(new.scanner)
                self.models = models
        except (ConfigError, OSError, ValueError) as exc:
            return False, str(exc)
        self._apply_config(new)
        log.info("config changed", extra={"key": key})
        return True, f"{key} = {value}"

    def reload(self) -> tuple[bool, str]:
        """Re-read config.yaml and model.json (SIGHUP, /reload); keep the old ones on error."""
        try:
            new = load_config(self.config_path)
            models = self._load_models(new.scanner)
        except (ConfigError, OSError, ValueError) as exc:
            log.error("reload refused", extra={"error": str(exc)})
            return False, f"reload refused: {exc}"
        self.models = models
        self._apply_config(new)
        log.info("config reloaded")
        return True, "config.yaml and model reloaded"

    # --- scouting and planning -----------------------------------------------------------------

    async def _scout_loop(self) -> None:
        rest = PacedRest(self.config.mexc.rest_url, budget_per_10s=max(20, self.config.mexc.rest_weight_per_10s // (self.n_shards + 1)))
        scout = Scout(rest)
        last_universe = 0.0
        try:
            while not self._stop.is_set():
                try:
                    if time.monotonic() - last_universe > self.config.scout.exchange_info_interval_s or not scout.universe:
                        await scout.refresh_universe()
                        last_universe = time.monotonic()
                    await scout.refresh_volumes()
                    self._replan(scout)
                    release_free_memory()  # the tickers' JSON is garbage now (common/memtrim.py)
                except RestError as exc:
                    log.warning("scout failed", extra={"error": str(exc)})
                    await asyncio.sleep(min(exc.retry_after or 5.0, 60.0))
                    continue
                self._plan_event.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._plan_event.wait(), self.config.scout.poll_interval_s)
        finally:
            await rest.close()

    def _replan(self, scout: Scout) -> None:
        now = time.monotonic()
        self.dropped_until = {s: t for s, t in self.dropped_until.items() if t > now}
        excluded = self.blocked | set(self.dropped_until)
        picked = select_pairs(scout.universe, scout.volumes, self.config.scout, excluded)
        activity = {c.symbol: c.quote_volume for c in picked}
        new_assignment = plan_shards(activity, self.n_shards, self.assignment)
        for symbol in new_assignment:
            self._pair_id(symbol)
            self.watch_since.setdefault(symbol, now)
        for symbol in set(self.watch_since) - set(new_assignment):
            self.watch_since.pop(symbol, None)
        # Add before remove: a moved pair is watched by its new shard before the old one lets go.
        moved = {s for s in new_assignment if s in self.assignment and self.assignment[s] != new_assignment[s]}
        for handle in self.shards:
            wanted = {s: self.pair_ids[s] for s, k in new_assignment.items() if k == handle.index}
            keep_until_moved = {s: self.pair_ids[s] for s in moved if self.assignment.get(s) == handle.index}
            pairs = {**wanted, **keep_until_moved}
            if pairs != handle.pairs:  # an unchanged plan (most scout passes) is not pickled and sent again
                handle.pairs = pairs
                self._send_plan(handle)
        if moved:
            asyncio.get_running_loop().call_later(5.0, self._finish_moves, new_assignment)
        self.assignment = new_assignment
        log.info("plan", extra={"pairs": len(new_assignment), "moved": len(moved), "blocked": len(self.blocked)})

    def _finish_moves(self, assignment: dict[str, int]) -> None:
        for handle in self.shards:
            handle.pairs = {s: self.pair_ids[s] for s, k in self.assignment.items() if k == handle.index}
            self._send_plan(handle)

    def _quality_check(self, rows: Any) -> None:
        """Quality drop (spec): spread > quality_spread_max or 5-min quote volume below the floor."""
        scout = self.config.scout
        now = time.monotonic()
        bad = (rows["spread"] > scout.quality_spread_max) | (rows["quote_vol_5m"] < scout.quality_min_quote_vol_5m)
        if not bad.any():
            return
        changed = False
        # A pair with an open outcome watch stays: dropping it would blind the watch mid-horizon.
        for pair_id in set(rows["pair_id"][bad].tolist()) - self.tracker.watched_pair_ids():
            symbol = self.symbols.get(int(pair_id))
            # A pair needs 5 minutes of live data before its 5-min volume means anything.
            if symbol is None or now - self.watch_since.get(symbol, now) < 300 or symbol in self.dropped_until:
                continue
            self.dropped_until[symbol] = now + scout.recheck_interval_s
            changed = True
            log.info("quality drop", extra={"symbol": symbol})
        if changed:
            self._plan_event.set()

    # --- scoring -------------------------------------------------------------------------------

    def _on_ring_ready(self, handle: ShardHandle) -> None:
        handle.ring.drain_notify()
        rows = handle.ring.read_new()
        if len(rows) == 0:
            return
        self.rows_scored += len(rows)
        self.score_passes += 1
        if self.config.scout.quality_min_quote_vol_5m > 0 or self.config.scout.quality_spread_max > 0:
            self._quality_check(rows)
        now_ns = time.time_ns()
        for decision in self.scorer.score(rows, now_ns):
            self._emit(decision, now_ns)
        # After the signals: a watch opened by this batch also sees the batch's later rows.
        for outcome in self.tracker.update(rows):
            self._store_outcome(outcome)

    def _store_outcome(self, outcome: Any) -> None:
        """Store a closed watch, then tell the bot (the same outbox order as signals)."""
        data = outcome.to_dict()
        try:
            if not self.store.add_outcome(data):
                return
        except (ValueError, sqlite3.Error) as exc:
            log.error("outcome not stored", extra={"signal_id": outcome.signal_id, "error": str(exc)[:200]})
            return
        for label in (outcome.outcome, outcome.trade):
            if label is not None:
                key = (label, outcome.profile)
                self.outcome_counts[key] = self.outcome_counts.get(key, 0) + 1
        self._bot_send({"type": "outcome", "outcome": data})
        log.info("outcome", extra={"signal_id": outcome.signal_id, "outcome": outcome.outcome, "trade": outcome.trade,
                                   "max_gain": outcome.max_gain, "reason": outcome.reason})  # fmt: skip

    def _emit(self, decision: Any, now_ns: int) -> None:
        row = decision.row
        symbol = self.symbols.get(int(decision.pair_id))
        if symbol is None:
            return
        signal_obj = Signal(
            signal_id=make_signal_id(symbol, int(row["row_time_ms"]), int(decision.escalation)),
            symbol=symbol,
            profile=decision.profile,
            exchange_time_ms=int(row["row_time_ms"]),
            recv_ns=int(row["recv_ns"]),
            created_ns=now_ns,
            price=float(row["last_price"]),
            prob=float(decision.prob),
            features={k: float(row[k]) for k in _SIGNAL_FEATURES},
            reasons=list(decision.reasons),
            escalation=int(decision.escalation),
        )
        if not self.store.add_signal(signal_obj):
            return  # already stored (replayed rows after a restart): never signal twice
        self.tracker.open(signal_obj.signal_id, symbol, signal_obj.profile, int(decision.pair_id), signal_obj.exchange_time_ms, signal_obj.price)
        latency_ms = (now_ns - signal_obj.recv_ns) / 1e6
        self.metrics.observe_latency(latency_ms)
        self.metrics.signals.observe(signal_obj.prob)
        self.signals_emitted.append(time.time())
        if self.bot_conn is not None:
            self._bot_send({"type": "signal", "signal_id": signal_obj.signal_id})
        if not self.config.telegram.token:
            payload = signal_obj.to_dict()
            payload["latency_ms"] = round(latency_ms, 3)
            sys.stdout.write(_json_line(payload))
            sys.stdout.flush()
        log.info("signal", extra={"symbol": symbol, "prob": round(signal_obj.prob, 3), "latency_ms": round(latency_ms, 2)})

    # --- status and health ---------------------------------------------------------------------

    def _stats_views(self) -> list[tuple[int, Any]]:
        return [(h.index, h.stats.view) for h in self.shards]

    def _extra_metrics(self) -> dict[str, float]:
        now = time.time()
        self.signals_emitted = [t for t in self.signals_emitted if t > now - 3600]
        lag = sum(int(h.ring.lag) for h in self.shards)
        overflow = sum(int(h.ring.overflow) for h in self.shards)
        return {
            "signals_per_hour": float(len(self.signals_emitted)),
            "rows_scored_total": float(self.rows_scored),
            "score_passes_total": float(self.score_passes),
            "ring_lag_rows": float(lag),
            "ring_overflow_total": float(overflow),
            "pairs_planned": float(len(self.assignment)),
            "shard_restarts_total": float(sum(h.restarts for h in self.shards)),
            "outcome_watches_open": float(len(self.tracker)),
        }

    def healthy(self) -> tuple[bool, dict[str, Any]]:
        now_ns = time.time_ns()
        alive = all(h.process is not None and h.process.is_alive() for h in self.shards)
        beats = [int(h.stats.view["heartbeat_ns"]) for h in self.shards]
        fresh = all(b and now_ns - b < 5e9 for b in beats)
        # pids let an operator (and perf/soak.py) tell processes apart: forked children share one command line.
        return alive and fresh, {"shards_alive": alive, "heartbeats_fresh": fresh, "pairs": len(self.assignment),
                                 "processes": self.process_table()}  # fmt: skip

    def process_table(self) -> list[dict[str, Any]]:
        """Name and pid of every service process: supervisor, shards, bot."""
        processes: list[dict[str, Any]] = [{"name": "supervisor", "pid": os.getpid()}]
        processes += [{"name": f"shard{h.index}", "pid": h.process.pid} for h in self.shards if h.process is not None]
        if self.bot_process is not None:
            processes.append({"name": "bot", "pid": self.bot_process.pid})
        return processes

    def status(self) -> dict[str, Any]:
        import psutil

        processes = []
        entries = [("supervisor", os.getpid())] + [(f"shard{h.index}", h.process.pid) for h in self.shards if h.process is not None]
        if self.bot_process is not None and self.bot_process.is_alive():
            entries.append(("bot", self.bot_process.pid))
        for name, pid in entries:
            try:
                proc = psutil.Process(pid)
                with proc.oneshot():
                    mem = proc.memory_full_info()
                    processes.append(
                        {
                            "name": name,
                            "pid": pid,
                            "cpu_percent": proc.cpu_percent(interval=None),
                            "rss_bytes": mem.rss,
                            "pss_bytes": getattr(mem, "pss", mem.rss),
                            "uptime_s": time.time() - proc.create_time(),
                        }
                    )
            except (psutil.Error, OSError):
                continue
        views = [h.stats.view for h in self.shards]
        uptime = max(1.0, time.time() - self.started)
        return {
            "processes": processes,
            "links": int(sum(int(v["links_up"]) for v in views)),
            "streams": int(sum(int(v["streams_subscribed"]) for v in views)),
            "frames_per_s": float(sum(int(v["frames_total"]) for v in views)) / uptime,
            "reconnects": int(sum(int(v["reconnects"]) for v in views)),
            "latency_p95_ms": self.metrics.latency_p95_ms(),
            "pairs_watched": len(self.assignment),
            "signals_last_hour": len(self.signals_emitted),
        }

    # --- run -----------------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # Handlers first: a SIGTERM during start-up (systemctl restart, docker stop) must still stop
        # cleanly. Children reset them at once (shards/worker.py, bot/process.py: reset_child_signals).
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        if early.STOPS:  # SIGTERM arrived while Python was still importing and loading config
            self.request_stop()
        self._build_scoring()
        self._build_store()
        self._resume_watches()
        self._create_shard_memory()
        for handle in self.shards:
            loop.add_reader(handle.ring.notify_fd, self._on_ring_ready, handle)
            self._start_shard(handle)
        self._start_bot()
        runner = None
        try:
            runner = await serve_metrics(self.metrics, self.healthy, self.config.metrics.host, self.config.metrics.port)
        except OSError as exc:
            log.error("metrics server could not start", extra={"error": str(exc)})
        scout_task = loop.create_task(self._scout_loop())
        watchdog_task = loop.create_task(self._watchdog_loop())
        log.info("supervisor running", extra={"shards": self.n_shards, "ws": self.config.mexc.ws_url})
        await self._stop.wait()
        self.notifier.notify("STOPPING=1")
        watchdog_task.cancel()
        await self._shutdown(scout_task, runner)

    async def _watchdog_loop(self) -> None:
        """systemd: READY once the shards beat, then WATCHDOG=1 only while healthy (a hang → restart)."""
        if not self.notifier.enabled:
            return
        interval = self.notifier.watchdog_interval_s()
        ready = False
        while not self._stop.is_set():
            ok, _ = self.healthy()
            if ok and not ready:
                ready = self.notifier.notify("READY=1")
            if ok:
                self.notifier.notify("WATCHDOG=1")
            await asyncio.sleep(min(interval, 1.0) if not ready else interval)

    async def _shutdown(self, scout_task: asyncio.Task[None], runner: Any) -> None:
        self._stopping = True
        scout_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await scout_task
        loop = asyncio.get_running_loop()
        children = [h.process for h in self.shards if h.process is not None]
        for handle in self.shards:
            if handle.conn is not None:
                with contextlib.suppress(OSError, ValueError):
                    handle.conn.send({"type": "stop"})
        if self.bot_process is not None:
            self._bot_send({"type": "stop"})
            children.append(self.bot_process)
        deadline = time.monotonic() + 5.0
        for proc in children:
            while proc.is_alive() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if proc.is_alive():
                proc.terminate()
                proc.join(2.0)
        for handle in self.shards:
            with contextlib.suppress(Exception):
                loop.remove_reader(handle.ring.notify_fd)
        # Drain what the shards wrote before they stopped: nothing scored is lost on shutdown.
        for handle in self.shards:
            with contextlib.suppress(Exception):
                self._on_ring_ready(handle)
        if runner is not None:
            await runner.cleanup()
        for handle in self.shards:
            with contextlib.suppress(Exception):
                handle.ring.close()
                handle.ring.unlink()
            with contextlib.suppress(Exception):
                handle.stats.close()
                handle.stats.unlink()
        self.store.close()
        log.info("supervisor stopped")


def _fork_frozen(process: Any) -> None:
    """Start a forked child with the parent's objects frozen out of the child's garbage collector.

    Why: a child's GC pass writes to every tracked object's header, copying each page it touches
    (copy-on-write), so forked shards slowly turn the parent's shared pages into private ones.
    Frozen objects are never scanned in the child; the parent unfreezes at once and is unaffected.
    """
    gc.freeze()
    try:
        process.start()
    finally:
        gc.unfreeze()


def _run_bot_child(config: Config, conn: Connection) -> None:
    """The bot process's entry: python-telegram-bot is imported here, in the child.

    Why: imported in the supervisor before the fork, its modules (about 8 MB of heap, mostly
    docstrings) sat in the supervisor for nothing, and both processes slowly copied the shared
    pages as reference counts and GC passes touched them: ~11 MB PSS for one library.
    """
    from bot.process import run_bot

    run_bot(config, conn)


def _watch_pipe(loop: asyncio.AbstractEventLoop, conn: Connection, callback: Any, *args: Any) -> None:
    """Call back when conn is readable, and keep conn blocking.

    Why: the event loop switches a watched fd to non-blocking, and multiprocessing's Connection
    then fails with BlockingIOError in the middle of a large message (a plan for 1,000 pairs is
    ~40 KB, more than a pipe buffer). Readiness comes from the loop; the read itself may block for
    the rest of a message that is already on its way.
    """
    loop.add_reader(conn.fileno(), callback, *args)
    os.set_blocking(conn.fileno(), True)


def _json_line(payload: dict[str, Any]) -> str:
    import json

    return json.dumps(payload, separators=(",", ":"), allow_nan=False) + "\n"


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
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.logging.level, "supervisor", config.secrets(), config.storage.data_dir)
    supervisor = Supervisor(args.config, config)
    try:
        uvloop.run(supervisor.run())
    except (ConfigError, ValueError, OSError) as exc:
        log.error("could not start", extra={"error": str(exc)})
        return 1
    return 0
