"""The shared-memory ring never loses or duplicates a row without counting it, across processes too."""

from __future__ import annotations

import multiprocessing as mp
import select
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.reference.ring import ReferenceRing
from core.ring import FeatureRing, shard_stats_layout
from core.rowspec import FEATURE_ROW_DTYPE
from core.shm import create_segment, unlink_segment
from core.statsspec import LINK_DTYPE, MAX_LINKS, STATS_DTYPE, StatsBlock

FORK = mp.get_context("fork")


@pytest.fixture
def ring_factory():  # type: ignore[no-untyped-def]
    made: list[FeatureRing] = []

    def make(capacity: int) -> FeatureRing:
        ring = FeatureRing.create(capacity)
        made.append(ring)
        return ring

    yield make
    for ring in made:
        ring.close()
        ring.unlink()


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 16),
    st.lists(st.one_of(st.tuples(st.just("push"), st.integers(0, 1000)), st.tuples(st.just("read"), st.integers(0, 20))), max_size=120),
)
def test_ring_equals_reference_and_accounts_for_every_row(capacity: int, ops: list) -> None:
    ring = FeatureRing.create(capacity)
    ref = ReferenceRing(capacity)
    seen: list[int] = []
    try:
        for op, value in ops:
            if op == "push":
                assert ring.push(pair_id=value, vsr=value / 7) == ref.push(pair_id=value, vsr=value / 7)
            else:
                got, want = ring.read_new(value), ref.read_new(value)
                assert got.tobytes() == want.tobytes()
                seen.extend(got["seq"].tolist())
            assert (ring.lag, ring.overflow, ring.written) == (ref.lag, ref.overflow, ref.written)
        seen.extend(ring.read_new()["seq"].tolist())
        assert seen == list(range(1, len(seen) + 1))  # no gap, no duplicate
        pushes = sum(1 for op, _ in ops if op == "push")
        assert len(seen) + ring.overflow == pushes
    finally:
        ring.close()
        ring.unlink()


def test_full_ring_drops_new_rows_and_keeps_old_ones_intact(ring_factory) -> None:  # type: ignore[no-untyped-def]
    ring = ring_factory(3)
    assert [ring.push(pair_id=i) for i in range(5)] == [True, True, True, False, False]
    assert (ring.overflow, ring.lag, ring.written) == (2, 3, 3)
    rows = ring.read_new()
    assert rows["pair_id"].tolist() == [0, 1, 2] and rows["seq"].tolist() == [1, 2, 3]
    assert ring.push(pair_id=9) and ring.read_new()["seq"].tolist() == [4]


def test_push_rows_publishes_a_batch_in_order_and_counts_what_did_not_fit(ring_factory) -> None:  # type: ignore[no-untyped-def]
    ring = ring_factory(4)
    batch = np.zeros(6, dtype=FEATURE_ROW_DTYPE)
    batch["pair_id"] = np.arange(6)
    batch["pm"] = np.arange(6) / 100
    assert ring.push_rows(batch) == 4 and ring.overflow == 2
    assert batch["seq"].tolist() == [0] * 6  # the caller's array is not modified
    rows = ring.read_new()
    assert rows["seq"].tolist() == [1, 2, 3, 4] and rows["pair_id"].tolist() == [0, 1, 2, 3] and rows["pm"][3] == 0.03
    assert ring.push_rows(batch[:0]) == 0
    with pytest.raises(ValueError, match="FEATURE_ROW_DTYPE"):
        ring.push_rows(np.zeros(3))


def _steady_producer(ring: FeatureRing, n: int) -> None:
    for i in range(n):
        while not ring.push(pair_id=i % 2000, row_time_ms=i, vsr=i * 0.5):
            time.sleep(0)  # the test's producer retries; the real shard drops and counts
        if i % 100 == 0:
            ring.notify()
    ring.notify()


def test_rows_cross_processes_in_order_with_wakeups(ring_factory) -> None:  # type: ignore[no-untyped-def]
    ring = ring_factory(256)
    n = 20_000
    proc = FORK.Process(target=_steady_producer, args=(ring, n))
    proc.start()
    got: list[np.ndarray] = []
    total = 0
    try:
        while total < n:
            ready, _, _ = select.select([ring.notify_fd], [], [], 5.0)
            assert ready, "no wake-up from the producer"
            ring.drain_notify()
            rows = ring.read_new()
            got.append(rows)
            total += len(rows)
        proc.join(10)
        rows = np.concatenate(got)
        assert rows["seq"].tolist() == list(range(1, n + 1))
        assert rows["row_time_ms"].tolist() == list(range(n))
        assert np.array_equal(rows["vsr"], rows["row_time_ms"] * 0.5)  # every row whole, none torn
    finally:
        proc.kill()
        proc.join()


