"""The post-pump short watcher (issue #19): follows a pumped coin down and finds the short entry.

Why in detectors/: it turns a pair's rows into decisions (stages, ARMED, ENTRY_OK) like any
detector, and it must be pure: no I/O, no wall clock, no Telegram. The supervisor
(supervisor/shorts.py) feeds it the rows it already reads and stores/logs/announces what it
returns; perf/eval_shorts.py feeds it replayed rows of real pumps through the very same calls.

One watch per symbol:

- **start** (WATCH_START): filters first — `min_pump_pct`, the pump no older than
  `pump_window_minutes`, at most `max_concurrent` active watches, a per-symbol cooldown from the
  previous watch's start (`cooldown_minutes`), never a second watch of a watched symbol.
- **stages on 5-minute bars** (exchange-time aligned): STAGE_0 (started) → STAGE_1_DROP1 (a close
  `drop_pct` under the high since the start) → STAGE_2_BOUNCE1 (a high `bounce_pct` over the low
  since DROP1) → STAGE_3_DROP2 (a close `drop_pct` under the bounce's high) → STAGE_4_BOUNCE2. A
  5m high above the structure's high before any entry is a new leg of the pump: back to STAGE_0.
- **modes**: WATCHING_5M, then ARMED when a stage >= `arm_stage` is reached; ARMED lasts at most
  `armed_max_minutes` and ends at a re-pump. ARMED is evaluated on 1-minute bars and on a fast
  window of `fast_window_s`.
- **entries** while ARMED (the first that holds; `entry_kinds`): EARLY — in the fast window the
  price fell `early_drop_pct` from the window's high while takers sell (buy share of 10 s <=
  `early_buy_share_max`); CONFIRM — a red 1-minute bar closes under the previous bar's low.
- **outcome** after ENTRY_OK: TP `take_profit_pct` under the entry, SL `stop_loss_pct` over it
  (a bar crossing both is SL), TIMEOUT after `outcome_timeout_minutes`; max favourable and
  adverse excursion. No entry within `watch_max_minutes`: the watch ends as EXPIRED.

Every evaluation (watch start, each 5m close, each 1m close and fast evaluation while ARMED, the
entry) leaves one context snapshot (`drain_snapshots`): structure, distance from the peak, 5m
return, quote volume and its z-score, ATR, taker imbalance and CVD, open interest when a feed
gives it (`on_open_interest`). Nothing is traded.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.shorts_config import ShortsConfig
from detectors.short_bars import MINUTE_MS, Bar, BarBuilder, Trade, atr, volume_zscore

STAGES = ("STAGE_0", "STAGE_1_DROP1", "STAGE_2_BOUNCE1", "STAGE_3_DROP2", "STAGE_4_BOUNCE2")
WATCHING_5M, ARMED = "WATCHING_5M", "ARMED"
WATCH_START, STAGE, ARMED_EVENT, DISARMED, ENTRY_OK, OUTCOME, EXPIRED = (
    "WATCH_START", "STAGE", "ARMED", "DISARMED", "ENTRY_OK", "OUTCOME", "EXPIRED")  # fmt: skip
EARLY, CONFIRM = "EARLY", "CONFIRM"
FIVE_MIN_MS = 5 * MINUTE_MS


@dataclass(frozen=True)
class WatchEvent:
    """Something a watch did; `data` holds the event's own figures (plain JSON-ready values)."""

    kind: str
    run_id: str
    symbol: str
    t_ms: int
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Watch:
    """One symbol followed after its pump; `config` is the section as it was at the start."""

    run_id: str
    symbol: str
    source: str
    pump_pct: float
    pump_ts_ms: int
    start_ms: int
    config: ShortsConfig
    extra: dict[str, Any]
    start_price: float = math.nan
    stage: int = 0
    stage_times: dict[str, int] = field(default_factory=dict)
    mode: str = WATCHING_5M
    armed_ms: int | None = None
    peak: float = math.nan  # highest 1 s close since the start
    peak_ms: int = 0
    ref_high: float = math.nan  # the structure's high (5m bars)
    swing: float = math.nan  # low since a drop, or high since a bounce
    last_price: float = math.nan
    last_ms: int = 0
    bars1: BarBuilder = field(default_factory=lambda: BarBuilder(MINUTE_MS, 3))
    bars5: BarBuilder = field(default_factory=lambda: BarBuilder(FIVE_MIN_MS, 24))
    fast: deque[tuple[int, float]] = field(default_factory=deque)
    next_fast_ms: int = 0
    entry_kind: str | None = None
    trade: Trade | None = None
    oi_first: float = math.nan
    oi_last: float = math.nan
    buy_share: float = math.nan
    cvd: float = 0.0
    ended: str | None = None  # OUTCOME or EXPIRED

    def to_record(self) -> dict[str, Any]:
        """The row of the `watches` table (store/watches.py) as it stands now."""
        c, t = self.config, self.trade
        return {
            "run_id": self.run_id, "symbol": self.symbol, "source": self.source, "pump_pct": self.pump_pct,
            "pump_ts_ms": self.pump_ts_ms, "start_ms": self.start_ms, "start_price": _num(self.start_price),
            "stage": STAGES[self.stage], "stage_times": dict(self.stage_times), "mode": self.mode,
            "entry_kind": self.entry_kind, "entry_price": t.entry_price if t else None, "entry_ms": t.entry_ms if t else None,
            "outcome": t.label if t else ("EXPIRED" if self.ended == EXPIRED else None),
            "exit_price": t.exit_price if t and t.label else None, "exit_ms": t.exit_ms if t else None,
            "return_pct": round(100 * t.gross_return(), 4) if t and t.label else None,
            "mfe_pct": round(100 * t.mfe, 4) if t else None, "mae_pct": round(100 * t.mae, 4) if t else None,
            "take_profit_pct": c.take_profit_pct, "stop_loss_pct": c.stop_loss_pct, "timeout_minutes": c.outcome_timeout_minutes,
            "peak": _num(self.peak), "peak_ms": self.peak_ms or None, "extra": dict(self.extra),
        }  # fmt: skip


