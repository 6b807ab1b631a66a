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

import math
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Context, Decimal
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
    model_trained: bool = False  # the profile's model file has `trained` set: prob is a probability, else a score


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


# Printed comparisons (rule_text). Why a Decimal search instead of a fixed format: "VC 0.50<0.5"
# for a true 0.4996 reads as a false statement on the card; the value gets as many digits as it
# takes for the printed comparison to hold, and usually no more than the readable default.
_OPS: dict[str, Callable[[Decimal, Decimal], bool]] = {">": operator.gt, "<": operator.lt, "≥": operator.ge}
_EXACT = Context(prec=1000, Emax=100_000, Emin=-100_000)  # wide enough that every float's decimal scales exactly
_MAX_EXTRA_DIGITS = 20


def _decimal(value: float, scale: Decimal, per: int = 1) -> Decimal:
    """The shortest decimal that reads back as value (repr), times scale, divided by per (a unit: 3600 s per h).

    Why repr and not the float's exact binary value: repr is strictly monotonic (a > b implies
    repr(a) > repr(b), and equal floats give equal text), so the rule's float comparison carries
    over to the printed decimals, including >= at equality (0.7's exact value is below "0.7").
    """
    d = _EXACT.multiply(Decimal(repr(float(value))), scale)
    if per != 1:  # 1,000 digits: a non-terminating quotient still keeps every float's order
        d = _EXACT.divide(d, Decimal(per))
    return d.copy_abs() if d.is_zero() else d  # no "-0"


def _readable(d: Decimal) -> bool:
    """Fixed-point reads well from 1e-8 to 1e15; beyond that (a broken baseline's VSR 1e300) use an exponent."""
    return d.is_zero() or -8 <= d.adjusted() < 15


def _plain(d: Decimal) -> str:
    """Shortest text of d: "2", "0.015", "100" (not "1E+2"), "1E+300"."""
    if not _readable(d):
        return format(d.normalize(_EXACT), "E")
    text = format(d, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _shown(v: Decimal, places: int | None) -> Iterator[str]:
    """Texts of v from the readable default to more digits; the last one is v itself (always true)."""
    if _readable(v):
        if places is None:  # 4 significant digits, but never rounding the integer part: 12346, 3.000, 0.0001234
            places = max(0, 3 - (v.adjusted() if not v.is_zero() else 0))
        for d in range(places, places + _MAX_EXTRA_DIGITS + 1):
            yield format(_EXACT.quantize(v, Decimal(1).scaleb(-d)), "f")
    else:
        for k in range(4, 4 + _MAX_EXTRA_DIGITS + 1):
            yield format(Context(prec=k, Emax=100_000, Emin=-100_000).plus(v), "E")
    yield _plain(v)


def rule_text(label: str, value: float, op: str, threshold: float, *, places: int | None = 2,
              scale: Decimal = Decimal(1), per: int = 1, unit: str = "") -> str:  # fmt: skip
    """"label value op threshold" for a rule the value passed, e.g. "VC 0.4996 < 0.5".

    The threshold is printed as configured (shortest decimal, times scale, divided by per); the
    value with the fewest decimals (at least `places` and the threshold's; None: 4 significant
    digits) for which the
    printed value compared with the printed threshold satisfies op. A value that does not pass
    (never the case for a fired rule) ends at its full decimal, still printed, never hidden.
    """
    compare = _OPS[op]
    t_text = _plain(_decimal(threshold, scale, per))
    if not math.isfinite(value):
        v_text = "n/a" if value != value else ("inf" if value > 0 else "-inf")
        return f"{label} {v_text}{unit} {op} {t_text}{unit}"
    t = Decimal(t_text)
    if places is not None and "E" not in t_text:  # at least the threshold's decimals: "0.2501 h > 0.25 h", not "0.3 h > 0.25 h"
        places = max(places, -min(0, t.as_tuple().exponent))  # type: ignore[operator]
    text = ""
    for text in _shown(_decimal(value, scale, per), places):
        if compare(Decimal(text), t):
            break
    return f"{label} {text}{unit} {op} {t_text}{unit}"


def _age_unit(threshold_s: float) -> tuple[str, int]:
    """Hours, else minutes, else seconds: the first unit in which the threshold reads exactly, in at most 2 decimals (900 s -> 0.25 h).

    Why: a rounded threshold ("0.28 h" for 1,000 s) would make the printed comparison a different claim than the rule.
    """
    t = Decimal(repr(float(threshold_s)))
    for unit, per in ((" h", 3600), (" min", 60)):
        q = _EXACT.divide(t, Decimal(per))
        if q == _EXACT.quantize(q, Decimal("0.01")):
            return unit, per
    return " s", 1


def prob_label(trained: bool) -> str:
    """What to call the model's output: a probability only when the model was fitted to data.

    Why: a hand-set model (model.json's `trained` is null) maps a weighted score through a
    sigmoid; its 0.99 was never calibrated against outcomes, so calling it a probability misleads.
    """
    return "Pump prob" if trained else "Score"


def flash_reasons(row: np.void | dict[str, Any], c: ScannerConfig, prob: float, trained: bool = False) -> list[str]:
    """The flash rules the row passed, for the card: plain words, the feature's name in brackets."""
    pct = Decimal(100)
    return [
        rule_text("Rush orders vs usual (Rush25s)", row["rush_ratio_25s"], "≥", c.flash_rush_ratio_min, places=1),
        f"Trades vs usual (Trades25s) {row['trades_ratio_25s']:.1f}",
        rule_text("Price move in 25 s (Ret25s)", row["ret_25s"], ">", c.flash_ret_25s_min, scale=pct, unit="%"),
        rule_text("Taker-buy share (Buy25s)", row["buy_share_25s"], ">", c.flash_buy_share_min, places=0, scale=pct, unit="%"),
        rule_text(prob_label(trained), prob, "≥", c.flash_prob_threshold),
    ]


def reasons_for(row: np.void | dict[str, Any], c: ScannerConfig, prob: float, trained: bool = False) -> list[str]:
    """The Alpha-1 rules the row passed, e.g. "Volume vs 6 h median (VSR) 7.4 > 5", for the card and the signal log."""
    pct = Decimal(100)
    age_unit, age_per = _age_unit(c.listing_age_min_s)
    return [
        rule_text("Volume vs 6 h median (VSR)", row["vsr"], ">", c.vsr_min, places=1),
        rule_text("Top minute's share of 5-min volume (VC)", row["vc"], "<", c.vc_max),
        rule_text("Price above 5-min VWAP (PM)", row["pm"], ">", c.pm_min, scale=pct, unit="%"),
        rule_text("Bid/ask imbalance (OBI)", row["obi"], ">", c.obi_min),
        rule_text("Bid depth change in 3 min (CumDepthΔ)", row["cum_depth_delta"], ">", c.cum_depth_delta_min, places=None),
        rule_text("Spread", row["spread"], "<", c.spread_max, scale=pct, unit="%"),
        rule_text("Listed for (ListingAge)", row["listing_age_s"], ">", c.listing_age_min_s, places=1, per=age_per, unit=age_unit),
        rule_text(prob_label(trained), prob, "≥", c.prob_threshold),
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
            trained = self.models[profile].trained is not None
            reasons = (reasons_for if profile == "alpha1" else flash_reasons)(row, self.config, prob, trained)
            decisions.append(Decision(int(row["pair_id"]), values, prob, reasons, escalation, profile, trained))
        return decisions
