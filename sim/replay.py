"""Replay of recorded trades (Parquet) through the same interface as the generated market.

Dump format: columns ts_ms int64, symbol string, price float64, qty float64, side int8 (1 taker
buy, 2 taker sell). Exchange time starts just before the first trade (now_ms() == first ts - 1)
and frames carry the recorded times, so a consumer driven by exchange time sees the same market
at any --speed. advance(to_ms) delivers every trade with ts <= to_ms exactly once; trades are
grouped per 100 ms window on a grid anchored at the first trade (a call that ends inside a window
closes it early, so grouping may follow the chunking but the trade sequence never does).

Book model (the dump has no depth; an optional depth table is not supported): after each window
with trades the pair's book is rebuilt around its last trade price with a fixed relative spread
(SPREAD) and LEVELS levels per side whose sizes grow geometrically away from the touch, scaled to
the pair's median trade; the levels that changed are one DepthChange with contiguous versions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.klines import KLINE_INTERVALS, MINUTE_MS, bucket_opens, next_open
from sim.universe import SymbolSpec
from sim.updates import STEP_MS, DepthChange, PairUpdate, Trade

LEVELS = 50
SPREAD = 4e-4  # relative, bid to ask
GROWTH = 1.06  # size ratio of neighbouring levels
_QUOTES = ("USDT", "USDC", "BTC", "ETH")


class ReplayError(ValueError):
    """The dump is missing, unreadable or has the wrong columns or values."""


@dataclass
class _State:
    spec: SymbolSpec
    unit: float
    first_price: float
    last_price: float = math.nan
    last_qty: float = 0.0
    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    version: int = 1
    minutes: dict[int, list[float]] = field(default_factory=dict)  # minute -> o, h, l, c, v, qv, n
    override: float | None = None


class ReplayMarket:
    """Market interface over a recorded dump (see sim/market.py for the methods' contracts)."""

    def __init__(self, path: str | Path, seed: int = 0, book: bool = True) -> None:
        """book=False: no depth changes in the updates (the book keeps its first snapshot); for
        drivers that never feed depth (replay/lockstep.py), where rebuilding it was 2/3 of the cost."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        self.seed = seed
        self.book = book
        try:
            table = pq.read_table(path)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise ReplayError(f"{path}: cannot read Parquet dump ({exc})") from None
        want = {"ts_ms": ("int64",), "symbol": ("string", "large_string"), "price": ("double",), "qty": ("double",), "side": ("int8",)}
        for name, kinds in want.items():
            if name not in table.column_names:
                raise ReplayError(f"{path}: column {name!r} missing (expected {', '.join(want)})")
            got = str(table.schema.field(name).type)
            if got not in kinds:
                raise ReplayError(f"{path}: column {name!r} is {got}, expected {kinds[0]}")
            if table.column(name).null_count:
                raise ReplayError(f"{path}: column {name!r} has nulls")
        if table.num_rows == 0:
            raise ReplayError(f"{path}: the dump has no trades")
        ts = table.column("ts_ms").to_numpy()
        order = np.argsort(ts, kind="stable")
        self._ts = ts[order]
        encoded = pc.dictionary_encode(table.column("symbol")).combine_chunks()
        names = encoded.dictionary.to_pylist()
        self._sym = encoded.indices.to_numpy().astype(np.int64)[order]
        self._price = table.column("price").to_numpy()[order]
        self._qty = table.column("qty").to_numpy()[order]
        self._side = table.column("side").to_numpy()[order]
        if np.any((self._side != 1) & (self._side != 2)):
            raise ReplayError(f"{path}: side must be 1 (taker buy) or 2 (taker sell)")
        if not np.all(np.isfinite(self._price) & (self._price > 0)) or not np.all(np.isfinite(self._qty) & (self._qty > 0)):
            raise ReplayError(f"{path}: price and qty must be finite and > 0")
        self._pos = 0
        self._now = int(self._ts[0]) - 1
        self._grid = self._now  # windows end at grid + k * STEP_MS
        self._names = names
        self._states: list[_State] = []
        for k, name in enumerate(names):
            mask = self._sym == k
            first = int(self._ts[mask][0])
            prices, qtys = self._price[mask], self._qty[mask]
            ref = float(np.median(prices))
            decimals = max(0, min(12, math.ceil(-math.log10(ref * 1e-5))))
            quote = next((q for q in _QUOTES if name.endswith(q) and len(name) > len(q)), "USDT")
            base = name[: -len(quote)] if name.endswith(quote) and len(name) > len(quote) else name
            span_s = max(1.0, (float(self._ts[mask][-1]) - first) / 1000.0)
            spec = SymbolSpec(name, base, quote, "1", True, True, first, decimals, 8, 5.0, float(mask.sum()) / span_s)
            st = _State(spec, float(np.median(qtys)), float(prices[0]))
            self._rebook(st, st.first_price, {}, {})  # a book from the start, so a snapshot is never empty
            self._states.append(st)
        self._by_symbol = {name: self._states[k] for k, name in enumerate(names)}
        self.symbols: list[SymbolSpec] = sorted((s.spec for s in self._states), key=lambda s: s.symbol)

    # --- interface ---------------------------------------------------------------------------------

    def trade_seconds(self) -> list[int]:
        """Every exchange second (ts_ms // 1000) that holds a trade, ascending.

        Why public: a lock-step driver (replay/lockstep.py) visits only these seconds and skips
        idle exchange time, which advance() alone cannot tell it.
        """
        return np.unique(self._ts // 1000).tolist()

    def spec(self, symbol: str) -> SymbolSpec | None:
        st = self._by_symbol.get(symbol)
        return st.spec if st else None

    def now_ms(self) -> int:
        return self._now

    def advance(self, to_ms: int) -> list[PairUpdate]:
        out: list[PairUpdate] = []
        while self._now < to_ms:
            if self._pos >= len(self._ts) or self._ts[self._pos] > to_ms:
                self._now = to_ms  # nothing to deliver up to to_ms: jump, however far
                break
            # The grid window (grid + (k-1) STEP, grid + k STEP] holding the next trade.
            k = -(-(int(self._ts[self._pos]) - self._grid) // STEP_MS)
            end = min(self._grid + k * STEP_MS, to_ms)
            stop = int(np.searchsorted(self._ts, end, side="right"))
            out.extend(self._window(self._pos, stop, end))
            self._pos = stop
            self._now = end
        return out

    def depth_snapshot(self, symbol: str, limit: int) -> tuple[int, list[tuple[float, float]], list[tuple[float, float]]]:
        st = self._state(symbol)
        n = max(0, limit)
        return st.version, sorted(st.bids.items(), reverse=True)[:n], sorted(st.asks.items())[:n]

    def best_bid_ask(self, symbol: str) -> tuple[float, float, float, float]:
        st = self._state(symbol)
        b, a = max(st.bids), min(st.asks)
        return b, st.bids[b], a, st.asks[a]

    def last_price(self, symbol: str) -> float:
        st = self._state(symbol)
        return st.first_price if math.isnan(st.last_price) else st.last_price

    def fmt_price(self, symbol: str, value: float) -> str:
        return f"{value:.{self._state(symbol).spec.price_decimals}f}"

    def fmt_qty(self, symbol: str, value: float) -> str:
        return f"{value:.8f}"

    def set_ticker_override(self, symbol: str, quote_volume: float | None) -> None:
        self._state(symbol).override = quote_volume

    def klines(self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int) -> list[list]:
        if interval not in KLINE_INTERVALS:
            raise ValueError(f"invalid interval {interval!r} (valid: {', '.join(KLINE_INTERVALS)})")
        st = self._state(symbol)
        limit = max(1, min(int(limit), 1000))
        opens = bucket_opens(interval, start_ms, end_ms, self._now, st.spec.listing_ms, limit)
        rows: list[list] = []
        prev: float | None = None
        fp = self.fmt_price
        for t in opens:
            t_end = next_open(interval, t)
            bars = [st.minutes[m] for m in sorted(st.minutes) if t <= m * MINUTE_MS < t_end]
            if bars:
                o, h, lo, c = bars[0][0], max(b[1] for b in bars), min(b[2] for b in bars), bars[-1][3]
                v, q = sum(b[4] for b in bars), sum(b[5] for b in bars)
            else:
                if prev is None:
                    before = [m for m in st.minutes if m * MINUTE_MS < t]
                    prev = st.minutes[max(before)][3] if before else st.first_price
                o = h = lo = c = prev
                v = q = 0.0
            prev = c
            rows.append([t, fp(symbol, o), fp(symbol, h), fp(symbol, lo), fp(symbol, c), f"{v:.8f}", t_end - 1, f"{q:.8f}"])
        return rows

    def ticker_24h(self, symbol: str) -> dict:
        st = self._state(symbol)
        first = self._now // MINUTE_MS - 1439
        bars = [st.minutes[m] for m in sorted(st.minutes) if m >= first]
        last = self.last_price(symbol)
        v = sum(b[4] for b in bars)
        qv = sum(b[5] for b in bars)
        if st.override is not None:
            qv, v = st.override, st.override / last
        open_ = bars[0][0] if bars else last
        bid, bq, ask, aq = self.best_bid_ask(symbol)
        fp, fq = self.fmt_price, self.fmt_qty
        return {
            "symbol": symbol,
            "priceChange": fp(symbol, last - open_),
            "priceChangePercent": f"{(last - open_) / open_:.8f}",
            "prevClosePrice": fp(symbol, open_),
            "lastPrice": fp(symbol, last),
            "lastQty": fq(symbol, st.last_qty),
            "bidPrice": fp(symbol, bid),
            "bidQty": fq(symbol, bq),
            "askPrice": fp(symbol, ask),
            "askQty": fq(symbol, aq),
            "openPrice": fp(symbol, open_),
            "highPrice": fp(symbol, max([b[1] for b in bars] + [last])),
            "lowPrice": fp(symbol, min([b[2] for b in bars] + [last])),
            "volume": fq(symbol, v),
            "quoteVolume": f"{qv:.8f}",
            "openTime": first * MINUTE_MS,
            "closeTime": self._now,
            "count": int(sum(b[6] for b in bars)),
        }

    # --- internals ---------------------------------------------------------------------------------

    def _state(self, symbol: str) -> _State:
        st = self._by_symbol.get(symbol)
        if st is None:
            raise KeyError(symbol)
        return st

    def _window(self, lo: int, hi: int, end: int) -> list[PairUpdate]:
        by_pair: dict[int, list[Trade]] = {}
        for sym, ts, price, qty, side in zip(self._sym[lo:hi].tolist(), self._ts[lo:hi].tolist(), self._price[lo:hi].tolist(),
                                             self._qty[lo:hi].tolist(), self._side[lo:hi].tolist(), strict=True):  # fmt: skip
            by_pair.setdefault(sym, []).append(Trade(price, qty, side, ts))
        out: list[PairUpdate] = []
        for k in sorted(by_pair, key=lambda k: self._names[k]):
            st, trades = self._states[k], by_pair[k]
            for t in trades:
                minute = t.time_ms // MINUTE_MS
                bar = st.minutes.get(minute)
                if bar is None:
                    bar = st.minutes[minute] = [t.price, t.price, t.price, t.price, 0.0, 0.0, 0]
                bar[1], bar[2], bar[3] = max(bar[1], t.price), min(bar[2], t.price), t.price
                bar[4] += t.qty
                bar[5] += t.qty * t.price
                bar[6] += 1
            st.last_price, st.last_qty = trades[-1].price, trades[-1].qty
            ch_b: dict[float, float] = {}
            ch_a: dict[float, float] = {}
            if self.book:
                self._rebook(st, st.last_price, ch_b, ch_a)
            depth = None
            if ch_b or ch_a:
                n = len(ch_b) + len(ch_a)
                depth = DepthChange(st.version + 1, st.version + n, sorted(ch_b.items(), reverse=True), sorted(ch_a.items()))
                st.version += n
            out.append(PairUpdate(st.spec.symbol, end, trades, depth))
        return out

    @staticmethod
    def _rebook(st: _State, price: float, ch_b: dict[float, float], ch_a: dict[float, float]) -> None:
        """Centre the book on `price`: fixed relative spread, geometric sizes; note what changed."""
        dec = st.spec.price_decimals
        tick = 10.0**-dec
        bid0 = math.floor(price * (1 - SPREAD / 2) / tick)
        ask0 = max(math.ceil(price * (1 + SPREAD / 2) / tick), bid0 + 1)
        new_b = {round((bid0 - k) * tick, dec): round(st.unit * 2 * GROWTH**k, 8) for k in range(min(LEVELS, bid0))}
        new_a = {round((ask0 + k) * tick, dec): round(st.unit * 2 * GROWTH**k, 8) for k in range(LEVELS)}
        for old, new, changed in ((st.bids, new_b, ch_b), (st.asks, new_a, ch_a)):
            for p in old.keys() | new.keys():
                if old.get(p) != new.get(p):
                    changed[p] = new.get(p, 0.0)
            old.clear()
            old.update(new)
