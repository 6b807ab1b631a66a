"""Hand freed heap back to the OS after a burst of short-lived objects.

Why: start-up and each scout pass parse large JSON answers (exchangeInfo, 24 h tickers, klines
for every pair). Python frees those objects, but glibc keeps the emptied heap pages mapped, so a
24x7 process carries its start-up peak for ever. malloc_trim(0) returns them; it costs a few
milliseconds, so it runs after such bursts, at most once per min_interval_s, never per frame.
No gc.collect(): a full collection in a shard would stall its loop for longer than the trim, and
the bursts are freed by reference counting anyway. A no-op where libc has no malloc_trim (musl,
macOS).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from typing import Any

_trim: Any = None
_loaded = False
_last = float("-inf")


def _malloc_trim() -> Any:
    global _trim, _loaded
    if not _loaded:
        _loaded = True
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _trim = libc.malloc_trim
            _trim.argtypes, _trim.restype = [ctypes.c_size_t], ctypes.c_int
        except (OSError, AttributeError):
            _trim = None
    return _trim


def release_free_memory(min_interval_s: float = 30.0) -> bool:
    """Return free heap pages to the OS; True when libc released some (False: nothing, too soon, or no glibc)."""
    global _last
    now = time.monotonic()
    if now - _last < min_interval_s:
        return False
    _last = now
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
