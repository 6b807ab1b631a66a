"""One event's replay at the live cadence, kept as batches so every profile can be scored on it.

Why batches and not decisions: the expensive part of the evaluation is the replay (emulator
frames -> ShardEngine -> ring, minutes of CPU for the whole set); scoring is cheap. So the replay
runs once per event with push_ms=100 (a batch after every 100 ms deals push, as the supervisor is
woken live, replay/lockstep.py), records every batch's rows and its exchange time, and each
profile, threshold or cross-validation fold is scored on those same batches (perf/eval_cards.py)
through the supervisor's Scorer. With --cache DIR the batches are kept on disk between runs
(derived features only, never the trades); the key holds the event file's size and mtime and
CACHE_VERSION, so a changed file or feature code is replayed again when CACHE_VERSION is bumped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perf.eval_data import Event, write_dump

CACHE_VERSION = 1
PUSH_MS = 100


@dataclass
class Batches:
    """Every row the scorer saw, in order; batch[i] is row i's batch, batch_ms[b] batch b's time."""

    rows: np.ndarray
    batch: np.ndarray  # int64 per row
    batch_ms: np.ndarray  # int64 per batch: the exchange time the batch was scored at
    first_baseline_ms: int | None

    def row_ms(self) -> np.ndarray:
        """Per row: the exchange time it was scored at (its push's end, not its bar's end)."""
        return self.batch_ms[self.batch]


class _NoScorer:
    """The replay's scorer slot: batches are scored later, once per profile."""

    def score(self, rows: np.ndarray) -> list[object]:
        return []


def _key(event: Event, push_ms: int) -> str:
    st = event.file.stat()
    raw = f"{event.event_id}|{st.st_size}|{st.st_mtime_ns}|{push_ms}|{CACHE_VERSION}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def replay_batches(event: Event, trades: dict[str, np.ndarray], workdir: Path, cache: Path | None = None,
                   push_ms: int = PUSH_MS) -> Batches:  # fmt: skip
    """The event's whole file through the lock-step replay at push_ms; from the cache when there."""
    from replay.lockstep import replay_lockstep

    path = cache / f"{event.event_id}.{_key(event, push_ms)}.npz" if cache is not None else None
    if path is not None and path.is_file():
        with np.load(path) as z:
            base = int(z["first_baseline_ms"])
            return Batches(z["rows"], z["batch"], z["batch_ms"], base if base >= 0 else None)
    dump = workdir / f"{event.event_id}.parquet"
    write_dump(trades, event.symbol, dump)
    parts: list[np.ndarray] = []
    times: list[int] = []

    def keep(rows: np.ndarray, end_ms: int) -> None:
        parts.append(rows.copy())
        times.append(end_ms)

    try:
        result = replay_lockstep(dump, _NoScorer(), push_ms=push_ms, on_batch=keep)
    finally:
        dump.unlink(missing_ok=True)
    if parts:
        rows = np.concatenate(parts)
        batch = np.repeat(np.arange(len(parts), dtype=np.int64), [len(p) for p in parts])
    else:
        from core.rowspec import FEATURE_ROW_DTYPE

        rows, batch = np.zeros(0, FEATURE_ROW_DTYPE), np.zeros(0, np.int64)
    out = Batches(rows, batch, np.array(times, np.int64), result.first_baseline_ms.get(event.symbol))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        base = -1 if out.first_baseline_ms is None else out.first_baseline_ms
        np.savez(tmp, rows=out.rows, batch=out.batch, batch_ms=out.batch_ms, first_baseline_ms=np.int64(base))
        tmp.replace(path)
    return out
