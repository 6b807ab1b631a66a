"""The config schema of every detector: `detectors.<detector>.…` in config.yaml.

Why here and not in detectors/: common/config.py validates the whole file (unknown keys, ranges,
/cfg) and common may not import detectors/. So a detector's settings are declared here as plain
dataclasses, one per profile, and the detector module (detectors/<name>.py) reads them.

Layout of one detector's section (the shape every detector follows):

    detectors:
      pump:
        enabled_profiles: [alpha1]     # scored in this order; the first profile that fires wins
        cooldown: {period_s, realert_factor, max_realerts}   # one shared cooldown per detector
        profiles:
          alpha1: {model_path, prob_threshold, <its rule thresholds>}
          flash:  {model_path, prob_threshold, <its rule thresholds>}
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CooldownConfig:
    """Per pair: one alert per period_s, plus max_realerts re-alerts inside it when the detector's
    magnitude (pump: PM) has grown realert_factor times since the pair's last alert."""

    period_s: float = field(default=1200.0, metadata={"min": 0.0})
    realert_factor: float = field(default=2.0, metadata={"min": 1.0})
    max_realerts: int = field(default=1, metadata={"min": 0, "max": 10})


@dataclass
class Alpha1Config:
    """Profile alpha1 (the specification's rules, DESIGN.md's feature table)."""

    model_path: str = "model.json"
    prob_threshold: float = field(default=0.60, metadata={"min": 0.0, "max": 1.0})
    vsr_min: float = field(default=5.0, metadata={"min": 0.0})
    vc_max: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    pm_min: float = field(default=0.02)
    obi_min: float = field(default=0.25, metadata={"min": -1.0, "max": 1.0})
    cum_depth_delta_min: float = 0.0
    spread_max: float = field(default=0.015, metadata={"min": 0.0})
    listing_age_min_s: float = field(default=900.0, metadata={"min": 0.0})


@dataclass
class FlashConfig:
    """Profile flash (trades only, learned from real pumps by supervisor/train.py)."""

    model_path: str = "model.flash.json"
    prob_threshold: float = field(default=0.277314, metadata={"min": 0.0, "max": 1.0})  # model.flash.json trained.threshold
    ret_25s_min: float = 0.01  # price up > 1 % over the last 25 s (model.flash.json trained.ret_25s_min)
    buy_share_min: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    rush_ratio_min: float = field(default=0.0, metadata={"min": 0.0})


@dataclass
class PumpProfilesConfig:
    alpha1: Alpha1Config = field(default_factory=Alpha1Config)
    flash: FlashConfig = field(default_factory=FlashConfig)


@dataclass
class PumpConfig:
    """detectors.pump: spot pumps from the shards' feature rows (detectors/pump.py)."""

    enabled_profiles: list[str] = field(default_factory=lambda: ["alpha1"])
    cooldown: CooldownConfig = field(default_factory=CooldownConfig)
    profiles: PumpProfilesConfig = field(default_factory=PumpProfilesConfig)


@dataclass
class DetectorsConfig:
    """One field per detector; its name is the detector's name (detectors/registry.py)."""

    pump: PumpConfig = field(default_factory=PumpConfig)


_A1 = "detectors.pump.profiles.alpha1"
_FL = "detectors.pump.profiles.flash"
# Keys of the flat config before issue #16 -> where they live now. An old config file (or an old
# /cfg habit) gets a ConfigError naming the new key instead of a bare "unknown key".
MOVED_KEYS: dict[str, str] = {
    "scanner.profiles": "detectors.pump.enabled_profiles",
    "scanner.cooldown_s": "detectors.pump.cooldown.period_s",
    "scanner.realert_pm_factor": "detectors.pump.cooldown.realert_factor",
    "scanner.max_realerts": "detectors.pump.cooldown.max_realerts",
    **{f"scanner.{k}": f"{_A1}.{k}" for k in ("model_path", "prob_threshold", "vsr_min", "vc_max", "pm_min", "obi_min",
                                               "cum_depth_delta_min", "spread_max", "listing_age_min_s")},
    **{f"scanner.flash_{k}": f"{_FL}.{k}" for k in ("model_path", "prob_threshold", "ret_25s_min", "buy_share_min",
                                                     "rush_ratio_min")},
}  # fmt: skip
