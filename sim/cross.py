"""Cross-rate markets for the triangle scanner: non-USDT quotes priced consistently with USDT prices.

Why: the generated market lists each base against one quote, so it has no three-leg cycles. A
scenario's `cross: N` adds the quote assets as USDT pairs (BTCUSDT, ETHUSDT, USDCUSDT, and ETHBTC)
and, for the N busiest USDT bases, BASEBTC (every one), BASEUSDC (every second) and BASEETH (every
third), each with its own tick and lot precision (from its price in its own quote), its own trades
and maker updates (the ordinary step), and its own small price offset that drifts every few
seconds (own noise, a few bps). Every 500 ms (round robin over the pairs) each cross pair's ladder
is moved by whole ticks toward the rate its two USDT pairs imply, times its offset, once it is two
ticks or more away; moving keeps each level's size on its
tick, so a move of d ticks changes O(d) levels, like makers re-quoting. With ticks of ~2 bps and
offsets of a few bps, a consistent market's cycles stay far below three taker fees.

A dislocation (scenario `dislocations:`) pushes one cross pair's target by size_bps for
duration_s (positive: the pair is rich, so cycles that sell its base gain) and, while it lasts,
spreads depth_usdt over the top ten levels of the side that pays (the bids when rich, the asks
when cheap), so the size a cycle can take through it is about depth_usdt.
Everything is deterministic from the seed and the step index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.book import Pair, level_size, next_noise
from sim.noise import stable_int
from sim.scenario import ScenarioError
from sim.updates import DepthChange, PairUpdate

QUOTE_USD = {"BTC": 60_000.0, "ETH": 3_000.0, "USDC": 1.0}
OFFSET_BPS = 3.0  # own noise: each cross pair's offset from its implied rate, redrawn every OFFSET_EVERY steps
OFFSET_EVERY = 50
CHECK_EVERY = 5  # makers re-quote a cross pair at most every 500 ms (the emulator's CPU at 2,000+ pairs)
MIN_MOVE_TICKS = 2  # hysteresis: a cross pair re-quotes once it is 2 ticks (~4 bps) off its target
DEPTH_LEVELS = 10  # a dislocation's depth_usdt is spread over this many levels (what limit.depth@10 shows)


@dataclass(frozen=True)
class Dislocation:
    """One scripted dislocation of a cross pair."""

    symbol: str
    start_s: float
    duration_s: float
    size_bps: float
    depth_usdt: float | None = None

    def active_at(self, t_s: float) -> bool:
        return self.start_s <= t_s < self.start_s + self.duration_s


@dataclass
class CrossLink:
    """A cross pair and the USDT pairs whose mids imply its rate (quote_usdt None: the quote is USDT)."""

    pair: int
    base_usdt: int
    quote_usdt: int | None


def parse_cross(raw: dict[str, Any]) -> tuple[int, list[Dislocation]]:
    """The scenario's `cross` count and `dislocations` list; ScenarioError naming the entry."""
    n = raw.get("cross", 0)
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 5000:
        raise ScenarioError(f"cross: got {n!r}, expected an integer 0..5000 (bases that get cross-quote pairs)")
    items = raw.get("dislocations") or []
    if not isinstance(items, list):
        raise ScenarioError("dislocations: expected a list")
    out = []
    limits = {"start_s": (0.0, 1e9), "duration_s": (0.1, 1e6), "size_bps": (-5000.0, 5000.0), "depth_usdt": (0.01, 1e12)}
    for k, item in enumerate(items):
        where = f"dislocations[{k}]"
        if not isinstance(item, dict):
            raise ScenarioError(f"{where}: expected a mapping")
        extra = set(item) - set(limits) - {"symbol"}
        if extra:
            raise ScenarioError(f"{where}.{sorted(extra)[0]}: unknown field")
        if not isinstance(item.get("symbol"), str):
            raise ScenarioError(f"{where}.symbol: expected a cross pair's symbol such as 'KAZOBTC'")
        values: dict[str, float] = {}
        for name, (lo, hi) in limits.items():
            if name not in item:
                if name != "depth_usdt":
                    raise ScenarioError(f"{where}.{name}: required")
                continue
            v = item[name]
            if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
                raise ScenarioError(f"{where}.{name}: got {v!r}, expected a number {lo:g}..{hi:g}")
            values[name] = float(v)
        out.append(Dislocation(item["symbol"], **values))
    if out and n == 0:
        raise ScenarioError("dislocations: need cross > 0 (there are no cross pairs to dislocate)")
    return n, out


