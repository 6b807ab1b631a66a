"""MEXC futures (contract) REST: the paced client, the `{"success","code","data"}` envelope, and the calls we make.

Why a subclass of PacedRest and not a new client: the 429/418 handling (418 pauses every
endpoint), the priority queue, the host-naming RestError and the "never raise anything but
RestError" rule are the same on the contract host. Two things differ, and only `_budget` changes:
- the limits are requests per **2 s** per endpoint (detail/ticker/depth 10, fair/index price and
  depth_commits 20; mexc-api.md §5.2), not weight per 10 s: a 10 s window of 50 would allow a
  burst of 50 in the first 2 s, five times the limit;
- the symbol is part of the path (`/api/v1/contract/depth/BTC_USDT`), so budgets are keyed by the
  endpoint, not by the path, or every symbol would get a budget of its own.

Why the envelope check here: the contract API answers errors with HTTP 200 and
`{"success":false,"code":N,"message":"…"}` (`message`, not spot's `msg`), which PacedRest passes
through as data. `unwrap` turns it into a RestError naming the host and the exchange's code and text.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote as url_quote

from venues.mexc.futures import Depth, Message, Ticker, parse_depth, parse_ticker_row
from venues.mexc.rest import BULK, URGENT, PacedRest, RestError, _EndpointBudget

REST_URL = "https://contract.mexc.com"  # api.mexc.com since 2026-01-19; old host UNCONFIRMED but still used (§5.2)
DETAIL = "/api/v1/contract/detail"
TICKER = "/api/v1/contract/ticker"
DEPTH = "/api/v1/contract/depth/"
FAIR_PRICE = "/api/v1/contract/fair_price/"
INDEX_PRICE = "/api/v1/contract/index_price/"
DEPTH_COMMITS = "/api/v1/contract/depth_commits/"
# Requests per 2 s per endpoint (new docs; the old ones were laxer for ticker, stricter for detail).
LIMITS_PER_2S = {DETAIL: 10, TICKER: 10, DEPTH: 10, FAIR_PRICE: 20, INDEX_PRICE: 20, DEPTH_COMMITS: 20}
WINDOW_S = 2.0
ERROR_CODES = {500: "internal error", 501: "system busy", 401: "unauthorized", 510: "excessive request frequency",
               600: "parameter error", 1001: "contract does not exist", 1002: "contract not activated",
               6005: "pair not available"}  # fmt: skip


class ContractRest(PacedRest):
    """PacedRest for the contract host: per-endpoint request counts in 2 s windows.

    share: this process's fraction of the IP's budget (0 < share ≤ 1), like PacedRest's budget_per_10s.
    """

    def __init__(self, base_url: str = REST_URL, share: float = 0.5, timeout_s: float = 10.0,
                 on_event: Callable[[str, str], None] | None = None, clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        if not 0 < share <= 1:
            raise ValueError(f"share {share} must be in (0, 1]")
        super().__init__(base_url, budget_per_10s=0, timeout_s=timeout_s, on_event=on_event, clock=clock)
        self.share = share

    @staticmethod
    def endpoint_of(path: str) -> str:
        """The endpoint a path belongs to: `/api/v1/contract/depth/BTC_USDT` → `/api/v1/contract/depth/`."""
        for endpoint in LIMITS_PER_2S:
            if endpoint.endswith("/") and path.startswith(endpoint):
                return endpoint
        return path

    def _budget(self, path: str) -> _EndpointBudget:
        endpoint = self.endpoint_of(path)
        budget = self._budgets.get(endpoint)
        if budget is None:
            limit = max(1, int(LIMITS_PER_2S.get(endpoint, 10) * self.share))
            # A quarter second of slack: our window and the exchange's start at different moments.
            budget = self._budgets[endpoint] = _EndpointBudget(limit, WINDOW_S + 0.25, self.clock)
        return budget


def unwrap(body: Any, host: str, what: str) -> Any:
    """The data of a `{"success":true,"code":0,"data":…}` envelope; RestError naming host, code and message otherwise."""
    if not isinstance(body, dict):
        raise RestError(200, None, f"{what}: response is not an envelope ({str(body)[:60]!r})", host=host)
    code = body.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    if body.get("success") is not True or code not in (0, None):
        message = body.get("message") or body.get("msg") or ERROR_CODES.get(code or -1) or "success is not true"
        raise RestError(200, code, f"{what}: {str(message)[:200]}", host=host)
    if "data" not in body:
        raise RestError(200, code, f"{what}: envelope has no data", host=host)
    return body["data"]


@dataclass(frozen=True, slots=True)
class Contract:
    """What the feed needs of one contract: its name, coins, state and price grid."""

    symbol: str
    base: str
    quote: str
    settle: str
    state: int
    perpetual: bool
    api_allowed: bool
    price_unit: float
    contract_size: float


def _opt_float(row: dict[str, Any], key: str) -> float:
    value = row.get(key)
    try:
        out = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else 0.0
    except (ValueError, OverflowError):
        return 0.0
    return out if out == out and abs(out) != float("inf") and out > 0 else 0.0


def parse_contracts(data: Any, host: str = "") -> list[Contract]:
    """contract/detail's data (a list, or one object for ?symbol=) → Contracts; malformed rows are skipped.

    Why skip and not fail: one odd row (a test contract, a new field type) must not hide 1,180 others.
    """
    rows = [data] if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise RestError(200, None, "contract/detail: data is not a list", host=host)
    out: list[Contract] = []
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("symbol"), str) or not row["symbol"]:
            continue
        state = row.get("state")
        if isinstance(state, bool) or not isinstance(state, int):
            continue
        future_type = row.get("futureType", 1)
        kind = row.get("type", 1)
        out.append(Contract(
            symbol=row["symbol"], base=str(row.get("baseCoin", "")), quote=str(row.get("quoteCoin", "")),
            settle=str(row.get("settleCoin", "")), state=state,
            perpetual=future_type == 1 and kind != 2,  # futureType 1 perpetual; type 2 suspended
            api_allowed=row.get("apiAllowed", True) is not False,
            price_unit=_opt_float(row, "priceUnit"), contract_size=_opt_float(row, "contractSize"),
        ))  # fmt: skip
    return out


def active_symbols(contracts: list[Contract], quote: str = "USDT") -> list[str]:
    """Sorted symbols of enabled (state 0) perpetuals quoted and settled in `quote` (USDT-margined)."""
    return sorted(
        c.symbol for c in contracts if c.state == 0 and c.perpetual and c.quote == quote and c.settle == quote
    )


async def fetch_contract_details(rest: ContractRest, priority: int = BULK) -> list[Contract]:
    data = await rest.get(DETAIL, priority=priority)
    return parse_contracts(unwrap(data, rest.host, "contract/detail"), host=rest.host)


async def fetch_contracts(rest: ContractRest, quote: str = "USDT", priority: int = BULK) -> list[str]:
    """The universe: symbols of active USDT-margined perpetuals (state 0, futureType 1, not suspended)."""
    return active_symbols(await fetch_contract_details(rest, priority), quote)


async def fetch_tickers(rest: ContractRest, priority: int = BULK) -> tuple[dict[str, Ticker], list[str]]:
    """contract/ticker for all contracts: symbol → Ticker, and one error text per malformed row."""
    data = unwrap(await rest.get(TICKER, priority=priority), rest.host, "contract/ticker")
    if not isinstance(data, list):
        raise RestError(200, None, "contract/ticker: data is not a list", host=rest.host)
    out: dict[str, Ticker] = {}
    errors: list[str] = []
    for row in data:
        try:
            ticker = parse_ticker_row(row, "contract/ticker")
        except ValueError as exc:
            errors.append(str(exc))
            continue
        out[ticker.symbol] = ticker
    return out, errors


async def fetch_depth(rest: ContractRest, symbol: str, limit: int = 20, priority: int = URGENT) -> Depth:
    """contract/depth/{symbol}: a top-`limit` snapshot with its version; RestError or ValueError on failure."""
    data = unwrap(
        await rest.get(DEPTH + url_quote(symbol, safe=""), {"limit": limit}, priority=priority),
        rest.host,
        f"contract/depth/{symbol}",
    )
    return parse_depth(Message("contract/depth", data, symbol, None))
