"""NumPy view of core/row.pxd's FeatureRow: the supervisor reads rings through this dtype.

Why it lives beside the .pxd: one concept, one place. Undefined features are NaN; the flags
field says which groups (book, baseline, listing) are valid.
"""

from __future__ import annotations

import numpy as np

ROW_BOOK_VALID = 1
ROW_BASELINE_READY = 2
ROW_LISTING_KNOWN = 4
ROW_CANDIDATE = 8
ROW_FLASH_READY = 16

FEATURE_ROW_DTYPE = np.dtype(
    [
        ("seq", np.uint64),
        ("row_time_ms", np.int64),
        ("recv_ns", np.int64),
        ("pair_id", np.uint32),
        ("flags", np.uint32),
        ("last_price", np.float64),
        ("vsr", np.float64),
        ("vc", np.float64),
        ("pm", np.float64),
        ("obi", np.float64),
        ("cum_depth_delta", np.float64),
        ("spread", np.float64),
        ("listing_age_s", np.float64),
        ("quote_vol_5m", np.float64),
        ("trades_10s", np.float64),
        ("buy_share_10s", np.float64),
        ("rush_5s", np.float64),
        ("rush_ratio_25s", np.float64),
        ("trades_ratio_25s", np.float64),
        ("qvol_ratio_25s", np.float64),
        ("buy_share_25s", np.float64),
        ("ret_25s", np.float64),
        ("ret_60s", np.float64),
    ],
    align=True,
)

FEATURE_NAMES: tuple[str, ...] = (
    "vsr",
    "vc",
    "pm",
    "obi",
    "cum_depth_delta",
    "spread",
    "listing_age_s",
    "quote_vol_5m",
    "trades_10s",
    "buy_share_10s",
    "rush_5s",
    "rush_ratio_25s",
    "trades_ratio_25s",
    "qvol_ratio_25s",
    "buy_share_25s",
    "ret_25s",
    "ret_60s",
)
