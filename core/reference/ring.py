"""Plain-Python twin of core/ring.pyx: the same drop-when-full rule, no shared memory."""

from __future__ import annotations

from typing import Any

import numpy as np

from core.rowspec import FEATURE_ROW_DTYPE


class ReferenceRing:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.rows = np.zeros(capacity, dtype=FEATURE_ROW_DTYPE)
        self.written = 0
        self.read = 0
        self.overflow = 0

    @property
    def lag(self) -> int:
        return self.written - self.read

    def push(self, **fields: Any) -> bool:
        if self.written - self.read >= self.capacity:
            self.overflow += 1
            return False
        row = np.zeros((), dtype=FEATURE_ROW_DTYPE)
        for key, value in fields.items():
            row[key] = value
        row["seq"] = self.written + 1
        self.rows[self.written % self.capacity] = row
        self.written += 1
        return True

    def read_new(self, max_rows: int | None = None) -> np.ndarray:
        n = self.written - self.read
        if max_rows is not None:
            n = min(n, max_rows)
        idx = [(self.read + i) % self.capacity for i in range(n)]
        self.read += n
        return self.rows[idx].copy()
