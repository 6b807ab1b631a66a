"""Replay of recorded trades (Parquet) through the same interface as the generated market.

Dump format: columns ts_ms int64, symbol string, price float64, qty float64, side int8 (1 taker
buy, 2 taker sell). Exchange time starts at the first trade and frames carry the recorded times,
so a consumer driven by exchange time sees the same market at any --speed.

Book model (the dump has no depth): after every trade the pair's book is centred on the trade
price with a fixed relative spread (2 bps) and LEVELS levels per side whose sizes thin away from
the touch (scaled to the pair's median trade size); each 100 ms window's level changes are one
depth update with contiguous versions, like the generator's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.market import MINUTE_MS, STEP_MS, DepthChange, PairUpdate, SymbolSpec, Trade

LEVELS = 20
SPREAD = 2e-4
_INTERVAL_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "60m": 3_600_000, "4h": 14_400_000, "1d": 86_400_000,
                "1W": 604_800_000, "1M": 2_592_000_000}  # fmt: skip


class ReplayError(ValueError):
    """The dump is missing, unreadable or has the wrong columns."""


@dataclass
class _State:
    spec: SymbolSpec
    unit: float
    last_price: float = math.nan
    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    version: int = 0
    minutes: dict[int, list[float]] = field(default_factory=dict)


class ReplayMarket:
    """Market interface over a recorded dump (see sim/market.py for the methods' contracts)."""

    def __init__(self, path: str | Path, seed: int = 0) -> None:
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (OSError, ValueError) as exc:
            raise ReplayError(f"{path}: cannot read Parquet dump ({exc})") from None
        want = {"ts_ms": "int64", "symbol": "string", "price": "double", "qty": "double", "side": "int8"}
        for name, kind in want.items():
            if name not in table.column_names:
                raise ReplayError(f"{path}: column {name!r} missing (expected {', '.join(want)})")
            if str(table.schema.field(name).type) not in (kind, "large_string" if kind == "string" else kind):
                raise ReplayError(f"{path}: column {name!r} is {table.schema.field(name).type}, expected {kind}")
        if table.num_rows == 0:
            raise ReplayError(f"{path}: the dump has no trades")
        ts = table.column("ts_ms").to_numpy()
        order = np.argsort(ts, kind="stable")
        self.ts = ts[order]
        self.sym = np.asarray(table.column("symbol").to_pylist(), dtype=object)[order]
        self.price = table.column("price").to_numpy()[order]
        self.qty = table.column("qty").to_numpy()[order]
        self.side = table.column("side").to_numpy()[order]
        if np.any((self.side != 1) & (self.side != 2)):
            raise ReplayError(f"{path}: side must be 1 (taker buy) or 2 (taker sell)")
        self._pos = 0
        self._now = int(self.ts[0]) - 1
        self._now -= self._now % STEP_MS
        self.symbols: list[SymbolSpec] = []
        self._states: dict[str, _State] = {}
        for name in sorted(set(self.sym.tolist())):
            mask = self.sym == name
            first = int(self.ts[mask][0])
            p = float(np.median(self.price[mask]))
            decimals = max(0, min(12, int(math.ceil(-math.log10(p * 1e-5))))) if p > 0 else 8
            spec = SymbolSpec(name, name[:-4] if name.endswith("USDT") else name, "USDT" if name.endswith("USDT") else "BTC", "1", True, True,
                              first, decimals, 8, 5.0, float(mask.sum()) / max(1.0, (self.ts[mask][-1] - first) / 1000))  # fmt: skip
            self.symbols.append(spec)
            self._states[name] = _State(spec, float(np.median(self.qty[mask])))

    def spec(self, symbol: str) -> SymbolSpec | None:
        st = self._states.get(symbol)
        return st.spec if st else None

    def now_ms(self) -> int:
        return self._now

    def _rebook(self, st: _State, price: float, changed_b: dict[float, float], changed_a: dict[float, float]) -> None:
        tick = 10.0 ** -st.spec.price_decimals
        bid0 = math.floor(price * (1 - SPREAD / 2) / tick) * tick
        ask0 = max(math.ceil(price * (1 + SPREAD / 2) / tick) * tick, bid0 + tick)
        new_b = {round(bid0 - k * tick, st.spec.price_decimals): round(st.unit * (2 + k * 0.5), 8) for k in range(LEVELS)}
        new_a = {round(ask0 + k * tick, st.spec.price_decimals): round(st.unit * (2 + k * 0.5), 8) for k in range(LEVELS)}
        for old, new, changed in ((st.bids, new_b, changed_b), (st.asks, new_a, changed_a)):
            for p in set(old) | set(new):
                if old.get(p) != new.get(p):
                    changed[p] = new.get(p, 0.0)
            old.clear()
            old.update(new)

    def advance(self, to_ms: int) -> list[PairUpdate]:
        out: list[PairUpdate] = []
        while self._now + STEP_MS <= to_ms:
            end = self._now + STEP_MS
            stop = int(np.searchsorted(self.ts, end, side="left"))
            by_symbol: dict[str, list[Trade]] = {}
            for i in range(self._pos, stop):
                by_symbol.setdefault(self.sym[i], []).append(Trade(float(self.price[i]), float(self.qty[i]), int(self.side[i]), int(self.ts[i])))
            self._pos = stop
            for name in sorted(by_symbol):
                st = self._states[name]
                changed_b: dict[float, float] = {}
                changed_a: dict[float, float] = {}
                for t in by_symbol[name]:
                    st.last_price = t.price
                    minute = t.time_ms - t.time_ms % MINUTE_MS
                    bar = st.minutes.setdefault(minute, [t.price, t.price, t.price, t.price, 0.0, 0.0])
                    bar[1], bar[2], bar[3] = max(bar[1], t.price), min(bar[2], t.price), t.price
                    bar[4] += t.qty
                    bar[5] += t.qty * t.price
                self._rebook(st, st.last_price, changed_b, changed_a)
                depth = None
                if changed_b or changed_a:
                    n = len(changed_b) + len(changed_a)
                    depth = DepthChange(st.version + 1, st.version + n, sorted(changed_b.items(), reverse=True), sorted(changed_a.items()))
                    st.version += n
                out.append(PairUpdate(name, end, by_symbol[name], depth))
            self._now = end
        return out

    def _state(self, symbol: str) -> _State:
        st = self._states.get(symbol)
        if st is None:
            raise KeyError(symbol)
        return st

    def depth_snapshot(self, symbol: str, limit: int) -> tuple[int, list[tuple[float, float]], list[tuple[float, float]]]:
        st = self._state(symbol)
        return st.version, sorted(st.bids.items(), reverse=True)[:limit], sorted(st.asks.items())[:limit]

    def best_bid_ask(self, symbol: str) -> tuple[float, float, float, float]:
        st = self._state(symbol)
        if not st.bids:
            p = self.last_price(symbol)
            return p, 0.0, p, 0.0
        b, a = max(st.bids), min(st.asks)
        return b, st.bids[b], a, st.asks[a]

    def last_price(self, symbol: str) -> float:
        st = self._state(symbol)
        if math.isnan(st.last_price):
            return float(self.price[np.argmax(self.sym == symbol)])
        return st.last_price

    def fmt_price(self, symbol: str, value: float) -> str:
        return f"{value:.{self._state(symbol).spec.price_decimals}f}"

    def fmt_qty(self, symbol: str, value: float) -> str:
        return f"{value:.8f}".rstrip("0").rstrip(".") or "0"

    def set_ticker_override(self, symbol: str, quote_volume: float | None) -> None:
        self._state(symbol)

    def klines(self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int) -> list[list]:
        if interval not in _INTERVAL_MS:
            raise ValueError(f"invalid interval {interval!r}")
        st, width = self._state(symbol), _INTERVAL_MS[interval]
        end_ms = self._now if end_ms is None or end_ms > self._now else end_ms
        buckets: dict[int, list[float]] = {}
        for minute in sorted(st.minutes):
            if minute > end_ms or (start_ms is not None and minute < start_ms - start_ms % width):
                continue
            o, h, lo, c, v, q = st.minutes[minute]
            b = buckets.get(minute - minute % width)
            if b is None:
                buckets[minute - minute % width] = [o, h, lo, c, v, q]
            else:
                b[1], b[2], b[3], b[4], b[5] = max(b[1], h), min(b[2], lo), c, b[4] + v, b[5] + q
        rows = [[t, self.fmt_price(symbol, b[0]), self.fmt_price(symbol, b[1]), self.fmt_price(symbol, b[2]), self.fmt_price(symbol, b[3]),
                 f"{b[4]:.8f}", t + width - 1, f"{b[5]:.8f}"] for t, b in sorted(buckets.items())]  # fmt: skip
        return rows[:limit] if start_ms is not None else rows[-limit:]

    def ticker_24h(self, symbol: str) -> dict:
        st = self._state(symbol)
        qv = sum(b[5] for m, b in st.minutes.items() if m > self._now - 86_400_000)
        p = self.last_price(symbol)
        return {"symbol": symbol, "lastPrice": self.fmt_price(symbol, p), "quoteVolume": f"{qv:.8f}", "volume": f"{qv / p if p else 0:.8f}",
                "priceChangePercent": "0", "openTime": self._now - 86_400_000, "closeTime": self._now, "count": None}  # fmt: skip
