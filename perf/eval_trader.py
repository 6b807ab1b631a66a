"""The trader's figures: what pressing Buy on every card would have earned.

Per card: buy at the first taker-buy trade at or after the card's time + latency (default 1 s:
card to tap; the data has no book, so a taker buy's price is the ask a market buy would pay),
pay FEE per side, and exit
  fixed     at the first later trade reaching +TP (sold at the TP level: a resting limit) or -SL
            (sold at that trade's price: a stop that fills where the market is, gaps included),
            else at the last trade before HORIZON after the buy (TIMEOUT) — the outcome
            tracker's defaults (config outcome.take_profit, stop_loss, horizon_s);
  trailing  at the first trade TRAIL below the highest trade since the buy, else TIMEOUT.
A card with no taker buy within HORIZON of its time is not tradable: return 0, counted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from perf.eval_data import rnd

LATENCY_MS = 1_000
FEE = 0.001
TP = 0.10
SL = 0.05
TRAIL = 0.05
HORIZON_MS = 20 * 60_000


def _net(entry: float, exit_price: float, fee: float) -> float:
    return 100.0 * ((exit_price * (1.0 - fee)) / (entry * (1.0 + fee)) - 1.0)


class Trader:
    """One file's trades, indexed for many cards."""

    def __init__(self, trades: dict[str, np.ndarray], latency_ms: int = LATENCY_MS, fee: float = FEE) -> None:
        self.ts, self.price = trades["ts_ms"], trades["price"]
        self.buys = np.flatnonzero(trades["side"] == 1)
        self.buy_ts = self.ts[self.buys]
        self.latency_ms, self.fee = latency_ms, fee

    def trade(self, t_ms: int) -> dict[str, Any]:
        """The card's buy and both exits; ret_pct / trail_ret_pct are net of fees, in percent."""
        k = int(np.searchsorted(self.buy_ts, t_ms + self.latency_ms, side="left"))
        if k >= len(self.buys) or self.buy_ts[k] > t_ms + self.latency_ms + HORIZON_MS:
            return {"outcome": "NO_ENTRY", "ret_pct": 0.0, "trail_ret_pct": 0.0, "entry_delay_ms": None}
        i0 = int(self.buys[k])
        entry, t0 = float(self.price[i0]), int(self.ts[i0])
        end = int(np.searchsorted(self.ts, t0 + HORIZON_MS, side="left"))
        p = self.price[i0 + 1 : end]
        last = float(p[-1]) if len(p) else entry
        up, down = np.flatnonzero(p >= entry * (1.0 + TP)), np.flatnonzero(p <= entry * (1.0 - SL))
        if len(up) and (not len(down) or up[0] < down[0]):
            outcome, exit_price = "TP", entry * (1.0 + TP)
        elif len(down):
            outcome, exit_price = "SL", float(p[down[0]])
        else:
            outcome, exit_price = "TIMEOUT", last
        trail_exit = last
        if len(p):
            peak = np.maximum.accumulate(np.concatenate(([entry], p)))[1:]
            hit = np.flatnonzero(p <= peak * (1.0 - TRAIL))
            if len(hit):
                trail_exit = float(p[hit[0]])
        return {
            "outcome": outcome,
            "ret_pct": _net(entry, exit_price, self.fee),
            "trail_ret_pct": _net(entry, trail_exit, self.fee),
            "entry_delay_ms": t0 - t_ms,
        }


def trader_summary(event_rets: list[float], background_rets: list[float], coin_days: float) -> dict[str, Any]:
    """Mean / median return per card, win rate, total per coin-day, over event and background cards."""
    every = event_rets + background_rets
    arr = np.array(every) if every else np.zeros(0)
    return {
        "cards": len(every),
        "mean_ret_pct": rnd(float(arr.mean()), 3) if len(arr) else None,
        "median_ret_pct": rnd(float(np.median(arr)), 3) if len(arr) else None,
        "win_rate": rnd(float((arr > 0).mean()), 4) if len(arr) else None,
        "total_ret_pct_per_coin_day": rnd(float(arr.sum()) / coin_days, 4) if coin_days else None,
        "event_cards_mean_ret_pct": rnd(float(np.mean(event_rets)), 3) if event_rets else None,
        "background_cards_mean_ret_pct": rnd(float(np.mean(background_rets)), 3) if background_rets else None,
    }