def build_cross(pairs: list[Pair], n: int, seed: int, new_pair: Any) -> tuple[list[Pair], list[CrossLink]]:
    """The quote pairs and the cross pairs of the n busiest online USDT bases (appended after `pairs`)."""
    by_symbol = {p.spec.symbol: p.index for p in pairs}
    rng = np.random.default_rng([seed, 77])
    extra: list[Pair] = []
    links: list[CrossLink] = []
    busy = float(pairs[0].spec.activity) if pairs else 1.0

    def add(base: str, quote: str, price_q: float, activity: float) -> Pair:
        usd = price_q * QUOTE_USD.get(quote, 1.0)
        notional = float(math.exp(rng.normal(math.log(60.0), 0.5)))
        price_arg = usd if quote == "BTC" else price_q  # sim.universe._new_pair divides BTC prices by 60,000 itself
        pair = new_pair(len(pairs) + len(extra), seed, base=base, quote=quote, status="1", api_tradable=True, market_order_allowed=True,
                        listing_ms=pairs[0].spec.listing_ms if pairs else 0, price_usd=price_arg, notional=notional * price_arg / usd,
                        activity=activity, noise=rng.random((2, 60)))  # fmt: skip
        extra.append(pair)
        by_symbol[pair.spec.symbol] = pair.index
        return pair

    for q, usd in QUOTE_USD.items():
        if f"{q}USDT" not in by_symbol:
            add(q, "USDT", usd, busy)
    if "ETHBTC" not in by_symbol:
        links.append(CrossLink(add("ETH", "BTC", QUOTE_USD["ETH"] / QUOTE_USD["BTC"], busy * 0.5).index, by_symbol["ETHUSDT"],
                               by_symbol["BTCUSDT"]))  # fmt: skip
    bases = [p for p in pairs if p.spec.quote == "USDT" and p.spec.status == "1" and p.spec.base not in QUOTE_USD][:n]
    for k, p in enumerate(bases):
        mid_usd = (p.bid_top + p.ask_top) / 2.0 * p.tick
        for quote, every in (("BTC", 1), ("USDC", 2), ("ETH", 3)):
            if k % every or f"{p.spec.base}{quote}" in by_symbol:
                continue
            cross = add(p.spec.base, quote, mid_usd / QUOTE_USD[quote], max(0.02, p.spec.activity * 0.05))  # cross pairs trade far less
            links.append(CrossLink(cross.index, p.index, by_symbol[f"{quote}USDT"]))
    return extra, links


def _mid(p: Pair) -> float:
    return (p.bid_top + p.ask_top) / 2.0 * p.tick


def _move(p: Pair, d: int, ch_b: dict[int, float], ch_a: dict[int, float]) -> None:
    """Move the ladder d ticks (up when d > 0), each level's size staying on its tick."""
    for _ in range(abs(d)):
        if d > 0:
            ch_a[p.ask_top] = 0.0
            p.asks.popleft()
            p.ask_top += 1
            q = level_size(p, len(p.asks), next_noise(p))
            p.asks.append(q)
            ch_a[p.ask_top + len(p.asks) - 1] = q
            p.bid_top += 1
            q = level_size(p, 0, next_noise(p))
            p.bids.appendleft(q)
            ch_b[p.bid_top] = q
            ch_b[p.bid_top - len(p.bids) + 1] = 0.0
            p.bids.pop()
        else:
            ch_b[p.bid_top] = 0.0
            p.bids.popleft()
            p.bid_top -= 1
            q = level_size(p, len(p.bids), next_noise(p))
            p.bids.append(q)
            ch_b[p.bid_top - len(p.bids) + 1] = q
            p.ask_top -= 1
            q = level_size(p, 0, next_noise(p))
            p.asks.appendleft(q)
            ch_a[p.ask_top] = q
            ch_a[p.ask_top + len(p.asks) - 1] = 0.0
            p.asks.pop()


