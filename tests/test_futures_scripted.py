"""The emulator's scripted anomalies give exactly the expected episodes per strategy, on exchange time.

The futures market (sim/futures_market.py) is stepped in-process, 200 ms at a time, exactly as the
emulator's server steps it; its push.tickers (every 2 s) and push.depth.full frames go as JSON text
through the service's own parser and feed (venues/mexc/futures_feed.py) into the detector
(detectors/futures.py), with the books picked by the futures child's own rule
(supervisor/futures.py book_candidates). No sockets and no wall clock, so the verdict does not
depend on how busy the machine is (tests/test_futures_emulator.py covers the sockets and cards).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from common.futures_config import FuturesConfig
from detectors.futures import FairPriceDetector
from detectors.futures_episodes import Episode
from sim.futures_market import FuturesMarket
from sim.futures_scenario import FuturesAnomaly
from supervisor.futures import book_candidates
from venues.mexc.futures_feed import FuturesFeed

START_MS = 1_796_000_000_000
TICKERS_EVERY_MS = 2000


def _run(anomalies: list[FuturesAnomaly], seconds: int, contracts: int = 12, seed: int = 5) -> tuple[list[Episode], list[str]]:
    """Every finished episode (shutdown-cut ones included) and the market's symbols."""
    market = FuturesMarket(contracts, seed, START_MS, anomalies)
    detector = FairPriceDetector(FuturesConfig())
    ended: list[Episode] = []
    ratios: dict[str, float] = {}

    def collect(events: Any) -> None:
        ended.extend(e.episode for e in events or () if e.kind == "ended")

    def on_ticker(symbol: str, t_ms: int, last: float, fair: float, index: float) -> None:
        ratios[symbol] = last / fair
        collect(detector.on_ticker(symbol, t_ms, last, fair, index))

    feed = FuturesFeed("ws://127.0.0.1:9/edge", on_ticker, on_book=detector.on_book)
    index = {c.symbol: i for i, c in enumerate(market.contracts)}
    last_tickers = -(10**18)
    books: list[str] = []
    end_ms = START_MS + seconds * 1000
    while market._now_ms < end_ms:
        for step in market.advance(market._now_ms + 200):
            ts = step.ts_ms
            for i, (version, asks, bids) in step.full.items():
                if market.contracts[i].symbol in books:
                    feed._handle(json.dumps({"channel": "push.depth.full", "symbol": market.contracts[i].symbol, "ts": ts,
                                             "data": {"asks": asks[:20], "bids": bids[:20], "version": version}}))  # fmt: skip
            if step.second and ts - last_tickers >= TICKERS_EVERY_MS:
                last_tickers = ts
                feed._handle(json.dumps({"channel": "push.tickers", "ts": ts, "data": [market.ticker_brief(i) for i in range(market.n)]}))
                books = book_candidates(ratios, detector.config.strategy4)[:39]
                feed.set_books(books)
                market.watched = {index[s] for s in books}
    collect(detector.close_all(market._now_ms, "shutdown"))
    return ended, [c.symbol for c in market.contracts]


def _strategies(episodes: list[Episode]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for ep in episodes:
        out.setdefault(ep.symbol, []).append(ep.strategy)
    return {s: sorted(v) for s, v in out.items()}


def test_each_scripted_anomaly_gives_exactly_the_strategies_its_shape_satisfies() -> None:
    anomalies = [
        # 60 % over fair with a spike, on a thick book, after strategy 3's 60 s window has filled: all four.
        FuturesAnomaly(None, 3, start_s=90, duration_s=30, premium_pct=60, spike=True, book="thick"),
        # 40 % with a spike on a thin book: only strategy 2 (1.4 < 1.5 for 1 and 4; 1.4x its baseline < 1.5 for 3).
        FuturesAnomaly(None, 6, start_s=95, duration_s=20, premium_pct=40, spike=True, book="thin"),
        # 60 % reached by a slow 60 s climb on a thin book: strategy 1 only (no 1.2x jump in 5 s, the
        # climb lifts its own 60 s baseline, no thick book).
        FuturesAnomaly(None, 8, start_s=90, duration_s=30, premium_pct=60, spike=False, book="thin"),
    ]
    episodes, symbols = _run(anomalies, seconds=200)
    got = _strategies(episodes)
    assert got == {symbols[3]: [1, 2, 3, 4], symbols[6]: [2], symbols[8]: [1]}, got
    for ep in episodes:
        assert ep.ended_by == "condition"
        hold = next(a for a in anomalies if symbols[a.rank] == ep.symbol)  # type: ignore[index]
        assert ep.peak_ratio == pytest.approx(hold.ratio, rel=0.02)  # the scripted premium, within a tick and the noise
        assert START_MS + hold.start_s * 1000 <= ep.start_ms <= START_MS + (hold.start_s + hold.approach_s + hold.duration_s) * 1000  # type: ignore[operator]


def test_ordinary_noise_gives_no_episode_with_the_shipped_thresholds() -> None:
    episodes, _ = _run([], seconds=400, contracts=30, seed=11)
    assert episodes == []
