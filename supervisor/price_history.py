"""Per-pair price history, one price per exchange minute, for the card's 1/5/15-min change.

Why here and not a REST call: the card must not wait on the exchange, and the supervisor already
reads every feature row (pair_id, row_time_ms, last_price). A NumPy table of the last price seen
in each of the last SLOTS minutes per pair, written once per scoring batch, answers "how much has
the price moved" for free when a signal fires.

Semantics: the change over N minutes at time t (in minute m) compares the signal price with the
price at the start of minute m - N, i.e. the last price seen before it: the close of the newest
recorded minute <= m - N - 1. The look-back is therefore between N and N + 1 minutes. Shards write
a row only for a pair that traded, so a quiet minute has no slot: the newest earlier close stands
in for it (no trade, no price change). None when no such minute is in the table (the pair was not
watched that long). Exchange time only, like the scorer: a replay gives the same changes.
"""

from __future__ import annotations

import numpy as np

SLOTS = 17  # minutes m-16 .. m: the 15-min change needs the close of minute m-16
MINUTE_MS = 60_000
CHANGE_MINUTES = (1, 5, 15)


class PriceHistory:
    """Last price per (pair, exchange minute) in a ring of SLOTS minutes; grows with the pair ids.

    Two flat tables indexed pair * slots + minute % slots: the price and the row_time_ms it came
    from (0: empty). The time decides everything: a row overwrites its slot only if it is at least
    as new, and the minute a slot holds is its time // MINUTE_MS. Flat 1-D indexing, because 2-D
    fancy indexing cost ~8 us a call, more than the rest of a batch's update.
    """

    def __init__(self, pairs: int = 1024, slots: int = SLOTS) -> None:
        self.slots = slots
        self._price = np.full(pairs * slots, np.nan)
        self._time = np.zeros(pairs * slots, dtype=np.int64)
        self._mark = np.zeros(pairs * slots, dtype=np.int64)  # scratch: finds two rows of one batch in one slot
        self._positions = np.arange(256)

    @property
    def pairs(self) -> int:
        return len(self._price) // self.slots

    def _grow(self, pairs: int) -> None:
        extra = (max(pairs, 2 * self.pairs) - self.pairs) * self.slots
        self._price = np.concatenate([self._price, np.full(extra, np.nan)])
        self._time = np.concatenate([self._time, np.zeros(extra, dtype=np.int64)])
        self._mark = np.zeros(len(self._price), dtype=np.int64)

    def update(self, rows: np.ndarray) -> None:
        """Record a batch of feature rows (any order; of several rows in one slot the newest wins, then the last to arrive).

        Why this shape: it runs on every scoring pass (~40/s), and NumPy costs per call, not per
        row, so the common batch (one row per pair) takes a dozen cheap calls and no sort;
        count_nonzero instead of .any()/.all(), which cost ~8x more on small arrays.
        """
        n = len(rows)
        if n == 0:
            return
        price, t = rows["last_price"], rows["row_time_ms"]
        key = rows["pair_id"].astype(np.int64)
        key *= self.slots
        key += (t // MINUTE_MS) % self.slots
        if n > len(self._positions):
            self._positions = np.arange(2 * n)
        pos = self._positions[:n]
        try:
            self._mark[key] = pos
        except IndexError:  # a pair id past the table: grow (rare, so no max() on every pass)
            self._grow(int(rows["pair_id"].max()) + 1)
            self._mark[key] = pos
        if np.count_nonzero(self._mark[key] != pos):  # two rows in one slot: keep the newest, then the last
            valid = (price > 0) & (price < np.inf)  # before choosing, so a bad row never hides a good one
            key, t, price = key[valid], t[valid], price[valid]
            order = np.lexsort((t, key))  # stable: equal times keep arrival order
            key, t, price = key[order], t[order], price[order]
            last = np.empty(len(key), dtype=bool)
            last[-1:] = True
            np.not_equal(key[1:], key[:-1], out=last[:-1])
            key, t, price = key[last], t[last], price[last]
        keep = t >= self._time[key]
        keep &= price > 0  # NaN compares False
        keep &= price < np.inf
        if np.count_nonzero(keep) != len(keep):
            key, t, price = key[keep], t[keep], price[keep]
        self._price[key] = price
        self._time[key] = t

    def price_before(self, pair_id: int, minute: int, now_minute: int) -> float | None:
        """The last price seen before exchange minute `minute` began, looking back no further than the
        ring's span from now_minute (so a pair silent for an hour never reports an hour-old price as recent)."""
        if not 0 <= pair_id < self.pairs:
            return None
        base = pair_id * self.slots
        for back in range(minute - 1, now_minute - self.slots, -1):
            i = base + back % self.slots
            if self._time[i] // MINUTE_MS == back and self._time[i] > 0:
                return float(self._price[i])
        return None

    def change(self, pair_id: int, now_ms: int, price: float, minutes: int) -> float | None:
        """price / (the price at the start of the minute `minutes` before now_ms's) - 1, or None when unknown."""
        if not 1 <= minutes <= self.slots - 2 or not price > 0 or not np.isfinite(price):
            return None
        now_minute = int(now_ms) // MINUTE_MS
        before = self.price_before(pair_id, now_minute - minutes, now_minute)
        return None if before is None else price / before - 1.0

    def changes(self, pair_id: int, now_ms: int, price: float) -> dict[int, float | None]:
        """{1: .., 5: .., 15: ..} for the card (CHANGE_MINUTES)."""
        return {n: self.change(pair_id, now_ms, price, n) for n in CHANGE_MINUTES}
