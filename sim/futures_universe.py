"""The futures universe: which perpetual contracts exist, their precision, book class and activity.

Why seeded and heavy-tailed like the spot universe (sim/universe.py): a last-vs-fair detector
must hold up on a few busy contracts with thick books and many quiet ones with thin books, and
a seed must name the same market in every run. Contract i's base coin is spot pair i's base for
the same seed (`symbol_names`), so BASE_USDT and BASEUSDT coexist as on MEXC; the two prices are
independent walks. A few contracts are paused (state 4) so filters on `state` are exercised.

`detail()` renders the fields GET /api/v1/contract/detail returns (mexc-api.md §5.2); the ones
the docs list without values (risk tiers, fee rates) carry plausible constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.universe import symbol_names

QUOTE = "USDT"
STATE_ENABLED = 0
STATE_PAUSED = 4
MAX_TRADES_PER_S = 8.0


@dataclass(frozen=True)
class ContractSpec:
    """One perpetual contract as contract/detail describes it, plus the emulator's model knobs."""

    symbol: str
    base: str
    contract_id: int
    state: int
    price_scale: int
    price_unit: float
    contract_size: float
    thick: bool  # thick book: tight spread, deep levels, small last-price noise
    activity: float  # mean trades per second
    start_price: float
    funding_cycle_h: int
    max_leverage: int
    opening_ms: int

    def detail(self) -> dict[str, Any]:
        """The contract/detail record (MEXC's field names)."""
        limit_rate = 0.1 if self.thick else 0.3
        return {
            "symbol": self.symbol,
            "displayName": f"{self.base}_{QUOTE}永续",
            "displayNameEn": f"{self.base}_{QUOTE} PERPETUAL",
            "positionOpenType": 3,
            "baseCoin": self.base,
            "quoteCoin": QUOTE,
            "settleCoin": QUOTE,
            "contractSize": self.contract_size,
            "minLeverage": 1,
            "maxLeverage": self.max_leverage,
            "priceScale": self.price_scale,
            "volScale": 0,
            "amountScale": 4,
            "priceUnit": self.price_unit,
            "volUnit": 1,
            "minVol": 1,
            "maxVol": 1_000_000 if self.thick else 100_000,
            "bidLimitPriceRate": limit_rate,
            "askLimitPriceRate": limit_rate,
            "takerFeeRate": 0.0002,
            "makerFeeRate": 0.0,
            "maintenanceMarginRate": 0.004 if self.thick else 0.01,
            "initialMarginRate": 1.0 / self.max_leverage,
            "riskBaseVol": 100_000 if self.thick else 10_000,
            "riskIncrVol": 100_000 if self.thick else 10_000,
            "riskIncrMmr": 0.004,
            "riskIncrImr": 0.004,
            "riskLevelLimit": 5,
            "priceCoefficientVariation": 0.05 if self.thick else 0.2,
            "indexOrigin": ["BINANCE", "GATEIO", "MEXC"],
            "state": self.state,
            "isNew": False,
            "isHot": self.contract_id <= 5,
            "isHidden": False,
            "apiAllowed": False,  # futures order API is "under maintenance" (mexc-api.md §5.2)
            "futureType": 1,
            "type": 1,
            "openingTime": self.opening_ms // 1000,
        }


def build_contracts(n: int, seed: int, start_ms: int) -> list[ContractSpec]:
    """The seed's n contracts, busiest first (contract_id 1 = rank 0)."""
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"futures contracts must be an integer >= 0, got {n!r}")
    if n == 0:
        return []
    rng = np.random.default_rng([seed, 4401])
    raw = np.sort(rng.pareto(1.2, size=n) + 0.05)[::-1]
    activity = np.minimum(MAX_TRADES_PER_S, raw * (3.0 / max(float(raw[0]), 1e-9)) + 0.05)
    u = rng.random((n, 4))
    log_price = rng.normal(-1.0, 2.4, size=n)
    bases = symbol_names(n, seed)
    out: list[ContractSpec] = []
    for i, base in enumerate(bases):
        price = float(math.exp(max(-10.0, min(10.5, log_price[i]))))
        thick = bool(i < max(1, n // 5) or u[i, 0] < 0.1)
        # Thick books quote finer (about 1e-4 of the price per tick), thin ones coarser (about 5e-4).
        scale = max(0, min(10, math.ceil(-math.log10(price * (1e-4 if thick else 5e-4)))))
        unit = 10.0**-scale
        start = max(unit * 50, round(price, scale))
        size = 10.0 ** math.floor(math.log10(5.0 / start))  # one contract is worth 0.5 to 5 USDT
        out.append(ContractSpec(
            symbol=f"{base}_{QUOTE}",
            base=base,
            contract_id=i + 1,
            state=STATE_PAUSED if i >= 10 and u[i, 1] < 0.02 else STATE_ENABLED,
            price_scale=scale,
            price_unit=unit,
            contract_size=float(f"{size:.12g}"),
            thick=thick,
            activity=float(activity[i]),
            start_price=start,
            funding_cycle_h=4 if u[i, 2] < 0.15 else 8,
            max_leverage=200 if thick else 50,
            opening_ms=start_ms - int((20 + u[i, 3] * 600) * 86_400_000),
        ))  # fmt: skip
    return out
