"""Per event and per profile: did the cards see the pump, how late, how many fell on ordinary
trading, and what each card earned; then the summary over events.

Why cards are split three ways: a card in [T-30 min, T+30 min] is the event's (detection, delay);
a card outside every known pump's [T-2h, T+6h] is background (a false card unless an unlisted
≥10 % episode followed it); a card elsewhere (the pump's aftermath) is neither and not counted.
The trader's figures count event and background cards, re-alerts included.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from perf.eval_cards import Card
from perf.eval_data import DETECT_AFTER_MS, DETECT_BEFORE_MS, EPISODE_MATCH_MS, Event, rnd
from perf.eval_trader import Trader, trader_summary

PEAK_HORIZON_MS = 20 * 60_000
CARDS_PAIRS = 2_000  # "cards per day at 2,000 pairs": the MEXC universe the scanner watches


def measure(event: Event, cards: list[Card], trades: dict[str, np.ndarray], trader: Trader,
            holes: list[tuple[int, int]], episodes: list[tuple[int, bool, float]]) -> dict[str, Any]:  # fmt: skip
    """One profile's cards on one event."""
    t = event.t_ms
    ts, price = trades["ts_ms"], trades["price"]
    signals, first, n_event, n_background, near = [], None, 0, 0, 0
    for c in cards:
        kind = "ignored"
        if t - DETECT_BEFORE_MS <= c.t_ms <= t + DETECT_AFTER_MS:
            kind = "event"
            n_event += 1
        elif not any(a <= c.t_ms <= b for a, b in holes):
            kind = "background"
            n_background += 1
            if any(s - EPISODE_MATCH_MS[0] <= c.t_ms <= s + EPISODE_MATCH_MS[1] for s, listed, _ in episodes if not listed):
                near += 1
        trade = trader.trade(c.t_ms) if kind != "ignored" else {}
        signals.append({
            "t_rel_T_s": rnd((c.t_ms - t) / 1000.0, 1), "kind": kind, "price": c.price, "prob": rnd(c.prob, 4),
            "escalation": c.escalation, **{k: rnd(v, 3) if isinstance(v, float) else v for k, v in trade.items()},
        })  # fmt: skip
        if kind == "event" and first is None:
            behind = (ts >= c.t_ms - 20 * 60_000) & (ts <= c.t_ms)
            after = price[(ts > c.t_ms) & (ts <= c.t_ms + PEAK_HORIZON_MS)]
            first = {
                "t_rel_T_s": rnd((c.t_ms - t) / 1000.0, 1),
                "t_rel_labelled_ms": c.t_ms - event.labelled_ms if event.labelled_ms is not None else None,
                "t_rel_cross10_ms": c.t_ms - event.cross10_ms if event.cross10_ms is not None else None,
                "price": c.price,
                "rise_behind_vs_p_ref_pct": rnd(100.0 * (c.price / event.p_ref - 1.0), 2),
                "rise_behind_vs_20m_min_pct": rnd(100.0 * (c.price / float(price[behind].min()) - 1.0), 2) if behind.any() else None,
                "peak_after_pct": rnd(100.0 * (float(after.max()) / c.price - 1.0), 2) if len(after) else 0.0,
            }  # fmt: skip
    return {
        "detected": first is not None,
        "first_signal": first,
        "signals_in_event_window": n_event,
        "background_signals": n_background,
        "background_signals_near_unlisted_episode": near,
        "signals": signals,
    }


def _pct(values: list[float], q: float, nd: int = 1) -> float | None:
    return rnd(float(np.percentile(np.array(values), q)), nd) if values else None


def summarise(events: list[dict[str, Any]], profile: str) -> dict[str, Any]:
    """One profile's figures over events (each event dict holds its measure under by_profile)."""
    per = [(e, e["by_profile"][profile]) for e in events]
    meets = [(e, m) for e, m in per if e["meets_10pct_20min"]]
    found = [m for _, m in meets if m["detected"]]
    delays = {k: [m["first_signal"][k] for m in found if m["first_signal"][k] is not None]
              for k in ("t_rel_labelled_ms", "t_rel_cross10_ms")}  # fmt: skip
    tp = sum(m["signals_in_event_window"] for _, m in per)
    fp = sum(m["background_signals"] for _, m in per)
    days = sum(e["background_hours"] for e in events) / 24.0
    fp_unexplained = fp - sum(m["background_signals_near_unlisted_episode"] for _, m in per)
    sig = [s for e in events for s in e["signals"] if s["profile"] == profile]
    rets = {k: ([s[k] for s in sig if s["kind"] == "event"], [s[k] for s in sig if s["kind"] == "background"])
            for k in ("ret_pct", "trail_ret_pct")}  # fmt: skip
    false_per_day = fp / days if days else None
    return {
        "events": len(events),
        "events_meeting_10pct_20min": len(meets),
        "detected": len(found),
        "recall": rnd(len(found) / len(meets), 4) if meets else None,
        "detected_weak_events": sum(1 for e, m in per if not e["meets_10pct_20min"] and m["detected"]),
        "delay_ms": {k: {"n": len(v), "median": _pct(v, 50, 0), "p90": _pct(v, 90, 0)} for k, v in delays.items()},
        "signals_in_event_windows": tp,
        "background_signals": fp,
        "background_signals_not_near_an_unlisted_episode": fp_unexplained,
        "precision": rnd(tp / (tp + fp), 4) if tp + fp else None,
        "background_coin_days": rnd(days, 2),
        "false_signals_per_coin_day": rnd(false_per_day, 4),
        "false_signals_per_coin_day_excl_unlisted_episodes": rnd(fp_unexplained / days, 4) if days else None,
        "cards_per_pump": rnd(tp / len(events), 2) if events else None,
        "false_cards_per_day_at_2000_pairs": rnd(false_per_day * CARDS_PAIRS, 1) if false_per_day is not None else None,
        "median_rise_behind_vs_p_ref_pct": _pct([m["first_signal"]["rise_behind_vs_p_ref_pct"] for m in found], 50),
        "median_peak_after_pct": _pct([m["first_signal"]["peak_after_pct"] for m in found], 50),
        "trader_fixed": trader_summary(*rets["ret_pct"], days),
        "trader_trailing": trader_summary(*rets["trail_ret_pct"], days),
    }
