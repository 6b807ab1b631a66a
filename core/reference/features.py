"""Plain-Python twin of core/features.pyx: the Alpha-1 row from a book and trade windows."""

from __future__ import annotations

import math
from typing import Any

from core.reference.windows import DEPTH_LAG_S, FLASH_S, WINDOW_S, ReferenceWindows
from core.rowspec import ROW_BASELINE_READY, ROW_BOOK_VALID, ROW_CANDIDATE, ROW_FLASH_READY, ROW_LISTING_KNOWN

OBI_BAND_BPS, DEPTH_BAND_BPS, BASELINE_MIN, FLASH_BASELINE_MIN = 10.0, 3.0, 6, 3


def compute_row(book: Any, win: ReferenceWindows, row_time_ms: int, listing_ms: int, recv_ns: int = 0,
                pair_id: int = 0, candidate: bool = False) -> dict[str, Any]:  # fmt: skip
    """book: anything with synced, levels(), size_within() (ReferenceBook or OrderBook)."""
    v, q, best, t10, b10, v10 = win.sums(include_open=candidate)
    median, n_base = win.median_baseline()
    flags = 0
    row: dict[str, Any] = {"seq": 0, "row_time_ms": row_time_ms, "recv_ns": recv_ns, "pair_id": pair_id, "last_price": win.last_price,
                           "quote_vol_5m": q, "trades_10s": t10, "buy_share_10s": b10 / v10 if v10 > 0 else math.nan}  # fmt: skip
    r5, r25, t25, b25, v25, q25, p25, p60 = win.flash(include_open=candidate)
    base_t, base_r, base_q, n_flash = win.flash_baseline()
    row["rush_5s"] = r5
    row["buy_share_25s"] = b25 / v25 if v25 > 0 else math.nan
    row["ret_25s"] = win.last_price / p25 - 1.0 if p25 > 0 else math.nan
    row["ret_60s"] = win.last_price / p60 - 1.0 if p60 > 0 else math.nan
    if n_flash >= FLASH_BASELINE_MIN:
        flags |= ROW_FLASH_READY
        row["rush_ratio_25s"] = r25 / (base_r * FLASH_S + 1.0)
        row["trades_ratio_25s"] = t25 / (base_t * FLASH_S + 1.0)
        row["qvol_ratio_25s"] = q25 / (base_q * FLASH_S) if base_q > 0 else math.nan
    else:
        row["rush_ratio_25s"] = row["trades_ratio_25s"] = row["qvol_ratio_25s"] = math.nan
    row["vc"] = best / v if v > 0 else math.nan
    row["pm"] = (win.last_price - q / v) / (q / v) if v > 0 else math.nan
    if n_base >= BASELINE_MIN and median > 0:
        row["vsr"] = v / median
        flags |= ROW_BASELINE_READY
    else:
        row["vsr"] = math.nan
    bids, asks = book.levels()
    if book.synced and bids and asks:
        flags |= ROW_BOOK_VALID
        b, a = book.size_within(True, OBI_BAND_BPS), book.size_within(False, OBI_BAND_BPS)
        row["obi"] = (b - a) / (b + a) if b + a > 0 else math.nan
        row["spread"] = (asks[0][0] - bids[0][0]) / ((asks[0][0] + bids[0][0]) / 2.0)
        row["cum_depth_delta"] = book.size_within(True, DEPTH_BAND_BPS) - win.depth_at(
            row_time_ms // 1000 - DEPTH_LAG_S
        )
    else:
        row["obi"] = row["spread"] = row["cum_depth_delta"] = math.nan
    if listing_ms > 0:
        flags |= ROW_LISTING_KNOWN
        row["listing_age_s"] = (row_time_ms - listing_ms) / 1000.0
    else:
        row["listing_age_s"] = math.nan
    row["flags"] = flags | (ROW_CANDIDATE if candidate else 0)
    return row


def precheck(win: ReferenceWindows, pm_min: float, bar_vol_mult: float, vsr_min: float) -> bool:
    """Twin of core.features.c_precheck."""
    if win.bar_trades == 0:
        return False
    v, q = win.sums()[:2]
    if v <= 0:
        return False
    vwap = q / v
    if (win.last_price - vwap) / vwap < pm_min:
        return False
    if win.bar_vol * WINDOW_S >= bar_vol_mult * v:
        return True
    median, n_base = win.median_baseline()
    return n_base >= BASELINE_MIN and median > 0 and v + win.bar_vol >= vsr_min * median