def _num(x: float) -> float | None:
    return x if math.isfinite(x) else None


class ShortWatcher:
    """Active watches by symbol; every call returns the events it produced, oldest first."""

    def __init__(self, config: ShortsConfig) -> None:
        self.config = config
        self.active: dict[str, Watch] = {}
        self.last_start_ms: dict[str, int] = {}  # cooldown memory, per symbol
        self.snapshots: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self.active)

    def update_config(self, config: ShortsConfig) -> None:
        """Hot reload: new settings apply to watches started from now on."""
        self.config = config

    def refusal(self, symbol: str, pump_pct: float, pump_ts_ms: int, now_ms: int) -> str | None:
        """Why a watch of this pump would not start (the filters), or None."""
        c = self.config
        if symbol in self.active:
            return f"{symbol} is already watched ({self.active[symbol].run_id})"
        last = self.last_start_ms.get(symbol)
        if last is not None and now_ms - last < c.cooldown_minutes * MINUTE_MS:
            return f"{symbol} is in its cooldown ({c.cooldown_minutes:g} min from the previous watch's start)"
        if not (math.isfinite(pump_pct) and pump_pct >= c.min_pump_pct):
            return f"pump {pump_pct:.2f} % is under min_pump_pct {c.min_pump_pct:g} %"
        if c.pump_window_minutes > 0 and now_ms - pump_ts_ms > c.pump_window_minutes * MINUTE_MS:
            return f"the pump is {(now_ms - pump_ts_ms) / MINUTE_MS:.1f} min old, over pump_window_minutes {c.pump_window_minutes:g}"
        if len(self.active) >= c.max_concurrent:
            return f"max_concurrent ({c.max_concurrent}) watches are active"
        return None

    def start(self, symbol: str, source: str, pump_pct: float, pump_ts_ms: int, now_ms: int, price: float | None = None,
              extra: dict[str, Any] | None = None) -> tuple[WatchEvent | None, str | None]:  # fmt: skip
        """Start a watch: (WATCH_START event, None), or (None, the reason it was refused).

        `price` is the price now (a scanner signal's); without it the first row sets it.
        """
        why = self.refusal(symbol, pump_pct, pump_ts_ms, now_ms)
        if why is not None:
            return None, why
        w = Watch(f"{symbol}-{now_ms}", symbol, source, float(pump_pct), int(pump_ts_ms), int(now_ms),
                  dataclasses.replace(self.config), dict(extra or {}))  # fmt: skip
        w.stage_times[STAGES[0]] = now_ms
        if price is not None and math.isfinite(price) and price > 0:
            self._set_first_price(w, now_ms, price)
        self.active[symbol] = w
        self.last_start_ms[symbol] = now_ms
        self._snapshot(w, now_ms, "start")
        return WatchEvent(WATCH_START, w.run_id, symbol, now_ms, {"source": source, "pump_pct": round(pump_pct, 3),
                                                                  "price": _num(w.start_price)}), None  # fmt: skip

    @staticmethod
    def _set_first_price(w: Watch, t_ms: int, price: float) -> None:
        w.start_price = w.peak = w.ref_high = w.last_price = price
        w.peak_ms, w.last_ms = t_ms, t_ms

    def on_open_interest(self, symbol: str, t_ms: int, hold_vol: float) -> None:
        """Open interest (MEXC futures holdVol) of a watched symbol's perpetual, when a feed has it."""
        w = self.active.get(symbol)
        if w is not None and math.isfinite(hold_vol):
            if not math.isfinite(w.oi_first):
                w.oi_first = hold_vol
            w.oi_last = hold_vol

    def on_point(self, symbol: str, t_ms: int, price: float, quote_vol_5m: float, buy_share_10s: float) -> list[WatchEvent]:
        """One closed 1 s bar of a watched symbol (the caller skips unwatched symbols)."""
        w = self.active.get(symbol)
        if w is None or t_ms < w.start_ms or not (math.isfinite(price) and price > 0):
            return []
        out: list[WatchEvent] = []
        if not math.isfinite(w.start_price):
            self._set_first_price(w, t_ms, price)
        self._close_bars(w, t_ms, out)  # bars that ended before this point, before the point joins a new one
        if w.ended:
            return out
        if w.trade is not None:
            label = w.trade.fold(t_ms, price, price, price)
            w.last_price, w.last_ms = price, t_ms
            if label is not None:
                self._end(w, OUTCOME, t_ms, out)
            return out
        w.last_price, w.last_ms, w.buy_share = price, t_ms, buy_share_10s
        if price > w.peak:
            w.peak, w.peak_ms = price, t_ms
        w.bars1.add(t_ms, price, quote_vol_5m, buy_share_10s)
        w.bars5.add(t_ms, price, quote_vol_5m, buy_share_10s)
        if w.mode == ARMED:
            w.fast.append((t_ms, price))
            while w.fast and w.fast[0][0] <= t_ms - w.config.fast_window_s * 1000:
                w.fast.popleft()
            if t_ms >= w.next_fast_ms:
                w.next_fast_ms = t_ms + int(w.config.fast_window_s * 1000 / 3)
                self._evaluate_fast(w, t_ms, out)
        return out

    def on_rows(self, rows: np.ndarray, symbol_of: Mapping[int, str]) -> list[WatchEvent]:
        """A batch of feature rows (core/rowspec.py), any pairs: the watched ones' rows in time order, then the clock.

        Why here: the service and perf/eval_shorts.py hand the watcher the same batches through
        this one call. With no active watch it returns at once (the common case costs nothing).
        """
        if not self.active or len(rows) == 0:
            return []
        pair_ids = rows["pair_id"].tolist()
        watched = {pid for pid in set(pair_ids) if symbol_of.get(pid) in self.active}
        out: list[WatchEvent] = []
        if watched:
            times = rows["row_time_ms"].tolist()
            idx = sorted((i for i, pid in enumerate(pair_ids) if pid in watched), key=times.__getitem__)
            prices, vols, shares = rows["last_price"].tolist(), rows["quote_vol_5m"].tolist(), rows["buy_share_10s"].tolist()
            for i in idx:
                out += self.on_point(symbol_of[pair_ids[i]], times[i], prices[i], vols[i], shares[i])
        return out + self.advance(int(rows["row_time_ms"].max()))

    def advance(self, now_ms: int) -> list[WatchEvent]:
        """The shared exchange clock moved: close due bars, time out trades, expire watches."""
        out: list[WatchEvent] = []
        for w in list(self.active.values()):
            self._close_bars(w, now_ms, out)
        return out

    def drain_snapshots(self) -> list[dict[str, Any]]:
        """The context rows logged since the last call (one per evaluation)."""
        rows, self.snapshots = self.snapshots, []
        return rows

    # --- evaluations -----------------------------------------------------------------------------------

    def _close_bars(self, w: Watch, now_ms: int, out: list[WatchEvent]) -> None:
        if w.ended:
            return
        if w.trade is not None:
            if w.trade.expire(now_ms) is not None:
                self._end(w, OUTCOME, now_ms, out)
            return
        if now_ms >= w.start_ms + w.config.watch_max_minutes * MINUTE_MS:
            self._end(w, EXPIRED, now_ms, out)
            return
        # The 1-minute bar first: one that closes as the watch arms formed before the arming.
        bar1 = w.bars1.close_due(now_ms)
        if bar1 is not None and w.mode == ARMED:
            self._evaluate_1m(w, bar1, out)
        bar5 = w.bars5.close_due(now_ms)
        if bar5 is not None and w.trade is None:
            self._evaluate_5m(w, bar5, out)
        if w.trade is None and w.mode == ARMED and w.armed_ms is not None and now_ms >= w.armed_ms + w.config.armed_max_minutes * MINUTE_MS:
            self._disarm(w, now_ms, "armed_max_minutes passed without an entry", out)

    def _evaluate_5m(self, w: Watch, b: Bar, out: list[WatchEvent]) -> None:
        """Stages on a closed 5-minute bar, then arming."""
        c, t = w.config, b.end_ms
        if math.isfinite(b.quote_vol) and math.isfinite(b.imbalance):
            w.cvd += b.quote_vol * b.imbalance
        before = w.stage
        drop, bounce = c.drop_pct / 100.0, c.bounce_pct / 100.0
        if b.high > w.ref_high:
            w.ref_high = b.high
            if w.stage > 0:
                w.stage = before = 0
                w.stage_times = {STAGES[0]: w.stage_times[STAGES[0]]}
                out.append(WatchEvent(STAGE, w.run_id, w.symbol, t, {"stage": STAGES[0], "why": "new high: the pump resumed"}))
                if w.mode == ARMED:
                    self._disarm(w, t, "new high", out)
        if w.stage in (0, 2):  # waiting for a drop from the high (the peak, then the bounce's high)
            if w.stage == 2:
                w.swing = max(w.swing, b.high)
            if b.close <= (w.ref_high if w.stage == 0 else w.swing) * (1.0 - drop):
                w.stage, w.swing = w.stage + 1, b.low
        elif w.stage in (1, 3):  # waiting for a bounce from the low since the drop
            w.swing = min(w.swing, b.low)
            if b.high >= w.swing * (1.0 + bounce):
                w.stage, w.swing = w.stage + 1, b.high
        elif w.stage == 4:
            w.swing = max(w.swing, b.high)
        if w.stage != before and w.stage > 0:
            w.stage_times[STAGES[w.stage]] = t
            out.append(WatchEvent(STAGE, w.run_id, w.symbol, t, {"stage": STAGES[w.stage], "price": b.close}))
            if w.mode == WATCHING_5M and w.stage >= c.arm_stage:
                w.mode, w.armed_ms, w.next_fast_ms = ARMED, t, 0
                w.fast.clear()
                out.append(WatchEvent(ARMED_EVENT, w.run_id, w.symbol, t, {"stage": STAGES[w.stage], "price": b.close}))
        self._snapshot(w, t, "5m")

    def _evaluate_1m(self, w: Watch, b: Bar, out: list[WatchEvent]) -> None:
        """CONFIRM: a red 1-minute bar closing under the previous bar's low."""
        self._snapshot(w, b.end_ms, "1m")
        if CONFIRM not in w.config.entry_kinds or len(w.bars1.closed) < 2:
            return
        prev = w.bars1.closed[-2]
        if b.close < b.open and b.close < prev.low:
            self._enter(w, CONFIRM, b.end_ms, b.close, out)

    def _evaluate_fast(self, w: Watch, t_ms: int, out: list[WatchEvent]) -> None:
        """EARLY: the fast window fell early_drop_pct from its high while takers sell."""
        self._snapshot(w, t_ms, "fast")
        c = w.config
        if EARLY not in c.entry_kinds or not w.fast:
            return
        high = max(p for _, p in w.fast)
        sellers = math.isfinite(w.buy_share) and w.buy_share <= c.early_buy_share_max
        if sellers and w.last_price <= high * (1.0 - c.early_drop_pct / 100.0):
            self._enter(w, EARLY, t_ms, w.last_price, out)

    def _enter(self, w: Watch, kind: str, t_ms: int, price: float, out: list[WatchEvent]) -> None:
        c = w.config
        w.entry_kind = kind
        w.trade = Trade(price, t_ms, c.take_profit_pct / 100.0, c.stop_loss_pct / 100.0, int(c.outcome_timeout_minutes * MINUTE_MS))
        self._snapshot(w, t_ms, "entry")
        out.append(WatchEvent(ENTRY_OK, w.run_id, w.symbol, t_ms, {
            "kind": kind, "price": price, "stage": STAGES[w.stage], "tp_price": w.trade.tp_price, "sl_price": w.trade.sl_price,
            "minutes_after_start": round((t_ms - w.start_ms) / MINUTE_MS, 2)}))  # fmt: skip

    def _disarm(self, w: Watch, t_ms: int, why: str, out: list[WatchEvent]) -> None:
        w.mode, w.armed_ms = WATCHING_5M, None
        w.fast.clear()
        out.append(WatchEvent(DISARMED, w.run_id, w.symbol, t_ms, {"why": why}))

    def _end(self, w: Watch, kind: str, t_ms: int, out: list[WatchEvent]) -> None:
        w.ended = kind
        self.active.pop(w.symbol, None)
        out.append(WatchEvent(kind, w.run_id, w.symbol, t_ms, w.to_record()))

    def _snapshot(self, w: Watch, t_ms: int, evaluation: str) -> None:
        self.snapshots.append(context_row(w, t_ms, evaluation))


