"""Hashed noise: a random value for (key, index) computed directly, in any order.

Why: the market's synthetic history (sim/history.py) must answer any window (a day of 1-minute
klines, a month of 4 h ones) without generating the past, and the same window must read the
same on every call and every run. A splitmix64 finaliser of (key, index) gives exactly that.
"""

from __future__ import annotations

import hashlib

import numpy as np

_GOLD = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def stable_int(*parts: object) -> int:
    """A 64-bit key from any parts, the same in every process (unlike hash())."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def u01(key: int, idx: np.ndarray) -> np.ndarray:
    """Uniform (0, 1) per index: a splitmix64 finaliser of (key, index)."""
    x = idx.astype(np.uint64) * _GOLD + np.uint64(key)
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    x = x ^ (x >> np.uint64(31))
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) / 9007199254740992.0


def gauss(key: int, idx: np.ndarray) -> np.ndarray:
    """Standard normal per index: Box-Muller over two uniforms of the same key."""
    i2 = idx.astype(np.int64) * 2
    return np.sqrt(-2.0 * np.log(u01(key, i2))) * np.cos(2.0 * np.pi * u01(key, i2 + 1))


def smooth(key: int, x: np.ndarray) -> np.ndarray:
    """Gaussian value noise, linearly interpolated between integer knots."""
    if len(x) == 0:
        return np.zeros(0)
    j = np.floor(x)
    f = x - j
    j0 = int(j.min())
    knots = gauss(key, np.arange(j0, int(j.max()) + 2, dtype=np.int64))
    ji = (j - j0).astype(np.int64)
    return knots[ji] * (1.0 - f) + knots[ji + 1] * f
