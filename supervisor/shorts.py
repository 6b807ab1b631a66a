"""The short watcher in the service: signals and intake start watches, the rows already read drive them.

Why here and this thin: the logic is detectors/short_watch.py (pure, replayed by
perf/eval_shorts.py through the same `on_rows` call); this module only wires it — the pipeline
calls `on_signal` after a signal is stored and `on_rows` with every batch it scored; each watch
event is stored (store/watches.py), counted for Prometheus, announced in Telegram when
configured, and every evaluation's context is appended to the snapshot CSV.

Cost with no active watch: `on_rows` is one truth test of a dict and returns (no REST call per
watch either way: a watch reads the shard rows of its pair, which the supervisor already has).
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from common.config import Config
from common.messages import Message, ShortNotice, WatchedContracts
from common.signal import Signal
from detectors.short_watch import ENTRY_OK, EXPIRED, OUTCOME, WATCH_START, ShortWatcher, WatchEvent, signal_pump_pct
from store.watches import SnapshotLog, WatchStore
from supervisor.short_intake import serve_intake

log = logging.getLogger("scanner.supervisor.shorts")
PREFIX = "scanner"
STORED_EVENTS = (WATCH_START, ENTRY_OK, OUTCOME, EXPIRED)


class ShortWatches:
    """Owns the ShortWatcher, its store and snapshot log; counts events for /metrics."""

    def __init__(self, config: Config, symbols: Mapping[int, str], tell_bot: Callable[[Message], bool],
                 clock_ms: Callable[[], int]) -> None:  # fmt: skip
        self.config = config
        self.symbols = symbols  # pair id -> symbol (Planning.symbols, kept current by the planner)
        self.tell_bot = tell_bot
        self.clock_ms = clock_ms  # the exchange clock the outcome tracker keeps
        self.watcher = ShortWatcher(config.shorts)
        self.store = WatchStore(config.storage.data_dir)
        unfinished = self.store.close_unfinished()
        if unfinished:
            log.info("short watches left by the previous run marked UNKNOWN", extra={"count": unfinished})
        self.snapshots = SnapshotLog(config.storage.data_dir)
        self.counts: dict[tuple[str, str], int] = {}  # (event, outcome) -> n; outcome "" for events without one
        self.refused: dict[str, int] = {}
        self.signal_of: dict[str, str] = {}  # run id -> the pump's signal id (its card, for threaded replies)
        self.pair_ids: set[int] = set()  # pairs of active watches: the quality filter keeps them subscribed
        # To the futures child (set by supervisor/app.py): which contracts' open interest to send back.
        self.tell_futures: Callable[[Message], bool] = lambda message: False

    def update_config(self, config: Config) -> None:
        self.config = config
        self.watcher.update_config(config.shorts)

    def __len__(self) -> int:
        return len(self.watcher)

    # --- starts ----------------------------------------------------------------------------------------

    def on_signal(self, signal: Signal) -> None:
        """Every stored pump signal (any profile) starts a watch, through the watcher's filters."""
        if not self.config.shorts.enabled:
            return
        changes = {1: signal.change_1m, 5: signal.change_5m, 15: signal.change_15m}
        self.start(signal.symbol, "scanner", signal_pump_pct(changes), signal.exchange_time_ms, signal.price,
                   {"profile": signal.profile, "signal_id": signal.signal_id}, signal.signal_id)  # fmt: skip

    def start(self, symbol: str, source: str, pump_pct: float, pump_ts_ms: int, price: float | None = None,
              extra: dict[str, Any] | None = None, signal_id: str | None = None) -> tuple[str | None, str | None]:  # fmt: skip
        """(run_id, None) for a started watch, (None, reason) for a refused one.

        Now is the exchange clock (the newest row time seen; the wall clock before the first row),
        and never before a scanner signal's own row: its watch starts at the signal.
        """
        clock = self.clock_ms()
        now_ms = max(clock, int(pump_ts_ms)) if source == "scanner" else clock or int(time.time() * 1000)
        event, why = self.watcher.start(symbol, source, pump_pct, int(pump_ts_ms), now_ms, price, extra)
        if event is None:
            label = _refusal_label(why)
            self.refused[label] = self.refused.get(label, 0) + 1
            log.info("short watch refused", extra={"symbol": symbol, "source": source, "reason": why, "filter": label})
            return None, why
        if signal_id is not None:
            self.signal_of[event.run_id] = signal_id
        self._handle([event])
        return event.run_id, None

    def known(self, symbol: str) -> bool:
        """A pair the scanner streams now (the intake refuses others: no rows would reach their watch)."""
        return symbol in set(self.symbols.values())

    async def serve_intake(self, stop: asyncio.Event) -> None:
        """POST /pump until stop (supervisor/short_intake.py); nothing listens without PUMP_INTAKE_TOKEN."""
        c = self.config.shorts
        await serve_intake(c.intake_host, c.intake_port, c.intake_token, self.start, self.known, stop)

    def on_open_interest(self, contract: str, t_ms: int, hold_vol: float) -> None:
        """Open interest of a perpetual (MEXC futures `holdVol`, e.g. contract PEPE_USDT) for the watch of its spot pair.

        The futures child (when futures.enabled) sends it for the contracts of the active watches
        (`WatchedContracts`, sent on every start and end); a contract without a watch costs one lookup.
        """
        self.watcher.on_open_interest(contract.replace("_", ""), int(t_ms), float(hold_vol))

    # --- rows --------------------------------------------------------------------------------------------

    def on_rows(self, rows: np.ndarray) -> None:
        """One scored batch: fold it into the active watches (nothing to do without one)."""
        if not self.watcher.active:
            return
        try:
            events = self.watcher.on_rows(rows, self.symbols)
        except Exception:  # a bug here must never stop the scoring loop: drop the watches, say so once
            log.exception("short watcher failed; its active watches are dropped", extra={"runs": [w.run_id for w in self.watcher.active.values()]})
            self.watcher.active.clear()
            self.pair_ids = set()
            return
        self._handle(events)

    def _handle(self, events: Iterable[WatchEvent]) -> None:
        for e in events:
            outcome = ""  # the label: TP/SL/TIMEOUT/EXPIRED for an end, EARLY/CONFIRM for an entry
            if e.kind in (OUTCOME, EXPIRED):
                outcome = str(e.data.get("outcome") or "")
            elif e.kind == ENTRY_OK:
                outcome = str(e.data.get("kind") or "")
            self.counts[(e.kind, outcome)] = self.counts.get((e.kind, outcome), 0) + 1
            if e.kind in STORED_EVENTS:
                self._store(e)
            self._notify(e)
            log.info("short watch", extra={"event": e.kind, "run_id": e.run_id, "symbol": e.symbol,
                                           **{k: v for k, v in e.data.items() if isinstance(v, (str, int, float))}})  # fmt: skip
            if e.kind in (OUTCOME, EXPIRED):
                self.signal_of.pop(e.run_id, None)
            if e.kind in (WATCH_START, OUTCOME, EXPIRED):
                self.pair_ids = {pid for pid, s in self.symbols.items() if s in self.watcher.active}
                self.tell_futures(WatchedContracts(sorted(contract_of(s) for s in self.watcher.active if contract_of(s))))
        if self.config.shorts.snapshots:
            try:
                self.snapshots.write(self.watcher.drain_snapshots())
            except OSError as exc:
                log.error("short watch snapshots not written", extra={"error": str(exc)[:200]})
        else:
            self.watcher.drain_snapshots()

    def _store(self, e: WatchEvent) -> None:
        w = self.watcher.active.get(e.symbol)
        record = e.data if e.kind in (OUTCOME, EXPIRED) else (w.to_record() if w is not None else None)
        if record is None:
            return
        try:
            self.store.save(record, self.signal_of.get(e.run_id))
        except (ValueError, sqlite3.Error) as exc:
            log.error("short watch not stored", extra={"run_id": e.run_id, "error": str(exc)[:200]})

    def _notify(self, e: WatchEvent) -> None:
        c = self.config.shorts
        wanted = {WATCH_START: c.notify_start, ENTRY_OK: c.notify_entry, OUTCOME: c.notify_outcome}.get(e.kind, False)
        if wanted and self.config.telegram.token:
            self.tell_bot(ShortNotice(notice_text(e), self.signal_of.get(e.run_id, "")))

    # --- metrics -----------------------------------------------------------------------------------------

    def collector(self) -> Collector:
        return _ShortCollector(self)


