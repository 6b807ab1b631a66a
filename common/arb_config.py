"""The config schema of the triangular-arbitrage detector: `arb.…` in config.yaml.

Why a top-level section like `futures:`: the cycle scanner is a second pipeline with its own feed
(one limit.depth or bookTicker stream per pair of every cycle, over every quote asset), its own
child process and table, not a profile of the spot feature rows. common/config.py registers it as
`Config.arb`; every key is range-checked and reachable by `/cfg arb.min_profit_bps 10`.

Units: bps are basis points of the start amount after all three taker fees and lot rounding;
sizes are in the start asset (USDT and USDC are counted 1:1 as USDT for min_size_usdt).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_ASSET = re.compile(r"^[A-Z0-9]{2,20}$")


@dataclass
class ArbConfig:
    """arb: cycle enumeration, pricing thresholds and episodes (supervisor/arb.py, core/cycles.pyx)."""

    enabled: bool = True  # on by default (issue #20): opportunities are stored, nothing is traded
    start_assets: list[str] = field(default_factory=lambda: ["USDT", "USDC"])
    min_profit_bps: float = field(default=5.0, metadata={"min": -100.0, "max": 10_000.0})  # net of fees and rounding
    min_size_usdt: float = field(default=100.0, metadata={"min": 0.01, "max": 1e9})  # the smallest start amount that counts (lot dust costs up to step/size)
    max_leg_age_ms: int = field(default=5000, metadata={"min": 0, "max": 3_600_000})  # an older leg makes a cycle unpriceable
    taker_fee: float = field(default=0.0005, metadata={"min": 0.0, "max": 0.05})  # when exchangeInfo lists none (or fee_from_exchange off)
    fee_from_exchange: bool = True  # use exchangeInfo's takerCommission per pair
    channel: str = field(default="limit10", metadata={"choices": ("limit10", "bookTicker")})
    max_pairs: int = field(default=0, metadata={"min": 0})  # 0 = every pair of every cycle; else the busiest cycles' pairs first
    universe_refresh_s: float = field(default=3600.0, metadata={"min": 10.0, "max": 86400.0})
    cards_enabled: bool = False  # a Telegram notice at each episode's end


def arb_problems(config: ArbConfig) -> list[str]:
    """Cross-field problems of the section, each a ConfigError message naming its full key."""
    out = []
    if not config.start_assets:
        out.append("arb.start_assets: got [], expected at least one asset such as USDT")
    for i, asset in enumerate(config.start_assets):
        if not _ASSET.match(asset):
            out.append(f"arb.start_assets[{i}]: got {asset!r}, expected an asset name like USDT")
    return out
