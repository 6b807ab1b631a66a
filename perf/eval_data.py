"""The pump data set as the evaluation reads it: events, background episodes, trades, replay dumps.

Why one module: every eval_* module (replay cache, cards, trader's figures, selection) needs the
same clocks of an event (T, the labelled start, cross10) and the same definition of background,
so they are parsed and defined once here. The data folder is read by path, never copied.
"""

from __future__ import annotations

import csv
import io
import lzma
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

HOUR_MS = 3_600_000
DETECT_BEFORE_MS = 30 * 60_000  # a signal in [T - 30 min, T + 30 min] detects the event (cross10's window)
DETECT_AFTER_MS = 30 * 60_000
EVENT_BEFORE_MS = 2 * HOUR_MS  # background = outside [T - 2 h, T + 6 h] (the data README's definition)
EVENT_AFTER_MS = 6 * HOUR_MS
EPISODE_MATCH_MS = (30 * 60_000, 60 * 60_000)  # a signal this close to a background ≥10 % episode "saw" it


@dataclass(frozen=True)
class Event:
    event_id: str
    symbol: str  # replay symbol: the pair without "/", e.g. ADXBTC
    file: Path
    t_ms: int
    labelled_ms: int | None
    cross10_ms: int | None
    meets: bool
    p_ref: float
    peak_price: float
    n_trades: int


def utc_ms(text: str) -> int | None:
    """'YYYY-MM-DD HH:MM[:SS]' (UTC) as epoch ms; None for an empty cell."""
    text = text.strip()
    if not text:
        return None
    fmt = "%Y-%m-%d %H:%M:%S" if text.count(":") == 2 else "%Y-%m-%d %H:%M"
    return int(datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp() * 1000)


def load_events(data: Path) -> list[Event]:
    """events_index.csv as Event records, sorted by event id."""
    path = data / "events_index.csv"
    if not path.is_file():
        raise SystemExit(f"eval_pumps: {path} not found (--data must be the pumps folder)")
    out = []
    with path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            t_ms = utc_ms(r["announced_utc"])
            if t_ms is None:
                raise SystemExit(f"eval_pumps: {path}: event {r['event_id']} has no announced_utc")
            cross = r["cross10_rel_s"].strip()
            out.append(
                Event(
                    event_id=r["event_id"],
                    symbol=r["pair"].replace("/", ""),
                    file=data / r["file"],
                    t_ms=t_ms,
                    labelled_ms=utc_ms(r["lamorgia_labeled_start_5S"]),
                    cross10_ms=t_ms + round(float(cross) * 1000) if cross else None,
                    meets=r["meets_10pct_20min"] == "True",
                    p_ref=float(r["p_ref"]),
                    peak_price=float(r["peak_price"]),
                    n_trades=int(r["n_trades"]),
                )
            )
    return sorted(out, key=lambda e: e.event_id)


def load_episodes(data: Path) -> dict[str, list[tuple[int, bool, float]]]:
    """background_episodes.csv per event: (start ms, matches a listed pump, max rise %)."""
    out: dict[str, list[tuple[int, bool, float]]] = {}
    path = data / "background_episodes.csv"
    if path.is_file():
        with path.open(newline="") as fh:
            for r in csv.DictReader(fh):
                start = utc_ms(r["episode_start_utc"])
                if start is None:
                    continue
                listed = bool(r["known_pump_within_60min_utc"].strip())
                out.setdefault(r["event_id"], []).append((start, listed, float(r["max_rise_vs_trailing20m_min_pct"])))
    return out


def read_trades(path: Path) -> dict[str, np.ndarray]:
    """One event's CSV (xz) as arrays sorted by time; side becomes 1 (taker buy) / 2 (taker sell)."""
    import pyarrow.csv as pacsv

    with lzma.open(path) as fh:
        table = pacsv.read_csv(io.BytesIO(fh.read()))
    side = np.array(table.column("side").to_pylist())
    bad = ~np.isin(side, ("buy", "sell"))
    if bad.any():
        raise ValueError(f"{path}: side must be buy or sell, got {side[bad][0]!r}")
    ts = table.column("timestamp").to_numpy().astype(np.int64)
    order = np.argsort(ts, kind="stable")
    return {
        "ts_ms": ts[order],
        "price": table.column("price").to_numpy().astype(np.float64)[order],
        "qty": table.column("amount").to_numpy().astype(np.float64)[order],
        "side": np.where(side == "buy", 1, 2).astype(np.int8)[order],
    }


def write_dump(trades: dict[str, np.ndarray], symbol: str, out: Path) -> None:
    """Trades in the emulator's replay format (ts_ms, symbol, price, qty, side)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    keep = trades["qty"] > 0  # the replay refuses zero quantities; Binance never prints one
    n = int(keep.sum())
    table = pa.table(
        {
            "ts_ms": pa.array(trades["ts_ms"][keep], pa.int64()),
            "symbol": pa.array([symbol] * n, pa.string()),
            "price": pa.array(trades["price"][keep], pa.float64()),
            "qty": pa.array(trades["qty"][keep], pa.float64()),
            "side": pa.array(trades["side"][keep], pa.int8()),
        }
    )
    pq.write_table(table, out)


def minus(span: tuple[int, int], holes: list[tuple[int, int]]) -> int:
    """Length of span minus the union of holes (all in ms)."""
    lo, hi = span
    total, cursor = 0, lo
    for a, b in sorted(holes):
        a, b = max(a, lo), min(b, hi)
        if b <= cursor:
            continue
        if a > cursor:
            total += a - cursor
        cursor = max(cursor, b)
    return total + max(0, hi - cursor)


def event_holes(event: Event, others_t_ms: list[int], episodes: list[tuple[int, bool, float]],
                first_ms: int, last_ms: int) -> tuple[list[tuple[int, int]], int]:  # fmt: skip
    """The event's own [T-2h, T+6h] plus those of other known pumps of the coin in the file
    (other events, listed background episodes), and the background ms left outside them."""
    excluded = [(o - EVENT_BEFORE_MS, o + EVENT_AFTER_MS) for o in others_t_ms if first_ms <= o <= last_ms]
    excluded += [(s - EVENT_BEFORE_MS, s + EVENT_AFTER_MS) for s, listed, _ in episodes if listed]
    holes = [(event.t_ms - EVENT_BEFORE_MS, event.t_ms + EVENT_AFTER_MS), *excluded]
    return holes, minus((first_ms, last_ms), holes)


def rnd(x: float | None, nd: int = 3) -> float | None:
    """A JSON-friendly rounded float (None for None, NaN, inf)."""
    return None if x is None or not math.isfinite(x) else round(float(x), nd)
