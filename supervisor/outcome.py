"""The outcome tracker: follows every signal for outcome.horizon_s of exchange time.

Fed with the same feature-row batches the scorer sees (core/rowspec.py), it keeps, per open
watch, the best and worst `last_price` (the 1 s bar's last trade) relative to the signal price,
the exchange time of the best one, and the first exchange time at which take-profit and
stop-loss were crossed. When the exchange clock (the newest row_time_ms of any pair) passes the
watch's end, the watch closes into an Outcome:

- outcome `hit` when max gain >= hit_gain, else `miss`;
- trade `TP` when take-profit was crossed before stop-loss, `SL` when stop-loss came first (or
  both in the same millisecond: the conservative reading), `TIMEOUT` when neither.

Why exchange time: a replay runs far faster than the wall clock, and a live feed that stalls
must not close a watch early. Why crossing *times* rather than row order: a pair moved between
shards can arrive from two rings slightly out of order; minima over times do not care.

Cost: with no open watch an update is one length check; otherwise one set intersection with the
batch's pair ids, then plain Python over only the rows of watched pairs (signals are rare: a few
an hour, and a batch holds a few dozen rows).

Restart (crash-only): the supervisor re-opens a watch for every stored signal without an outcome
(`resumed=True`). Extremes seen before the restart were only in memory, so a resumed watch
covers the rows from `observed_from_ms` on; the first exchange time seen after the restart
decides whether the watch is still running or its horizon ended while the service was down, in
which case it closes as outcome `unknown` with a reason and no trade label. A resumed watch
takes the levels and horizon configured now (the levels in force when the signal fired were not
stored with it); every outcome records the levels it was judged by.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from common.config import OutcomeConfig

HIT, MISS, UNKNOWN = "hit", "miss", "unknown"
TP, SL, TIMEOUT = "TP", "SL", "TIMEOUT"
# A watch closes this long after its end on the shared clock, so a shard whose rows are a
# moment behind another's still delivers the last second of the horizon.
CLOSE_GRACE_MS = 2000
UNWATCHED_REASON = "the horizon ended before the service watched it again (service down, or the signal predates the tracker)"


@dataclass
class Outcome:
    """What a watch found; gains and drawdowns are fractions of the signal price."""

    signal_id: str
    symbol: str
    profile: str
    signal_time_ms: int
    price: float
    horizon_s: float
    hit_gain: float
    take_profit: float
    stop_loss: float
    outcome: str  # hit | miss | unknown
    trade: str | None  # TP | SL | TIMEOUT; None when unknown
    max_gain: float | None  # max(price)/signal price - 1, >= 0 (the signal row itself counts as 0)
    max_drawdown: float | None  # min(price)/signal price - 1, <= 0
    time_to_max_s: float | None  # exchange seconds from the signal to the first row at max_gain
    tp_time_s: float | None
    sl_time_s: float | None
    rows: int  # rows of the pair that fell inside the horizon
    observed_from_ms: int  # the signal time, or the first exchange time seen after a restart
    resumed: bool
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class _Watch:
    signal_id: str
    symbol: str
    profile: str
    pair_id: int
    t0_ms: int
    end_ms: int
    price: float
    hit_gain: float
    take_profit: float
    stop_loss: float
    horizon_s: float
    resumed: bool = False
    observed_from_ms: int = 0
    max_gain: float = 0.0
    max_drawdown: float = 0.0
    t_max_ms: int = 0
    tp_ms: int | None = None
    sl_ms: int | None = None
    rows: int = 0


class OutcomeTracker:
    """Open watches and the shared exchange clock; update() returns the outcomes that closed."""

    def __init__(self, config: OutcomeConfig) -> None:
        self.config = config
        self.clock_ms = 0  # newest row_time_ms seen; 0 until the first row
        self._watches: dict[str, _Watch] = {}
        self._pair_ids: set[int] = set()  # pairs with an open watch

    def __len__(self) -> int:
        return len(self._watches)

    def update_config(self, config: OutcomeConfig) -> None:
        """Hot reload: new levels apply to watches opened from now on."""
        self.config = config

    def open(self, signal_id: str, symbol: str, profile: str, pair_id: int, signal_time_ms: int, price: float,
             resumed: bool = False) -> bool:  # fmt: skip
        """Start following a signal; False (nothing opened) when it is already followed or unpriced."""
        if signal_id in self._watches or not (np.isfinite(price) and price > 0):
            return False
        c = self.config
        observed = int(signal_time_ms) if not resumed else self.clock_ms  # 0: set by the first rows
        self._watches[signal_id] = _Watch(
            signal_id, symbol, profile, int(pair_id), int(signal_time_ms), int(signal_time_ms + c.horizon_s * 1000), float(price),
            c.hit_gain, c.take_profit, c.stop_loss, c.horizon_s, resumed, observed, t_max_ms=int(signal_time_ms),
        )  # fmt: skip
        self._pair_ids = {w.pair_id for w in self._watches.values()}
        return True

    def update(self, rows: np.ndarray) -> list[Outcome]:
        """Fold one batch of feature rows into the open watches; return those that closed."""
        if not self._watches or len(rows) == 0:
            if len(rows):
                self.clock_ms = max(self.clock_ms, int(rows["row_time_ms"].max()))
            return []
        previous_clock = self.clock_ms
        self.clock_ms = max(self.clock_ms, int(rows["row_time_ms"].max()))
        if previous_clock == 0:
            # First rows after a (re)start: a resumed watch whose horizon already ended
            # was not observed at its end; say so rather than guess.
            for w in self._watches.values():
                if w.resumed and w.observed_from_ms == 0:
                    w.observed_from_ms = self.clock_ms
        # Plain Python over the few rows of watched pairs: batches hold ~25 rows and most none of a
        # watched pair, so a dozen numpy calls per watch cost more than the rows they would fold.
        pair_list = rows["pair_id"].tolist()
        present = self._pair_ids.intersection(pair_list)
        if present:
            times, prices = rows["row_time_ms"].tolist(), rows["last_price"].tolist()
            of_pair: dict[int, list[int]] = {}
            for i, pair_id in enumerate(pair_list):
                if pair_id in present:
                    of_pair.setdefault(pair_id, []).append(i)
            for w in self._watches.values():
                for i in of_pair.get(w.pair_id, ()):
                    t, price = times[i], prices[i]
                    if w.t0_ms < t <= w.end_ms and math.isfinite(price) and price > 0:
                        self._fold(w, t, price / w.price - 1.0)
        return self._close_due()

    @staticmethod
    def _fold(w: _Watch, t: int, gain: float) -> None:
        """One row of the watched pair: extremes, the time of the top, first level crossings."""
        w.rows += 1
        # The earliest time at the top: a later row at an equal gain does not move it.
        if gain > w.max_gain or (gain == w.max_gain and gain > 0 and t < w.t_max_ms):
            w.max_gain, w.t_max_ms = gain, t
        w.max_drawdown = min(w.max_drawdown, gain)
        # A tiny tolerance: a price exactly at +10 % is computed as 0.0999999... in binary.
        if gain >= w.take_profit - 1e-12 and (w.tp_ms is None or t < w.tp_ms):
            w.tp_ms = t
        if gain <= -w.stop_loss + 1e-12 and (w.sl_ms is None or t < w.sl_ms):
            w.sl_ms = t

    def _close_due(self) -> list[Outcome]:
        due = [w for w in self._watches.values() if self.clock_ms >= w.end_ms + CLOSE_GRACE_MS]
        if not due:
            return []
        for w in due:
            del self._watches[w.signal_id]
        self._pair_ids = {w.pair_id for w in self._watches.values()}
        return [self._result(w) for w in due]

    def _result(self, w: _Watch) -> Outcome:
        def secs(t: int | None) -> float | None:
            return None if t is None else (t - w.t0_ms) / 1000.0

        base = dict(signal_id=w.signal_id, symbol=w.symbol, profile=w.profile, signal_time_ms=w.t0_ms, price=w.price,
                    horizon_s=w.horizon_s, hit_gain=w.hit_gain, take_profit=w.take_profit, stop_loss=w.stop_loss, rows=w.rows,
                    observed_from_ms=w.observed_from_ms, resumed=w.resumed)  # fmt: skip
        if w.resumed and w.observed_from_ms > w.end_ms:
            return Outcome(**base, outcome=UNKNOWN, trade=None, max_gain=None, max_drawdown=None, time_to_max_s=None,
                           tp_time_s=None, sl_time_s=None, reason=UNWATCHED_REASON)  # fmt: skip
        if w.tp_ms is not None and (w.sl_ms is None or w.tp_ms < w.sl_ms):
            trade = TP
        elif w.sl_ms is not None:
            trade = SL
        else:
            trade = TIMEOUT
        reason = None
        if w.resumed and w.observed_from_ms > w.t0_ms:
            reason = f"resumed after a restart: rows before {w.observed_from_ms} ms were not seen"
        return Outcome(**base, outcome=HIT if w.max_gain >= w.hit_gain - 1e-12 else MISS, trade=trade, max_gain=w.max_gain,
                       max_drawdown=w.max_drawdown, time_to_max_s=secs(w.t_max_ms), tp_time_s=secs(w.tp_ms), sl_time_s=secs(w.sl_ms),
                       reason=reason)  # fmt: skip

    def watched_pair_ids(self) -> set[int]:
        return set(self._pair_ids)

    def open_ids(self) -> list[str]:
        return sorted(self._watches)
