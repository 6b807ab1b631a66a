"""The compiled engine on real emulator frames equals the plain-Python pipeline, row for row."""

from __future__ import annotations

import math

import numpy as np

from core.engine import ShardEngine
from core.reference.engine import ReferenceEngine
from core.ring import FeatureRing
from core.rowspec import FEATURE_ROW_DTYPE, ROW_CANDIDATE
from core.statsspec import StatsBlock
from sim.faults import Faults
from sim.market import build_market
from sim.scenario import load_scenario
from sim.server import scenario_path
from sim.ws_server import Limits, WsEmulator

START = 1_790_000_040_000


def _frames(pairs: int, seconds: int, gap_symbol: str | None = None) -> tuple[list[bytes], object]:
    market = build_market(pairs, 21, START, load_scenario(scenario_path("pumps.yaml")), rate=pairs * 4)
    ws = WsEmulator(market, Faults(), Limits())
    snapshots = {s.symbol: market.depth_snapshot(s.symbol, 1000) for s in market.symbols}
    frames: list[bytes] = []
    for step, update in enumerate(market.advance(START + seconds * 1000)):
        if update.trades:
            frames.append(ws.frames.deals(f"spot@public.aggre.deals.v3.api.pb@100ms@{update.symbol}", update))
        if update.depth is not None:
            if gap_symbol == update.symbol and step % 50 == 7:
                continue  # a lost diff: the engine must ask for a resync of this pair only
            frames.append(ws.frames.depth(f"spot@public.aggre.depth.v3.api.pb@100ms@{update.symbol}", update))
    frames.insert(len(frames) // 3, b"\x0a\x05abc")  # one malformed frame: counted, skipped
    return frames, (market, snapshots)


def test_engine_rows_equal_the_reference_pipeline() -> None:
    frames, (market, snapshots) = _frames(14, 400)
    ring = FeatureRing.create(100_000)
    stats = StatsBlock.create()
    try:
        engine = ShardEngine(ring, stats)
        ref = ReferenceEngine()
        for pair_id, spec in enumerate(market.symbols, start=1):
            for e in (engine, ref):
                e.add_pair(pair_id, spec.symbol)
                e.set_listing(spec.symbol, spec.listing_ms)
                e.seed_klines(spec.symbol, [(int(r[0]), float(r[5]), float(r[7])) for r in market.klines(spec.symbol, "5m", None, START - 1, 72)])
                assert e.apply_snapshot(spec.symbol, *snapshots[spec.symbol])
        for n, frame in enumerate(frames):
            assert engine.on_frame(frame, 1000 + n) == ref.on_frame(frame, 1000 + n)
            if n % 3 == 0:  # the same push again, as from a second link: must change nothing
                assert engine.on_frame(frame, 1000 + n) == ref.on_frame(frame, 1000 + n)
        engine.tick()
        ref.tick()
        rows = ring.read_new()
        assert len(rows) == len(ref.rows) > 100
        assert rows["seq"].tolist() == list(range(1, len(rows) + 1))
        for got, want in zip(rows, ref.rows, strict=True):
            for name in FEATURE_ROW_DTYPE.names:
                if name == "seq":
                    continue
                a, b = got[name], want[name]
                assert a == b or (isinstance(b, float) and math.isnan(b) and math.isnan(a)), name
        view = stats.view
        assert int(view["decode_errors"]) == 1 == ref.decode_errors
        assert int(view["frames_total"]) == len(frames) + len(range(0, len(frames), 3))
        assert int(view["duplicate_frames"]) > 0
        assert int(view["rows_written"]) == len(rows)
        pumped = market.symbols[11].symbol
        pump_rows = rows[rows["pair_id"] == 12]
        assert np.nanmax(pump_rows["pm"]) > 0.02, pumped
        assert np.nanmax(pump_rows["vsr"]) > 5
        # The pump is scored before its bars close: candidate rows, stamped with the push that
        # showed it, each followed by the row written when that bar closed (stamped with the bar's
        # end, or a later second when the pair's next event came more than a second later).
        candidate = (rows["flags"] & ROW_CANDIDATE) != 0
        assert int(view["candidate_rows"]) == int(candidate.sum()) > 0
        # Exactly the three scripted pumps (ranks 5, 8, 11); the volume-only spikes never pass the gate.
        assert set(rows[candidate]["pair_id"].tolist()) == {6, 9, 12}
        same_second = 0
        for cand in rows[candidate]:
            later = rows[(rows["pair_id"] == cand["pair_id"]) & ~candidate & (rows["seq"] > cand["seq"])]
            if not len(later):
                continue  # the pair's last open bar: not closed when the frames ran out
            closing = later[0]
            assert closing["row_time_ms"] >= cand["row_time_ms"] and closing["recv_ns"] >= cand["recv_ns"]
            same_second += int(closing["row_time_ms"] == cand["row_time_ms"])
        assert same_second > 0.9 * candidate.sum()  # a pumping pair trades every second: mostly the same id
    finally:
        ring.close()
        ring.unlink()
        stats.close()
        stats.unlink()


def test_depth_gap_asks_for_a_resync_of_that_pair_only() -> None:
    victim = build_market(14, 21, START).symbols[0].symbol
    frames, (market, snapshots) = _frames(14, 60, gap_symbol=victim)
    ring = FeatureRing.create(10_000)
    stats = StatsBlock.create()
    try:
        engine = ShardEngine(ring, stats)
        for pair_id, spec in enumerate(market.symbols, start=1):
            engine.add_pair(pair_id, spec.symbol)
            engine.apply_snapshot(spec.symbol, *snapshots[spec.symbol])
        needs = sum(engine.on_frame(f, 0) for f in frames)
        resyncs = engine.take_resyncs()
        assert needs >= 1 and set(resyncs) == {victim}
        assert int(stats.view["gaps"]) == len(resyncs)
        assert not engine.pair(victim).book.synced
        assert all(engine.pair(s.symbol).book.synced for s in market.symbols if s.symbol != victim)
    finally:
        ring.close()
        ring.unlink()
        stats.close()
        stats.unlink()


def test_candidate_rows_can_be_switched_off() -> None:
    frames, (market, snapshots) = _frames(14, 200)
    counts = []
    for candidates in (True, False):
        ring, stats = FeatureRing.create(100_000), StatsBlock.create()
        try:
            engine = ShardEngine(ring, stats, candidates=candidates)
            for pair_id, spec in enumerate(market.symbols, start=1):
                engine.add_pair(pair_id, spec.symbol)
                engine.seed_klines(spec.symbol, [(int(r[0]), float(r[5]), float(r[7])) for r in market.klines(spec.symbol, "5m", None, START - 1, 72)])
                engine.apply_snapshot(spec.symbol, *snapshots[spec.symbol])
            for n, frame in enumerate(frames):
                engine.on_frame(frame, 1000 + n)
            engine.tick()
            rows = ring.read_new()
            counts.append((int(((rows["flags"] & ROW_CANDIDATE) != 0).sum()), int(((rows["flags"] & ROW_CANDIDATE) == 0).sum())))
        finally:
            ring.close()
            ring.unlink()
            stats.close()
            stats.unlink()
    (cand_on, closed_on), (cand_off, closed_off) = counts
    assert cand_on > 0 and cand_off == 0
    assert closed_on == closed_off  # the closing rows do not depend on the early ones
