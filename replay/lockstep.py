"""Lock-step replay: a tick dump through the emulator's frames, the shard engine and the scorer.

Why not the live transport: the shard closes quiet pairs' bars from a wall-clock housekeeping
task (every 0.25 s) and the supervisor scores whatever batch the ring holds when it wakes, so
over WebSockets the rows and batches depend on timing. Here the same pieces run in one loop,
driven by exchange time only:

  ReplayMarket.advance(end of second s)   -> the emulator's own deals frames (sim.frames.FrameEncoder)
  ShardEngine.on_frame(frame)              -> protobuf decode, 1 s bars, windows, ring rows
  clock push (empty deals frame, sendTime = end of second s) + ShardEngine.tick()
                                           -> every traded bar closes when its second ends
  FeatureRing.read_new() -> Scorer.score() -> decisions, one batch per exchange second

push_ms=100 scores at the live cadence instead: after every deals push (the market's 100 ms
windows) the ring is read and scored, as the supervisor does when a push wakes it, so candidate
rows (core/engine.pyx) fire within the push that made them; each decision's time is then its
push's end (LockstepResult.decision_ms), which is what a live user's delay is measured from.

Only seconds that hold trades are visited (ReplayMarket.trade_seconds()): idle exchange time is skipped, and the engine's
windows fill the skipped seconds with zero-volume bars when the next event arrives (as live).
The clock push goes to a pair of its own (CLOCK_SYMBOL) so it never collides with a real pair's
duplicate-push check. Depth is not fed: the dumps carry no book, so book features stay NaN and
ROW_BOOK_VALID is never set. Two runs over the same dump give the same rows and decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.engine import ShardEngine
from core.ring import FeatureRing
from core.rowspec import ROW_BASELINE_READY
from core.statsspec import StatsBlock
from sim.frames import FrameEncoder
from sim.replay import ReplayMarket
from sim.updates import PairUpdate

CLOCK_SYMBOL = "ZZCLOCKUSDT"  # never in a dump: ReplayMarket names come from the data
CLOCK_PAIR_ID = 0


@dataclass
class LockstepResult:
    """What one replay produced: decisions (with the row that fired) and row statistics."""

    decisions: list[Any] = field(default_factory=list)
    rows: int = 0
    seconds: int = 0
    first_baseline_ms: dict[str, int] = field(default_factory=dict)  # first row with VSR's baseline ready
    pair_ids: dict[str, int] = field(default_factory=dict)
    decision_ms: list[int] = field(default_factory=list)  # exchange time each decision was made (batch end)


def replay_lockstep(
    dump: str | Path,
    scorer: Any,
    on_rows: Callable[[np.ndarray], None] | None = None,
    ring_rows: int = 65536,
    push_ms: int = 1000,
    on_batch: Callable[[np.ndarray, int], None] | None = None,
) -> LockstepResult:
    """Replay a Parquet tick dump (sim/replay.py format) through engine and scorer in lock-step.

    push_ms: 1000 scores once per exchange second (the rows of every push of that second in one
    batch); 100 scores after every deals push. on_batch(rows, batch_end_ms) sees every batch.
    Pair ids are 1.. in symbol order. Each pair's listing time is its first trade in the dump,
    which is what a live shard's kline seeding would learn from the emulator in replay mode.
    """
    market = ReplayMarket(dump, book=False)  # depth is never fed here: do not build it
    frames = FrameEncoder(market)
    ring = FeatureRing.create(ring_rows)
    stats = StatsBlock.create()
    result = LockstepResult()
    try:
        engine = ShardEngine(ring, stats)
        names = {}
        for pair_id, spec in enumerate(market.symbols, start=1):
            engine.add_pair(pair_id, spec.symbol)
            engine.set_listing(spec.symbol, spec.listing_ms)
            names[pair_id] = spec.symbol
            result.pair_ids[spec.symbol] = pair_id
        engine.add_pair(CLOCK_PAIR_ID, CLOCK_SYMBOL)
        clock_channel = f"spot@public.aggre.deals.v3.api.pb@100ms@{CLOCK_SYMBOL}"
        seconds = market.trade_seconds()
        for sec in seconds:
            end = (sec + 1) * 1000
            for update in market.advance(end):
                if update.trades:
                    frame = frames.deals(f"spot@public.aggre.deals.v3.api.pb@100ms@{update.symbol}", update)
                    engine.on_frame(frame, update.window_end_ms * 1_000_000)
                    if push_ms < 1000:
                        _batch(ring.read_new(), update.window_end_ms, scorer, result, names, on_rows, on_batch)
            clock = frames.deals(clock_channel, PairUpdate(CLOCK_SYMBOL, end, [], None))
            engine.on_frame(clock, end * 1_000_000)
            engine.tick()
            _batch(ring.read_new(), end, scorer, result, names, on_rows, on_batch)
        result.seconds = len(seconds)
    finally:
        ring.close()
        ring.unlink()
        stats.close()
        stats.unlink()
    return result


def _batch(rows: np.ndarray, end_ms: int, scorer: Any, result: LockstepResult, names: dict[int, str],
           on_rows: Callable[[np.ndarray], None] | None, on_batch: Callable[[np.ndarray, int], None] | None) -> None:  # fmt: skip
    """Score one batch of new rows, made at exchange time end_ms."""
    if len(rows) == 0:
        return
    result.rows += len(rows)
    ready = rows[(rows["flags"] & ROW_BASELINE_READY) != 0]
    for pid, t in zip(ready["pair_id"].tolist(), ready["row_time_ms"].tolist(), strict=True):
        result.first_baseline_ms.setdefault(names[pid], t)
    if on_rows is not None:
        on_rows(rows)
    if on_batch is not None:
        on_batch(rows, end_ms)
    decisions = scorer.score(rows)
    result.decisions.extend(decisions)
    result.decision_ms.extend([end_ms] * len(decisions))