def _dropping_producer(ring: FeatureRing, n: int) -> None:
    for i in range(n):
        ring.push(pair_id=i, vsr=i * 0.25, row_time_ms=-i)


def test_concurrent_drops_are_counted_and_rows_are_never_torn(ring_factory) -> None:  # type: ignore[no-untyped-def]
    ring = ring_factory(8)  # tiny: the producer laps the consumer constantly
    n = 30_000
    proc = FORK.Process(target=_dropping_producer, args=(ring, n))
    proc.start()
    parts = []
    while proc.is_alive() or ring.lag:
        parts.append(ring.read_new(5))
    proc.join(10)
    rows = np.concatenate(parts)
    assert rows["seq"].tolist() == list(range(1, ring.written + 1))
    assert len(rows) + ring.overflow == n
    assert np.all(np.diff(rows["pair_id"].astype(np.int64)) > 0)  # survivors in push order
    assert np.array_equal(rows["vsr"], rows["pair_id"] * 0.25) and np.array_equal(rows["row_time_ms"], -rows["pair_id"].astype(np.int64))


def _attached_producer(name: str, fd: int, start: int, n: int) -> None:
    ring = FeatureRing.attach(name, fd)
    for i in range(start, start + n):
        ring.push(pair_id=i)
    ring.notify()
    ring.close()


def test_a_restarted_producer_continues_the_same_sequence(ring_factory) -> None:  # type: ignore[no-untyped-def]
    ring = ring_factory(1000)
    for start in (0, 100):  # the first producer dies, the supervisor forks another on the same ring
        proc = FORK.Process(target=_attached_producer, args=(ring.name, ring.notify_fd, start, 100))
        proc.start()
        proc.join(10)
        assert proc.exitcode == 0
        assert select.select([ring.notify_fd], [], [], 5.0)[0], "no wake-up"
        ring.drain_notify()
    assert not select.select([ring.notify_fd], [], [], 0)[0]  # drained: the loop sleeps again
    rows = ring.read_new()
    assert rows["seq"].tolist() == list(range(1, 201)) and rows["pair_id"].tolist() == list(range(200))


def test_attach_by_name_sees_the_same_rows_and_dtype_matches_struct(ring_factory) -> None:  # type: ignore[no-untyped-def]
    ring = ring_factory(8)
    other = FeatureRing.attach(ring.name)
    try:
        ring.push(pair_id=7, pm=0.05)
        rows = other.read_new()
        assert rows.dtype == FEATURE_ROW_DTYPE and rows["pair_id"].tolist() == [7] and rows["pm"][0] == 0.05
        assert ring.lag == 0 and other.capacity == 8
    finally:
        other.close()


def test_bad_use_gets_clear_errors(ring_factory) -> None:  # type: ignore[no-untyped-def]
    for capacity in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="capacity"):
            FeatureRing.create(capacity)
    with pytest.raises(FileNotFoundError):
        FeatureRing.attach("scanner-no-such-ring")
    stranger = create_segment(4096)
    try:
        with pytest.raises(ValueError, match="not a feature ring"):
            FeatureRing.attach(stranger.name)
    finally:
        stranger.close()
        unlink_segment(stranger)
    ring = ring_factory(4)
    with pytest.raises(ValueError, match="unknown feature row field 'nope'"):
        ring.push(nope=1)
    with pytest.raises(ValueError, match="max_rows"):
        ring.read_new(-1)
    ring.close()
    ring.close()  # idempotent
    for action in (lambda: ring.push(pair_id=1), ring.read_new, lambda: ring.lag):
        with pytest.raises(ValueError, match="closed"):
            action()


def test_stats_dtype_matches_the_c_struct_field_by_field() -> None:
    layout = shard_stats_layout()
    assert layout["size"] == STATS_DTYPE.itemsize
    assert layout["offsets"] == {name: STATS_DTYPE.fields[name][1] for name in STATS_DTYPE.names}
    assert layout["link_size"] == LINK_DTYPE.itemsize and layout["links"] == MAX_LINKS
    assert layout["link_offsets"] == {name: LINK_DTYPE.fields[name][1] for name in LINK_DTYPE.names}


def test_stats_block_is_shared_by_name() -> None:
    block = StatsBlock.create()
    other = StatsBlock.attach(block.name)
    try:
        block.view["frames_total"] = 5
        block.links[3]["frames"] = 11
        assert int(other.view["frames_total"]) == 5 and int(other.links[3]["frames"]) == 11
        assert other.snapshot()["frames_total"] == 5
        block.reset()
        assert int(other.view["frames_total"]) == 0
    finally:
        other.close()
        block.close()
        block.unlink()
    with pytest.raises(ValueError, match="closed"):
        block.view  # noqa: B018 - the access itself must fail
