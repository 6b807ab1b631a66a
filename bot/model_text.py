"""/model: the running model of every enabled profile, when it was trained and how it validated.

Why from the supervisor's status reply and not from the model files: the files on disk may have
changed since the scorer loaded them; the answer must be what is scoring now.
"""

from __future__ import annotations

import math
from typing import Any


def _pct(value: Any) -> str:
    return f"{100 * value:.0f} %" if isinstance(value, (int, float)) and math.isfinite(value) else "n/a"


def _n(value: Any, fmt: str) -> str:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return format(value, fmt) if ok else "n/a"


def format_models(models: Any, selftrain: Any = None) -> str:
    """One block per running model, then the last self-training run; odd or missing fields show as n/a."""
    last = ""
    if isinstance(selftrain, dict):
        last = f"\nLast self-training run {selftrain.get('finished') or '?'} ({selftrain.get('profile') or '?'}): {selftrain.get('reason') or '?'}"
    if not isinstance(models, list) or not models:
        return "No model is running (no enabled profile reported one)." + last
    blocks = []
    for m in models:
        if not isinstance(m, dict):
            continue
        t = m.get("trained") if isinstance(m.get("trained"), dict) else {}
        c = m.get("check") if isinstance(m.get("check"), dict) else {}
        lines = [f"{m.get('profile', '?')} ({m.get('detector', '?')}): {m.get('model_path', '?')}, "
                 f"{m.get('features', '?')} features, running threshold {_n(m.get('prob_threshold'), '.4g')}"]  # fmt: skip
        if not t:
            lines.append("  not trained: hand-set weights (its prob is a score, not a probability)")
        else:
            lines.append(f"  trained {t.get('date', '?')} ({t.get('source', 'supervisor.train')}), {t.get('events', '?')} events, "
                         f"{t.get('rows', '?')} rows, label {t.get('label', '?')}")  # fmt: skip
            lines.append(f"  validation ({t.get('cv', '?')}): AUC {_n(t.get('auc_oof'), '.3f')}; at threshold "
                         f"{_n(t.get('threshold'), '.4g')}: recall {_pct(c.get('recall'))} of {c.get('events_meeting_target', '?')} "
                         f"pumps, median delay {_n(c.get('median_delay_after_cross10_s'), '.1f')} s, "
                         f"{_n(c.get('false_signals_per_coin_day'), '.3f')} false signals per coin-day")  # fmt: skip
            if c.get("mean_ret_pct") is not None:
                lines.append(f"  a Buy on every card (1 s latency, fees, +10 %/-5 % exits): {_n(c.get('mean_ret_pct'), '+.2f')} % per card")
            hold = t.get("holdout") if isinstance(t.get("holdout"), dict) else None
            if hold:
                lines.append(f"  held-back days {hold.get('days', '?')}: {hold.get('verdict', '')}")
        blocks.append("\n".join(lines))
    return ("\n".join(blocks) or "No model is running.") + last
