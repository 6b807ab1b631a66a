"""A fee paid in a third asset (MX) is converted at the fill's minute, not when the fill is read:
the open of that minute's 1 m kline, one request per (asset, minute), cached; with no kline the
current price is used and the fill is flagged approximate, through the store to the card."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.positions import fill_line
from sim.server import run_emulator
from store.history import Store
from trading.avgcost import fold
from trading.fills import fee_rates, to_fills
from trading.ledger import Ledger
from venues.mexc.client import MexcError, MexcRest

NOW_MS = 1_790_000_000_000 - 1_790_000_000_000 % 60_000 + 30_000
_urls = itertools.count()


class FakeRest:
    """klines of MXUSDT at a price per minute (open); bookTicker at the current price; counts calls."""

    def __init__(self, opens: dict[int, float], now_price: float, klines_fail: bool = False) -> None:
        self.base_url = f"fake://{next(_urls)}"  # a fresh cache key space per instance
        self.opens, self.now_price, self.klines_fail = opens, now_price, klines_fail
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        params = params or {}
        self.calls.append((path, params))
        if path == "/api/v3/klines":
            assert params["symbol"] == "MXUSDT" and params["interval"] == "1m" and params["limit"] == 1
            if self.klines_fail:
                raise MexcError(503, None, "klines unavailable", outcome_unknown=False)
            start = params["startTime"]
            assert start % 60_000 == 0 and params["endTime"] == start + 59_999
            if start not in self.opens:
                return []
            o = self.opens[start]
            return [[start, f"{o}", f"{o * 1.01}", f"{o * 0.99}", f"{o * 1.005}", "1", start + 59_999, "1"]]
        if path == "/api/v3/ticker/bookTicker":
            return {"symbol": params["symbol"], "askPrice": f"{self.now_price}"}
        raise AssertionError(path)


def _row(trade_id: str, time_ms: int, fee: float = 0.1, asset: str = "MX", side: str = "BUY") -> dict[str, object]:
    return {"trade_id": trade_id, "order_id": "o1", "client_order_id": "c1", "side": side, "price": 2.0, "qty": 50.0,
            "quote_qty": 100.0, "commission": fee, "commission_asset": asset, "time_ms": time_ms}  # fmt: skip


def _klines(rest: FakeRest) -> int:
    return sum(1 for path, _ in rest.calls if path == "/api/v3/klines")


async def test_an_mx_fee_ten_minutes_ago_is_converted_at_the_then_price_not_now() -> None:
    then = NOW_MS - 600_000
    minute = then - then % 60_000
    rest = FakeRest({minute: 2.0}, now_price=3.0)
    rows = [_row("t1", then), _row("t2", then + 1), _row("t3", NOW_MS, asset="USDT")]
    fills = to_fills(rows, await fee_rates(rest, rows, "KAZO", "USDT"))  # type: ignore[arg-type]
    pos = fold(fills, "KAZO", "USDT")
    assert [f.fee_quote_rate for f in fills[:2]] == [2.0, 2.0] and not any(f.fee_rate_approx for f in fills)
    assert math.isclose(pos.fees_quote, 0.1 * 2.0 * 2 + 0.1) and pos.approx_fees == 0
    assert _klines(rest) == 1  # two fills of one minute: one request
    await fee_rates(rest, rows, "KAZO", "USDT")  # type: ignore[arg-type]
    assert _klines(rest) == 1  # a minute's open is cached: read again, no request


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3 * 86400_000), st.floats(0.01, 100.0)), min_size=1, max_size=12),
       st.floats(0.01, 100.0))  # fmt: skip
async def test_every_third_asset_fee_is_converted_at_the_open_of_its_minute(fills: list[tuple[int, float]], now_price: float) -> None:
    rows = [_row(f"t{i}", NOW_MS - back, fee=0.5) for i, (back, _) in enumerate(fills)]
    opens: dict[int, float] = {}
    for (_back, price), row in zip(fills, rows, strict=True):
        t = int(row["time_ms"])  # type: ignore[call-overload]
        opens.setdefault(t - t % 60_000, price)
    rest = FakeRest(opens, now_price)
    converted = to_fills(rows, await fee_rates(rest, rows, "KAZO", "USDT"))  # type: ignore[arg-type]
    for fill in converted:
        assert fill.fee_quote_rate == opens[fill.time_ms - fill.time_ms % 60_000] and not fill.fee_rate_approx
    assert _klines(rest) == len(opens)


async def test_without_a_kline_the_current_price_is_used_and_flagged_approximate_to_the_card(tmp_path: Path) -> None:
    then = NOW_MS - 600_000
    for rest in (FakeRest({}, now_price=3.0), FakeRest({then - then % 60_000: 2.0}, now_price=3.0, klines_fail=True)):
        rows = [_row("t1", then), _row("t2", then + 120_000)]
        fills = to_fills(rows, await fee_rates(rest, rows, "KAZO", "USDT"))  # type: ignore[arg-type]
        assert [(f.fee_quote_rate, f.fee_rate_approx) for f in fills] == [(3.0, True), (3.0, True)]
        assert sum(1 for path, _ in rest.calls if path == "/api/v3/ticker/bookTicker") == 1  # the fallback price read once
    ledger = Ledger(Store(tmp_path))
    ledger.record("live", "KAZOUSDT", "KAZO", "USDT", "c1", fills)
    ledger.record("live", "KAZOUSDT", "KAZO", "USDT", "c2", to_fills([_row("t3", then, asset="USDT")], {}))
    (fig,) = ledger.open("live")
    assert fig.pos.approx_fees == 2 and math.isclose(fig.pos.fees_quote, 0.1 * 3.0 * 2 + 0.1)
    assert ledger.order_fee_approx("c1") and not ledger.order_fee_approx("c2")
    assert "approximate" in (fill_line(100.0, 2.0, ledger.order_fee("c1"), "USDT", ledger.order_fee_approx("c1")) or "")
    assert "approximate" not in (fill_line(50.0, 2.0, ledger.order_fee("c2"), "USDT", ledger.order_fee_approx("c2")) or "")


async def test_the_emulator_serves_the_fill_minutes_kline_and_the_client_reads_its_open() -> None:
    async with run_emulator(pairs=40, seed=11) as emu:
        now = emu.market.now_ms()
        then = now - 600_000
        minute = then - then % 60_000
        spec = next(s for s in emu.market.symbols if s.status == "1" and s.quote == "USDT"
                    and float(emu.market.klines(s.symbol, "1m", minute, minute + 59_999, 1)[0][1]) != emu.market.best_bid_ask(s.symbol)[2])  # fmt: skip
        expected = float(emu.market.klines(spec.symbol, "1m", minute, minute + 59_999, 1)[0][1])
        rest = MexcRest(emu.rest_url)
        try:
            rows = [_row("t1", then, asset=spec.base)]
            (fill,) = to_fills(rows, await fee_rates(rest, rows, "KAZO", "USDT"))
        finally:
            await rest.close()
    assert fill.fee_quote_rate == expected and not fill.fee_rate_approx
