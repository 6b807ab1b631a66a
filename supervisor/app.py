"""The supervisor: forks shards and the bot, scouts pairs, scores rows, emits signals.

Crash-only: starting and recovering are the same path. The supervisor owns the shared memory
(rings, stats blocks) and the SQLite store; a shard or bot that dies is forked again and
re-receives its plan; a signal is stored before anyone is told about it, so a dead bot loses
nothing (it sends unsent cards when it comes back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from common.config import Config, ConfigError, load_config, set_value
from common.logs import setup_logging
from common.rest import PacedRest, RestError
from common.signal import Signal, make_signal_id
from supervisor.metrics import Metrics, serve_metrics
from supervisor.planner import plan_shards
from supervisor.scout import Scout, select_pairs

log = logging.getLogger("scanner.supervisor")

_FORK = mp.get_context("fork")
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
        self.rows_scored = 0
        self.started = time.time()
        self._stop = asyncio.Event()
        self._stopping = False
        self._plan_event = asyncio.Event()
        self.metrics = Metrics(self._stats_views, self._extra_metrics)

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
        from bot.storage import Store

        Path(self.config.storage.data_dir).mkdir(parents=True, exist_ok=True)
        self.store = Store(self.config.storage.data_dir)

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
        process.start()
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
        from bot.process import run_bot

        parent, child = _FORK.Pipe(duplex=True)
        process = _FORK.Process(target=run_bot, args=(self.config, child), name="bot", daemon=True)
        process.start()
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
            if symbol not in self.pair_ids:
                pair_id = len(self.pair_ids) + 1
                self.pair_ids[symbol] = pair_id
                self.symbols[pair_id] = symbol
            self.watch_since.setdefault(symbol, now)
        for symbol in set(self.watch_since) - set(new_assignment):
            self.watch_since.pop(symbol, None)
        # Add before remove: a moved pair is watched by its new shard before the old one lets go.
        moved = {s for s in new_assignment if s in self.assignment and self.assignment[s] != new_assignment[s]}
        for handle in self.shards:
            wanted = {s: self.pair_ids[s] for s, k in new_assignment.items() if k == handle.index}
            keep_until_moved = {s: self.pair_ids[s] for s in moved if self.assignment.get(s) == handle.index}
            handle.pairs = {**wanted, **keep_until_moved}
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
        for pair_id in set(rows["pair_id"][bad].tolist()):
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
        if self.config.scout.quality_min_quote_vol_5m > 0 or self.config.scout.quality_spread_max > 0:
            self._quality_check(rows)
        now_ns = time.time_ns()
        for decision in self.scorer.score(rows, now_ns):
            self._emit(decision, now_ns)

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
            "ring_lag_rows": float(lag),
            "ring_overflow_total": float(overflow),
            "pairs_planned": float(len(self.assignment)),
            "shard_restarts_total": float(sum(h.restarts for h in self.shards)),
        }

    def healthy(self) -> tuple[bool, dict[str, Any]]:
        now_ns = time.time_ns()
        alive = all(h.process is not None and h.process.is_alive() for h in self.shards)
        beats = [int(h.stats.view["heartbeat_ns"]) for h in self.shards]
        fresh = all(b and now_ns - b < 5e9 for b in beats)
        return alive and fresh, {"shards_alive": alive, "heartbeats_fresh": fresh, "pairs": len(self.assignment)}

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
        self._build_scoring()
        self._build_store()
        self._create_shard_memory()
        for handle in self.shards:
            loop.add_reader(handle.ring.notify_fd, self._on_ring_ready, handle)
            self._start_shard(handle)
        self._start_bot()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        runner = None
        try:
            runner = await serve_metrics(self.metrics, self.healthy, self.config.metrics.host, self.config.metrics.port)
        except OSError as exc:
            log.error("metrics server could not start", extra={"error": str(exc)})
        scout_task = loop.create_task(self._scout_loop())
        log.info("supervisor running", extra={"shards": self.n_shards, "ws": self.config.mexc.ws_url})
        await self._stop.wait()
        await self._shutdown(scout_task, runner)

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
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.logging.level, "supervisor", config.secrets())
    supervisor = Supervisor(args.config, config)
    try:
        uvloop.run(supervisor.run())
    except (ConfigError, ValueError, OSError) as exc:
        log.error("could not start", extra={"error": str(exc)})
        return 1
    return 0
