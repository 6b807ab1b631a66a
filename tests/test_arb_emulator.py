"""End to end on the emulator's cross markets, on exchange time (perf/arb_lockstep.py): a scripted
dislocation of one cycle gives exactly one stored opportunity for that cycle with the peak the
books show; a consistent market gives none; stale or one-sided legs never give one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from common.config import Config
from core.reference.cycles import ReferenceCycleBook
from perf.arb_lockstep import ArbLockstep
from sim.market import Market
from sim.scenario import scenario_from_mapping
from store.arb import ArbStore
from venues.mexc.arb_market import arb_channel

START_MS = 1_767_225_600_000


def _target() -> str:
    """The busiest base's BTC-quoted cross pair of the test market."""
    market = Market(200, 7, START_MS, scenario_from_mapping({"cross": 12}))
    return next(s.symbol for s in market.symbols[200:] if s.quote == "BTC" and s.base not in ("ETH",))


def _run(tmp_path: Path, scenario: dict[str, Any], seconds: float, config: Config | None = None,
         drop: Any = None, on_step: Any = None) -> tuple[ArbLockstep, list]:  # fmt: skip
    lock = ArbLockstep(config or Config(), tmp_path, scenario=scenario, start_ms=START_MS)
    lock.filter = drop
    lock.run(seconds, on_step=on_step(lock) if on_step else None)
    lock.stop()
    return lock, ArbStore(tmp_path).since(0)


def test_a_scripted_dislocation_is_one_episode_with_the_right_peak(tmp_path: Path) -> None:
    target = _target()
    base = target.removesuffix("BTC")
    want_text = f"USDT→{base}→BTC→USDT (buy {base}USDT, sell {target}, sell BTCUSDT)"
    scenario = {"cross": 12, "dislocations": [{"symbol": target, "start_s": 8, "duration_s": 3, "size_bps": 60, "depth_usdt": 2000}]}
    expected: list[float] = []

    def reference(lock: ArbLockstep) -> Any:
        ids = lock.watch.pair_ids
        legs = [(ids[f"{base}USDT"], True), (ids[target], False), (ids["BTCUSDT"], False)]
        ref = ReferenceCycleBook(len(ids), [legs], lock.watch.book.min_profit_bps, lock.watch.book.min_start, 10**9)
        for p in {p for p, _ in legs}:
            ref.set_rules(p, 0.0005, next(m.step for m in lock.markets if m.symbol == lock.watch.symbols[p]))

        def step(now_ms: int) -> None:
            for p in {p for p, _ in legs}:
                _, bids, asks = lock.market.depth_snapshot(lock.watch.symbols[p], 10)
                ref.update(p, now_ms, bids, asks)
            expected.append(ref.result(0)[2] if ref.result(0)[0] == 1 else float("-inf"))

        return step

    lock, rows = _run(tmp_path, scenario, 14.0, on_step=reference)
    assert [o.cycle for o in rows] == [want_text], [o.cycle for o in rows]
    (opp,) = rows
    assert START_MS + 8_000 <= opp.start_ms <= START_MS + 8_200 and START_MS + 11_000 <= opp.end_ms <= START_MS + 11_200
    assert opp.ended_by == "below" and opp.legs == [(f"{base}USDT", "buy"), (target, "sell"), ("BTCUSDT", "sell")]
    assert 25.0 < opp.peak_bps < 60.0 - 15.0  # 60 bps rich, less three fees and the legs' spreads
    assert opp.peak_bps == pytest.approx(max(expected), abs=0.5)
    assert 0.7 * 2000 < opp.size_usdt <= 2000 * 1.05 and opp.size_bps >= 5.0 and max(opp.leg_ages_ms) < 5000
    assert lock.watch.counts["opportunities"] == 1 and lock.watch.counts["stored"] == 1


def test_a_consistent_market_has_no_opportunity(tmp_path: Path) -> None:
    lock, rows = _run(tmp_path, {"cross": 12}, 30.0)
    assert rows == [] and lock.frames > 500
    best = lock.watch.book.best(1)
    assert best and best[0][1] < 0.0  # the best cycle is still below zero after fees


@pytest.mark.parametrize("how", ["stale", "one_sided_buy_leg", "one_sided_sell_leg"])
def test_stale_or_one_sided_legs_never_give_an_opportunity(tmp_path: Path, how: str) -> None:
    target = _target()
    base = target.removesuffix("BTC")
    scenario = {"cross": 12, "dislocations": [{"symbol": target, "start_s": 8, "duration_s": 3, "size_bps": 60, "depth_usdt": 2000}]}

    def drop(symbol: str, bids: list, asks: list) -> tuple[list, list] | None:
        if how == "stale" and symbol == f"{base}USDT":
            return None  # no push after its first: the leg ages past max_leg_age_ms
        if how == "one_sided_buy_leg" and symbol == f"{base}USDT":
            return bids, []  # the leg that buys the base has no asks
        if how == "one_sided_sell_leg" and symbol == "BTCUSDT":
            return [], asks  # the leg that sells BTC has no bids
        return bids, asks

    lock, rows = _run(tmp_path, scenario, 14.0, drop=drop)
    assert rows == [] and lock.watch.counts["opportunities"] == 0


def test_a_lost_link_ends_the_open_opportunity_as_a_gap(tmp_path: Path) -> None:
    target = _target()
    scenario = {"cross": 12, "dislocations": [{"symbol": target, "start_s": 8, "duration_s": 3, "size_bps": 60, "depth_usdt": 2000}]}
    lock = ArbLockstep(Config(), tmp_path, scenario=scenario, start_ms=START_MS)
    lock.run(9.5)
    assert len(lock.watch.episodes.open) == 1
    lock.watch._on_disconnected(0, [arb_channel(target, "limit10")])
    assert lock.watch.episodes.open == {}
    lock.run(0.5)  # the pair's next push is a fresh book: nothing reopens from a half-known cycle until then
    lock.stop()
    first = ArbStore(tmp_path).since(0)
    assert [o.ended_by for o in sorted(first, key=lambda o: o.start_ms)][0] == "gap"
