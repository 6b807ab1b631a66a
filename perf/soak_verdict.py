"""perf/soak.py's verdict: the invariants read back from SQLite, the chat and the samples.

Apart from the run loop because it is the part a reader checks line by line (what counts as owed,
what is excused and why), and it only reads what the run left behind.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from perf.harness import telegram_cards

if TYPE_CHECKING:
    from perf.soak import Plan, World

FIRES_WITHIN_S = 200  # Alpha-1 fires about 2 minutes into a scripted pump (see sim/scenarios/README.md)
STALL_S = 12.0


def slope_mb_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB), in MB per hour."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    var = sum((p[0] - mx) ** 2 for p in points)
    if var == 0:
        return None
    return 3600 * sum((p[0] - mx) * (p[1] - my) for p in points) / var


def process_lives(samples: list[dict[str, Any]], name: str, since_s: float = 0.0) -> dict[Any, list[tuple[float, float]]]:
    """PSS points (seconds, MB) of the process called name from since_s, one list per pid: a restart is a new life."""
    lives: dict[Any, list[tuple[float, float]]] = {}
    for s in samples:
        if name in s.get("pss_mb", {}) and s["t_s"] >= since_s:
            lives.setdefault(s.get("pid", {}).get(name), []).append((s["t_s"], s["pss_mb"][name]))
    return lives


def longest_life(lives: dict[Any, list[tuple[float, float]]]) -> tuple[Any, list[tuple[float, float]]]:
    """(pid, points) of the life that spans the most time: a slope over it is the process's own, not a restart's step."""
    return max(lives.items(), key=lambda kv: kv[1][-1][0] - kv[1][0][0])


def service_slope(samples: list[dict[str, Any]], settle_s: float) -> float | None:
    """The whole service's PSS slope (MB/h) after settle_s: the soak's memory invariant."""
    return slope_mb_per_hour([(s["t_s"], s["pss_mb_total"]) for s in samples if s["t_s"] >= settle_s and s.get("pss_mb_total")])



def blind_windows(events: list[dict[str, Any]], speed: float) -> list[tuple[float, float]]:
    """Wall-time windows in which some pairs could not be watched: killed shards, stalled links.

    A killed shard is forked again within a second, but its pairs must be re-subscribed and their
    klines re-seeded within the shard's REST budget (two requests per pair: ~25 s for 150 pairs),
    and then CumDepthΔ and VC need ~400 s of market time again.
    """
    rewarm = 30.0 + 400.0 / speed
    out = []
    for e in events:
        if e.get("fault") == "kill_child" and str(e.get("victim", "")).startswith("shard"):
            out.append((e["t_s"], e["t_s"] + rewarm))
        elif e.get("fault") == "stall":
            out.append((e["t_s"], e["t_s"] + STALL_S + 8.0 + rewarm))  # stalled, noticed after idle_timeout_s, re-warmed
    return out


def verdict(world: World, plan: Plan, speed: float, elapsed_wall: float, samples: list[dict[str, Any]],
            calm: dict[str, float], chaos_on: bool) -> dict[str, Any]:  # fmt: skip
    db = sqlite3.connect(world.workdir / "data" / "scanner.sqlite3")
    try:
        signals = db.execute("SELECT signal_id, symbol, escalation FROM signals").fetchall()
        orders = db.execute("SELECT signal_id, COUNT(*) FROM orders GROUP BY signal_id").fetchall()
        actions = dict(db.execute("SELECT signal_id, action FROM actions").fetchall())
    finally:
        db.close()
    exchange_end = elapsed_wall * speed
    # Each pump episode owns the signals of its pair from its start to 5 minutes after its end: the
    # 5-min windows still hold the pump then, and a pair blinded by a fault may be caught late.
    windows = [(p["symbol"], world.start_ms + 1000 * p["start_s"], world.start_ms + 1000 * (p["start_s"] + p["duration_s"] + 300))
               for p in plan.pumps]  # fmt: skip
    # Time compression has a cost: a fault that blinds a pair for a few wall seconds (a killed
    # shard re-subscribing and re-warming its windows, a stalled link) covers a whole pump at high
    # --speed. Such pumps are excused, and listed, not silently dropped.
    first_alerts: dict[int, int] = {}
    off_pump: list[str] = []
    for signal_id, symbol, escalation in signals:
        t_ms = int(signal_id.rsplit("-", 2)[1])
        episode = next((i for i, (sym, a, b) in enumerate(windows) if sym == symbol and a <= t_ms <= b), None)
        if episode is None:
            off_pump.append(signal_id)
        elif escalation == 0:
            first_alerts[episode] = first_alerts.get(episode, 0) + 1
    # Only a pump that a fault blinded AND that got no signal is excused; a blinded pump that was
    # signalled still counts (and must have been signalled exactly once).
    blind = blind_windows(world.events, speed)
    excused = [i for i, p in enumerate(plan.pumps) if i not in first_alerts
               and any(a < (p["start_s"] + FIRES_WITHIN_S) / speed and p["start_s"] / speed < b for a, b in blind)]  # fmt: skip
    owed_episodes = [i for i, p in enumerate(plan.pumps) if p["start_s"] + FIRES_WITHIN_S <= exchange_end and i not in excused]
    delivered: dict[str, int] = {}
    for card in telegram_cards(world.tg["control"]):
        delivered[card["signal_id"]] = delivered.get(card["signal_id"], 0) + 1
    stored_ids = {s[0] for s in signals}
    orders_per_signal = dict(orders)
    pressed_ids = set(world.pressed)
    after_warmup = [s for s in samples if s["t_s"] >= plan.warmup_wall + 30 and s["pss_mb_total"]]
    slope = slope_mb_per_hour([(s["t_s"], s["pss_mb_total"]) for s in after_warmup])
    hours = elapsed_wall / 3600
    result = {
        "pumps": {"scripted": len(plan.pumps), "owed": len(owed_episodes),
                  "excused_blinded_by_a_fault": [plan.pumps[i] for i in excused],
                  "signalled_once": sum(1 for i in owed_episodes if first_alerts.get(i) == 1),
                  "missed": [plan.pumps[i] for i in owed_episodes if i not in first_alerts],
                  "first_alerts_more_than_once": {plan.pumps[i]["symbol"] + "@" + str(plan.pumps[i]["start_s"]): n
                                                  for i, n in first_alerts.items() if n > 1},
                  "signals_not_on_pumps": off_pump},
        "delivery": {"stored": len(stored_ids), "delivered_once": sum(1 for i in stored_ids if delivered.get(i) == 1),
                     "undelivered": sorted(stored_ids - set(delivered)), "duplicated": {i: n for i, n in delivered.items() if n > 1},
                     "unknown_cards": sorted(set(delivered) - stored_ids)},
        "orders": {"buy_pressed": len(pressed_ids), "double_taps": sum(1 for n in world.pressed.values() if n > 1),
                   "placed": sum(orders_per_signal.values()), "duplicate": {i: n for i, n in orders_per_signal.items() if n > 1},
                   "missing": sorted(i for i in pressed_ids if actions.get(i) == "buy" and i not in orders_per_signal),
                   "actions_recorded": sum(1 for i in pressed_ids if i in actions)},
        "processes": {"injected_kills": world.kills, "service_restarts": world.restarts,
                      "shard_restarts": samples[-1]["shard_restarts"] if samples else None,
                      "unexpected_exits": [e for e in world.events if e["kind"] == "service_exit"]},
        "reconnects": {"calm_per_hour": calm.get("per_hour"), "total_last": samples[-1]["reconnects"] if samples else None,
                       "under_chaos_per_hour": (((samples[-1]["reconnects"] or 0) / hours) if samples and hours and chaos_on else None)},
        "memory": {"slope_mb_per_hour": slope, "first_mb": after_warmup[0]["pss_mb_total"] if after_warmup else None,
                   "last_mb": after_warmup[-1]["pss_mb_total"] if after_warmup else None,
                   "max_mb": max((s["pss_mb_total"] for s in samples), default=None)},
        "simulated_hours": round(exchange_end / 3600, 2),
        "wall_minutes": round(elapsed_wall / 60, 2),
    }  # fmt: skip
    p, d, o = result["pumps"], result["delivery"], result["orders"]
    growth_ok = not after_warmup or after_warmup[-1]["pss_mb_total"] <= after_warmup[0]["pss_mb_total"] + 40
    result["invariants"] = {
        "every_owed_pump_signalled_once": p["signalled_once"] == p["owed"] and not p["first_alerts_more_than_once"],
        "no_signal_off_pumps": not p["signals_not_on_pumps"],
        "every_signal_delivered_once": d["delivered_once"] == d["stored"] and not d["unknown_cards"],
        "no_duplicate_order": not o["duplicate"] and not o["missing"],
        "no_unexpected_exit": not result["processes"]["unexpected_exits"],
        "memory_bounded": growth_ok,
    }
    result["pass"] = all(result["invariants"].values())
    return result
