"""The config schema of the futures "last price vs fair price" detector: `futures.…` in config.yaml.

Why a module of its own and a top-level section: issue #17 asks for `futures:` in config.yaml (the
futures feed is a second venue-side pipeline with its own URLs and reconnects, not a profile of the
spot feature rows), and common/config.py must stay small. common/config.py registers the section as
`Config.futures`; nested sections here are loaded, range-checked and reachable by `/cfg
futures.strategy2.spike_ratio_min 1.3` exactly like `detectors.pump.profiles.alpha1.vsr_min`.

Units: a key ending in `_pct` is in percent (0.3 = 0.3 %); every other ratio or move is a plain
number (1.5 = last price 1.5 times the fair price; mark_stability_max 0.05 = 5 %). Times are seconds.

The four strategies are independent (each has its own episodes and cooldown per symbol, see
detectors/futures.py); each can be switched off with its `enabled`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_RATIO = {"min": 1.0, "max": 1000.0}  # last / fair; 1.0 admits the basis-point preset (1.003)
_SYMBOL = re.compile(r"^[A-Z0-9]+_[A-Z0-9]+$")  # futures symbols are BASE_QUOTE (BTC_USDT)


@dataclass
class SpreadRatioConfig:
    """Strategy 1: the last price stands far above the fair price."""

    enabled: bool = True
    spread_ratio_min: float = field(default=1.5, metadata=_RATIO)
    min_abs_diff: float = field(default=0.0001, metadata={"min": 0.0})  # last - fair, in quote units
    min_price: float = field(default=0.01, metadata={"min": 0.0})  # last price floor (dust contracts)


@dataclass
class SpikeConfig:
    """Strategy 2: a spread above the fair price plus a sharp rise of the last price just now."""

    enabled: bool = True
    spread_ratio_min: float = field(default=1.3, metadata=_RATIO)
    spike_lookback_secs: float = field(default=5.0, metadata={"min": 0.1, "max": 3600.0})
    spike_ratio_min: float = field(default=1.2, metadata=_RATIO)  # last / last price lookback ago


@dataclass
class BaselineConfig:
    """Strategy 3: a spread, the last price far above its recent baseline, while the fair price held still."""

    enabled: bool = True
    spread_ratio_min: float = field(default=1.2, metadata=_RATIO)
    baseline_window_secs: float = field(default=60.0, metadata={"min": 1.0, "max": 3600.0})
    pump_vs_baseline_min: float = field(default=1.5, metadata=_RATIO)  # last / mean last of the window
    mark_stability_max: float = field(default=0.05, metadata={"min": 0.0, "max": 10.0})  # fair (max-min)/min


@dataclass
class ThickBookConfig:
    """Strategy 4: a spread on a book that is tight and deep (a real market, not an empty one)."""

    enabled: bool = True
    spread_ratio_min: float = field(default=1.5, metadata=_RATIO)
    min_abs_diff: float = field(default=0.0001, metadata={"min": 0.0})
    max_spread_pct: float = field(default=0.3, metadata={"min": 0.0, "max": 100.0})  # (ask-bid)/mid, percent
    min_thick_depth_usdt: float = field(default=10_000.0, metadata={"min": 0.0})  # both sides within the band
    depth_band_pct: float = field(default=0.5, metadata={"min": 0.0, "max": 100.0})  # ± percent of mid


@dataclass
class FuturesConfig:
    """futures: the perpetual-contract feed and its last-vs-fair detector (detectors/futures.py)."""

    enabled: bool = True  # on by default (issue #17): a user with only the documented environment gets episodes
    symbols: list[str] = field(default_factory=list)  # [] = every active perpetual
    ws_url: str = "wss://contract.mexc.com/edge"
    rest_url: str = "https://contract.mexc.com"
    universe_refresh_s: float = field(default=600.0, metadata={"min": 10.0, "max": 86400.0})
    reconnect_min_s: float = field(default=0.5, metadata={"min": 0.05})
    reconnect_max_s: float = field(default=30.0, metadata={"min": 0.1})
    cards_enabled: bool = False  # episodes go to the log line only unless true
    per_symbol_seconds: float = field(default=60.0, metadata={"min": 0.0, "max": 86400.0})
    strategy1: SpreadRatioConfig = field(default_factory=SpreadRatioConfig)
    strategy2: SpikeConfig = field(default_factory=SpikeConfig)
    strategy3: BaselineConfig = field(default_factory=BaselineConfig)
    strategy4: ThickBookConfig = field(default_factory=ThickBookConfig)


def futures_problems(config: FuturesConfig) -> list[str]:
    """Cross-field problems of the section, each a ConfigError message naming its full key.

    Why strings and not exceptions: ConfigError lives in common/config.py, which imports this
    module; common/config.py raises the first message.
    """
    out = []
    if config.reconnect_max_s < config.reconnect_min_s:
        out.append(
            f"futures.reconnect_max_s: got {config.reconnect_max_s!r}, expected >= futures.reconnect_min_s ({config.reconnect_min_s})"
        )
    for i, symbol in enumerate(config.symbols):
        if not _SYMBOL.match(symbol):
            out.append(f"futures.symbols[{i}]: got {symbol!r}, expected a futures symbol like BTC_USDT")
    return out


PRESET_BEGIN, PRESET_END = "  # BEGIN sensitive preset", "  # END sensitive preset"


def sensitive_preset(config_file: Path) -> dict[str, Any]:
    """The sensitive preset's strategy sections, read from the commented block of a config file.

    Why from the file: config.yaml documents the preset as lines a user uncomments, and the
    figures the README gives for it (perf/futures_presets.py) must be for exactly those lines.
    Raises ValueError naming the file when the block is missing.
    """
    lines = Path(config_file).read_text(encoding="utf-8").splitlines()
    try:
        start, end = lines.index(PRESET_BEGIN) + 1, lines.index(PRESET_END)
    except ValueError:
        raise ValueError(f"{config_file}: no '{PRESET_BEGIN.strip()}' ... '{PRESET_END.strip()}' block") from None
    return dict(yaml.safe_load("\n".join(line.strip().removeprefix("# ") for line in lines[start:end])))
