"""Live fills from MEXC's myTrades, and the rebuild of a position from them after a restart.

Why myTrades and not the order's executed quantity: only the trade history carries each fill's
commission and commissionAsset (quote, base or MX), which AvgCost needs.

Why a third-asset fee (MX) is converted at the fill's minute and not when the fill is read: a
rebuild after a restart reads fills hours or days old, and MX's price then is not what the fee
cost. The rate is the OPEN of MXUSDT's 1-minute kline containing the fill: it is final as soon as
the minute has begun (a close of the running minute would be the current price again, and would
change under a cache), it lies at most 60 s before the fill, and so it gives the same figure on
every read, which a rebuild must. One klines request per distinct (asset, minute), cached. When
MEXC has no such candle (an error, an empty answer) the current price is used and the fill is
flagged approximate (stored with it, shown by /positions and on the card); with no price at all
the fee is left unconverted and the position's missing-history notes say so.

Why a rebuild says what is missing: a history that starts mid-position (the first fills fell out
of the window MEXC returns), an account holding more of the coin than the fills explain (a
deposit, an older trade) or fills we cannot read all make the figures partial; the trader must
see that, not a confident wrong number.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from trading.avgcost import Fill, Position, fold
from venues.mexc.client import MexcError, MexcRest
from venues.mexc.orders import MINUTE_MS, balances, market_buy_price, minute_open, my_trades

CACHE_SIZE = 4096  # (pair, minute) opens kept; a minute's open never changes, so any entry stays right
_OPENS: OrderedDict[tuple[str, str, int], float] = OrderedDict()  # (REST base url, pair, minute start ms) -> open


@dataclass(frozen=True)
class FeeRate:
    """Quote per unit of a third fee asset for one minute; approximate: not that minute's price but the one when read."""

    rate: float
    approximate: bool = False


def fee_key(asset: str, time_ms: int) -> tuple[str, int]:
    """The (asset, minute start) a fill's fee rate is looked up by."""
    return asset, time_ms - time_ms % MINUTE_MS


def to_fills(rows: list[dict[str, object]], rates: dict[tuple[str, int], FeeRate]) -> list[Fill]:
    """myTrades rows (venues/mexc/orders.py) as AvgCost fills; rates: fee_rates() for a third fee asset."""
    out = []
    for r in rows:
        asset, time_ms = str(r["commission_asset"]), int(r["time_ms"])  # type: ignore[call-overload]
        rate = rates.get(fee_key(asset, time_ms))
        out.append(Fill(str(r["trade_id"]), str(r["side"]), float(r["price"]), float(r["qty"]),  # type: ignore[arg-type]
                        float(r["commission"]), asset, time_ms, rate.rate if rate else None,  # type: ignore[arg-type]
                        rate.approximate if rate else False))  # fmt: skip
    return out


async def _open_at(rest: MexcRest, pair: str, minute_ms: int) -> float | None:
    """The pair's open in that minute, from the cache or one klines request; None when MEXC has no candle."""
    key = (rest.base_url, pair, minute_ms)
    if key in _OPENS:
        _OPENS.move_to_end(key)
        return _OPENS[key]
    try:
        price = await minute_open(rest, pair, minute_ms)
    except MexcError:
        return None
    if price is not None:
        _OPENS[key] = price
        while len(_OPENS) > CACHE_SIZE:
            _OPENS.popitem(last=False)
    return price


async def fee_rates(rest: MexcRest, rows: list[dict[str, object]], base: str, quote: str) -> dict[tuple[str, int], FeeRate]:
    """The rate of every fee asset that is neither base nor quote (e.g. MX -> MXUSDT) at each fill's minute.

    Keyed by fee_key(); see the module docstring for which price and why, and for the fallback.
    """
    rates: dict[tuple[str, int], FeeRate] = {}
    now: dict[str, float | None] = {}  # the fallback's current price, read at most once per asset
    wanted = {fee_key(str(r["commission_asset"]), int(r["time_ms"])) for r in rows}  # type: ignore[call-overload]
    for asset, minute_ms in sorted(k for k in wanted if k[0] not in (base, quote, "")):
        opened = await _open_at(rest, asset + quote, minute_ms)
        if opened is not None:
            rates[asset, minute_ms] = FeeRate(opened)
            continue
        if asset not in now:
            try:
                now[asset] = await market_buy_price(rest, asset + quote)
            except MexcError:
                now[asset] = None  # avgcost notes the fee it could not convert
        price = now[asset]
        if price is not None:
            rates[asset, minute_ms] = FeeRate(price, approximate=True)
    return rates


async def order_fills(rest: MexcRest, symbol: str, order_id: str, base: str, quote: str) -> list[Fill]:
    """The fills of one order, read from myTrades."""
    rows = await my_trades(rest, symbol, order_id=order_id)
    rows = [r for r in rows if r["order_id"] == order_id]
    return to_fills(rows, await fee_rates(rest, rows, base, quote))


@dataclass
class Rebuild:
    """A position refolded from the exchange's history, and what that history could not explain."""

    pos: Position
    fills: list[Fill]
    missing: list[str] = field(default_factory=list)


async def rebuild(rest: MexcRest, symbol: str, base: str, quote: str, since_ms: int | None = None) -> Rebuild:
    """The position in symbol as myTrades (from since_ms) and the account's balance tell it."""
    rows = await my_trades(rest, symbol, start_ms=since_ms)
    fills = to_fills(rows, await fee_rates(rest, rows, base, quote))
    pos = fold(fills, base, quote)
    missing = list(pos.missing)
    held = (await balances(rest)).get(base, 0.0)
    if held > pos.qty * (1 + 1e-9) + 1e-12:
        missing.append(f"the account holds {held:.10g} {base} but the fills explain {pos.qty:.10g}: a deposit or trades older "
                       "than the history MEXC returned")  # fmt: skip
    elif held < pos.qty * (1 - 1e-9) - 1e-12:
        missing.append(f"the fills say {pos.qty:.10g} {base} but the account holds {held:.10g}: a withdrawal or trades not in "
                       "the history")  # fmt: skip
    return Rebuild(pos, fills, missing)


__all__ = ["FeeRate", "Rebuild", "fee_key", "fee_rates", "order_fills", "rebuild", "to_fills"]
