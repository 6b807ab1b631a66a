"""ns per operation of the per-pair state (core.book, core.windows, core.features) for many pairs.

Measured on the same synthetic workload, side by side in one run:
  book_diff        OrderBook.replay_diffs: the C diff path (one Python call per pair per batch)
  book_diff_def    OrderBook.apply_diff: the same diffs through the Python-list wrapper
  trade            TradeWindows.replay_trades: the C deal path
  close_and_row    windows.advance_all + features.fill_rows: one bar closed and one feature row per pair
and the plain-Python twins (core.reference) on the same inputs as the baseline. The workload: a
100-level snapshot per side around a log-uniform price, diffs of 1-4 levels within ±50 bps of the
touch (30 % deletes), two deals per second for five minutes. The twins run on a subset of the
pairs (--ref-pairs): they are slow, and ns per operation does not depend on the pair count.

Usage: python -m perf.bench_state [--pairs 3000] [--ref-pairs 300] [--repeat 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.book import OrderBook
from core.features import fill_rows
from core.reference.book import ReferenceBook
from core.reference.features import compute_row as ref_compute_row
from core.reference.windows import ReferenceWindows
from core.rowspec import FEATURE_ROW_DTYPE
from core.windows import TradeWindows, advance_all

T0 = 1_790_000_100_000  # bucket-aligned exchange time
SNAPSHOT_ID = 1000


@dataclass
class PairInput:
    """One pair's synthetic traffic, as arrays ready for the batch entry points."""

    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    from_v: np.ndarray
    to_v: np.ndarray
    n_bids: np.ndarray
    n_asks: np.ndarray
    levels: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    side: np.ndarray
    time_ms: np.ndarray

    def diff_lists(self) -> list[tuple[int, int, list, list]]:
        out, row = [], 0
        for i in range(len(self.from_v)):
            nb, na = int(self.n_bids[i]), int(self.n_asks[i])
            b = [tuple(x) for x in self.levels[row : row + nb].tolist()]
            a = [tuple(x) for x in self.levels[row + nb : row + nb + na].tolist()]
            out.append((int(self.from_v[i]), int(self.to_v[i]), b, a))
            row += nb + na
        return out


