"""Live fills from MEXC's myTrades, and the rebuild of a position from them after a restart.

Why myTrades and not the order's executed quantity: only the trade history carries each fill's
commission and commissionAsset (quote, base or MX), which AvgCost needs. A fee in MX is converted
at MXUSDT's price read when the fill is read (seconds after it happened: the nearest price this
process can get; the position's missing-history notes say when no price could be read).

Why a rebuild says what is missing: a history that starts mid-position (the first fills fell out
of the window MEXC returns), an account holding more of the coin than the fills explain (a
deposit, an older trade) or fills we cannot read all make the figures partial; the trader must
see that, not a confident wrong number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trading.avgcost import Fill, Position, fold
from venues.mexc.client import MexcError, MexcRest
from venues.mexc.orders import balances, market_buy_price, my_trades


def to_fills(rows: list[dict[str, object]], rates: dict[str, float]) -> list[Fill]:
    """myTrades rows (venues/mexc/orders.py) as AvgCost fills; rates: quote per unit of a third fee asset."""
    out = []
    for r in rows:
        asset = str(r["commission_asset"])
        out.append(Fill(str(r["trade_id"]), str(r["side"]), float(r["price"]), float(r["qty"]),  # type: ignore[arg-type]
                        float(r["commission"]), asset, int(r["time_ms"]), rates.get(asset)))  # type: ignore[arg-type]  # fmt: skip
    return out


async def fee_rates(rest: MexcRest, rows: list[dict[str, object]], base: str, quote: str) -> dict[str, float]:
    """quote per unit of every fee asset that is neither base nor quote (e.g. MX -> MXUSDT's price)."""
    rates: dict[str, float] = {}
    for asset in {str(r["commission_asset"]) for r in rows} - {base, quote, ""}:
        try:
            rates[asset] = await market_buy_price(rest, asset + quote)
        except MexcError:
            continue  # avgcost notes the fee it could not convert
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


__all__ = ["Rebuild", "fee_rates", "order_fills", "rebuild", "to_fills"]