def contract_of(symbol: str) -> str:
    """The USDT perpetual of a spot pair (PEPEUSDT -> PEPE_USDT); "" for other quotes."""
    return f"{symbol[:-4]}_USDT" if symbol.endswith("USDT") and len(symbol) > 4 else ""


def _refusal_label(why: str | None) -> str:
    """A bounded label for a refusal (never the symbol): the filter that said no."""
    text = why or ""
    for key, label in (("already watched", "duplicate"), ("cooldown", "cooldown"), ("min_pump_pct", "min_pump_pct"),
                       ("pump_window", "pump_window"), ("max_concurrent", "max_concurrent")):  # fmt: skip
        if key in text:
            return label
    return "other"


def notice_text(e: WatchEvent) -> str:
    """The Telegram text of a watch event (plain text; the card it replies to names the pump)."""
    d = e.data
    if e.kind == WATCH_START:
        return f"👀 Short watch started: {e.symbol} after a {d.get('pump_pct', math.nan):.1f} % pump ({d.get('source')}). Run {e.run_id}"
    if e.kind == ENTRY_OK:
        return (f"🔻 Short entry {d.get('kind')} on {e.symbol} at {d.get('price'):.8g} ({d.get('stage')}); "
                f"TP {d.get('tp_price'):.8g}, SL {d.get('sl_price'):.8g}. Signal only, nothing traded.")  # fmt: skip
    ret = d.get("return_pct")
    return (f"🏁 Short {d.get('outcome')} on {e.symbol}: {ret:+.2f} % before fees "
            f"(best {d.get('mfe_pct', 0):.2f} %, worst {d.get('mae_pct', 0):.2f} %). Run {e.run_id}")  # fmt: skip


class _ShortCollector(Collector):
    """scanner_short_watch_events_total{event, outcome}, refusals by filter, and the active watches."""

    def __init__(self, owner: ShortWatches) -> None:
        self.owner = owner

    def collect(self) -> Iterable[Any]:
        events = CounterMetricFamily(f"{PREFIX}_short_watch_events", "Short watcher events (outcome: TP/SL/TIMEOUT/EXPIRED, entry kind)",
                                     labels=["event", "outcome"])  # fmt: skip
        for (kind, outcome), n in sorted(self.owner.counts.items()):
            events.add_metric([kind, outcome], n)
        refused = CounterMetricFamily(f"{PREFIX}_short_watch_refused", "Pumps the watcher's filters refused", labels=["reason"])
        for reason, n in sorted(self.owner.refused.items()):
            refused.add_metric([reason], n)
        active = GaugeMetricFamily(f"{PREFIX}_short_watches_active", "Short watches running now")
        active.add_metric([], len(self.owner))
        return [events, refused, active]


__all__ = ["ShortWatches", "contract_of", "notice_text"]
