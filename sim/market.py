"""The emulator's market: thousands of pairs, heavy-tailed activity, books, scripted pumps.

Why fixed 100 ms steps with a per-step RNG seeded by (seed, step): the server advances the market
from wall time, and wall time is never the same twice. Deriving each step's randomness from its
index makes the generated market identical for a seed however advance() calls are chunked, so a
test or a benchmark sees the same trades on every run.

Book model: every pair keeps LEVELS price levels per side on its tick grid around a centre; the
spread is a few ticks (wider on thin pairs); sizes thin away from the touch. Trades take from the
touch level; a level that empties moves the touch one tick; the centre follows a mild random walk
(a scripted pump pulls it up). Each step's level changes are reported as one DepthChange with
contiguous versions, quantities absolute, 0 for a deleted level — MEXC's aggre.depth semantics.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.scenario import Scenario

STEP_MS = 100
LEVELS = 40
MINUTE_MS = 60_000
MAX_TRADES_PER_S = 60.0
HISTORY_KEEP_MS = 26 * 3600 * 1000
_INTERVAL_MS = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "60m": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
    "1W": 604_800_000,
    "1M": 2_592_000_000,
}
KLINE_INTERVALS = tuple(_INTERVAL_MS)

_SYLLABLES = ["ka", "zo", "mi", "ru", "te", "xa", "lo", "pe", "qui", "vy", "do", "ne", "sa", "fu", "ri", "gon", "bel", "tor"]


@dataclass(frozen=True)
class SymbolSpec:
    symbol: str
    base: str
    quote: str
    status: str
    api_tradable: bool
    market_order_allowed: bool
    listing_ms: int
    price_decimals: int
    qty_decimals: int
    min_market_quote: float
    activity: float


@dataclass
class Trade:
    price: float
    qty: float
    side: int
    time_ms: int


@dataclass
class DepthChange:
    from_version: int
    to_version: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]


@dataclass
class PairUpdate:
    symbol: str
    window_end_ms: int
    trades: list[Trade]
    depth: DepthChange | None


@dataclass
class _Book:
    """Sizes by integer tick, per side. The touch is the highest bid / lowest ask tick."""

    bids: dict[int, float] = field(default_factory=dict)
    asks: dict[int, float] = field(default_factory=dict)
    version: int = 0


@dataclass
class _Pair:
    spec: SymbolSpec
    index: int
    tick: float
    mean_qty: float
    centre: float  # in ticks (float, the walk is continuous)
    spread_ticks: int
    book: _Book
    last_price: float
    start_price: float
    minutes: dict[int, list[float]] = field(default_factory=dict)  # minute start -> [o, h, l, c, vol, qvol]
    override_qv: float | None = None
    trade_seq: int = 0


def _stable_int(*parts: object) -> int:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def symbol_names(n: int, seed: int) -> list[str]:
    """Deterministic, distinct, pronounceable base names (uppercase)."""
    rng = np.random.default_rng([seed, 991])
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n:
        k = int(rng.integers(2, 4))
        base = "".join(_SYLLABLES[int(i)] for i in rng.integers(0, len(_SYLLABLES), size=k)).upper()[:8]
        if len(seen) > 400:
            base = f"{base[:5]}{len(names)}"
        if base not in seen:
            seen.add(base)
            names.append(base)
    return names


class Market:
    """Deterministic simulated exchange state; see the module docstring."""

    def __init__(self, pairs: int, seed: int, start_ms: int, scenario: Scenario | None = None, rate: float | None = None) -> None:
        if pairs < 1:
            raise ValueError("pairs must be >= 1")
        self.seed = seed
        self.start_ms = start_ms - start_ms % STEP_MS
        self._now_ms = self.start_ms
        self._step = 0
        self.scenario = scenario
        rng = np.random.default_rng([seed, 1])
        # Heavy tail: Pareto activity, rank 0 the busiest.
        raw = np.sort(rng.pareto(1.1, size=pairs) + 0.02)[::-1]
        target_rate = float(rate) if rate is not None else 3.0 * pairs
        self._activity = self._scale_activity(raw, target_rate)
        bases = symbol_names(pairs, seed)
        self._pairs: list[_Pair] = []
        self.symbols: list[SymbolSpec] = []
        for i, base in enumerate(bases):
            r = np.random.default_rng([seed, 2, i])
            quote = "USDT" if r.random() < 0.92 or i < 10 else ("USDC" if r.random() < 0.6 else "BTC")
            status = "1"
            if i >= 10 and r.random() < 0.01:
                status = "2" if r.random() < 0.5 else "3"
            price = float(math.exp(r.normal(-1.0, 3.0)))
            price_decimals = max(0, min(12, int(math.ceil(-math.log10(price * 2e-4)))))
            tick = 10.0**-price_decimals
            listed_long_ago = r.random() > 0.01 or i < 10
            listing_ms = self.start_ms - int(r.integers(30, 900) * 86_400_000 if listed_long_ago else r.integers(60, 600) * 1000)
            spec = SymbolSpec(
                symbol=f"{base}{quote}",
                base=base,
                quote=quote,
                status=status,
                api_tradable=i < 10 or r.random() > 0.05,
                market_order_allowed=i < 10 or r.random() > 0.02,
                listing_ms=listing_ms,
                price_decimals=price_decimals,
                qty_decimals=max(0, min(8, int(math.ceil(-math.log10(max(5.0 / price, 1e-8) * 1e-3))))),
                min_market_quote=5.0,
                activity=float(self._activity[i]),
            )
            mean_qty = float(np.exp(r.normal(math.log(40.0), 0.7))) / price
            spread_ticks = 1 + int(r.integers(0, 3)) + (3 if self._activity[i] < 0.05 else 0)
            pair = _Pair(
                spec=spec,
                index=i,
                tick=tick,
                mean_qty=mean_qty,
                centre=price / tick,
                spread_ticks=spread_ticks,
                book=_Book(),
                last_price=price,
                start_price=price,
            )
            self._refill(pair, set(), set())
            self._pairs.append(pair)
            self.symbols.append(spec)
        self._by_symbol = {p.spec.symbol: p for p in self._pairs}
        if scenario is not None:
            scenario.resolve([p.spec.symbol for p in self._pairs])

    @staticmethod
    def _scale_activity(raw: np.ndarray, target_frames: float) -> np.ndarray:
        """Find the trade-rate scale whose expected frames/s (deal steps + depth steps) hits the target."""

        def frames(scale: float) -> float:
            lam = np.minimum(raw * scale, MAX_TRADES_PER_S) * STEP_MS / 1000.0
            p_trade = 1.0 - np.exp(-lam)
            p_depth = 1.0 - (1.0 - p_trade) * (1.0 - 0.02)
            return float((p_trade + p_depth).sum() * 1000.0 / STEP_MS)

        lo, hi = 1e-6, 1e9
        for _ in range(80):
            mid = math.sqrt(lo * hi)
            if frames(mid) < target_frames:
                lo = mid
            else:
                hi = mid
        # The busiest pairs saturate (one deals frame per step at most): cap their trade rate.
        return np.minimum(raw * lo, MAX_TRADES_PER_S)

    # --- interface -------------------------------------------------------------------------------

    def spec(self, symbol: str) -> SymbolSpec | None:
        pair = self._by_symbol.get(symbol)
        return pair.spec if pair else None

    def now_ms(self) -> int:
        return self._now_ms

    def advance(self, to_ms: int) -> list[PairUpdate]:
        out: list[PairUpdate] = []
        while self._now_ms + STEP_MS <= to_ms:
            out.extend(self._run_step())
        return out

    def depth_snapshot(self, symbol: str, limit: int) -> tuple[int, list[tuple[float, float]], list[tuple[float, float]]]:
        pair = self._pair(symbol)
        bids = sorted(pair.book.bids.items(), reverse=True)[:limit]
        asks = sorted(pair.book.asks.items())[:limit]
        return (
            pair.book.version,
            [(self._px(pair, t), q) for t, q in bids],
            [(self._px(pair, t), q) for t, q in asks],
        )

    def best_bid_ask(self, symbol: str) -> tuple[float, float, float, float]:
        pair = self._pair(symbol)
        bt = max(pair.book.bids)
        at = min(pair.book.asks)
        return self._px(pair, bt), pair.book.bids[bt], self._px(pair, at), pair.book.asks[at]

    def last_price(self, symbol: str) -> float:
        return self._pair(symbol).last_price

    def fmt_price(self, symbol: str, value: float) -> str:
        return f"{value:.{self._pair(symbol).spec.price_decimals}f}"

    def fmt_qty(self, symbol: str, value: float) -> str:
        return f"{value:.{self._pair(symbol).spec.qty_decimals}f}"

    def set_ticker_override(self, symbol: str, quote_volume: float | None) -> None:
        self._pair(symbol).override_qv = quote_volume

    def klines(self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int) -> list[list]:
        if interval not in _INTERVAL_MS:
            raise ValueError(f"invalid interval {interval!r}")
        pair = self._pair(symbol)
        width = _INTERVAL_MS[interval]
        now = self._now_ms
        first_allowed = pair.spec.listing_ms - pair.spec.listing_ms % MINUTE_MS
        if end_ms is None or end_ms > now:
            end_ms = now
        last_open = end_ms - end_ms % width
        if start_ms is None:
            first_open = last_open - (limit - 1) * width
        else:
            first_open = start_ms - start_ms % width
        first_open = max(first_open, first_allowed - first_allowed % width)
        rows: list[list] = []
        t = first_open
        while t <= last_open and len(rows) < limit:
            agg = self._aggregate(pair, t, min(t + width, now + 1))
            if agg is not None:
                o, h, lo, c, v, qv = agg
                rows.append(
                    [t, self.fmt_price(symbol, o), self.fmt_price(symbol, h), self.fmt_price(symbol, lo), self.fmt_price(symbol, c),
                     f"{v:.4f}", t + width - 1, f"{qv:.4f}"]
                )  # fmt: skip
            t += width
        return rows

    def ticker_24h(self, symbol: str) -> dict:
        pair = self._pair(symbol)
        expected_qv = pair.spec.activity * 86_400 * pair.mean_qty * pair.last_price
        qv = pair.override_qv if pair.override_qv is not None else expected_qv
        bid, bid_qty, ask, ask_qty = self.best_bid_ask(symbol)
        open_price = pair.start_price
        change = pair.last_price - open_price
        return {
            "symbol": symbol,
            "priceChange": self.fmt_price(symbol, change),
            "priceChangePercent": f"{change / open_price:.8f}",
            "prevClosePrice": self.fmt_price(symbol, open_price),
            "lastPrice": self.fmt_price(symbol, pair.last_price),
            "lastQty": self.fmt_qty(symbol, pair.mean_qty),
            "bidPrice": self.fmt_price(symbol, bid),
            "bidQty": self.fmt_qty(symbol, bid_qty),
            "askPrice": self.fmt_price(symbol, ask),
            "askQty": self.fmt_qty(symbol, ask_qty),
            "openPrice": self.fmt_price(symbol, open_price),
            "highPrice": self.fmt_price(symbol, max(open_price, pair.last_price)),
            "lowPrice": self.fmt_price(symbol, min(open_price, pair.last_price)),
            "volume": f"{qv / max(pair.last_price, 1e-18):.4f}",
            "quoteVolume": f"{qv:.4f}",
            "openTime": self._now_ms - 86_400_000,
            "closeTime": self._now_ms,
            "count": None,
        }

    # --- internals -------------------------------------------------------------------------------

    def _pair(self, symbol: str) -> _Pair:
        pair = self._by_symbol.get(symbol)
        if pair is None:
            raise KeyError(symbol)
        return pair

    @staticmethod
    def _px(pair: _Pair, ticks: int) -> float:
        return round(ticks * pair.tick, pair.spec.price_decimals)

    def _aggregate(self, pair: _Pair, t0: int, t1: int) -> list[float] | None:
        """OHLCV over [t0, t1) from live minutes after start and synthetic history before it."""
        parts: list[list[float]] = []
        m = t0 - t0 % MINUTE_MS
        while m < t1:
            if m < pair.spec.listing_ms - pair.spec.listing_ms % MINUTE_MS:
                m += MINUTE_MS
                continue
            if m < self.start_ms:
                parts.append(self._synthetic_minute(pair, m))
            elif m in pair.minutes:
                parts.append(pair.minutes[m])
            m += MINUTE_MS
            if len(parts) > 50_000:
                break
        if not parts:
            return None
        return [parts[0][0], max(p[1] for p in parts), min(p[2] for p in parts), parts[-1][3], sum(p[4] for p in parts), sum(p[5] for p in parts)]

    def _synthetic_minute(self, pair: _Pair, minute: int) -> list[float]:
        r = np.random.default_rng([self.seed, 7, pair.index, minute // MINUTE_MS])
        # A price walk that ends at the start price: the offset shrinks as the minute nears start.
        minutes_before = (self.start_ms - minute) / MINUTE_MS
        drift = float(r.normal(0.0, 0.002)) * math.sqrt(max(minutes_before, 1.0)) / 10.0
        close = pair.start_price * (1.0 + max(-0.5, min(0.5, drift)))
        trades = r.poisson(pair.spec.activity * 60.0)
        vol = float(sum(r.exponential(pair.mean_qty, size=int(min(trades, 5000))))) if trades else 0.0
        return [close, close * 1.001, close * 0.999, close, vol, vol * close]

    def _run_step(self) -> list[PairUpdate]:
        step_start = self._now_ms
        step_end = step_start + STEP_MS
        self._step += 1
        rng = np.random.default_rng([self.seed, 3, self._step])
        mult = np.ones(len(self._pairs))
        buy_prob = np.full(len(self._pairs), 0.5)
        quiet = np.zeros(len(self._pairs), dtype=bool)
        drifts: dict[int, float] = {}
        imbalance: dict[int, float] = {}
        if self.scenario is not None:
            t_s = (step_start - self.start_ms) / 1000.0
            for ev in self.scenario.active(t_s):
                i = ev.index
                if ev.kind == "quiet":
                    quiet[i] = True
                elif ev.kind == "spike":
                    mult[i] *= ev.volume_mult
                elif ev.kind == "pump":
                    mult[i] *= ev.volume_mult
                    buy_prob[i] = 0.78
                    frac = min(1.0, (t_s - ev.start_s) / ev.duration_s)
                    target = self._pairs[i].start_price * (1.0 + ev.rise_pct / 100.0 * frac)
                    drifts[i] = target / self._pairs[i].tick
                    imbalance[i] = ev.book_imbalance
        lam = self._activity * mult * STEP_MS / 1000.0
        lam[quiet] = 0.0
        n_trades = rng.poisson(lam)
        refresh = (rng.random(len(self._pairs)) < 0.02) & ~quiet
        active = np.nonzero((n_trades > 0) | refresh | np.isin(np.arange(len(self._pairs)), list(drifts)))[0]
        updates: list[PairUpdate] = []
        for i in active.tolist():
            pair = self._pairs[i]
            prng = np.random.default_rng([self.seed, 4, self._step, i])
            changed_b: set[int] = set()
            changed_a: set[int] = set()
            before_b = dict(pair.book.bids)
            before_a = dict(pair.book.asks)
            trades: list[Trade] = []
            k = int(n_trades[i])
            if k:
                times = np.sort(prng.integers(step_start, step_end, size=k))
                for j in range(k):
                    side = 1 if prng.random() < buy_prob[i] else 2
                    qty = float(prng.exponential(pair.mean_qty)) + pair.mean_qty * 0.01
                    trades.append(self._take(pair, side, qty, int(times[j]), changed_b, changed_a))
            # Centre: random walk, or pulled toward the pump's target path.
            if i in drifts:
                pair.centre += (drifts[i] - pair.centre) * 0.5
            else:
                pair.centre += float(prng.normal(0.0, 0.05))
                pair.centre += (pair.start_price / pair.tick - pair.centre) * 1e-4
            self._refill(pair, changed_b, changed_a, prng if refresh[i] else None, imbalance.get(i))
            depth = self._diff(pair, before_b, before_a, changed_b, changed_a)
            if trades or depth:
                updates.append(PairUpdate(pair.spec.symbol, step_end, trades, depth))
        self._now_ms = step_end
        if self._step % 600 == 0:
            self._prune()
        return updates

    def _take(self, pair: _Pair, side: int, qty: float, time_ms: int, changed_b: set[int], changed_a: set[int]) -> Trade:
        book_side = pair.book.asks if side == 1 else pair.book.bids
        changed = changed_a if side == 1 else changed_b
        if not book_side:
            # A burst emptied this side within the step: makers refill around the moved centre.
            self._refill(pair, changed_b, changed_a)
        touch = min(book_side) if side == 1 else max(book_side)
        price = self._px(pair, touch)
        available = book_side[touch]
        filled = min(qty, available * 0.9) if available > 0 else qty
        filled = max(round(filled, pair.spec.qty_decimals), 10.0**-pair.spec.qty_decimals)
        book_side[touch] = round(max(available - filled, 0.0), pair.spec.qty_decimals)
        if book_side[touch] <= available * 0.15:
            del book_side[touch]
            pair.centre += 0.5 if side == 1 else -0.5
        changed.add(touch)
        pair.last_price = price
        pair.trade_seq += 1
        minute = time_ms - time_ms % MINUTE_MS
        bar = pair.minutes.get(minute)
        if bar is None:
            pair.minutes[minute] = [price, price, price, price, filled, filled * price]
        else:
            bar[1] = max(bar[1], price)
            bar[2] = min(bar[2], price)
            bar[3] = price
            bar[4] += filled
            bar[5] += filled * price
        return Trade(price, filled, side, time_ms)

    def _refill(self, pair: _Pair, changed_b: set[int], changed_a: set[int], rng: np.random.Generator | None = None,
                imbalance: float | None = None) -> None:  # fmt: skip
        """Keep LEVELS levels per side around the centre; report every touched tick."""
        half = pair.spread_ticks / 2.0
        top_bid = int(math.floor(pair.centre - half))
        top_ask = max(int(math.ceil(pair.centre + half)), top_bid + 1)
        bid_range = set(range(top_bid - LEVELS + 1, top_bid + 1))
        ask_range = set(range(top_ask, top_ask + LEVELS))
        for side, rng_set, changed in ((pair.book.bids, bid_range, changed_b), (pair.book.asks, ask_range, changed_a)):
            for t in [t for t in side if t not in rng_set]:
                del side[t]
                changed.add(t)
        bid_scale = ask_scale = 1.0
        if imbalance is not None:
            bid_scale = 2.0 * imbalance
            ask_scale = 2.0 * (1.0 - imbalance)
        for side, ticks, top, scale, changed in (
            (pair.book.bids, bid_range, top_bid, bid_scale, changed_b),
            (pair.book.asks, ask_range, top_ask, ask_scale, changed_a),
        ):
            for t in ticks:
                distance = abs(t - top)
                base = pair.mean_qty * 3.0 * (1.0 + 0.15 * distance) * math.exp(-distance / 25.0)
                if t not in side or (rng is not None and rng.random() < 0.2) or (imbalance is not None and distance < 8):
                    noise = 1.0 if rng is None else float(0.5 + rng.random())
                    qty = round(base * noise * scale, pair.spec.qty_decimals)
                    if qty <= 0:
                        qty = 10.0**-pair.spec.qty_decimals
                    if side.get(t) != qty:
                        side[t] = qty
                        changed.add(t)

    def _diff(self, pair: _Pair, before_b: dict[int, float], before_a: dict[int, float], changed_b: set[int],
              changed_a: set[int]) -> DepthChange | None:  # fmt: skip
        bids = [(self._px(pair, t), pair.book.bids.get(t, 0.0)) for t in sorted(changed_b, reverse=True) if before_b.get(t) != pair.book.bids.get(t)]
        asks = [(self._px(pair, t), pair.book.asks.get(t, 0.0)) for t in sorted(changed_a) if before_a.get(t) != pair.book.asks.get(t)]
        if not bids and not asks:
            return None
        first = pair.book.version + 1
        pair.book.version += len(bids) + len(asks)
        return DepthChange(first, pair.book.version, bids, asks)

    def _prune(self) -> None:
        horizon = self._now_ms - HISTORY_KEEP_MS
        for pair in self._pairs:
            if pair.minutes and min(pair.minutes) < horizon:
                for m in [m for m in pair.minutes if m < horizon]:
                    del pair.minutes[m]


def build_market(pairs: int, seed: int, start_ms: int, scenario: Scenario | None = None, rate: float | None = None) -> Market:
    """The emulator's market for `pairs` pairs, deterministic from `seed`."""
    return Market(pairs, seed, start_ms, scenario, rate)
