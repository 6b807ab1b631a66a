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

Profiles (config scanner.profiles, each with its own model file and rules):
  alpha1  the rules above and model.json (needs the book);
  flash   ROW_FLASH_READY, ret_25s > flash_ret_25s_min, buy_share_25s > flash_buy_share_min,
          rush_ratio_25s >= flash_rush_ratio_min, and model.flash.json's prob >= flash_prob_threshold.
          Trade-derived only: it fires within seconds of a flash pump's first rush orders.
A row fires for the first enabled profile (in config order) that passes. The cooldown is per pair
across profiles: one signal per pump, whichever profile saw it first.

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
from core.rowspec import ROW_BASELINE_READY, ROW_BOOK_VALID, ROW_FLASH_READY, ROW_LISTING_KNOWN
from supervisor.model import Model

PROFILES = ("alpha1", "flash")


@dataclass
class Decision:
    """One signal to send: the row that triggered it and why."""

    pair_id: int
    row: dict[str, Any]
    prob: float
    reasons: list[str]
    escalation: int  # 0 = first alert of a cooldown, n = n-th re-alert
    profile: str = "alpha1"


@dataclass
class _PairState:
    last_alert_ms: int  # exchange time of the alert that opened the cooldown
    last_pm: float  # PM of the pair's newest alert (first or re-alert)
    realerts: int = 0


def rule_mask(rows: np.ndarray, c: ScannerConfig) -> np.ndarray:
    """Boolean per row: every Alpha-1 rule passes (NaN and missing flags fail)."""
    with np.errstate(invalid="ignore"):  # comparisons with NaN are simply False
        # Why the gate first: almost every batch is a handful of quiet rows that fail VSR, and
        # a batch costs NumPy call overhead per rule, not per row; the rest only runs when needed.
        gate = rows["vsr"] > c.vsr_min
        if not gate.any():
            return gate
        flags = rows["flags"]
        book = (flags & ROW_BOOK_VALID) != 0
        return (
            ((flags & ROW_BASELINE_READY) != 0)
            & gate
            & (rows["vc"] < c.vc_max)
            & (rows["pm"] > c.pm_min)
            & book
            & (rows["obi"] > c.obi_min)
            & (rows["cum_depth_delta"] > c.cum_depth_delta_min)
            & (rows["spread"] < c.spread_max)
            & ((flags & ROW_LISTING_KNOWN) != 0)
            & (rows["listing_age_s"] > c.listing_age_min_s)
        )


def flash_rule_mask(rows: np.ndarray, c: ScannerConfig) -> np.ndarray:
    """Boolean per row: every flash rule passes (NaN and a missing ROW_FLASH_READY fail)."""
    with np.errstate(invalid="ignore"):
        gate = rows["ret_25s"] > c.flash_ret_25s_min  # the rarest rule first, as in rule_mask
        if not gate.any():
            return gate
        return (
            ((rows["flags"] & ROW_FLASH_READY) != 0)
            & gate
            & (rows["buy_share_25s"] > c.flash_buy_share_min)
            & (rows["rush_ratio_25s"] >= c.flash_rush_ratio_min)
        )


def flash_reasons(row: np.void | dict[str, Any], c: ScannerConfig, prob: float) -> list[str]:
    """The flash rules the row passed, for the card."""
    return [
        f"Rush25s x{row['rush_ratio_25s']:.1f}>={c.flash_rush_ratio_min:g}",
        f"Trades25s x{row['trades_ratio_25s']:.1f}",
        f"Ret25s {row['ret_25s'] * 100:.2f}%>{c.flash_ret_25s_min * 100:g}%",
        f"Buy25s {row['buy_share_25s'] * 100:.0f}%>{c.flash_buy_share_min * 100:g}%",
        f"Prob {prob:.2f}>={c.flash_prob_threshold:g}",
    ]


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


def _as_models(model: Model | dict[str, Model]) -> dict[str, Model]:
    return dict(model) if isinstance(model, dict) else {model.profile: model}


@dataclass
class Scorer:
    """Rule filters + models + cooldown over batches of FEATURE_ROW_DTYPE rows.

    model: one Model (its profile is the only one scored) or {profile: Model}; a profile in
    config.profiles without a model here is skipped (the app refuses to start without it).
    """

    config: ScannerConfig
    model: Model | dict[str, Model]
    state: dict[int, _PairState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.models = _as_models(self.model)

    def update(self, config: ScannerConfig, model: Model | dict[str, Model]) -> None:
        """Hot reload: new thresholds and weights; cooldown memory is kept."""
        self.config, self.model = config, model
        self.models = _as_models(model)

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

    def _profile_fire(self, rows: np.ndarray, profile: str) -> tuple[np.ndarray, np.ndarray]:
        """(fires, prob) per row for one profile; prob is 0 where the rules fail."""
        c = self.config
        # self.rule_mask, not the module function: a replay scorer overrides it (perf/eval_pumps.py's trades-only rules).
        mask = self.rule_mask(rows) if profile == "alpha1" else flash_rule_mask(rows, c)
        threshold = c.prob_threshold if profile == "alpha1" else c.flash_prob_threshold
        prob = np.zeros(len(rows))
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            return mask, prob
        prob[idx] = self.models[profile].probability(rows[idx])
        return mask & (prob >= threshold), prob

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
        which = None  # index into `enabled` of the profile that fired, -1 for none; made on the first fire
        prob_all = None
        enabled = [p for p in self.config.profiles if p in self.models]
        for k, profile in enumerate(enabled):
            fires, prob = self._profile_fire(rows, profile)
            if not fires.any():
                continue
            if which is None or prob_all is None:
                which, prob_all = np.full(len(rows), -1), np.zeros(len(rows))
            first = fires & (which < 0)
            which[first] = k
            prob_all[first] = prob[first]
        if which is None or prob_all is None:  # the common batch: nothing fired
            return []
        idx = np.flatnonzero(which >= 0)
        probs = prob_all[idx]
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
            profile = enabled[int(which[idx[k]])]
            values = {name: row[name].item() for name in rows.dtype.names}
            reasons = reasons_for(row, self.config, prob) if profile == "alpha1" else flash_reasons(row, self.config, prob)
            decisions.append(Decision(int(row["pair_id"]), values, prob, reasons, escalation, profile))
        return decisions
