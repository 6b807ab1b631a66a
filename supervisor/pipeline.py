"""The signal path: ring rows → detectors → cooldown → store → bot (or stdout) → outcome watches.

Why store first: a signal is in SQLite before anyone is told about it, so a killed bot loses
nothing (it sends every unsent card when it comes back) and a restarted supervisor never signals
the same row twice (the store refuses a known signal id).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
import time
from collections.abc import Callable
from typing import Any

from common.config import Config
from common.messages import Message, OutcomeStored, SignalStored
from common.signal import Signal, make_signal_id
from store.cards import CardStore
from supervisor.budget import DAY_MS, CardBudget, signal_strength, strongest_first
from supervisor.chart_history import ChartHistory
from supervisor.detection import Detection
from supervisor.exit_prices import ExitPrices
from supervisor.listings import ListingWatch
from supervisor.metrics import Metrics
from supervisor.outcome import OutcomeTracker
from supervisor.planning import Planning, ShardHandle
from supervisor.price_history import PriceHistory
from supervisor.shorts import ShortWatches

log = logging.getLogger("scanner.supervisor.pipeline")

# How far back stored signals re-open cooldowns after a restart (wall time; expired ones are harmless).
RESTORE_ALERTS_NS = 24 * 3600 * 10**9
# Row fields stored with every signal: Alpha-1's and the flash profile's (card, storage, stdout).
SIGNAL_FEATURES = ("vsr", "vc", "pm", "obi", "cum_depth_delta", "spread", "listing_age_s", "quote_vol_5m",
                   "rush_5s", "rush_ratio_25s", "trades_ratio_25s", "buy_share_25s", "ret_25s", "ret_60s")  # fmt: skip


class Pipeline:
    """Scores what the shards write and hands every signal and outcome on, in that order."""

    def __init__(self, config: Config, detection: Detection, store: Any, planning: Planning, metrics: Metrics,
                 tell_bot: Callable[[Message], bool]) -> None:  # fmt: skip
        self.config = config
        self.detection = detection
        self.store = store
        self.planning = planning
        self.metrics = metrics
        self.tell_bot = tell_bot
        self.tracker = OutcomeTracker(config.outcome)
        self.price_history = PriceHistory()  # the card's 1/5/15-min change, from rows already read
        self.exit_prices = ExitPrices(lambda symbol: planning.pair_ids.get(symbol))  # the held pairs' 1 s closes for the bot's exits
        self.shorts = ShortWatches(config, planning.symbols, tell_bot, lambda: self.tracker.clock_ms)  # issue #19
        metrics.registry.register(self.shorts.collector())
        self.chart_history = ChartHistory()  # the card's chart: 30 one-minute candles per pair, from rows already read
        db = getattr(store, "db", None)  # a Store; tests may pass a stand-in without SQLite (then no chart data)
        self.cards = CardStore(db) if db is not None else None
        self.listings = ListingWatch(self.cards, tell_bot, config.scout.quote_asset)
        self.exchange_ms = 0  # the newest row's exchange time: the clock of the listings' first minutes
        self.outcome_counts: dict[tuple[str, str], int] = {}
        self.signals_emitted: list[float] = []
        self.rows_scored = 0
        self.score_passes = 0  # batches scored: rows_scored / score_passes is the batching the shards' wake-up floor buys
        # Cooldowns opened by a previous run, applied when each pair gets its id (Planning.pair_id).
        self.restored_alerts: dict[str, list[tuple[str, tuple[int, float, int]]]] = {}
        for (profile, symbol), alert in store.recent_alerts(time.time_ns() - RESTORE_ALERTS_NS).items():
            self.restored_alerts.setdefault(symbol, []).append((profile, alert))
        self.budget = CardBudget()  # supervisor/budget.py: the cards of the last 24 h, a restart included
        self.budget.restore((t, signal_strength(p, profile, config.detectors))
                            for t, profile, p in store.budget_cards(time.time_ns() // 10**6 - DAY_MS))  # fmt: skip

    def on_new_pair(self, pair_id: int, symbol: str) -> None:
        """A pair got its id: re-open the cooldown a previous run left for it."""
        for profile, alert in self.restored_alerts.pop(symbol, []):
            self.detection.remember_alert(profile, pair_id, *alert)
        if symbol in self.exit_prices.wanted:  # a held pair planned only now
            self.exit_prices.refresh()

    def resume_watches(self) -> None:
        """Re-open a watch for every stored signal that has no outcome yet.

        Why re-open rather than close at once: a restart (deploy, crash) usually lasts seconds,
        and the rest of the horizon is still worth watching; supervisor/outcome.py closes those
        whose horizon ended during the downtime as `unknown` once exchange time is known.
        """
        self.outcome_counts = self.store.outcome_counts()
        resumed = 0
        for sig in self.store.signals_without_outcome():
            resumed += self.tracker.open(sig.signal_id, sig.symbol, sig.profile, self.planning.pair_id(sig.symbol), sig.exchange_time_ms,
                                         sig.price, resumed=True)  # fmt: skip
        if resumed:
            log.info("outcome watches resumed", extra={"count": resumed})

    def update_config(self, config: Config) -> None:
        self.config = config
        self.tracker.update_config(config.outcome)
        self.shorts.update_config(config)

    def on_ring_ready(self, handle: ShardHandle) -> None:
        """The shard's eventfd fired: read every new row, score, emit, then fold outcome watches."""
        handle.ring.drain_notify()
        rows = handle.ring.read_new()
        if len(rows) == 0:
            return
        self.rows_scored += len(rows)
        self.score_passes += 1
        self.planning.quality_check(rows, self.tracker.watched_pair_ids() | self.shorts.pair_ids)
        self.price_history.update(rows)  # before scoring, so emit() sees this batch too
        if (closes := self.exit_prices.on_rows(rows)) is not None:
            self.tell_bot(closes)
        self.chart_history.update(rows)
        self.exchange_ms = max(self.exchange_ms, int(rows["row_time_ms"][-1]))
        now_ns = time.time_ns()
        decisions = self.detection.score(rows, now_ns)
        for decision in strongest_first(decisions, self.config.detectors):  # the card budget's order
            self.emit(decision, now_ns)
        # After the signals: a watch opened by this batch also sees the batch's later rows.
        for outcome in self.tracker.update(rows):
            self.store_outcome(outcome)
        self.shorts.on_rows(rows)  # the short watches (no-op without one)

    def emit(self, decision: Any, now_ns: int) -> None:
        row = decision.row
        symbol = self.planning.symbols.get(int(decision.pair_id))
        if symbol is None:
            return
        signal = Signal(
            signal_id=make_signal_id(symbol, int(row["row_time_ms"]), int(decision.escalation)),
            symbol=symbol,
            profile=decision.profile,
            exchange_time_ms=int(row["row_time_ms"]),
            recv_ns=int(row["recv_ns"]),
            created_ns=now_ns,
            price=float(row["last_price"]),
            prob=float(decision.prob),
            features={k: float(row[k]) for k in SIGNAL_FEATURES},
            reasons=list(decision.reasons),
            escalation=int(decision.escalation),
            model_trained=bool(decision.model_trained),
            **self._card_context(symbol, int(decision.pair_id), row),
        )
        self._store_chart(signal, int(decision.pair_id))
        value = signal_strength(signal.prob, signal.profile, self.config.detectors)
        held = self.budget.check(signal.exchange_time_ms, value, self.config.scanner)
        if not self.store.add_signal(signal, suppressed=held):
            return  # already stored (replayed rows after a restart): never signal twice
        self.tracker.open(signal.signal_id, symbol, signal.profile, int(decision.pair_id), signal.exchange_time_ms, signal.price)
        latency_ms = (now_ns - signal.recv_ns) / 1e6
        self.metrics.observe_latency(latency_ms)
        self.metrics.signals.observe(signal.prob)
        self.signals_emitted.append(time.time())
        if held is not None:  # stored and watched, but no card: the budget is spent (/stats counts it)
            self.budget.suppressed += 1
            log.info("signal suppressed", extra={"symbol": symbol, "prob": round(signal.prob, 3), "reason": held})
            return
        self.budget.record(signal.exchange_time_ms, value)
        if self.config.telegram.token:
            self.tell_bot(SignalStored(signal.signal_id))
        else:
            payload = signal.to_dict()
            payload["latency_ms"] = round(latency_ms, 3)
            sys.stdout.write(json.dumps(payload, separators=(",", ":"), allow_nan=False) + "\n")
            sys.stdout.flush()
        log.info("signal", extra={"symbol": symbol, "prob": round(signal.prob, 3), "latency_ms": round(latency_ms, 2)})
        self.shorts.on_signal(signal)  # after the card is on its way: a watch never delays it

    def on_scout(self, universe: Any) -> None:
        """After a scout pass: new listings (if telegram.cards.listings), then the first minutes of recent ones."""
        if not self.config.telegram.token or not self.config.telegram.cards.listings:
            return
        try:
            self.listings.on_universe(universe)
            self.listings.first_minutes(self.chart_history, self.planning.pair_ids, self.exchange_ms)
        except sqlite3.Error as exc:
            log.error("listing not stored", extra={"error": str(exc)[:200]})

    def top(self, window_s: int, n: int) -> dict[str, Any]:
        """/top's figures from the scanner's own state: gainers, losers and 5-min volume surges over the window
        (the chart history's candles, up to an hour), or for 24 h the busiest pairs by the scout's ticker volume."""
        n = max(1, min(n, 25))
        if window_s >= 86400:
            busiest = sorted(self.planning.volumes_24h.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
            return {"window_s": window_s, "pairs": len(self.planning.volumes_24h), "volume_24h": [[s, v] for s, v in busiest]}
        moves = [(self.planning.symbols.get(p), change, surge) for p, change, surge in self.chart_history.movers(self.exchange_ms, window_s // 60)]
        moves = [m for m in moves if m[0] is not None]
        by_change = sorted(moves, key=lambda m: (m[1], m[0]))
        surges = sorted((m for m in moves if m[2] == m[2]), key=lambda m: (-m[2], m[0]))[:n]
        return {"window_s": window_s, "exchange_ms": self.exchange_ms, "pairs": len(moves),
                "gainers": [[s, c] for s, c, _ in reversed(by_change[-n:]) if c > 0], "losers": [[s, c] for s, c, _ in by_change[:n] if c < 0],
                "surges": [[s, x] for s, _, x in surges]}  # fmt: skip

    def _store_chart(self, signal: Signal, pair_id: int) -> None:
        """The chart's data, stored before the signal so the bot never finds the signal without it; a failure costs the chart only."""
        if self.cards is None or not self.config.telegram.token or not self.config.telegram.cards.chart:
            return
        try:
            self.cards.add_series(signal.signal_id, self.chart_history.series(pair_id, signal.exchange_time_ms))
        except (ValueError, sqlite3.Error) as exc:
            log.warning("chart data not stored; the card goes out as text", extra={"signal_id": signal.signal_id, "error": str(exc)[:200]})

    def _card_context(self, symbol: str, pair_id: int, row: Any) -> dict[str, Any]:
        """The Signal's change_1m/5m/15m and quote_volume_24h, from what the service already holds
        (no REST call on the signal path); None where unknown (a 0 volume is MEXC's null)."""
        changes = self.price_history.changes(pair_id, int(row["row_time_ms"]), float(row["last_price"]))
        return {"change_1m": changes[1], "change_5m": changes[5], "change_15m": changes[15],
                "quote_volume_24h": self.planning.volumes_24h.get(symbol) or None}  # fmt: skip

    def store_outcome(self, outcome: Any) -> None:
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
        self.tell_bot(OutcomeStored(data))
        log.info("outcome", extra={"signal_id": outcome.signal_id, "outcome": outcome.outcome, "trade": outcome.trade,
                                   "max_gain": outcome.max_gain, "reason": outcome.reason})  # fmt: skip

    def figures(self) -> dict[str, float]:
        """Metrics of the signal path."""
        return {"signals_per_hour": float(self.signals_last_hour()), "rows_scored_total": float(self.rows_scored),
                "score_passes_total": float(self.score_passes), "outcome_watches_open": float(len(self.tracker)),
                **self.budget.figures()}  # fmt: skip

    def signals_last_hour(self) -> int:
        now = time.time()
        self.signals_emitted = [t for t in self.signals_emitted if t > now - 3600]
        return len(self.signals_emitted)


__all__ = ["Pipeline", "SIGNAL_FEATURES"]
