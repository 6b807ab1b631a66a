"""The config schema of trading.*: the Buy button, paper fills, positions, exits, limits and the balancer.

Why a module of its own: common/config.py must stay small (tests/test_layout.py), and issue #18
grew this section from a stake and a slippage gate to positions, exits, limits and a portfolio
balancer; common/config.py registers it as `Config.trading` and raises the first problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class TradingConfig:
    live: bool = False
    stake_usd: float = field(default=100.0, metadata={"min": 1.0})
    max_slippage: float = field(default=0.02, metadata={"min": 0.0, "max": 0.5})
    max_signal_age_s: float = field(default=30.0, metadata={"min": 1.0})
    reserve_usdt: float = field(default=0.0, metadata={"min": 0.0})
    recv_window_ms: int = field(default=5000, metadata={"min": 1, "max": 59999})
    # Positions and exits (trading/; README "Trading"). 0 turns a limit or an automatic exit off.
    paper_fee_rate: float = field(default=0.0005, metadata={"min": 0.0, "max": 0.01})
    paper_balance_usdt: float = field(default=1000.0, metadata={"min": 0.0})
    max_open_positions: int = field(default=0, metadata={"min": 0, "max": 1000})
    max_exposure_usdt: float = field(default=0.0, metadata={"min": 0.0})
    buy_cooldown_s: float = field(default=0.0, metadata={"min": 0.0, "max": 86400.0})
    take_profit: float = field(default=0.0, metadata={"min": 0.0, "max": 10.0})
    stop_loss: float = field(default=0.0, metadata={"min": 0.0, "max": 0.99})
    trailing_stop: float = field(default=0.0, metadata={"min": 0.0, "max": 0.99})
    exit_check_s: float = field(default=5.0, metadata={"min": 0.5, "max": 3600.0})
    daily_summary_hour_utc: int = field(default=-1, metadata={"min": -1, "max": 23})
    # The portfolio balancer (trading/portfolio.py): off while portfolio_targets is empty.
    portfolio_targets: list[str] = field(default_factory=list)  # "ASSET:weight", e.g. BTC:0.5, ETH:0.5; the rest stays USDT
    portfolio_band: float = field(default=0.05, metadata={"min": 0.001, "max": 0.5})
    portfolio_cooldown_s: float = field(default=3600.0, metadata={"min": 0.0, "max": 604800.0})


def trading_problems(config: TradingConfig) -> list[str]:
    """Cross-field problems of trading.*: each portfolio target ASSET:weight with 0 < weight <= 1, every
    asset once, not USDT, weights summing to at most 1. Messages, not exceptions: ConfigError lives in
    common/config.py, which imports this module."""
    targets = config.portfolio_targets
    total, seen = 0.0, set()
    for item in targets:
        asset, _, weight = item.partition(":")
        try:
            value = float(weight)
        except ValueError:
            value = -1.0
        if not re.fullmatch(r"[A-Z0-9]{1,20}", asset) or not 0 < value <= 1 or asset in seen or asset == "USDT":
            return [f"trading.portfolio_targets: got {item!r}, expected ASSET:weight (e.g. BTC:0.5), each asset once, "
                    "not USDT, 0 < weight <= 1"]  # fmt: skip
        seen.add(asset)
        total += value
    if total > 1 + 1e-9:
        return [f"trading.portfolio_targets: weights sum to {total:g}, expected at most 1 (the rest stays USDT)"]
    return []