class CrossMarkets:
    """Keeps every cross pair near its implied rate, plus the scripted dislocations."""

    def __init__(self, pairs: list[Pair], links: list[CrossLink], dislocations: list[Dislocation], seed: int) -> None:
        self.pairs = pairs
        self.links = links
        self.seed = seed
        index = {pairs[link.pair].spec.symbol: link for link in links}
        for d in dislocations:
            if d.symbol not in index:
                raise ScenarioError(f"dislocations: {d.symbol} is not a cross pair of this market (e.g. {next(iter(index), 'none')})")
        self.dislocations = dislocations
        self._offsets: tuple[int, list[float]] = (-1, [])
        self._dislocated: set[str] = set()

    def offsets(self, step: int) -> list[float]:
        """Each pair's own noise: a fraction of ±OFFSET_BPS, redrawn every OFFSET_EVERY steps."""
        block = step // OFFSET_EVERY
        if self._offsets[0] != block:
            us = [(stable_int(self.seed, "cross", link.pair, block) % 1_000_003) / 1_000_003.0 for link in self.links]
            self._offsets = (block, [(2.0 * u - 1.0) * OFFSET_BPS * 1e-4 for u in us])
        return self._offsets[1]

    def step(self, step: int, t_s: float, step_end_ms: int) -> list[PairUpdate]:
        """Move the cross pairs toward their implied rates after a market step; their book changes."""
        out = []
        active = {d.symbol: d for d in self.dislocations if d.active_at(t_s)}
        for k, (link, offset) in enumerate(zip(self.links, self.offsets(step), strict=True)):
            p = self.pairs[link.pair]
            dis = active.get(p.spec.symbol)
            if dis is None and (step + k) % CHECK_EVERY and p.spec.symbol not in self._dislocated:
                continue  # round robin: each pair re-quotes every CHECK_EVERY steps; one dislocated now or just before, every step
            implied = _mid(self.pairs[link.base_usdt]) / (_mid(self.pairs[link.quote_usdt]) if link.quote_usdt is not None else 1.0)
            target = implied * (1.0 + offset)
            if dis is not None:
                target *= 1.0 + dis.size_bps * 1e-4
            d = round(target / p.tick - (p.bid_top + p.ask_top) / 2.0)
            ch_b: dict[int, float] = {}
            ch_a: dict[int, float] = {}
            if abs(d) >= MIN_MOVE_TICKS:
                _move(p, d, ch_b, ch_a)
            if dis is not None and dis.depth_usdt is not None:
                # The side that pays holds depth_usdt over its top DEPTH_LEVELS levels while the dislocation lasts.
                qty = round(dis.depth_usdt / DEPTH_LEVELS / max(_mid(self.pairs[link.base_usdt]), 1e-18), p.qdec) or p.min_qty
                side, top, sign, changed = (p.bids, p.bid_top, -1, ch_b) if dis.size_bps > 0 else (p.asks, p.ask_top, 1, ch_a)
                for j in range(min(DEPTH_LEVELS, len(side))):
                    if side[j] != qty:
                        side[j] = qty
                        changed[top + sign * j] = qty
            if ch_b or ch_a:
                bids = [(round(t * p.tick, p.dec), q) for t, q in sorted(ch_b.items(), reverse=True)]
                asks = [(round(t * p.tick, p.dec), q) for t, q in sorted(ch_a.items())]
                first = p.version + 1
                p.version += len(bids) + len(asks)
                out.append(PairUpdate(p.spec.symbol, step_end_ms, [], DepthChange(first, p.version, bids, asks)))
        self._dislocated = set(active)
        return out

