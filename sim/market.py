"""The emulator's generated market: thousands of pairs stepped in 100 ms windows, deterministic from a seed.

Why fixed 100 ms steps with a per-step RNG seeded by (seed, step index): the server advances the
market from wall time, and wall time is never the same twice. Deriving each step's randomness from
its index makes the generated market identical for a seed however advance() calls are chunked.

Why vectorised per step: with 3,000 pairs most pairs do nothing in most steps. One NumPy draw
decides which pairs trade or see a maker update; only those pairs cost Python work.

This module is the market's interface (the one sim/replay.py's ReplayMarket also offers) and its
step loop; each concern behind it has a module of its own: which pairs exist (sim/universe.py),
the book model (sim/book.py), scripted episodes (sim/episodes.py), live minute bars
(sim/livebars.py), synthetic history before start (sim/history.py) and kline buckets
(sim/klines.py).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from sim.book import Pair, pair_step
from sim.cross import CrossMarkets, build_cross
from sim.episodes import EpisodeScript
from sim.history import BLOCK_MS, SyntheticHistory
from sim.klines import DAY_MINUTES, INTERVAL_MS, KLINE_INTERVALS, MINUTE_MS, bucket_opens, next_open
from sim.livebars import LiveBars
from sim.universe import MAKER_FLOOR, MAKER_PER_TRADE, SymbolSpec, _new_pair, build_pairs
from sim.updates import STEP_MS, PairUpdate

if TYPE_CHECKING:
    from sim.scenario import Scenario


class Market:
    """Deterministic simulated exchange state; see the module docstring."""

    def __init__(self, pairs: int, seed: int, start_ms: int, scenario: Scenario | None = None, rate: float | None = None) -> None:
        if not isinstance(pairs, int) or pairs < 1:
            raise ValueError(f"pairs must be an integer >= 1, got {pairs!r}")
        if rate is not None and not rate > 0:
            raise ValueError(f"rate must be > 0 frames/s, got {rate!r}")
        self.seed = seed
        self.start_ms = start_ms - start_ms % STEP_MS
        self._now_ms = self.start_ms
        self._step = 0
        self.scenario = scenario
        self._start_min = self.start_ms // MINUTE_MS
        self._pairs = build_pairs(pairs, seed, self.start_ms, rate, scenario)
        self._cross: CrossMarkets | None = None
        if scenario is not None and scenario.cross:  # cross-quote pairs for triangles (sim/cross.py), appended last
            extra, links = build_cross(self._pairs, scenario.cross, seed, _new_pair)
            self._pairs += extra
            self._cross = CrossMarkets(self._pairs, links, scenario.dislocations, seed)
        self.symbols: list[SymbolSpec] = [p.spec for p in self._pairs]
        self._by_symbol = {p.spec.symbol: p for p in self._pairs}
        self._lam = np.array([p.spec.activity for p in self._pairs]) * STEP_MS / 1000.0
        self._maker_p = np.minimum(0.5, MAKER_PER_TRADE * self._lam + MAKER_FLOOR)
        self._script = EpisodeScript([])
        if scenario is not None:
            scenario.resolve([p.spec.symbol for p in self._pairs])
            self._script = EpisodeScript(list(scenario.episodes))
        self._live = LiveBars(len(self._pairs), self._start_min)
        self._history = SyntheticHistory(self.start_ms)
        self._override: dict[str, float] = {}

    # --- interface ---------------------------------------------------------------------------------

    def spec(self, symbol: str) -> SymbolSpec | None:
        """The pair as exchangeInfo lists it; None for a symbol the market does not have."""
        pair = self._by_symbol.get(symbol)
        return pair.spec if pair else None

    def now_ms(self) -> int:
        """Exchange time: the end of the last step taken."""
        return self._now_ms

    def advance(self, to_ms: int) -> list[PairUpdate]:
        """Step up to exchange time to_ms; every pair's update of every window, in time order."""
        out: list[PairUpdate] = []
        while self._now_ms + STEP_MS <= to_ms:
            out.extend(self._run_step())
        return out

    def depth_snapshot(self, symbol: str, limit: int) -> tuple[int, list[tuple[float, float]], list[tuple[float, float]]]:
        """(last depth version, top `limit` bids best first, asks best first), as REST depth returns it."""
        p = self._pair(symbol)
        tick, dec = p.tick, p.dec
        bids = [(round((p.bid_top - j) * tick, dec), q) for j, q in enumerate(list(p.bids)[: max(0, limit)])]
        asks = [(round((p.ask_top + j) * tick, dec), q) for j, q in enumerate(list(p.asks)[: max(0, limit)])]
        return p.version, bids, asks

    def best_bid_ask(self, symbol: str) -> tuple[float, float, float, float]:
        """(bid price, bid size, ask price, ask size) at the touch."""
        p = self._pair(symbol)
        return round(p.bid_top * p.tick, p.dec), p.bids[0], round(p.ask_top * p.tick, p.dec), p.asks[0]

    def last_price(self, symbol: str) -> float:
        """The last trade's price (before any trade: the start price)."""
        return self._pair(symbol).last_price

    def fmt_price(self, symbol: str, value: float) -> str:
        """A price as MEXC writes it: a string at the pair's price precision."""
        return f"{value:.{self._pair(symbol).dec}f}"

    def fmt_qty(self, symbol: str, value: float) -> str:
        """A quantity as MEXC writes it: a string at the pair's quantity precision."""
        return f"{value:.{self._pair(symbol).qdec}f}"

    def set_ticker_override(self, symbol: str, quote_volume: float | None) -> None:
        """Pin ticker/24hr's quoteVolume (volume follows) for scout tests; None clears it."""
        self._pair(symbol)
        if quote_volume is None:
            self._override.pop(symbol, None)
        else:
            self._override[symbol] = float(quote_volume)

    def klines(self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int) -> list[list]:
        """REST klines rows (open time, o, h, l, c, volume, close time, quote volume) as MEXC answers them."""
        if interval not in INTERVAL_MS:
            raise ValueError(f"invalid interval {interval!r} (valid: {', '.join(KLINE_INTERVALS)})")
        p = self._pair(symbol)
        limit = max(1, min(int(limit), 1000))
        opens = bucket_opens(interval, start_ms, end_ms, self._now_ms, p.spec.listing_ms, limit)
        if not opens:
            return []
        bounds = [*opens, next_open(interval, opens[-1])]
        rows = self._aggregate(p, bounds, coarse=INTERVAL_MS[interval] == 0 or INTERVAL_MS[interval] >= 3_600_000)
        fp = self.fmt_price
        return [[bounds[k], fp(symbol, o), fp(symbol, h), fp(symbol, lo), fp(symbol, c), f"{v:.{p.qdec}f}", bounds[k + 1] - 1,
                 f"{q:.4f}"] for k, (o, h, lo, c, v, q, _n) in enumerate(rows)]  # fmt: skip

    def ticker_24h(self, symbol: str) -> dict:
        """The ticker/24hr body over the last 1,440 minutes, history before start included."""
        p = self._pair(symbol)
        first_min = self._live.minute - (DAY_MINUTES - 1)
        v, qv, n, hi, lo, open_ = self._live.day_window(p.index, first_min, self._history.day_window(p, first_min))
        last = p.last_price
        if math.isnan(open_):
            open_ = last
        if not math.isfinite(hi):
            hi = lo = last
        if symbol in self._override:
            qv = self._override[symbol]
            v = qv / max(last, 1e-18)
        bid, bid_qty, ask, ask_qty = self.best_bid_ask(symbol)
        fp, fq = self.fmt_price, self.fmt_qty
        return {
            "symbol": symbol,
            "priceChange": fp(symbol, last - open_),
            "priceChangePercent": f"{(last - open_) / open_:.8f}" if open_ else "0",
            "prevClosePrice": fp(symbol, open_),
            "lastPrice": fp(symbol, last),
            "lastQty": fq(symbol, p.last_qty),
            "bidPrice": fp(symbol, bid),
            "bidQty": fq(symbol, bid_qty),
            "askPrice": fp(symbol, ask),
            "askQty": fq(symbol, ask_qty),
            "openPrice": fp(symbol, open_),
            "highPrice": fp(symbol, max(hi, last)),
            "lowPrice": fp(symbol, min(lo, last)),
            "volume": fq(symbol, v),
            "quoteVolume": f"{qv:.4f}",
            "openTime": first_min * MINUTE_MS,
            "closeTime": self._now_ms,
            "count": int(n),
        }

    # --- the step ----------------------------------------------------------------------------------

    def _pair(self, symbol: str) -> Pair:
        pair = self._by_symbol.get(symbol)
        if pair is None:
            raise KeyError(symbol)
        return pair

    def _run_step(self) -> list[PairUpdate]:
        step_start = self._now_ms
        step_end = step_start + STEP_MS
        minute = step_start // MINUTE_MS
        if minute != self._live.minute:
            self._live.close_minute(minute)
        rng = np.random.default_rng([self.seed, 3, self._step])
        self._step += 1
        mods = self._script.mods((step_start - self.start_ms) / 1000.0, self._pairs) if self._script.episodes else {}
        lam, maker = self._lam, self._maker_p
        forced: list[int] = []
        if mods:
            lam, maker = lam.copy(), maker.copy()
            for i, m in mods.items():
                if m.quiet:
                    lam[i] = maker[i] = 0.0
                else:
                    lam[i] = min(lam[i] * m.mult, 30.0)
                    maker[i] = min(0.9, maker[i] * m.mult)
                    if m.force:
                        forced.append(i)
        n_tr = rng.poisson(lam)
        mk = rng.random(len(lam)) < maker
        hit = (n_tr > 0) | mk
        if forced:
            hit[forced] = True
        active = np.flatnonzero(hit)
        if len(active) == 0:
            self._now_ms = step_end
            return self._cross.step(self._step, (step_start - self.start_ms) / 1000.0, step_end) if self._cross else []
        counts = n_tr[active]
        need = 3 * counts + 4
        uniforms = rng.random(int(need.sum())).tolist()
        updates: list[PairUpdate] = []
        off = 0
        for i, k, want in zip(active.tolist(), counts.tolist(), need.tolist(), strict=True):
            u = uniforms[off : off + want]
            off += want
            p = self._pairs[i]
            trades, depth = pair_step(p, k, u, bool(mk[i]), mods.get(i), step_start)
            if trades:
                self._live.record(i, trades)
            if trades or depth is not None:
                updates.append(PairUpdate(p.spec.symbol, step_end, trades, depth))
        self._now_ms = step_end
        if self._cross is not None:
            updates += self._cross.step(self._step, (step_start - self.start_ms) / 1000.0, step_end)
        return updates

    # --- klines: synthetic history joined to live bars --------------------------------------------

    def _aggregate(self, p: Pair, bounds: list[int], coarse: bool) -> list[tuple[float, ...]]:
        """OHLCV per bucket [bounds[k], bounds[k+1]) from synthetic history and live minute bars."""
        t0, t1 = bounds[0], bounds[-1]
        if t0 < self.start_ms:
            if coarse:
                sb = self.start_ms // BLOCK_MS
                hist = np.concatenate([self._history.blocks(p, t0 // BLOCK_MS, min(t1 // BLOCK_MS, sb)),
                                       self._history.minutes(p, max(t0, sb * BLOCK_MS) // MINUTE_MS, t1 // MINUTE_MS)])  # fmt: skip
            else:
                hist = self._history.minutes(p, t0 // MINUTE_MS, t1 // MINUTE_MS)
        else:
            hist = np.zeros((0, 8))
        cut = np.searchsorted(hist[:, 0] * MINUTE_MS, np.array(bounds))
        rows: list[tuple[float, ...]] = []
        prev_close: float | None = None
        for k in range(len(bounds) - 1):
            parts = hist[cut[k] : cut[k + 1]]
            o = h = lo = c = math.nan
            v = qv = n = 0.0
            if len(parts):
                o, c = float(parts[0, 1]), float(parts[-1, 4])
                h, lo = float(parts[:, 2].max()), float(parts[:, 3].min())
                v, qv, n = float(parts[:, 5].sum()), float(parts[:, 6].sum()), float(parts[:, 7].sum())
            live0 = max(bounds[k], self.start_ms - self.start_ms % MINUTE_MS) // MINUTE_MS
            live1 = min(bounds[k + 1] // MINUTE_MS, self._now_ms // MINUTE_MS + 1)
            for m in range(live0, live1):
                bar = self._live.bar(p.index, m)
                if bar is None:
                    continue
                if math.isnan(o):
                    o, h, lo = bar[0], bar[1], bar[2]
                h, lo, c = max(h, bar[1]), min(lo, bar[2]), bar[3]
                v, qv, n = v + bar[4], qv + bar[5], n + bar[6]
            if math.isnan(o):  # no trade in the bucket: a flat candle at the last price
                if prev_close is None:
                    prev_close = self._close_before(p, bounds[k])
                o = h = lo = c = prev_close
            prev_close = c
            rows.append((o, h, lo, c, v, qv, n))
        return rows

    def _close_before(self, p: Pair, t_ms: int) -> float:
        m = t_ms // MINUTE_MS - 1
        while m >= self._start_min:
            bar = self._live.bar(p.index, m)
            if bar is not None:
                return float(bar[3])
            m -= 1
        return p.p0


def build_market(pairs: int, seed: int, start_ms: int, scenario: Scenario | None = None, rate: float | None = None) -> Market:
    """The emulator's market for `pairs` pairs, deterministic from `seed`."""
    return Market(pairs, seed, start_ms, scenario, rate)
