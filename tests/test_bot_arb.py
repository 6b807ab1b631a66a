"""/arb: the best cycles now and the day's opportunities, from the triangle child's report."""

from __future__ import annotations

from bot import commands
from bot.arb_text import NOT_RUNNING, format_arb
from common.messages import StatusReply
from tests.test_bot_commands import State

ARB = {
    "gauges": {"arb_cycles": 1200, "arb_pairs": 640, "arb_opportunities_open": 1},
    "best": [{"cycle": "USDT→BTC→XYZ→USDT (buy BTCUSDT, buy XYZBTC, sell XYZUSDT)", "top_bps": 7.25},
             {"cycle": "USDT→ETH→BTC→USDT (buy ETHUSDT, sell ETHBTC, sell BTCUSDT)", "top_bps": -12.0}],
    "last_24h": {"count": 3, "median_duration_ms": 1500,
                 "best": [{"cycle": "USDT→XYZ→BTC→USDT (buy XYZUSDT, sell XYZBTC, sell BTCUSDT)", "peak_bps": 41.5, "size_usdt": 1990.0,
                           "duration_ms": 3000, "start_ms": 1}]},
}  # fmt: skip


async def test_arb_shows_the_best_cycles_and_the_days_opportunities() -> None:
    state = State(StatusReply(1, {"processes": [], "arb": ARB}))
    text = await commands.answer(state, "arb", [])
    assert text.splitlines() == [
        "Triangles: 1200 cycles over 640 pairs, 1 open now. Detection only: nothing is traded.",
        "Best now (top of book, after fees):",
        "  +7.2 bps  USDT→BTC→XYZ→USDT (buy BTCUSDT, buy XYZBTC, sell XYZUSDT)",
        "  -12.0 bps  USDT→ETH→BTC→USDT (buy ETHUSDT, sell ETHBTC, sell BTCUSDT)",
        "Last 24 h: 3 opportunities, median 1.5 s.",
        "  peak +41.5 bps on 1,990, 3.0 s  USDT→XYZ→BTC→USDT (buy XYZUSDT, sell XYZBTC, sell BTCUSDT)",
    ]
    assert "arb" in commands.NAMES and "/arb" in commands.HELP


async def test_arb_without_figures_or_supervisor_says_so() -> None:
    assert await commands.answer(State(StatusReply(1, {"processes": []})), "arb", []) == NOT_RUNNING
    assert (await commands.answer(State(None), "arb", [])).startswith("The supervisor did not answer")
    assert format_arb({"best": "junk", "last_24h": None}).startswith("Triangles: 0 cycles")
