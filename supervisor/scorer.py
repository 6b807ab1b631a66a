"""Scorer: every new ring row at once through the rule filter, the model and the cooldown.

Vectorised with NumPy: the rule filter, the probability and the choice of one row per pair are
array operations over the whole batch; Python only touches the (few) pairs that pass. Cooldown
runs on exchange time (row_time_ms), so a replay gives the same signals at any speed, and the
scorer is pure: the same rows in the same order always give the same decisions.

Rules (Alpha-1, thresholds from config.scanner): VSR > vsr_min, VC < vc_max, PM > pm_min,
OBI > obi_min, CumDepthΔ > cum_depth_delta_min, Spread < spread_max, ListingAge > listing_age_min_s.
A NaN fails its rule, and so does a feature whose validity flag is missing (book features need
ROW_BOOK_VALID, VSR needs ROW_BASELINE_READY, ListingAge needs ROW_LISTING_KNOWN): an unknown
value is never evidence of a pump.

Per pair and batch at most one decision, made on the pair's newest row that passed the rules and
prob >= prob_threshold (the freshest price for the card). A pair alerts once per cooldown_s, plus
at most max_realerts re-alerts inside that cooldown when PM has grown by realert_pm_factor since
the pair's last alert: an escalating pump is worth a second card, a flood never is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.config import ScannerConfig
from core.rowspec import ROW_BASELINE_READY, ROW_BOOK_VALID, ROW_LISTING_KNOWN
from supervisor.model import Model


@dataclass
class Decision:
    """One signal to send: the row that triggered it and why."""

    pair_id: int
    row: dict[str, Any]
    prob: float
    reasons: list[str]
    escalation: int  # 0 = first alert of a cooldown, n = n-th re-alert


@dataclass
class _PairState:
    last_alert_ms: int  # exchange time of the alert that opened the cooldown
    last_pm: float  # PM of the pair's newest alert (first or re-alert)
    realerts: int = 0


def rule_mask(rows: np.ndarray, c: ScannerConfig) -> np.ndarray:
    """Boolean per row: every Alpha-1 rule passes (NaN and missing flags fail)."""
    flags = rows["flags"]
    book = (flags & ROW_BOOK_VALID) != 0
    with np.errstate(invalid="ignore"):  # comparisons with NaN are simply False
        return (
            ((flags & ROW_BASELINE_READY) != 0)
            & (rows["vsr"] > c.vsr_min)
            & (rows["vc"] < c.vc_max)
            & (rows["pm"] > c.pm_min)
            & book
            & (rows["obi"] > c.obi_min)
            & (rows["cum_depth_delta"] > c.cum_depth_delta_min)
            & (rows["spread"] < c.spread_max)
            & ((flags & ROW_LISTING_KNOWN) != 0)
            & (rows["listing_age_s"] > c.listing_age_min_s)
        )


def reasons_for(row: np.void | dict[str, Any], c: ScannerConfig, prob: float) -> list[str]:
    """Human-readable rules the row passed, e.g. "VSR 7.4>5", for the card and the signal log."""
    return [
        f"VSR {row['vsr']:.1f}>{c.vsr_min:g}",
        f"VC {row['vc']:.2f}<{c.vc_max:g}",
        f"PM {row['pm'] * 100:.2f}%>{c.pm_min * 100:g}%",
        f"OBI {row['obi']:.2f}>{c.obi_min:g}",
        f"CumDepthΔ {row['cum_depth_delta']:.4g}>{c.cum_depth_delta_min:g}",
        f"Spread {row['spread'] * 100:.2f}%<{c.spread_max * 100:g}%",
        f"ListingAge {row['listing_age_s'] / 3600:.1f}h>{c.listing_age_min_s / 3600:g}h",
        f"Prob {prob:.2f}>={c.prob_threshold:g}",
    ]


@dataclass
class Scorer:
    """Rule filter + model + cooldown over batches of FEATURE_ROW_DTYPE rows."""

    config: ScannerConfig
    model: Model
    state: dict[int, _PairState] = field(default_factory=dict)

    def update(self, config: ScannerConfig, model: Model) -> None:
        """Hot reload: new thresholds and weights; cooldown memory is kept."""
        self.config, self.model = config, model

    def rule_mask(self, rows: np.ndarray) -> np.ndarray:
        return rule_mask(rows, self.config)

    def remember_alert(self, pair_id: int, last_alert_ms: int, last_pm: float, realerts: int) -> None:
        """Resume a cooldown the previous run opened (read back from storage at start-up).

        Why: cooldowns live in memory, so without this a restarted service would alert again on a
        pump it already announced. Only the newer of the stored and the in-memory cooldown counts.
        """
        current = self.state.get(pair_id)
        if current is None or current.last_alert_ms < last_alert_ms:
            self.state[pair_id] = _PairState(int(last_alert_ms), float(last_pm), int(realerts))

    def _cooldown(self, pair_id: int, t_ms: int, pm: float) -> int | None:
        """The escalation number if this pair may alert at t_ms with this PM, else None; updates state."""
        c = self.config
        st = self.state.get(pair_id)
        if st is None or t_ms - st.last_alert_ms >= c.cooldown_s * 1000.0:
            self.state[pair_id] = _PairState(t_ms, pm)
            return 0
        if st.realerts < c.max_realerts and pm > 0 and pm >= st.last_pm * c.realert_pm_factor:
            st.realerts += 1
            st.last_pm = pm
            return st.realerts
        return None

    def score(self, rows: np.ndarray, now_ns: int = 0) -> list[Decision]:
        """Decisions for one batch of new rows, ordered by exchange time then pair id.

        now_ns is accepted for the caller's bookkeeping only: decisions depend on exchange time,
        never on the wall clock.
        """
        if len(rows) == 0:
            return []
        idx = np.flatnonzero(self.rule_mask(rows))
        if len(idx) == 0:
            return []
        probs = self.model.probability(rows[idx])
        hot = probs >= self.config.prob_threshold
        idx, probs = idx[hot], probs[hot]
        if len(idx) == 0:
            return []
        # Newest row per pair: sort by (pair, time, position) and keep each pair's last entry.
        pairs = rows["pair_id"][idx]
        order = np.lexsort((idx, rows["row_time_ms"][idx], pairs))
        last_of_pair = np.ones(len(order), dtype=bool)
        last_of_pair[:-1] = pairs[order][1:] != pairs[order][:-1]
        chosen = order[last_of_pair]
        chosen = chosen[np.lexsort((pairs[chosen], rows["row_time_ms"][idx[chosen]]))]
        decisions = []
        for k in chosen.tolist():
            row = rows[idx[k]]
            escalation = self._cooldown(int(row["pair_id"]), int(row["row_time_ms"]), float(row["pm"]))
            if escalation is None:
                continue
            prob = float(probs[k])
            values = {name: row[name].item() for name in rows.dtype.names}
            decisions.append(Decision(int(row["pair_id"]), values, prob, reasons_for(row, self.config, prob), escalation))
        return decisions
