"""Scenario files: scripted pumps, natural spikes (hard negatives), quiet pairs, new listings.

YAML, validated on load with errors that name the entry and the field, so a typo in a test
scenario fails loudly instead of silently running a market without the pump. Pairs are named by
symbol or by activity rank (0 = busiest), resolved against the market's symbols. The format is
documented in sim/scenarios/README.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from sim.cross import Dislocation
    from sim.futures_scenario import FuturesAnomaly


class ScenarioError(ValueError):
    """A scenario file is malformed; the message names the entry and field."""


@dataclass
class Episode:
    kind: str  # pump | spike | quiet
    symbol: str | None
    rank: int | None
    start_s: float
    duration_s: float
    rise_pct: float = 0.0
    volume_mult: float = 1.0
    book_imbalance: float = 0.5
    index: int = -1

    def active_at(self, t_s: float) -> bool:
        return self.start_s <= t_s < self.start_s + self.duration_s


@dataclass
class Listing:
    """A pair added to the generated market, first traded listed_s_before_start before start (negative: after
    start; until then exchangeInfo does not show it, as MEXC lists a new pair when it opens)."""

    symbol: str
    listed_s_before_start: float


_FIELDS: dict[str, dict[str, tuple[float, float] | None]] = {
    "pumps": {"start_s": (-1e9, 1e9), "duration_s": (1.0, 1e6), "rise_pct": (0.1, 1000.0), "volume_mult": (1.0, 1000.0), "book_imbalance": (0.0, 1.0)},
    "spikes": {"start_s": (-1e9, 1e9), "duration_s": (1.0, 1e6), "volume_mult": (1.0, 1000.0)},
    "quiet": {"start_s": (-1e9, 1e9), "duration_s": (1.0, 1e7)},
}
_KIND = {"pumps": "pump", "spikes": "spike", "quiet": "quiet"}
_QUOTES = ("USDT", "USDC", "BTC")


@dataclass
class Scenario:
    episodes: list[Episode]
    listings: list[Listing] = field(default_factory=list)
    futures_anomalies: list[FuturesAnomaly] = field(default_factory=list)  # for the futures market (sim/futures_scenario.py)
    cross: int = 0  # bases that get cross-quote pairs, and scripted dislocations of them (sim/cross.py)
    dislocations: list[Dislocation] = field(default_factory=list)

    def resolve(self, symbols: list[str]) -> None:
        index = {s: i for i, s in enumerate(symbols)}
        for ep in self.episodes:
            if ep.symbol is not None:
                if ep.symbol not in index:
                    raise ScenarioError(f"{ep.kind} {ep.symbol}: no such symbol in the market")
                ep.index = index[ep.symbol]
            else:
                assert ep.rank is not None
                if ep.rank >= len(symbols) - len(self.listings):
                    raise ScenarioError(f"{ep.kind} rank {ep.rank}: the market has only {len(symbols) - len(self.listings)} ranked pairs")
                ep.index = ep.rank

    def active(self, t_s: float) -> list[Episode]:
        return [ep for ep in self.episodes if ep.active_at(t_s)]


def scenario_from_mapping(raw: Any) -> Scenario:
    if raw is None:
        return Scenario([])
    if not isinstance(raw, dict):
        raise ScenarioError("scenario: expected a mapping with pumps/spikes/quiet/listings lists")
    unknown = set(raw) - set(_FIELDS) - {"listings", "futures_anomalies", "cross", "dislocations"}
    if unknown:
        raise ScenarioError(f"scenario: unknown section {sorted(unknown)[0]!r} (known: pumps, spikes, quiet, listings, futures_anomalies, "
                            "cross, dislocations)")  # fmt: skip
    episodes: list[Episode] = []
    for section, fields in _FIELDS.items():
        items = raw.get(section) or []
        if not isinstance(items, list):
            raise ScenarioError(f"{section}: expected a list")
        for n, item in enumerate(items):
            where = f"{section}[{n}]"
            if not isinstance(item, dict):
                raise ScenarioError(f"{where}: expected a mapping")
            extra = set(item) - set(fields) - {"symbol", "rank"}
            if extra:
                raise ScenarioError(f"{where}.{sorted(extra)[0]}: unknown field")
            symbol, rank = item.get("symbol"), item.get("rank")
            if (symbol is None) == (rank is None):
                raise ScenarioError(f"{where}: give exactly one of symbol or rank")
            if symbol is not None and not isinstance(symbol, str):
                raise ScenarioError(f"{where}.symbol: expected a string")
            if rank is not None and (not isinstance(rank, int) or isinstance(rank, bool) or rank < 0):
                raise ScenarioError(f"{where}.rank: got {rank!r}, expected an integer >= 0")
            values: dict[str, float] = {}
            for name, bounds in fields.items():
                if name not in item:
                    if name in ("start_s", "duration_s"):
                        raise ScenarioError(f"{where}.{name}: required")
                    continue
                value = item[name]
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ScenarioError(f"{where}.{name}: got {value!r}, expected a number")
                assert bounds is not None
                if not bounds[0] <= value <= bounds[1]:
                    raise ScenarioError(f"{where}.{name}: got {value!r}, expected {bounds[0]}..{bounds[1]}")
                values[name] = float(value)
            if symbol is not None and not _SYMBOL.fullmatch(symbol):
                raise ScenarioError(f"{where}.symbol: got {symbol!r}, expected an uppercase symbol like 'PEPEUSDT'")
            episodes.append(Episode(kind=_KIND[section], symbol=symbol, rank=rank, **values))
    from sim.cross import parse_cross  # here: these modules import ScenarioError from this one
    from sim.futures_scenario import parse_futures_anomalies

    cross, dislocations = parse_cross(raw)
    return Scenario(episodes, _listings(raw.get("listings")), parse_futures_anomalies(raw.get("futures_anomalies")), cross, dislocations)


_SYMBOL = re.compile(r"[A-Z0-9]{2,20}")


def _listings(items: Any) -> list[Listing]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise ScenarioError("listings: expected a list")
    out: list[Listing] = []
    for n, item in enumerate(items):
        where = f"listings[{n}]"
        if not isinstance(item, dict):
            raise ScenarioError(f"{where}: expected a mapping")
        extra = set(item) - {"symbol", "listed_s_before_start"}
        if extra:
            raise ScenarioError(f"{where}.{sorted(extra)[0]}: unknown field")
        symbol = item.get("symbol")
        if not isinstance(symbol, str) or not _SYMBOL.fullmatch(symbol):
            raise ScenarioError(f"{where}.symbol: got {symbol!r}, expected an uppercase symbol like 'NEWUSDT'")
        if not any(symbol.endswith(q) and len(symbol) > len(q) for q in _QUOTES):
            raise ScenarioError(f"{where}.symbol: {symbol!r} must end with a quote asset ({', '.join(_QUOTES)})")
        if symbol in {x.symbol for x in out}:
            raise ScenarioError(f"{where}.symbol: {symbol!r} is listed twice")
        age = item.get("listed_s_before_start")
        if isinstance(age, bool) or not isinstance(age, (int, float)) or not -1e8 <= age <= 1e8:
            raise ScenarioError(f"{where}.listed_s_before_start: got {age!r}, expected seconds -1e8..1e8 (negative: after start)")
        out.append(Listing(symbol, float(age)))
    return out


def read_yaml(path: str | Path) -> Any:
    """A scenario file's YAML; ScenarioError naming the file when it cannot be read or parsed."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML ({exc})") from None


def load_scenario(path: str | Path) -> Scenario:
    return scenario_from_mapping(read_yaml(path))
