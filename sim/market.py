"""The emulator's market: thousands of pairs, heavy-tailed activity, live books, scripted episodes.

Why fixed 100 ms steps with a per-step RNG seeded by (seed, step index): the server advances the
market from wall time, and wall time is never the same twice. Deriving each step's randomness from
its index makes the generated market identical for a seed however advance() calls are chunked.

Why vectorised per step: with 3,000 pairs most pairs do nothing in most steps. One NumPy draw
decides which pairs trade or see a maker update; only those pairs cost Python work.

Book model (documented with examples in sim/scenarios/README.md): each side is a contiguous
ladder of LEVELS price levels on the pair's tick grid, touch first. Sizes thin away from the touch.
A taker trade takes from the touch (sweeping on if larger); an emptied level is deleted and a new
level appears at the far end, so a side always has LEVELS levels. Makers close a spread wider than
the pair's target by improving one side; which side is a coin flip, so the price walks, or biased
toward a scenario's target path (pumps, decays, spikes held flat). Every step's level changes are
one DepthChange with contiguous versions; quantities are absolute and 0 deletes a level.

History (klines before start) is synthesised from hashed noise, so any window is computed directly
without generating the past: 5-minute volumes drawn around the pair's activity, split into minutes,
and a multi-scale price walk that ends exactly at the start price.
"""

from __future__ import annotations

import calendar
import hashlib
import math
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from sim.updates import DepthChange, PairUpdate, Trade

if TYPE_CHECKING:
    from sim.scenario import Episode, Scenario

STEP_MS = 100
LEVELS = 60
MINUTE_MS = 60_000
BLOCK_MS = 300_000  # history volumes are drawn per 5-minute block, the scanner's baseline unit
DAY_MINUTES = 1440
KEEP_MINUTES = 25 * 60  # live minute bars kept (about a day, bounded memory)
MAX_TRADES_PER_S = 60.0
MAKER_PER_TRADE = 0.5  # maker book updates per trade, besides the ones trades cause
MAKER_FLOOR = 0.003  # per-step chance of a book update on an idle pair
_INTERVAL_MS = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "60m": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
    "1W": 604_800_000,
    "1M": 0,  # calendar months
}
KLINE_INTERVALS = tuple(_INTERVAL_MS)
_WEEK_OFFSET_MS = 4 * 86_400_000  # 1970-01-01 was a Thursday; weeks open on Monday 00:00 UTC
_SCALES = (1, 8, 64, 512, 4096, 32768, 262144)  # walk octaves, minutes
_SYLLABLES = ("KA", "ZO", "MI", "RU", "TE", "XA", "LO", "PE", "QUI", "VY", "DO", "NE", "SA", "FU", "RI", "GON", "BEL", "TOR",
              "AR", "EX", "ON", "UM", "IO", "BIT", "COR", "DEX", "NOVA", "PIX")  # fmt: skip
_QUOTES = ("USDT", "USDC", "BTC")


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


# --- hashed noise: the value for (key, index) is computed directly, in any order -------------------

_GOLD = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _stable_int(*parts: object) -> int:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _u01(key: int, idx: np.ndarray) -> np.ndarray:
    """Uniform (0, 1) per index: a splitmix64 finaliser of (key, index)."""
    x = idx.astype(np.uint64) * _GOLD + np.uint64(key)
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    x = x ^ (x >> np.uint64(31))
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) / 9007199254740992.0


def _gauss(key: int, idx: np.ndarray) -> np.ndarray:
    i2 = idx.astype(np.int64) * 2
    return np.sqrt(-2.0 * np.log(_u01(key, i2))) * np.cos(2.0 * np.pi * _u01(key, i2 + 1))


def _smooth(key: int, x: np.ndarray) -> np.ndarray:
    """Gaussian value noise, linearly interpolated between integer knots."""
    if len(x) == 0:
        return np.zeros(0)
    j = np.floor(x)
    f = x - j
    j0 = int(j.min())
    knots = _gauss(key, np.arange(j0, int(j.max()) + 2, dtype=np.int64))
    ji = (j - j0).astype(np.int64)
    return knots[ji] * (1.0 - f) + knots[ji + 1] * f


# --- per-pair state ---------------------------------------------------------------------------------


@dataclass
class _Pair:
    spec: SymbolSpec
    index: int
    tick: float
    dec: int
    qdec: int
    min_qty: float
    mean_qty: float
    spread: int  # target spread, ticks
    bid_top: int
    ask_top: int
    bids: deque[float]
    asks: deque[float]
    version: int
    last_price: float
    last_qty: float
    p0: float  # price at start: the synthetic history ends here
    sigma: float  # per-minute log-price volatility of the history walk
    key: int
    w_start: float | None = None  # walk value at start, computed when history is first asked for
    noise: float = 0.5  # cheap deterministic noise state for maker sizes
    ticker_cache: tuple | None = None


