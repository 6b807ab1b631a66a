"""Per-pair 1-minute candles of the last half hour, for the chart on a card.

Why here: the chart must come from what the service already holds (no REST call on the signal
path), and the supervisor reads every feature row anyway. Each row carries the last price, the
5-min quote volume and PM = (last - vwap_5m) / vwap_5m, so a minute's open/high/low/close, its
5-min VWAP (last / (1 + PM)) and its 5-min quote volume are folded in from rows already read.

Why 1-minute candles and not 1 s closes: 30 minutes of 1 s closes for 2,000 pairs would be ~3.6
million slots (tens of MB in a service with a 150 MB budget); 64 one-minute slots (the chart's 30
minutes and /top's hour) of six float32 and one int32 minute are ~1.8 KB a pair (3.6 MB at 2,000
pairs), and a candle keeps the minute's range. Why the 5-min quote volume and not the minute's own: the row does not carry the
bar's volume, and a rolling sum cannot be un-rolled; the chart labels it as what it is.

Rows of one pair arrive in exchange-time order (a pair lives on one shard); an older row than the
slot's minute is ignored, so a replayed row never rewrites a newer candle.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SLOTS = 64  # minutes m-63 .. m: the chart shows 30 of them, /top 1h needs 61
MINUTE_MS = 60_000
CHART_MINUTES = 30
_FIELDS = ("o", "h", "l", "c", "vwap", "qv5")


class ChartHistory:
    """Flat float32 tables indexed pair * SLOTS + minute % SLOTS; the minute each slot holds in an int32 table (-1: empty)."""

    def __init__(self, pairs: int = 0, slots: int = SLOTS) -> None:
        """pairs=0: the tables are made by the first rows, i.e. after the supervisor forked its children, so
        no child inherits pages the supervisor then rewrites (copy-on-write would charge both)."""
        self.slots = slots
        self._minute = np.full(pairs * slots, -1, dtype=np.int32)
        self._data = {name: np.full(pairs * slots, np.nan, dtype=np.float32) for name in _FIELDS}

    @property
    def pairs(self) -> int:
        return len(self._minute) // self.slots

    def _grow(self, pairs: int) -> None:
        extra = (max(pairs, 2 * self.pairs, 256) - self.pairs) * self.slots
        self._minute = np.concatenate([self._minute, np.full(extra, -1, dtype=np.int32)])
        for name in _FIELDS:
            self._data[name] = np.concatenate([self._data[name], np.full(extra, np.nan, dtype=np.float32)])

    def update(self, rows: np.ndarray) -> None:
        """Fold a batch of feature rows in (rows with a price that is not finite and > 0 are skipped)."""
        if len(rows) == 0:
            return
        price = rows["last_price"]
        good = (price > 0) & (price < np.inf)
        if np.count_nonzero(good) != len(rows):
            rows, price = rows[good], price[good]
            if len(rows) == 0:
                return
        pair = rows["pair_id"].astype(np.int64)
        if int(pair.max()) >= self.pairs:
            self._grow(int(pair.max()) + 1)
        minute = (rows["row_time_ms"] // MINUTE_MS).astype(np.int32)
        key = pair * self.slots + minute % self.slots
        held = self._minute[key]
        keep = minute >= held
        if np.count_nonzero(keep) != len(keep):
            key, minute, price, rows = key[keep], minute[keep], price[keep], rows[keep]
            held = held[keep]
        fresh = key[minute > held]  # a slot starts a new minute: clear it
        if len(fresh):
            self._minute[fresh] = minute[minute > held]  # of two minutes for one slot in a batch, the later (assigned last) wins
            for name in _FIELDS:
                self._data[name][fresh] = np.nan
            match = self._minute[key] == minute  # ... and the earlier minute's rows are dropped
            if np.count_nonzero(match) != len(match):
                key, price, rows = key[match], price[match], rows[match]
        d = self._data
        first = np.isnan(d["o"][key])
        d["o"][key[first][::-1]] = price[first][::-1]  # of several first rows the earliest wins (assigned last)
        np.fmax.at(d["h"], key, price)
        np.fmin.at(d["l"], key, price)
        d["c"][key] = price  # later rows of the batch are assigned later
        pm = rows["pm"]
        d["vwap"][key] = np.where(np.isfinite(pm) & (pm > -1), price / (1 + pm), np.nan)
        d["qv5"][key] = rows["quote_vol_5m"]

    def series(self, pair_id: int, now_ms: int, minutes: int = CHART_MINUTES) -> dict[str, list[Any]]:
        """The candles of the `minutes` minutes up to now_ms's (the signal's) minute, oldest first; minutes without a row are absent.

        Keys: t (minute start, ms), o, h, l, c, vwap, qv5 (None where unknown); JSON-ready.
        """
        out: dict[str, list[Any]] = {"t": [], **{name: [] for name in _FIELDS}}
        if not 0 <= pair_id < self.pairs:
            return out
        now_minute = int(now_ms) // MINUTE_MS
        for m in range(now_minute - min(minutes, self.slots) + 1, now_minute + 1):
            i = pair_id * self.slots + m % self.slots
            if int(self._minute[i]) != m:
                continue
            out["t"].append(m * MINUTE_MS)
            for name in _FIELDS:
                value = float(self._data[name][i])
                out[name].append(value if math.isfinite(value) else None)
        return out


    def close_at(self, pair_id: int, minute: int, back: int = 2) -> tuple[float, float] | None:
        """(close, 5-min quote volume) of the newest minute in [minute - back, minute] the pair traded in; None without one."""
        base = pair_id * self.slots
        for m in range(minute, minute - back - 1, -1):
            i = base + m % self.slots
            if int(self._minute[i]) == m and math.isfinite(float(self._data["c"][i])):
                return float(self._data["c"][i]), float(self._data["qv5"][i])
        return None

    def movers(self, now_ms: int, window_min: int) -> list[tuple[int, float, float]]:
        """(pair_id, price change, 5-min volume now / window_min ago) of every pair with a close now and window_min ago."""
        now = int(now_ms) // MINUTE_MS
        out = []
        for pair in np.unique(np.nonzero(self._minute >= now - 2)[0] // self.slots).tolist():
            late, early = self.close_at(pair, now), self.close_at(pair, now - window_min, back=min(5, window_min))
            if late is None or early is None or not early[0] > 0:
                continue
            surge = late[1] / early[1] if early[1] > 0 and math.isfinite(late[1]) else math.nan
            out.append((pair, late[0] / early[0] - 1.0, surge))
        return out


__all__ = ["ChartHistory", "CHART_MINUTES"]
