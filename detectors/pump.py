"""Detector "pump": a spot pair pumping (>= 10 % within 20 min), from the shards' feature rows.

Profiles (config detectors.pump.profiles.<name>, enabled in detectors.pump.enabled_profiles):

  alpha1  the specification's rules (DESIGN.md): VSR > vsr_min, VC < vc_max, PM > pm_min,
          OBI > obi_min, CumDepthΔ > cum_depth_delta_min, Spread < spread_max,
          ListingAge > listing_age_min_s, then model.json's prob >= prob_threshold (needs the book).
  flash   ROW_FLASH_READY, ret_25s > ret_25s_min, buy_share_25s > buy_share_min,
          rush_ratio_25s >= rush_ratio_min, then model.flash.json's prob >= prob_threshold.
          Trade-derived only: it fires within seconds of a flash pump's first rush orders.

A NaN fails its rule, and so does a feature whose validity flag is missing (book features need
ROW_BOOK_VALID, VSR needs ROW_BASELINE_READY, ListingAge needs ROW_LISTING_KNOWN): an unknown
value is never evidence of a pump. The cooldown is per pair across profiles (one signal per pump,
whichever profile saw it first); re-alerts compare PM.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

import numpy as np

from common.detector_config import Alpha1Config, FlashConfig
from core.rowspec import ROW_BASELINE_READY, ROW_BOOK_VALID, ROW_FLASH_READY, ROW_LISTING_KNOWN
from detectors.base import Detector, Profile
from detectors.reasons import age_unit, prob_text, rule_text

PCT = Decimal(100)


class Alpha1(Profile):
    """The specification's profile: slow by construction (VC needs minutes), book-aware."""

    name: ClassVar[str] = "alpha1"
    fields: ClassVar[tuple[str, ...]] = ("flags", "vsr", "vc", "pm", "obi", "cum_depth_delta", "spread", "listing_age_s")

    def rule_mask(self, rows: np.ndarray, settings: Any) -> np.ndarray:
        c: Alpha1Config = settings
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

    def reasons(self, row: np.void | dict[str, Any], settings: Any, prob: float, trained: bool = False) -> list[str]:
        """Plain words with the feature's name in brackets, e.g. "Volume vs 6 h median (VSR) 7.4 > 5"."""
        c: Alpha1Config = settings
        unit, per = age_unit(c.listing_age_min_s)
        return [
            rule_text("Volume vs 6 h median (VSR)", row["vsr"], ">", c.vsr_min, places=1),
            rule_text("Top minute's share of 5-min volume (VC)", row["vc"], "<", c.vc_max),
            rule_text("Price above 5-min VWAP (PM)", row["pm"], ">", c.pm_min, scale=PCT, unit="%"),
            rule_text("Bid/ask imbalance (OBI)", row["obi"], ">", c.obi_min),
            rule_text("Bid depth change in 3 min (CumDepthΔ)", row["cum_depth_delta"], ">", c.cum_depth_delta_min, places=None),
            rule_text("Spread", row["spread"], "<", c.spread_max, scale=PCT, unit="%"),
            rule_text("Listed for (ListingAge)", row["listing_age_s"], ">", c.listing_age_min_s, places=1, per=per, unit=unit),
            prob_text(trained, prob, c.prob_threshold),
        ]


class Flash(Profile):
    """Learned from real pumps (supervisor/train.py): rush orders, trade bursts, the 25 s move."""

    name: ClassVar[str] = "flash"
    fields: ClassVar[tuple[str, ...]] = ("flags", "ret_25s", "buy_share_25s", "rush_ratio_25s", "trades_ratio_25s")
    # Few features, the strongest in the literature (rush orders, trade bursts) plus the price move.
    train_spec: ClassVar[dict[str, Any] | None] = {
        "features": ["rush_5s", "rush_ratio_25s", "trades_ratio_25s", "qvol_ratio_25s", "buy_share_25s", "ret_25s",
                     "ret_60s"],
        "transform": {"rush_5s": "log1p", "rush_ratio_25s": "log1p", "trades_ratio_25s": "log1p",
                      "qvol_ratio_25s": "log1p"},
        "ready_flag": ROW_FLASH_READY,
    }  # fmt: skip

    def rule_mask(self, rows: np.ndarray, settings: Any) -> np.ndarray:
        c: FlashConfig = settings
        with np.errstate(invalid="ignore"):
            gate = rows["ret_25s"] > c.ret_25s_min  # the rarest rule first, as in alpha1
            if not gate.any():
                return gate
            return (
                ((rows["flags"] & ROW_FLASH_READY) != 0)
                & gate
                & (rows["buy_share_25s"] > c.buy_share_min)
                & (rows["rush_ratio_25s"] >= c.rush_ratio_min)
            )

    def reasons(self, row: np.void | dict[str, Any], settings: Any, prob: float, trained: bool = False) -> list[str]:
        """Plain words with the feature's name in brackets, e.g. "Taker-buy share (Buy25s) 75% > 50%"."""
        c: FlashConfig = settings
        return [
            rule_text("Rush orders vs usual (Rush25s)", row["rush_ratio_25s"], "≥", c.rush_ratio_min, places=1),
            f"Trades vs usual (Trades25s) {row['trades_ratio_25s']:.1f}",
            rule_text("Price move in 25 s (Ret25s)", row["ret_25s"], ">", c.ret_25s_min, scale=PCT, unit="%"),
            rule_text("Taker-buy share (Buy25s)", row["buy_share_25s"], ">", c.buy_share_min, places=0, scale=PCT, unit="%"),
            prob_text(trained, prob, c.prob_threshold),
        ]


ALPHA1 = Alpha1()
FLASH = Flash()
PUMP = Detector(name="pump", profiles=(ALPHA1, FLASH), magnitude="pm")