@dataclass
class _Mod:
    """What the scenario does to one pair in one step."""

    mult: float = 1.0
    buy_p: float = 0.5
    target: float | None = None  # mid target in ticks; makers lean toward it
    force: bool = False  # pump: drag the book to the target every step
    bid_scale: float = 1.0
    ask_scale: float = 1.0
    quiet: bool = False


def symbol_names(n: int, seed: int) -> list[str]:
    """Deterministic, distinct, pronounceable uppercase base names."""
    rng = np.random.default_rng([seed, 991])
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n:
        k = int(rng.integers(2, 4))
        base = "".join(_SYLLABLES[int(i)] for i in rng.integers(0, len(_SYLLABLES), size=k))[:8]
        if base in seen or base in _QUOTES:
            base = f"{base[:6]}{int(rng.integers(1, 100))}"
        if base not in seen and base not in _QUOTES:
            seen.add(base)
            names.append(base)
    return names


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
        rng = np.random.default_rng([seed, 1])
        raw = np.sort(rng.pareto(1.1, size=pairs) + 0.02)[::-1]  # heavy tail; rank 0 the busiest
        target = float(rate) if rate is not None else 3.0 * pairs
        activity = self._scale_activity(raw, target)
        bases = symbol_names(pairs, seed)
        a = np.random.default_rng([seed, 2])
        u = a.random((pairs, 8))
        log_price = a.normal(-1.5, 2.6, size=pairs)
        notional = np.exp(a.normal(math.log(40.0), 0.7, size=pairs))
        book_noise = a.random((pairs, 2, LEVELS))
        self._pairs: list[_Pair] = []
        for i, base in enumerate(bases):
            quote = "USDT" if i < 10 or u[i, 0] < 0.92 else ("USDC" if u[i, 1] < 0.6 else "BTC")
            status = "1" if i < 10 or u[i, 2] > 0.012 else ("2" if u[i, 3] < 0.5 else "3")
            if i < 10 or u[i, 4] > 0.012:
                listing = self.start_ms - int((30 + u[i, 5] * 370) * 86_400_000)
            else:  # a fresh listing: the ListingAge rule must hold it back for a while
                listing = self.start_ms - int((60 + u[i, 5] * 780) * 1000)
            usd = float(math.exp(max(-12.0, min(10.0, log_price[i]))))
            self._add_pair(
                base=base,
                quote=quote,
                status=status,
                api_tradable=bool(i < 10 or u[i, 6] > 0.04),
                market_order_allowed=bool(i < 10 or u[i, 7] > 0.015),
                listing_ms=listing,
                price_usd=usd,
                notional=float(notional[i]),
                activity=float(activity[i]),
                noise=book_noise[i],
            )
        if scenario is not None:
            busy = float(activity[min(pairs - 1, max(1, pairs // 20))])
            for n, lst in enumerate(scenario.listings):
                if any(p.spec.symbol == lst.symbol for p in self._pairs):
                    from sim.scenario import ScenarioError

                    raise ScenarioError(f"listings[{n}]: {lst.symbol} already exists in the market")
                quote = next(q for q in _QUOTES if lst.symbol.endswith(q))
                r = np.random.default_rng([seed, 5, n])
                self._add_pair(
                    base=lst.symbol[: -len(quote)],
                    quote=quote,
                    status="1",
                    api_tradable=True,
                    market_order_allowed=True,
                    listing_ms=self.start_ms - int(lst.listed_s_before_start * 1000),
                    price_usd=float(math.exp(r.normal(-3.0, 1.5))),
                    notional=float(math.exp(r.normal(math.log(60.0), 0.5))),
                    activity=busy,
                    noise=r.random((2, LEVELS)),
                )
        self.symbols: list[SymbolSpec] = [p.spec for p in self._pairs]
        self._by_symbol = {p.spec.symbol: p for p in self._pairs}
        n = len(self._pairs)
        self._lam = np.array([p.spec.activity for p in self._pairs]) * STEP_MS / 1000.0
        self._maker_p = np.minimum(0.5, MAKER_PER_TRADE * self._lam + MAKER_FLOOR)
        self._episodes: list[Episode] = []
        self._anchor: dict[int, float] = {}
        if scenario is not None:
            scenario.resolve([p.spec.symbol for p in self._pairs])
            self._episodes = list(scenario.episodes)
        # Live minute bars: the current minute in a dict, closed minutes as compact arrays.
        self._cur_min = self._start_min
        self._cur: dict[int, list[float]] = {}
        self._closed: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._roll = np.zeros((n, 3))  # 24 h sums of closed live minutes: volume, quote volume, count
        self._hr_id = np.full(26, -1, dtype=np.int64)
        self._hr_hi = np.full((n, 26), -np.inf)
        self._hr_lo = np.full((n, 26), np.inf)
        self._hr_open = np.full((n, 26), np.nan)
        self._override: dict[str, float] = {}

    def _add_pair(self, *, base: str, quote: str, status: str, api_tradable: bool, market_order_allowed: bool, listing_ms: int,
                  price_usd: float, notional: float, activity: float, noise: np.ndarray) -> None:  # fmt: skip
        i = len(self._pairs)
        price = price_usd / 60_000.0 if quote == "BTC" else price_usd
        dec = max(0, min(12, math.ceil(-math.log10(price * 2e-4))))
        tick = 10.0**-dec
        mean_qty = notional / price_usd
        qdec = max(0, min(8, math.ceil(-math.log10(mean_qty * 1e-3))))
        spec = SymbolSpec(
            symbol=f"{base}{quote}",
            base=base,
            quote=quote,
            status=status,
            api_tradable=api_tradable,
            market_order_allowed=market_order_allowed,
            listing_ms=listing_ms,
            price_decimals=dec,
            qty_decimals=qdec,
            min_market_quote=0.0001 if quote == "BTC" else 5.0,
            activity=activity,
        )
        spread = 1 + int(noise[0, 0] * 3) + (2 + int(noise[0, 1] * 5) if activity < 0.05 else 0)
        mid = price / tick
        bid_top = max(LEVELS + 1, int(math.floor(mid - spread / 2.0)))
        key = _stable_int(self.seed, "pair", base, quote)
        pair = _Pair(
            spec=spec,
            index=i,
            tick=tick,
            dec=dec,
            qdec=qdec,
            min_qty=10.0**-qdec,
            mean_qty=mean_qty,
            spread=spread,
            bid_top=bid_top,
            ask_top=bid_top + spread,
            bids=deque(),
            asks=deque(),
            version=10_000_000 + key % 900_000_000,
            last_price=round(bid_top * tick, dec),
            last_qty=round(mean_qty, qdec),
            p0=round((bid_top + spread / 2.0) * tick, dec + 2),
            sigma=0.0006 + 0.0008 * float(noise[1, 0]) + (0.0008 if activity < 0.05 else 0.0),
            key=key,
        )
        for j in range(LEVELS):
            pair.bids.append(self._size(pair, j, 0.4 + 1.2 * float(noise[0, j])))
            pair.asks.append(self._size(pair, j, 0.4 + 1.2 * float(noise[1, j])))
        self._pairs.append(pair)

    @staticmethod
    def _scale_activity(raw: np.ndarray, target_frames: float) -> np.ndarray:
        """The trade-rate scale whose expected frames/s (deal steps + depth steps) hits the target."""

        def frames(scale: float) -> float:
            lam = np.minimum(raw * scale, MAX_TRADES_PER_S) * STEP_MS / 1000.0
            p_trade = 1.0 - np.exp(-lam)
            p_maker = np.minimum(0.5, MAKER_PER_TRADE * lam + MAKER_FLOOR)
            p_depth = 1.0 - (1.0 - p_trade) * (1.0 - p_maker)
            return float((p_trade + p_depth).sum() * 1000.0 / STEP_MS)

        lo, hi = 1e-9, 1e9
        for _ in range(100):
            mid = math.sqrt(lo * hi)
            if frames(mid) < target_frames:
                lo = mid
            else:
                hi = mid
        # Beyond saturation (2 frames per pair per step) the target cannot be met; the cap holds.
        return np.minimum(raw * lo, MAX_TRADES_PER_S)

    # --- interface ---------------------------------------------------------------------------------

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
        p = self._pair(symbol)
        tick, dec = p.tick, p.dec
        bids = [(round((p.bid_top - j) * tick, dec), q) for j, q in enumerate(list(p.bids)[: max(0, limit)])]
        asks = [(round((p.ask_top + j) * tick, dec), q) for j, q in enumerate(list(p.asks)[: max(0, limit)])]
        return p.version, bids, asks

    def best_bid_ask(self, symbol: str) -> tuple[float, float, float, float]:
        p = self._pair(symbol)
        return round(p.bid_top * p.tick, p.dec), p.bids[0], round(p.ask_top * p.tick, p.dec), p.asks[0]

    def last_price(self, symbol: str) -> float:
        return self._pair(symbol).last_price

    def fmt_price(self, symbol: str, value: float) -> str:
        return f"{value:.{self._pair(symbol).dec}f}"

    def fmt_qty(self, symbol: str, value: float) -> str:
        return f"{value:.{self._pair(symbol).qdec}f}"

    def set_ticker_override(self, symbol: str, quote_volume: float | None) -> None:
        self._pair(symbol)
        if quote_volume is None:
            self._override.pop(symbol, None)
        else:
            self._override[symbol] = float(quote_volume)

    def klines(self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int) -> list[list]:
        if interval not in _INTERVAL_MS:
            raise ValueError(f"invalid interval {interval!r} (valid: {', '.join(KLINE_INTERVALS)})")
        p = self._pair(symbol)
        limit = max(1, min(int(limit), 1000))
        opens = bucket_opens(interval, start_ms, end_ms, self._now_ms, p.spec.listing_ms, limit)
        if not opens:
            return []
        bounds = [*opens, next_open(interval, opens[-1])]
        rows = self._aggregate(p, bounds, coarse=_INTERVAL_MS[interval] == 0 or _INTERVAL_MS[interval] >= 3_600_000)
        fp = self.fmt_price
        return [[bounds[k], fp(symbol, o), fp(symbol, h), fp(symbol, lo), fp(symbol, c), f"{v:.{p.qdec}f}", bounds[k + 1] - 1,
                 f"{q:.4f}"] for k, (o, h, lo, c, v, q, _n) in enumerate(rows)]  # fmt: skip

    def ticker_24h(self, symbol: str) -> dict:
        p = self._pair(symbol)
        first_min = self._cur_min - (DAY_MINUTES - 1)
        v, qv, n, hi, lo, open_ = self._synthetic_window(p, first_min)
        v += self._roll[p.index, 0]
        qv += self._roll[p.index, 1]
        n += self._roll[p.index, 2]
        cur = self._cur.get(p.index)
        if cur is not None:
            v, qv, n = v + cur[4], qv + cur[5], n + cur[6]
            hi, lo = max(hi, cur[1]), min(lo, cur[2])
        slots = np.nonzero(self._hr_id >= first_min // 60)[0]
        if len(slots):
            hi = max(hi, float(self._hr_hi[p.index, slots].max()))
            lo = min(lo, float(self._hr_lo[p.index, slots].min()))
            if math.isnan(open_):
                order = slots[np.argsort(self._hr_id[slots])]
                opens = self._hr_open[p.index, order]
                opens = opens[~np.isnan(opens)]
                open_ = float(opens[0]) if len(opens) else math.nan
        last = p.last_price
        if math.isnan(open_):
            open_ = cur[0] if cur is not None else last
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

    def _pair(self, symbol: str) -> _Pair:
        pair = self._by_symbol.get(symbol)
        if pair is None:
            raise KeyError(symbol)
        return pair

    def _mods(self, t_s: float) -> dict[int, _Mod]:
        """The scenario's effect on each touched pair at exchange second t_s after start."""
        mods: dict[int, _Mod] = {}
        for n, ep in enumerate(self._episodes):
            end = ep.start_s + ep.duration_s
            after = ep.kind == "pump" and end <= t_s < end + 3 * ep.duration_s
            if not (ep.start_s <= t_s < end or after):
                continue
            p = self._pairs[ep.index]
            m = mods.setdefault(ep.index, _Mod())
            if n not in self._anchor:
                self._anchor[n] = (p.bid_top + p.ask_top) / 2.0
            anchor = self._anchor[n]
            if ep.kind == "quiet":
                m.quiet = True
            elif ep.kind == "spike":
                m.mult *= ep.volume_mult
                m.target = anchor
            elif after:  # the pump is over: activity back to normal, price gives back a little, slowly
                peak = anchor * (1.0 + ep.rise_pct / 100.0)
                m.target = peak * (1.0 - 0.25 * (ep.rise_pct / 100.0) / (1.0 + ep.rise_pct / 100.0) * (t_s - end) / (3 * ep.duration_s))
                m.buy_p = 0.47
            else:
                frac = (t_s - ep.start_s) / ep.duration_s
                m.mult *= ep.volume_mult
                m.buy_p = 0.75
                m.target = anchor * (1.0 + ep.rise_pct / 100.0 * frac)
                m.force = True
                m.bid_scale = 2.0 * ep.book_imbalance * (1.0 + frac)
                m.ask_scale = 2.0 * (1.0 - ep.book_imbalance)
        return mods

    def _run_step(self) -> list[PairUpdate]:
        step_start = self._now_ms
        step_end = step_start + STEP_MS
        minute = step_start // MINUTE_MS
        if minute != self._cur_min:
            self._close_minute(minute)
        rng = np.random.default_rng([self.seed, 3, self._step])
        self._step += 1
        mods = self._mods((step_start - self.start_ms) / 1000.0) if self._episodes else {}
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
            return []
        counts = n_tr[active]
        need = 3 * counts + 4
        uniforms = rng.random(int(need.sum())).tolist()
        updates: list[PairUpdate] = []
        off = 0
        for i, k, want in zip(active.tolist(), counts.tolist(), need.tolist(), strict=True):
            u = uniforms[off : off + want]
            off += want
            update = self._pair_step(self._pairs[i], k, u, bool(mk[i]), mods.get(i), step_start, step_end)
            if update is not None:
                updates.append(update)
        self._now_ms = step_end
        return updates

    def _pair_step(self, p: _Pair, k: int, u: list[float], maker: bool, mod: _Mod | None, t0: int, t1: int) -> PairUpdate | None:
        ch_b: dict[int, float] = {}
        ch_a: dict[int, float] = {}
        bscale = mod.bid_scale if mod else 1.0
        ascale = mod.ask_scale if mod else 1.0
        target = mod.target if mod else None
        p.noise = (p.noise + u[k * 3]) % 1.0
        if mod is not None and mod.force and target is not None:
            self._drag(p, target, bscale, ascale, ch_b, ch_a)
        trades: list[Trade] = []
        if k:
            buy_p = mod.buy_p if mod else 0.5
            times = sorted(t0 + int(x * STEP_MS) for x in u[2 * k : 3 * k])
            for j in range(k):
                side = 1 if u[j] < buy_p else 2
                qty = -math.log(u[k + j]) * p.mean_qty + p.min_qty
                self._take(p, side, qty, times[j], trades, ch_b, ch_a)
                if p.ask_top - p.bid_top > p.spread:
                    self._fill_spread(p, target, bscale, ascale, ch_b, ch_a)
        if maker:
            side_u, lvl_u, size_u = u[3 * k + 1], u[3 * k + 2], u[3 * k + 3]
            j = int(lvl_u * lvl_u * 15)
            if side_u < 0.5:
                q = self._size(p, j, (0.4 + 1.2 * size_u) * bscale)
                p.bids[j] = q
                ch_b[p.bid_top - j] = q
            else:
                q = self._size(p, j, (0.4 + 1.2 * size_u) * ascale)
                p.asks[j] = q
                ch_a[p.ask_top + j] = q
        if p.ask_top - p.bid_top > p.spread:
            self._fill_spread(p, target, bscale, ascale, ch_b, ch_a)
        if mod is not None and mod.force:
            self._shape(p, bscale, ascale, ch_b, ch_a)
        if trades:
            self._record(p, trades)
        if not ch_b and not ch_a:
            return None if not trades else PairUpdate(p.spec.symbol, t1, trades, None)
        tick, dec = p.tick, p.dec
        bids = [(round(t * tick, dec), q) for t, q in sorted(ch_b.items(), reverse=True)]
        asks = [(round(t * tick, dec), q) for t, q in sorted(ch_a.items())]
        first = p.version + 1
        p.version += len(bids) + len(asks)
        return PairUpdate(p.spec.symbol, t1, trades, DepthChange(first, p.version, bids, asks))

    # --- book mechanics ----------------------------------------------------------------------------

    @staticmethod
    def _size(p: _Pair, j: int, noise: float) -> float:
        """Size of the j-th level from the touch: thins away from the touch."""
        q = round(p.mean_qty * 4.0 * math.exp(-j / 25.0) * noise, p.qdec)
        return q if q > 0 else p.min_qty

    def _next_noise(self, p: _Pair) -> float:
        p.noise = (p.noise * 997.0 + 0.618034) % 1.0
        return 0.4 + 1.2 * p.noise

    def _take(self, p: _Pair, side: int, qty: float, time_ms: int, trades: list[Trade], ch_b: dict[int, float], ch_a: dict[int, float]) -> None:
        """A taker order: fill at the touch of the side it takes, sweeping on while it is larger."""
        for _ in range(LEVELS):
            if side == 1:
                levels, tick_no, changed = p.asks, p.ask_top, ch_a
            else:
                levels, tick_no, changed = p.bids, p.bid_top, ch_b
            avail = levels[0]
            fill = round(min(qty, avail), p.qdec)
            if fill <= 0:
                return
            price = round(tick_no * p.tick, p.dec)
            trades.append(Trade(price, fill, side, time_ms))
            p.last_price, p.last_qty = price, fill
            rest = round(avail - fill, p.qdec)
            if rest > 0:
                levels[0] = rest
                changed[tick_no] = rest
                return
            levels.popleft()
            changed[tick_no] = 0.0
            if side == 1:
                p.ask_top += 1
                far = p.ask_top + len(levels)
            else:
                p.bid_top -= 1
                far = p.bid_top - len(levels)
            if far >= 1:
                q = self._size(p, len(levels), self._next_noise(p))
                levels.append(q)
                changed[far] = q
            qty -= fill
            if qty < p.min_qty:
                return

    def _improve(self, p: _Pair, bid_side: bool, scale: float, ch_b: dict[int, float], ch_a: dict[int, float]) -> None:
        """A maker places a level one tick inside the spread; the far end of that side drops one."""
        if bid_side:
            p.bid_top += 1
            q = self._size(p, 0, self._next_noise(p) * scale)
            p.bids.appendleft(q)
            ch_b[p.bid_top] = q
            if len(p.bids) > LEVELS:
                p.bids.pop()
                ch_b[p.bid_top - len(p.bids)] = 0.0
        else:
            p.ask_top -= 1
            q = self._size(p, 0, self._next_noise(p) * scale)
            p.asks.appendleft(q)
            ch_a[p.ask_top] = q
            if len(p.asks) > LEVELS:
                p.asks.pop()
                ch_a[p.ask_top + len(p.asks)] = 0.0

    def _fill_spread(self, p: _Pair, target: float | None, bscale: float, ascale: float, ch_b: dict[int, float], ch_a: dict[int, float]) -> None:
        for _ in range(64):
            if p.ask_top - p.bid_top <= p.spread:
                return
            self._next_noise(p)
            r = p.noise
            if target is None:
                up = r < 0.5
            else:
                up = (r < 0.85) == ((p.bid_top + p.ask_top) / 2.0 < target)
            self._improve(p, up, bscale if up else ascale, ch_b, ch_a)

    def _drag(self, p: _Pair, target: float, bscale: float, ascale: float, ch_b: dict[int, float], ch_a: dict[int, float]) -> None:
        """A pump's buyers lift the asks up to the target path; bids follow them up."""
        for _ in range(200):
            if p.ask_top - p.spread / 2.0 >= target or len(p.asks) < 2:
                break
            p.asks.popleft()
            ch_a[p.ask_top] = 0.0
            p.ask_top += 1
            far = p.ask_top + len(p.asks)
            q = self._size(p, len(p.asks), self._next_noise(p))
            p.asks.append(q)
            ch_a[far] = q
        for _ in range(200):
            if p.ask_top - p.bid_top <= p.spread:
                break
            self._improve(p, True, bscale, ch_b, ch_a)

    def _shape(self, p: _Pair, bscale: float, ascale: float, ch_b: dict[int, float], ch_a: dict[int, float]) -> None:
        """During a pump: near-touch bids grow, near-touch asks thin (OBI and bid depth rise)."""
        near = max(3, min(30, int(math.ceil(12e-4 * p.last_price / p.tick))))
        for j in range(min(near, len(p.bids))):
            want = self._size(p, j, bscale)
            if p.bids[j] < 0.9 * want:
                p.bids[j] = want
                ch_b[p.bid_top - j] = want
        for j in range(min(near, len(p.asks))):
            want = self._size(p, j, ascale)
            if p.asks[j] > 1.1 * want:
                p.asks[j] = want
                ch_a[p.ask_top + j] = want

    # --- live bars ---------------------------------------------------------------------------------

    def _record(self, p: _Pair, trades: list[Trade]) -> None:
        bar = self._cur.get(p.index)
        if bar is None:
            t = trades[0].price
            bar = self._cur[p.index] = [t, t, t, t, 0.0, 0.0, 0.0]
        for t in trades:
            if t.price > bar[1]:
                bar[1] = t.price
            if t.price < bar[2]:
                bar[2] = t.price
            bar[4] += t.qty
            bar[5] += t.qty * t.price
        bar[3] = trades[-1].price
        bar[6] += len(trades)

    def _close_minute(self, new_minute: int) -> None:
        """Freeze the current minute's bars into arrays; slide the 24 h sums; forget old minutes."""
        if self._cur:
            idx = np.fromiter(sorted(self._cur), dtype=np.int64, count=len(self._cur))
            data = np.array([self._cur[i] for i in idx.tolist()])
            m = self._cur_min
            self._closed[m] = (idx, data)
            self._roll[idx] += data[:, 4:7]
            hour = m // 60
            slot = hour % 26
            if self._hr_id[slot] != hour:
                self._hr_id[slot] = hour
                self._hr_hi[:, slot] = -np.inf
                self._hr_lo[:, slot] = np.inf
                self._hr_open[:, slot] = np.nan
            self._hr_hi[idx, slot] = np.maximum(self._hr_hi[idx, slot], data[:, 1])
            self._hr_lo[idx, slot] = np.minimum(self._hr_lo[idx, slot], data[:, 2])
            fresh = np.isnan(self._hr_open[idx, slot])
            self._hr_open[idx[fresh], slot] = data[fresh, 0]
        self._cur = {}
        for m in range(self._cur_min + 1 - DAY_MINUTES, new_minute + 1 - DAY_MINUTES):
            old = self._closed.get(m)
            if old is not None:
                self._roll[old[0]] -= old[1][:, 4:7]
        for m in [m for m in self._closed if m < new_minute - KEEP_MINUTES]:
            del self._closed[m]
        self._cur_min = new_minute

    def _live_bar(self, i: int, minute: int) -> list[float] | None:
        if minute == self._cur_min:
            return self._cur.get(i)
        got = self._closed.get(minute)
        if got is None:
            return None
        idx, data = got
        k = int(np.searchsorted(idx, i))
        if k < len(idx) and idx[k] == i:
            return data[k].tolist()
        return None

    # --- synthetic history -------------------------------------------------------------------------

    def _walk(self, p: _Pair, t_min: np.ndarray) -> np.ndarray:
        """Multi-scale log-price walk at times in (fractional) minutes."""
        out = np.zeros(len(t_min))
        for k, s in enumerate(_SCALES):
            out += p.sigma * math.sqrt(s / 2.0) * _smooth(p.key + 101 * k, t_min / s)
        return out

    def _price(self, p: _Pair, t_min: np.ndarray) -> np.ndarray:
        if p.w_start is None:  # one walk evaluation for both: each costs a fixed dozen NumPy calls per octave
            w = self._walk(p, np.append(t_min, self.start_ms / MINUTE_MS))
            p.w_start = float(w[-1])
            w = w[:-1]
        else:
            w = self._walk(p, t_min)
        return p.p0 * np.exp(np.clip(w - p.w_start, -3.0, 3.0))

    def _block_volumes(self, p: _Pair, blocks: np.ndarray) -> np.ndarray:
        """Base volume per 5-minute block: around activity x 300 s x mean trade size, noisy, sometimes 0."""
        lam = p.spec.activity * BLOCK_MS / 1000.0
        p_zero = math.exp(-lam)
        slow = np.exp(0.3 * _smooth(p.key + 7, blocks / 12.0) - 0.045)  # an hourly activity rhythm
        size = np.exp(0.5 * _gauss(p.key + 8, blocks) - 0.125)
        v = p.mean_qty * lam / (1.0 - p_zero) * size * slow
        return np.where(_u01(p.key + 9, blocks) < p_zero, 0.0, v)

    def _synth_minutes(self, p: _Pair, m0: int, m1: int) -> np.ndarray:
        """Bars (rows: minute, o, h, l, c, v, qv, n) for minutes [m0, m1) clipped to [listing, start)."""
        m0 = max(m0, p.spec.listing_ms // MINUTE_MS)
        m1 = min(m1, self._start_min + 1 if self.start_ms % MINUTE_MS else self._start_min)
        if m1 <= m0:
            return np.zeros((0, 8))
        b0, b1 = m0 // 5, (m1 - 1) // 5 + 1
        blocks = np.arange(b0, b1, dtype=np.int64)
        vol_b = self._block_volumes(p, blocks)
        mins = np.arange(b0 * 5, b1 * 5, dtype=np.int64)
        if p.spec.activity * BLOCK_MS / 1000.0 >= 3.0:
            w = np.exp(0.4 * _gauss(p.key + 10, mins)).reshape(-1, 5)
            w /= w.sum(axis=1, keepdims=True)
        else:  # a thin pair's few trades land in one minute of the block
            w = np.zeros((len(blocks), 5))
            w[np.arange(len(blocks)), (_u01(p.key + 11, blocks) * 5).astype(np.int64)] = 1.0
        t_edges = np.arange(b0 * 5, b1 * 5 + 1, dtype=np.float64)
        t_edges[t_edges > self.start_ms / MINUTE_MS] = self.start_ms / MINUTE_MS
        px = self._price(p, t_edges)
        vwap_b = 0.5 * (px[0:-1:5] + px[5::5])
        v = (vol_b[:, None] * w).ravel()
        qv = (vol_b[:, None] * w * vwap_b[:, None]).ravel()
        vw = np.repeat(vwap_b, 5)
        o, c = px[:-1], px[1:]
        exc = np.abs(_gauss(p.key + 12, mins)) * p.sigma * 0.5
        h = np.maximum(np.maximum(o, c), vw) * (1.0 + exc)
        lo = np.minimum(np.minimum(o, c), vw) * (1.0 - exc)
        start_min = self.start_ms // MINUTE_MS
        if self.start_ms % MINUTE_MS:
            part = mins == start_min
            f = (self.start_ms % MINUTE_MS) / MINUTE_MS
            v = np.where(part, v * f, v)
            qv = np.where(part, qv * f, qv)
        empty = v <= 0
        h = np.where(empty, o, h)
        lo = np.where(empty, o, lo)
        c = np.where(empty, o, c)
        n = np.where(empty, 0.0, np.maximum(1.0, np.round(v / p.mean_qty)))
        out = np.stack([mins.astype(np.float64), o, h, lo, c, v, qv, n], axis=1)
        keep = (mins >= m0) & (mins < m1)
        return out[keep]

    def _synth_blocks(self, p: _Pair, b0: int, b1: int) -> np.ndarray:
        """Coarse bars for whole 5-minute blocks [b0, b1) wholly before the start block."""
        b0 = max(b0, -(-p.spec.listing_ms // BLOCK_MS))
        b1 = min(b1, self.start_ms // BLOCK_MS)
        if b1 <= b0:
            return np.zeros((0, 8))
        blocks = np.arange(b0, b1, dtype=np.int64)
        v = self._block_volumes(p, blocks)
        px = self._price(p, np.arange(b0, b1 + 1, dtype=np.float64) * 5.0)
        o, c = px[:-1], px[1:]
        vw = 0.5 * (o + c)
        exc = np.abs(_gauss(p.key + 13, blocks)) * p.sigma * 1.2
        h = np.maximum(o, c) * (1.0 + exc)
        lo = np.minimum(o, c) * (1.0 - exc)
        empty = v <= 0
        n = np.where(empty, 0.0, np.maximum(1.0, np.round(v / p.mean_qty)))
        return np.stack([blocks.astype(np.float64) * 5.0, o, np.where(empty, o, h), np.where(empty, o, lo), np.where(empty, o, c), v,
                         v * vw, n], axis=1)  # fmt: skip

    def _synthetic_window(self, p: _Pair, first_min: int) -> tuple[float, float, float, float, float, float]:
        """(volume, quote volume, count, high, low, open) of the history in [first_min, start).

        The scout asks for every pair's ticker every poll, so the day before start is summarised
        once per pair as suffix sums over 5-minute blocks; the window's first partial block is
        left out (at most 4 of 1,440 minutes).
        """
        if first_min * MINUTE_MS >= self.start_ms:
            return (0.0, 0.0, 0.0, -math.inf, math.inf, math.nan)
        if p.ticker_cache is None:
            sb = self.start_ms // BLOCK_MS
            b_first = sb - DAY_MINUTES // 5
            bars = self._synth_blocks(p, b_first, sb)
            tail = self._synth_minutes(p, sb * 5, self._start_min + 1)
            b_first = sb - len(bars)
            suf = np.zeros((len(bars) + 1, 6))
            suf[-1] = (0.0, 0.0, 0.0, -math.inf, math.inf, math.nan)
            if len(bars):
                suf[:-1, 0:3] = np.cumsum(bars[::-1, 5:8], axis=0)[::-1]
                suf[:-1, 3] = np.maximum.accumulate(bars[::-1, 2])[::-1]
                suf[:-1, 4] = np.minimum.accumulate(bars[::-1, 3])[::-1]
                suf[:-1, 5] = bars[:, 1]
            extra = (float(tail[:, 5].sum()), float(tail[:, 6].sum()), float(tail[:, 7].sum()),
                     float(tail[:, 2].max()) if len(tail) else -math.inf, float(tail[:, 3].min()) if len(tail) else math.inf,
                     float(tail[0, 1]) if len(tail) else math.nan)  # fmt: skip
            p.ticker_cache = (b_first, suf, extra)
        b_first, suf, extra = p.ticker_cache
        k = min(max(-(-first_min // 5) - b_first, 0), len(suf) - 1)
        v, qv, n, hi, lo, open_ = suf[k].tolist()
        if math.isnan(open_):
            open_ = extra[5]
        return v + extra[0], qv + extra[1], n + extra[2], max(hi, extra[3]), min(lo, extra[4]), open_

    def _aggregate(self, p: _Pair, bounds: list[int], coarse: bool) -> list[tuple[float, ...]]:
        """OHLCV per bucket [bounds[k], bounds[k+1]) from synthetic history and live minute bars."""
        t0, t1 = bounds[0], bounds[-1]
        if t0 < self.start_ms:
            if coarse:
                sb = self.start_ms // BLOCK_MS
                hist = np.concatenate([self._synth_blocks(p, t0 // BLOCK_MS, min(t1 // BLOCK_MS, sb)),
                                       self._synth_minutes(p, max(t0, sb * BLOCK_MS) // MINUTE_MS, t1 // MINUTE_MS)])  # fmt: skip
            else:
                hist = self._synth_minutes(p, t0 // MINUTE_MS, t1 // MINUTE_MS)
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
                bar = self._live_bar(p.index, m)
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

    def _close_before(self, p: _Pair, t_ms: int) -> float:
        m = t_ms // MINUTE_MS - 1
        while m >= self._start_min:
            bar = self._live_bar(p.index, m)
            if bar is not None:
                return float(bar[3])
            m -= 1
        return p.p0


# --- kline buckets ------------------------------------------------------------------------------------


def _floor_open(interval: str, t: int) -> int:
    width = _INTERVAL_MS[interval]
    if width == 0:
        d = datetime.fromtimestamp(t / 1000, UTC)
        return calendar.timegm((d.year, d.month, 1, 0, 0, 0)) * 1000
    if interval == "1W":
        return t - (t - _WEEK_OFFSET_MS) % width
    return t - t % width


def next_open(interval: str, t: int) -> int:
    width = _INTERVAL_MS[interval]
    if width:
        return t + width
    d = datetime.fromtimestamp(t / 1000, UTC)
    y, mo = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return calendar.timegm((y, mo, 1, 0, 0, 0)) * 1000


def _prev_open(interval: str, t: int) -> int:
    width = _INTERVAL_MS[interval]
    return t - width if width else _floor_open(interval, t - 1)


def bucket_opens(interval: str, start_ms: int | None, end_ms: int | None, now_ms: int, listing_ms: int, limit: int) -> list[int]:
    """Open times of the candles a REST klines call returns (oldest first), like MEXC."""
    end = now_ms if end_ms is None else min(end_ms, now_ms)
    first_ok = _floor_open(interval, listing_ms)
    opens: list[int] = []
    if start_ms is not None:
        t = max(_floor_open(interval, start_ms), first_ok)
        while t <= end and len(opens) < limit:
            opens.append(t)
            t = next_open(interval, t)
        return opens
    t = _floor_open(interval, end)
    while t >= first_ok and len(opens) < limit:
        opens.append(t)
        t = _prev_open(interval, t)
    return opens[::-1]


def build_market(pairs: int, seed: int, start_ms: int, scenario: Scenario | None = None, rate: float | None = None) -> Market:
    """The emulator's market for `pairs` pairs, deterministic from `seed`."""
    return Market(pairs, seed, start_ms, scenario, rate)
