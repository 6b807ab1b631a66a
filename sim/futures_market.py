"""The futures market: perpetual contracts stepped every 200 ms, deterministic from a seed.

What is modelled (per contract):
- index price: a geometric random walk, one step per exchange second (the spot exchanges'
  weighted price, which the perpetual never moves);
- fair (mark) price, as MEXC describes it: fair = index × (1 + funding basis), with funding
  basis = funding rate × (time until the next settlement / settlement interval). The basis is
  small (|rate| ≤ 0.3 %) and decays linearly to 0 at every settlement (each 8 h, 4 h on some
  contracts); the funding rate itself wanders slowly;
- last price: the price of the last trade. Trades happen at the best bid or ask of a book placed
  around fair × (1 + noise), the noise an AR(1) of 0.04 % (thick book) to 0.3 % (thin book)
  standard deviation, clipped to ±3 %: ordinary noise never comes near a last/fair of 1.2;
- a 20-level book (sim/futures_book.py), thick (tight spread, deep) or thin (wide, shallow).
Scripted anomalies (sim/futures_scenario.py) move the book's center away from fair; in their hold
window the book's best bid (best ask, for a dip) is kept at or beyond fair × ratio and the
contract trades every step, so the last price holds the scripted ratio.

Why fixed 200 ms steps with a per-step RNG keyed by (seed, step index), as the spot market does:
the server advances from wall time, and the same seed must give the same market however
advance() calls are chunked and whoever watches. 200 ms is push.depth's documented cadence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.futures_book import LEVELS, FuturesBooks, Level
from sim.futures_scenario import FuturesAnomaly, resolve_anomalies
from sim.futures_universe import STATE_ENABLED, ContractSpec, build_contracts
from sim.noise import stable_int

STEP_MS = 200
SECOND_MS = 1000
MAX_TRADES_PER_STEP = 6
NOISE_CLIP = 0.03
_BOOK = {  # thick / thin: (spread ticks, contracts per level, share of levels refreshed per step, noise sd)
    True: (1.0, 4000.0, 0.25, 0.0004),
    False: (6.0, 40.0, 0.04, 0.003),
}


@dataclass
class FuturesStep:
    """What one 200 ms step produced, for the WebSocket side to push."""

    ts_ms: int
    trades: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # contract -> push.deal items
    depth: dict[int, tuple[int, list[Level], list[Level]]] = field(default_factory=dict)  # watched -> (version, asks, bids) diff
    full: dict[int, tuple[int, list[Level], list[Level]]] = field(default_factory=dict)  # watched -> (version, top asks, bids)
    fair_changed: list[int] = field(default_factory=list)
    index_changed: list[int] = field(default_factory=list)
    second: bool = False  # the step closed an exchange second


class FuturesMarket:
    """Contracts, prices, books and scripted anomalies; see the module docstring."""

    def __init__(self, contracts: int, seed: int, start_ms: int, anomalies: list[FuturesAnomaly] | None = None) -> None:
        self.seed = seed
        self.start_ms = start_ms - start_ms % SECOND_MS
        self._now_ms = self.start_ms
        self._step = 0
        self.contracts: list[ContractSpec] = build_contracts(contracts, seed, self.start_ms)
        self._by_symbol = {c.symbol: i for i, c in enumerate(self.contracts)}
        n = len(self.contracts)
        self.n = n
        r = np.random.default_rng([seed, 4403])
        self.unit = np.array([c.price_unit for c in self.contracts])
        self.scale = np.array([c.price_scale for c in self.contracts], dtype=np.int64)
        self.thick = np.array([c.thick for c in self.contracts], dtype=bool)
        self.enabled = np.array([c.state == STATE_ENABLED for c in self.contracts], dtype=bool)
        self.lam = np.array([c.activity for c in self.contracts]) * STEP_MS / 1000.0
        self.size = np.array([c.contract_size for c in self.contracts])
        self.cycle_ms = np.array([c.funding_cycle_h * 3_600_000 for c in self.contracts], dtype=np.int64)
        self.index = np.array([c.start_price for c in self.contracts])
        self.sigma = 0.0004 + 0.0012 * r.random(n)  # index volatility per second
        self.funding = np.clip(0.0001 + r.normal(0.0, 0.0002, n), -0.003, 0.003)
        self.noise = np.zeros(n)
        self.fair = self.index.copy()
        self.index_r = self._round(self.index)
        self.fair_r = self._round(self.fair)
        self._set_fair(self.start_ms)
        self.last = self.fair_r.copy()
        self.open24 = self._round(self.last * np.exp(r.normal(0.0, 0.04, n)))
        self.high24 = np.maximum(self.open24, self.last) * (1.0 + 0.03 * r.random(n))
        self.low24 = np.minimum(self.open24, self.last) * (1.0 - 0.03 * r.random(n))
        self.level_size = np.where(self.thick, _BOOK[True][1], _BOOK[False][1]) * (0.5 + r.random(n))
        self.vol24 = np.floor(self.lam * 5 * 86_400 * self.level_size * 0.05)
        self.amount24 = self.vol24 * self.size * self.last
        self.hold_vol = np.floor(self.vol24 * (0.2 + 0.3 * r.random(n)))
        self.trade_id = np.array([stable_int(seed, "fut-trade", c.symbol) % 10**9 for c in self.contracts], dtype=np.int64)
        version0 = np.array([10**8 + stable_int(seed, "fut-book", c.symbol) % 10**9 for c in self.contracts], dtype=np.int64)
        self.books = FuturesBooks(self.unit, self.scale, version0)
        self._book_key = np.zeros(n, dtype=np.int8)  # 1 thick, 2 thin: a change rebuilds the book
        self.traded_at = np.full(n, -1, dtype=np.int64)  # exchange ms of the last trade
        self.anomalies: list[FuturesAnomaly] = []
        for an in anomalies or []:
            self.add_anomaly(an)
        self.watched: set[int] = set()  # contracts someone gets push.depth / push.depth.full for
        self._step_book(np.random.default_rng([seed, 4404]), self.start_ms)

    # --- interface -------------------------------------------------------------------------------

    def now_ms(self) -> int:
        """Exchange time: the end of the last step taken."""
        return self._now_ms

    def index_of(self, symbol: str) -> int | None:
        return self._by_symbol.get(symbol)

    def add_anomaly(self, anomaly: FuturesAnomaly) -> dict[str, Any]:
        """Script an anomaly (times from the market's start); returns its timeline."""
        resolve_anomalies([anomaly], [c.symbol for c in self.contracts])
        self.anomalies.append(anomaly)
        return anomaly.describe(self.contracts[anomaly.index].symbol, self.start_ms, self._now_ms)

    def script_anomaly(self, symbol: str, *, in_s: float, duration_s: float, premium_pct: float, spike: bool = False,
                       approach_s: float | None = None, decay_s: float = 10.0, book: str | None = None) -> dict[str, Any]:  # fmt: skip
        """Script an anomaly starting in_s exchange seconds from now (what /_sim/futures/anomaly calls)."""
        from sim.futures_scenario import anomaly_from_mapping

        item: dict[str, Any] = {"symbol": symbol, "start_s": (self._now_ms - self.start_ms) / 1000.0 + in_s,
                                "duration_s": duration_s, "premium_pct": premium_pct, "spike": spike, "decay_s": decay_s, "book": book}  # fmt: skip
        if approach_s is not None:
            item["approach_s"] = approach_s
        return self.add_anomaly(anomaly_from_mapping(item, "anomaly"))

    def state(self) -> dict[str, Any]:
        return {
            "exchange_ms": self._now_ms,
            "contracts": self.n,
            "steps": self._step,
            "anomalies": [a.describe(self.contracts[a.index].symbol, self.start_ms, self._now_ms) for a in self.anomalies],
        }

    def advance(self, to_ms: int) -> list[FuturesStep]:
        """Step up to exchange time to_ms; one record per 200 ms step, in time order."""
        out: list[FuturesStep] = []
        while self._now_ms + STEP_MS <= to_ms:
            out.append(self._run_step())
        return out

    # --- prices ------------------------------------------------------------------------------------

    def _round(self, prices: np.ndarray) -> np.ndarray:
        return np.round(np.round(prices / self.unit) * self.unit, self.scale.max() if self.n else 0)

    def _set_fair(self, ts_ms: int) -> None:
        """fair = index × (1 + funding rate × time to the next settlement / interval)."""
        left = self.cycle_ms - (ts_ms % self.cycle_ms)
        self.fair = self.index * (1.0 + self.funding * left / self.cycle_ms)
        self.fair_r = self._round(self.fair)

    def _run_step(self) -> FuturesStep:
        k = self._step
        ts = self._now_ms + STEP_MS
        rng = np.random.default_rng([self.seed, 4405, k])
        step = FuturesStep(ts_ms=ts, second=ts % SECOND_MS == 0)
        if step.second:
            index_before, fair_before = self.index_r.copy(), self.fair_r.copy()
            self.index *= np.exp(self.sigma * rng.standard_normal(self.n))
            self.funding = np.clip(self.funding + rng.normal(0.0, 0.000002, self.n), -0.003, 0.003)
            self.index_r = self._round(self.index)
            self._set_fair(ts)
            step.index_changed = np.flatnonzero(self.index_r != index_before).tolist()
            step.fair_changed = np.flatnonzero(self.fair_r != fair_before).tolist()
        before = {i: (int(self.books.version[i]), self.books.snapshot(i)) for i in sorted(self.watched)}
        forced = self._step_book(rng, ts)
        self._trade(rng, ts, forced, step)
        for i, (version0, snap) in before.items():
            version = int(self.books.version[i])
            if version != version0:
                step.depth[i] = (version, *self.books.diff(i, snap))
                step.full[i] = (version, *self.books.levels(i, LEVELS))
        self._now_ms = ts
        self._step += 1
        return step

    def _step_book(self, rng: np.random.Generator, ts: int) -> np.ndarray:
        """Place every book for this step; returns the anomaly mask (contracts that must trade)."""
        a = 0.97
        sd = np.where(self.thick, _BOOK[True][3], _BOOK[False][3])
        self.noise = np.clip(a * self.noise + sd * math.sqrt(1 - a * a) * rng.standard_normal(self.n), -NOISE_CLIP, NOISE_CLIP)
        center = self.fair * (1.0 + self.noise)
        thick = self.thick.copy()
        floor = np.zeros(self.n)  # ticks the best bid must reach (premium) ...
        ceil = np.full(self.n, np.inf)  # ... or the best ask must not pass (discount), while holding
        forced = np.zeros(self.n, dtype=bool)
        for an in self.anomalies:
            begin, hold_from, hold_until, end = an.bounds_ms(self.start_ms)
            if not begin <= ts < end:
                continue
            i = an.index
            if ts < hold_from:
                share = (ts - begin + STEP_MS) / max(STEP_MS, hold_from - begin)
            elif ts < hold_until:
                share = 1.0
            else:
                share = 1.0 - (ts - hold_until) / max(STEP_MS, end - hold_until)
            premium = (an.ratio - 1.0) * min(1.0, max(0.0, share))
            center[i] = self.fair[i] * (1.0 + premium) * (1.0 + abs(self.noise[i]) * (1 if premium > 0 else -1))
            if an.book is not None:
                thick[i] = an.book == "thick"
            forced[i] = bool(self.enabled[i])
            if hold_from <= ts < hold_until:
                if an.ratio > 1:
                    floor[i] = self._ratio_ticks(i, an.ratio, up=True)
                else:
                    ceil[i] = self._ratio_ticks(i, an.ratio, up=False)
        spread = np.where(thick, _BOOK[True][0], _BOOK[False][0])
        level = np.where(thick, _BOOK[True][1], _BOOK[False][1]) * (self.level_size / np.where(self.thick, _BOOK[True][1], _BOOK[False][1]))
        churn = np.where(thick, _BOOK[True][2], _BOOK[False][2])
        # Keep the best bid at or above the floor (the best ask at or below the ceiling) while holding;
        # shifting the center by whole ticks moves the book's best prices by exactly as many.
        mid = center / self.unit
        mid += np.maximum(0.0, floor - np.floor(mid - spread / 2.0))
        mid -= np.maximum(0.0, np.floor(mid - spread / 2.0) + spread - ceil)
        key = np.where(thick, 1, 2).astype(np.int8)
        rebuild = key != self._book_key
        self._book_key = key
        fresh_u = rng.random((self.n, 2, LEVELS))
        change_u = rng.random((self.n, 2, LEVELS))
        self.books.place(mid, spread, level, churn, fresh_u, change_u, rebuild)
        return forced

    def _ratio_ticks(self, i: int, ratio: float, *, up: bool) -> int:
        """The nearest tick whose published price / published fair is >= ratio (up) or <= ratio, in float terms."""
        fair = float(self.fair_r[i])
        ticks = math.ceil(fair * ratio / float(self.unit[i])) if up else math.floor(fair * ratio / float(self.unit[i]))
        step = 1 if up else -1
        while (self.books.price(i, ticks) / fair < ratio) if up else (self.books.price(i, ticks) / fair > ratio):
            ticks += step
        return ticks

    def _trade(self, rng: np.random.Generator, ts: int, forced: np.ndarray, step: FuturesStep) -> None:
        counts = np.minimum(MAX_TRADES_PER_STEP, rng.poisson(self.lam))
        counts = np.where(forced, np.maximum(counts, 2), counts) * self.enabled
        sides = rng.random((self.n, MAX_TRADES_PER_STEP))
        vols = rng.pareto(1.5, (self.n, MAX_TRADES_PER_STEP))
        opens = rng.integers(1, 4, (self.n, MAX_TRADES_PER_STEP))
        for i in np.flatnonzero(counts):
            deals = []
            bid, ask = self.books.price(i, int(self.books.bb[i])), self.books.price(i, int(self.books.ba[i]))
            for j in range(int(counts[i])):
                buy = sides[i, j] < 0.5
                price = ask if buy else bid
                vol = 1 + int(self.level_size[i] * 0.02 * vols[i, j])
                self.trade_id[i] += 1
                t = ts - STEP_MS + 1 + (j * (STEP_MS - 1)) // int(counts[i])
                deals.append({"p": price, "v": vol, "T": 1 if buy else 2, "O": int(opens[i, j]), "M": 2, "t": t, "i": int(self.trade_id[i])})
                self.vol24[i] += vol
                self.amount24[i] += vol * self.size[i] * price
                self.hold_vol[i] = max(0.0, self.hold_vol[i] + (vol if opens[i, j] == 1 else -vol if opens[i, j] == 2 else 0))
            self.last[i] = deals[-1]["p"]
            self.high24[i] = max(self.high24[i], max(d["p"] for d in deals))
            self.low24[i] = min(self.low24[i], min(d["p"] for d in deals))
            self.traded_at[i] = ts
            step.trades[int(i)] = deals

    # --- views (the fields REST and WebSocket answers carry) -----------------------------------------

    def _limits(self, i: int) -> tuple[float, float]:
        rate = 0.1 if self.contracts[i].thick else 0.3  # bid/askLimitPriceRate in contract/detail
        return self.books.price(i, round(self.index[i] * (1 + rate) / self.unit[i])), self.books.price(i, round(self.index[i] * (1 - rate) / self.unit[i]))

    def ticker_brief(self, i: int) -> dict[str, Any]:
        """One push.tickers item: the documented fields only (bid1/ask1 are UNCONFIRMED there)."""
        last, open24 = float(self.last[i]), float(self.open24[i])
        max_bid, min_ask = self._limits(i)
        return {
            "symbol": self.contracts[i].symbol,
            "timestamp": self._now_ms,
            "lastPrice": last,
            "volume24": int(self.vol24[i]),
            "amount24": round(float(self.amount24[i]), 4),
            "riseFallRate": round(last / open24 - 1.0, 4),
            "fairPrice": float(self.fair_r[i]),
            "indexPrice": float(self.index_r[i]),
            "maxBidPrice": max_bid,
            "minAskPrice": min_ask,
            "lower24Price": self.books.price(i, round(self.low24[i] / self.unit[i])),
            "high24Price": self.books.price(i, round(self.high24[i] / self.unit[i])),
        }

    def ticker(self, i: int) -> dict[str, Any]:
        """push.ticker's data and GET /api/v1/contract/ticker's record (without the REST-only extras)."""
        brief = self.ticker_brief(i)
        return {
            "contractId": self.contracts[i].contract_id,
            **brief,
            "bid1": self.books.price(i, int(self.books.bb[i])),
            "ask1": self.books.price(i, int(self.books.ba[i])),
            "holdVol": int(self.hold_vol[i]),
            "fundingRate": round(float(self.funding[i]), 6),
            "riseFallValue": self.books.price(i, round((brief["lastPrice"] - float(self.open24[i])) / self.unit[i])),
        }

    def depth(self, i: int, limit: int = LEVELS) -> dict[str, Any]:
        """GET /api/v1/contract/depth's data: {asks, bids, version, timestamp}, on push.depth's version axis."""
        asks, bids = self.books.levels(i, limit)
        return {"asks": asks, "bids": bids, "version": int(self.books.version[i]), "timestamp": self._now_ms}