def signal_pump_pct(changes: Mapping[int, float | None]) -> float:
    """A scanner signal's pump size for min_pump_pct: the largest of its 1/5/15-minute price changes, in percent.

    Why the largest: a flash pump shows in the 1-minute change, a slow one only over 15 minutes;
    NaN when the pair's history is too short to know (such a signal is not watched).
    """
    known = [c for c in changes.values() if c is not None and math.isfinite(c)]
    return 100.0 * max(known) if known else math.nan


def context_row(w: Watch, t_ms: int, evaluation: str) -> dict[str, Any]:
    """One context snapshot: the data set the original collects for later tuning (CSV columns)."""
    bars = list(w.bars5.closed)
    last = bars[-1] if bars else None
    price = w.last_price
    a = atr(bars)
    oi_change = (w.oi_last / w.oi_first - 1.0) * 100 if math.isfinite(w.oi_first) and w.oi_first > 0 else math.nan

    def r(x: float, nd: int = 6) -> float | None:
        return round(x, nd) if isinstance(x, float) and math.isfinite(x) else None

    return {
        "run_id": w.run_id, "symbol": w.symbol, "t_ms": t_ms, "evaluation": evaluation, "stage": STAGES[w.stage], "mode": w.mode,
        "minutes_since_start": round((t_ms - w.start_ms) / MINUTE_MS, 3), "price": r(price, 12), "peak": r(w.peak, 12),
        "dist_from_peak_pct": r((w.peak - price) / w.peak * 100, 4) if w.peak > 0 else None,
        "rise_from_start_pct": r((w.peak / w.start_price - 1) * 100, 4) if w.start_price > 0 else None,
        "ret_5m_pct": r((last.close / last.open - 1) * 100, 4) if last else None,
        "quote_vol_5m": r(last.quote_vol) if last else None, "vol_z_5m": r(volume_zscore(bars), 4),
        "atr_5m_pct": r(a / price * 100, 4) if price > 0 else None, "imbalance_5m": r(last.imbalance, 4) if last else None,
        "buy_share_10s": r(w.buy_share, 4), "cvd_quote": r(w.cvd), "open_interest": r(w.oi_last), "oi_change_pct": r(oi_change, 4),
    }  # fmt: skip


__all__ = ["ARMED", "CONFIRM", "EARLY", "ENTRY_OK", "EXPIRED", "OUTCOME", "STAGES", "WATCHING_5M", "WATCH_START",
           "ShortWatcher", "Watch", "WatchEvent", "context_row", "signal_pump_pct"]  # fmt: skip
