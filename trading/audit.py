"""The start-up audit: Buys a killed process left in doubt, and open positions checked against myTrades.

Why at start-up: a process killed between sending a Buy and storing its fills leaves the order
PENDING or NEW (a filled order without fills only in a history written before the fills came
first) and the position short of those fills. The Buy's client id is asked about (MEXC has it:
its fills are stored; MEXC never got it: nothing was bought), and each open live position is
refolded from myTrades since it opened and compared with the stored one; every difference, and
what the history cannot explain (a deposit, older trades), is said, not silently absorbed.
"""

from __future__ import annotations

from typing import Any

from common.signal import Signal
from trading.fills import rebuild
from venues.mexc.client import MexcError


async def audit(trader: Any) -> list[str]:
    """Sentences for the owner (empty: nothing to say). Live mode only; paper has nothing outside the store."""
    if not trader.live:
        return []
    out = []
    rows = trader.store.db.execute(
        "SELECT client_order_id, signal_id FROM orders o WHERE mode = 'live' AND (status IN ('PENDING', 'UNKNOWN', 'NEW')"
        " OR (status IN ('FILLED', 'PARTIALLY_FILLED') AND qty > 0"
        " AND NOT EXISTS (SELECT 1 FROM fills f WHERE f.client_order_id = o.client_order_id)))")  # fmt: skip
    for cid, signal_id in rows.fetchall():
        order = trader.store.get_order(cid)
        if order is None:
            continue
        # Reconciling needs only the order's signal id and symbol; the signal row may be gone (or never stored).
        sig = trader.store.get_signal(signal_id) or Signal(signal_id, order.symbol, "", 0, 0, 0, 0.0, 0.0, {}, [], 0)
        result = await trader.reconcile_buy(sig, order)
        out.append(f"A Buy of {order.symbol} was left in doubt by a restart: {result.message}")
    for fig in trader.ledger.open("live"):
        row = fig.row
        try:
            found = await rebuild(trader.rest, row.symbol, row.base, row.quote, since_ms=row.opened_ns // 1_000_000 - 60_000)
        except MexcError as exc:
            out.append(f"{row.symbol}: could not check the position against MEXC's trade history ({exc.message})")
            continue
        gaps = list(found.missing)
        if abs(found.pos.qty - fig.pos.qty) > 1e-9 * max(1.0, fig.pos.qty):
            gaps.insert(0, f"stored {fig.pos.qty:.10g} {row.base}, MEXC's fills since it opened say {found.pos.qty:.10g}")
        if gaps:
            out.append(f"{row.symbol}: " + "; ".join(gaps))
    return out


__all__ = ["audit"]
