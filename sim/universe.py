"""The market's universe: which pairs exist, their quotes, status, listing age, price and activity.

Why heavy-tailed and seeded: MEXC lists thousands of pairs whose trade rates span orders of
magnitude (a few carry most frames, most are nearly idle), and the scanner's sharding and scoring
must hold up under exactly that skew. Everything is drawn from the seed, so a seed names a
market; a few pairs are offline, not API-tradable, market-order-disabled or freshly listed, so
the filters that must skip them are exercised too. `rate` sets the expected total frames/s.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sim.book import LEVELS, Pair, level_size
from sim.noise import stable_int
from sim.scenario import ScenarioError
from sim.updates import STEP_MS

if TYPE_CHECKING:
    from sim.scenario import Scenario

MAX_TRADES_PER_S = 60.0
MAKER_PER_TRADE = 0.5  # maker book updates per trade, besides the ones trades cause
MAKER_FLOOR = 0.003  # per-step chance of a book update on an idle pair
_SYLLABLES = ("KA", "ZO", "MI", "RU", "TE", "XA", "LO", "PE", "QUI", "VY", "DO", "NE", "SA", "FU", "RI", "GON", "BEL", "TOR",
              "AR", "EX", "ON", "UM", "IO", "BIT", "COR", "DEX", "NOVA", "PIX")  # fmt: skip
QUOTES = ("USDT", "USDC", "BTC")


@dataclass(frozen=True)
class SymbolSpec:
    """A pair as exchangeInfo describes it, plus its mean trade rate (trades/s)."""

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


def symbol_names(n: int, seed: int) -> list[str]:
    """Deterministic, distinct, pronounceable uppercase base names."""
    rng = np.random.default_rng([seed, 991])
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n:
        k = int(rng.integers(2, 4))
        base = "".join(_SYLLABLES[int(i)] for i in rng.integers(0, len(_SYLLABLES), size=k))[:8]
        if base in seen or base in QUOTES:
            base = f"{base[:6]}{int(rng.integers(1, 100))}"
        if base not in seen and base not in QUOTES:
            seen.add(base)
            names.append(base)
    return names


def build_pairs(pairs: int, seed: int, start_ms: int, rate: float | None, scenario: Scenario | None) -> list[Pair]:
    """The seed's `pairs` pairs, busiest first, then the scenario's scripted listings."""
    rng = np.random.default_rng([seed, 1])
    raw = np.sort(rng.pareto(1.1, size=pairs) + 0.02)[::-1]  # heavy tail; rank 0 the busiest
    target = float(rate) if rate is not None else 3.0 * pairs
    activity = _scale_activity(raw, target)
    bases = symbol_names(pairs, seed)
    a = np.random.default_rng([seed, 2])
    u = a.random((pairs, 8))
    log_price = a.normal(-1.5, 2.6, size=pairs)
    notional = np.exp(a.normal(math.log(40.0), 0.7, size=pairs))
    book_noise = a.random((pairs, 2, LEVELS))
    out: list[Pair] = []
    for i, base in enumerate(bases):
        quote = "USDT" if i < 10 or u[i, 0] < 0.92 else ("USDC" if u[i, 1] < 0.6 else "BTC")
        status = "1" if i < 10 or u[i, 2] > 0.012 else ("2" if u[i, 3] < 0.5 else "3")
        if i < 10 or u[i, 4] > 0.012:
            listing = start_ms - int((30 + u[i, 5] * 370) * 86_400_000)
        else:  # a fresh listing: the ListingAge rule must hold it back for a while
            listing = start_ms - int((60 + u[i, 5] * 780) * 1000)
        usd = float(math.exp(max(-12.0, min(10.0, log_price[i]))))
        out.append(_new_pair(
            len(out),
            seed,
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
        ))  # fmt: skip
    if scenario is not None:
        busy = float(activity[min(pairs - 1, max(1, pairs // 20))])
        for n, lst in enumerate(scenario.listings):
            if any(p.spec.symbol == lst.symbol for p in out):
                raise ScenarioError(f"listings[{n}]: {lst.symbol} already exists in the market")
            quote = next(q for q in QUOTES if lst.symbol.endswith(q))
            r = np.random.default_rng([seed, 5, n])
            out.append(_new_pair(
                len(out),
                seed,
                base=lst.symbol[: -len(quote)],
                quote=quote,
                status="1",
                api_tradable=True,
                market_order_allowed=True,
                listing_ms=start_ms - int(lst.listed_s_before_start * 1000),
                price_usd=float(math.exp(r.normal(-3.0, 1.5))),
                notional=float(math.exp(r.normal(math.log(60.0), 0.5))),
                activity=busy,
                noise=r.random((2, LEVELS)),
            ))  # fmt: skip
    return out


def _new_pair(i: int, seed: int, *, base: str, quote: str, status: str, api_tradable: bool, market_order_allowed: bool,
              listing_ms: int, price_usd: float, notional: float, activity: float, noise: np.ndarray) -> Pair:  # fmt: skip
    """Pair number i with its precision, target spread and a full book around its start price."""
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
    key = stable_int(seed, "pair", base, quote)
    pair = Pair(
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
        pair.bids.append(level_size(pair, j, 0.4 + 1.2 * float(noise[0, j])))
        pair.asks.append(level_size(pair, j, 0.4 + 1.2 * float(noise[1, j])))
    return pair


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
