"""The held pairs' 1 s closes, from the rows the supervisor reads, for the bot's automatic exits (issue #18)."""

from __future__ import annotations

import numpy as np

from common.messages import Closes, decode, encode
from core.rowspec import FEATURE_ROW_DTYPE
from supervisor.exit_prices import ExitPrices

PAIRS = {"AUSDT": 1, "BUSDT": 2}


def _rows(*items: tuple[int, int, float]) -> np.ndarray:
    rows = np.zeros(len(items), dtype=FEATURE_ROW_DTYPE)
    for i, (pair_id, t_ms, price) in enumerate(items):
        rows[i]["pair_id"], rows[i]["row_time_ms"], rows[i]["last_price"] = pair_id, t_ms, price
    return rows


def test_only_held_pairs_are_sent_at_most_once_per_exchange_second_newest_close_first() -> None:
    prices = ExitPrices(PAIRS.get)
    assert prices.on_rows(_rows((1, 1_000, 1.0))) is None  # nothing held: nothing sent
    prices.watch(["AUSDT", "ZZZUSDT"])  # ZZZ is not planned: no id, REST prices it in the bot
    first = prices.on_rows(_rows((2, 2_000, 9.0), (1, 2_000, 1.5), (1, 2_400, 1.6)))
    assert first == Closes({"AUSDT": 1.6}, 2_400)
    assert prices.on_rows(_rows((1, 2_900, 1.7))) is None  # within the second: kept, not sent
    assert prices.on_rows(_rows((1, 3_400, 0.0))) == Closes({"AUSDT": 1.7}, 3_400)  # a zero price is never a close
    assert decode(encode(first)) == first  # it crosses the pipe as is
    prices.watch([])  # the position closed
    assert prices.on_rows(_rows((1, 9_000, 2.0))) is None


def test_a_pair_planned_after_the_watch_is_picked_up_on_refresh() -> None:
    ids: dict[str, int] = {}
    prices = ExitPrices(ids.get)
    prices.watch(["BUSDT"])
    assert prices.on_rows(_rows((2, 1_000, 3.0))) is None
    ids["BUSDT"] = 2  # Planning gave it an id (Pipeline.on_new_pair refreshes)
    prices.refresh()
    assert prices.on_rows(_rows((2, 2_000, 3.0))) == Closes({"BUSDT": 3.0}, 2_000)
