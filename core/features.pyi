"""Type stub for the compiled core/features.pyx (see that file for the why); tests/test_core_stubs.py keeps it in step."""

from typing import Any

import numpy as np
import numpy.typing as npt

from core.book import OrderBook
from core.windows import TradeWindows

OBI_BAND_BPS: float
DEPTH_BAND_BPS: float
BASELINE_MIN: int
FLASH_BASELINE_MIN: int

def compute_row(
    book: OrderBook,
    win: TradeWindows,
    row_time_ms: int,
    listing_ms: int,
    recv_ns: int = 0,
    pair_id: int = 0,
    candidate: bool = False,
) -> dict[str, Any]: ...
def precheck(win: TradeWindows, pm_min: float, bar_vol_mult: float, vsr_min: float) -> bool: ...
def fill_rows(
    books: list[OrderBook],
    wins: list[TradeWindows],
    row_time_ms: int,
    listing_ms: npt.NDArray[np.int64],
    pair_ids: npt.NDArray[np.uint32],
    out: npt.NDArray[np.void],
) -> int: ...
