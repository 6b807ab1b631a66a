"""Planner: spread watched pairs over shards by activity, moving as few as possible.

Why sticky: moving a pair means a new subscription and a book resync on the other shard; the
supervisor adds a moved pair to its new shard before removing it from the old one, so coverage
has no gap, but every move still costs REST weight. So existing assignments stay unless a shard
is clearly overloaded.
"""

from __future__ import annotations


def plan_shards(
    activity: dict[str, float],
    n_shards: int,
    previous: dict[str, int] | None = None,
    imbalance: float = 1.25,
) -> dict[str, int]:
    """Assign every symbol in activity (symbol → load weight) to a shard in [0, n_shards).

    Symbols already placed keep their shard; new ones go to the least-loaded shard (heaviest
    first). Then, while the busiest shard carries more than `imbalance` times the mean, its
    lightest-that-helps pair moves to the lightest shard.
    """
    if n_shards < 1:
        raise ValueError("n_shards must be >= 1")
    previous = previous or {}
    weight = {s: max(float(a), 1e-9) for s, a in activity.items()}
    assignment: dict[str, int] = {s: previous[s] for s in weight if s in previous and 0 <= previous[s] < n_shards}
    load = [0.0] * n_shards
    for s, shard in assignment.items():
        load[shard] += weight[s]
    for s in sorted((s for s in weight if s not in assignment), key=lambda s: (-weight[s], s)):
        shard = min(range(n_shards), key=lambda k: (load[k], k))
        assignment[s] = shard
        load[shard] += weight[s]
    total = sum(load)
    mean = total / n_shards if n_shards else 0.0
    for _ in range(len(weight)):
        busiest = max(range(n_shards), key=lambda k: load[k])
        lightest = min(range(n_shards), key=lambda k: load[k])
        if busiest == lightest or load[busiest] <= imbalance * mean:
            break
        gap = load[busiest] - load[lightest]
        movable = [s for s, k in assignment.items() if k == busiest and weight[s] < gap]
        if not movable:
            break
        s = max(movable, key=lambda s: (min(weight[s], gap - weight[s]), s))
        assignment[s] = lightest
        load[busiest] -= weight[s]
        load[lightest] += weight[s]
    return assignment
