"""Scorer: every new ring row at once through the rule filter, the model and the cooldown.

Vectorised with NumPy: the rule filter and the probability are array operations over the whole
batch; Python only touches the few rows that pass. Cooldown runs on exchange time (row_time_ms),
so a replay gives the same signals at any speed. A pair alerts once per cooldown, plus at most
max_realerts re-alerts when its price move (PM) has grown by realert_pm_factor since the last
alert: an escalating pump is worth a second card, a flood never is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.config import ScannerConfig
from supervisor.model import Model


@dataclass
class Decision:
    pair_id: int
    row: dict[str, Any]
    prob: float
    reasons: list[str]
    escalation: int


@dataclass
class _PairState:
    last_alert_ms: int
    last_pm: float
    realerts: int = 0


@dataclass
class Scorer:
    config: ScannerConfig
    model: Model
    state: dict[int, _PairState] = field(default_factory=dict)

    def update(self, config: ScannerConfig, model: Model) -> None:
        """Hot reload: new thresholds and weights; cooldown memory is kept."""
        self.config, self.model = config, model

    def rule_mask(self, rows: np.ndarray) -> np.ndarray:
        c = self.config
        with np.errstate(invalid="ignore"):
            return (
                (rows["vsr"] > c.vsr_min)
                & (rows["vc"] < c.vc_max)
                & (rows["pm"] > c.pm_min)
                & (rows["obi"] > c.obi_min)
                & (rows["cum_depth_delta"] > c.cum_depth_delta_min)
                & (rows["spread"] < c.spread_max)
                & (rows["listing_age_s"] > c.listing_age_min_s)
            )

    def _reasons(self, row: np.void) -> list[str]:
        c = self.config
        return [
            f"VSR {row['vsr']:.1f}>{c.vsr_min:g}",
            f"VC {row['vc']:.2f}<{c.vc_max:g}",
            f"PM {row['pm'] * 100:.2f}%>{c.pm_min * 100:g}%",
            f"OBI {row['obi']:.2f}>{c.obi_min:g}",
            f"CumDepthΔ {row['cum_depth_delta']:.4g}>{c.cum_depth_delta_min:g}",
            f"Spread {row['spread'] * 100:.2f}%<{c.spread_max * 100:g}%",
        ]

    def score(self, rows: np.ndarray, now_ns: int = 0) -> list[Decision]:
        if len(rows) == 0:
            return []
        mask = self.rule_mask(rows)
        if not mask.any():
            return []
        passing = rows[mask]
        probs = self.model.probability(passing)
        hot = probs >= self.config.prob_threshold
        if not hot.any():
            return []
        passing, probs = passing[hot], probs[hot]
        # One decision per pair per batch: its newest passing row.
        latest: dict[int, int] = {}
        for i, pair_id in enumerate(passing["pair_id"].tolist()):
            j = latest.get(pair_id)
            if j is None or passing["row_time_ms"][i] >= passing["row_time_ms"][j]:
                latest[pair_id] = i
        decisions = []
        cooldown_ms = self.config.cooldown_s * 1000.0
        for pair_id, i in sorted(latest.items(), key=lambda kv: int(passing["row_time_ms"][kv[1]])):
            row = passing[i]
            t, pm = int(row["row_time_ms"]), float(row["pm"])
            st = self.state.get(pair_id)
            if st is None or t - st.last_alert_ms >= cooldown_ms:
                self.state[pair_id] = _PairState(t, pm)
                escalation = 0
            elif st.realerts < self.config.max_realerts and pm >= st.last_pm * self.config.realert_pm_factor:
                st.realerts += 1
                st.last_pm = pm
                escalation = st.realerts
            else:
                continue
            decisions.append(Decision(int(pair_id), {n: row[n].item() for n in rows.dtype.names}, float(probs[i]), self._reasons(row), escalation))
        return decisions
