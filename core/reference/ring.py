"""Plain-Python twin of core/ring.pyx: the same drop-when-full rule, no shared memory, no atomics.

Why it exists: tests compare the Cython ring with this obviously-correct model operation by
operation, and perf/bench_ring.py uses it as the baseline.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.rowspec import FEATURE_ROW_DTYPE


class ReferenceRing:
    """capacity rows; push drops (and counts) when full; read_new copies unread rows in order."""

    def __init__(self, capacity: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        self.capacity = capacity
        self.rows = np.zeros(capacity, dtype=FEATURE_ROW_DTYPE)
        self.written = 0
        self.read = 0
        self.overflow = 0

    @property
    def lag(self) -> int:
        return self.written - self.read

    def push(self, **fields: Any) -> bool:
        """Append one row (seq assigned here); False when the ring was full and the row dropped."""
        if self.written - self.read >= self.capacity:
            self.overflow += 1
            return False
        row = np.zeros((), dtype=FEATURE_ROW_DTYPE)
        for key, value in fields.items():
            if key not in FEATURE_ROW_DTYPE.names:
                raise ValueError(f"unknown feature row field {key!r}")
            row[key] = value
        row["seq"] = self.written + 1
        self.rows[self.written % self.capacity] = row
        self.written += 1
        return True

    def read_new(self, max_rows: int | None = None) -> np.ndarray:
        """A copy of up to max_rows unread rows, oldest first; they count as read."""
        if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 0):
            raise ValueError(f"max_rows must be a non-negative integer or None, got {max_rows!r}")
        n = self.written - self.read
        if max_rows is not None:
            n = min(n, max_rows)
        idx = [(self.read + i) % self.capacity for i in range(n)]
        self.read += n
        return self.rows[idx].copy()