def make_inputs(n_pairs: int, diffs: int = 40, seconds: int = 300, seed: int = 7) -> list[PairInput]:
    """Deterministic traffic for n_pairs pairs (see the module docstring)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_pairs):
        p0 = float(np.exp(rng.uniform(np.log(1e-4), np.log(100.0))))
        depth = np.arange(1, 101)
        bids = [(p0 * (1 - k * 1e-4), float(q)) for k, q in zip(depth, rng.uniform(1, 100, 100), strict=True)]
        asks = [(p0 * (1 + k * 1e-4), float(q)) for k, q in zip(depth, rng.uniform(1, 100, 100), strict=True)]
        n_levels = rng.integers(1, 5, diffs)
        is_bid = rng.random(n_levels.sum()) < 0.5
        ticks = rng.integers(1, 51, n_levels.sum())
        prices = np.where(is_bid, p0 * (1 - ticks * 1e-4), p0 * (1 + ticks * 1e-4))
        qtys = np.where(rng.random(n_levels.sum()) < 0.3, 0.0, rng.uniform(1, 100, n_levels.sum()))
        n_bids, n_asks, rows, k = [], [], [], 0
        for n in n_levels:
            chunk = range(k, k + n)
            b = [(prices[j], qtys[j]) for j in chunk if is_bid[j]]
            a = [(prices[j], qtys[j]) for j in chunk if not is_bid[j]]
            n_bids.append(len(b))
            n_asks.append(len(a))
            rows += b + a
            k += n
        versions = SNAPSHOT_ID + 1 + np.arange(diffs, dtype=np.uint64)
        n_trades = 2 * seconds
        out.append(
            PairInput(
                bids=bids,
                asks=asks,
                from_v=versions,
                to_v=versions.copy(),
                n_bids=np.array(n_bids, dtype=np.int32),
                n_asks=np.array(n_asks, dtype=np.int32),
                levels=np.array(rows, dtype=np.float64).reshape(-1, 2),
                price=p0 * (1 + rng.normal(0, 1e-3, n_trades)),
                qty=rng.exponential(10.0, n_trades),
                side=rng.integers(1, 3, n_trades).astype(np.int32),
                time_ms=np.sort(T0 + rng.integers(0, seconds * 1000, n_trades)).astype(np.int64),
            )
        )
    return out


def _fresh_books(inputs: list[PairInput], make: Any) -> list[Any]:
    books = []
    for p in inputs:
        book = make()
        book.apply_snapshot(SNAPSHOT_ID, p.bids, p.asks)
        books.append(book)
    return books


def _timed(fn: Any) -> float:
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        fn()
        return float(time.perf_counter_ns() - t0)
    finally:
        gc.enable()


def run_state_bench(n_pairs: int = 3000, ref_pairs: int = 300, repeat: int = 3) -> dict[str, Any]:
    """ns per operation for the compiled state and its plain-Python twin; see the module docstring."""
    ref_pairs = min(ref_pairs, n_pairs)
    inputs = make_inputs(n_pairs)
    ref_inputs = inputs[:ref_pairs]
    n_diffs = sum(len(p.from_v) for p in inputs)
    n_ref_diffs = sum(len(p.from_v) for p in ref_inputs)
    n_trades = sum(len(p.price) for p in inputs)
    n_ref_trades = sum(len(p.price) for p in ref_inputs)
    runs: dict[str, list[float]] = {k: [] for k in ("book_diff", "book_diff_def", "book_diff_reference", "trade",
                                                    "trade_reference", "close_and_row", "close_and_row_reference")}  # fmt: skip
    ref_diff_lists = [p.diff_lists() for p in ref_inputs]
    all_diff_lists = [p.diff_lists() for p in inputs]
    seconds = 60
    listing = np.full(n_pairs, T0 - 86_400_000, dtype=np.int64)
    ids = np.arange(n_pairs, dtype=np.uint32)
    for _ in range(repeat):
        books = _fresh_books(inputs, OrderBook)

        def c_diffs(books: list = books) -> None:
            for book, p in zip(books, inputs, strict=True):
                book.replay_diffs(p.from_v, p.to_v, p.n_bids, p.n_asks, p.levels)

        runs["book_diff"].append(_timed(c_diffs) / n_diffs)
        books_def = _fresh_books(inputs, OrderBook)

        def def_diffs(books: list = books_def) -> None:
            for book, diffs in zip(books, all_diff_lists, strict=True):
                for d in diffs:
                    book.apply_diff(*d)

        runs["book_diff_def"].append(_timed(def_diffs) / n_diffs)
        assert all(a.levels() == b.levels() for a, b in zip(books, books_def, strict=True))
        ref_books = _fresh_books(ref_inputs, ReferenceBook)

        def ref_diffs(books: list = ref_books) -> None:
            for book, diffs in zip(books, ref_diff_lists, strict=True):
                for d in diffs:
                    book.apply_diff(*d)

        runs["book_diff_reference"].append(_timed(ref_diffs) / n_ref_diffs)

        wins = [TradeWindows() for _ in inputs]

        def c_trades(wins: list = wins) -> None:
            for win, p in zip(wins, inputs, strict=True):
                win.replay_trades(p.price, p.qty, p.side, p.time_ms)

        runs["trade"].append(_timed(c_trades) / n_trades)
        ref_wins = [ReferenceWindows() for _ in ref_inputs]
        ref_trade_lists = [
            list(zip(p.price.tolist(), p.qty.tolist(), p.side.tolist(), p.time_ms.tolist(), strict=True))
            for p in ref_inputs
        ]

        def ref_trades(wins: list = ref_wins, lists: list = ref_trade_lists) -> None:
            for win, trades in zip(wins, lists, strict=True):
                for t in trades:
                    win.on_trade(*t)

        runs["trade_reference"].append(_timed(ref_trades) / n_ref_trades)

        start = T0 + 301_000
        out = np.zeros(n_pairs, dtype=FEATURE_ROW_DTYPE)
        advance_all(wins, start)

        def c_rows(wins: list = wins, books: list = books, start: int = start, out: np.ndarray = out) -> None:
            for s in range(1, seconds + 1):
                advance_all(wins, start + s * 1000)
                fill_rows(books, wins, start + s * 1000, listing, ids, out)

        runs["close_and_row"].append(_timed(c_rows) / (n_pairs * seconds))
        for win in ref_wins:
            win.advance(start)

        def ref_rows(wins: list = ref_wins, books: list = ref_books, start: int = start) -> None:
            for s in range(1, seconds + 1):
                for win, book in zip(wins, books, strict=True):
                    win.advance(start + s * 1000)
                    ref_compute_row(book, win, start + s * 1000, T0 - 86_400_000)

        runs["close_and_row_reference"].append(_timed(ref_rows) / (ref_pairs * seconds))

    med = {k: statistics.median(v) for k, v in runs.items()}
    return {
        "pairs": n_pairs,
        "reference_pairs": ref_pairs,
        "diffs": n_diffs,
        "trades": n_trades,
        "row_seconds": seconds,
        "ns_per_op": runs,
        "median_ns_per_op": med,
        "reference_over_compiled": {
            "book_diff": med["book_diff_reference"] / med["book_diff"],
            "trade": med["trade_reference"] / med["trade"],
            "close_and_row": med["close_and_row_reference"] / med["close_and_row"],
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3000)
    parser.add_argument("--ref-pairs", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    result = run_state_bench(args.pairs, args.ref_pairs, args.repeat)
    result["python"] = sys.version.split()[0]
    result["when"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    text = json.dumps(result, indent=2)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text)
    print(text)
    med = result["median_ns_per_op"]
    print(f"\n{'operation':<26}{'compiled ns':>12}{'twin ns':>12}{'twin / compiled':>17}")
    for name in ("book_diff", "trade", "close_and_row"):
        print(
            f"{name:<26}{med[name]:>12.0f}{med[name + '_reference']:>12.0f}{result['reference_over_compiled'][name]:>17.1f}"
        )
    print(f"{'book_diff via apply_diff':<26}{med['book_diff_def']:>12.0f}")
    print(f"\n{result['pairs']} pairs ({result['reference_pairs']} for the twin), {result['diffs']} diffs, "
          f"{result['trades']} deals, {result['row_seconds']} s of bar closes + rows")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
