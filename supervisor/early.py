"""SIGTERM/SIGINT that arrive before the supervisor's event loop exists are remembered, not fatal.

Why: importing NumPy and friends takes a second or more on a small VPS; a `systemctl restart` or
`docker stop` in that window would otherwise kill the process half-started. The loop's own
handlers replace these, and the supervisor stops at once if one was remembered.
"""

from __future__ import annotations

import signal
from typing import Any

STOPS: list[int] = []


def remember(signum: int, frame: Any) -> None:
    STOPS.append(signum)


def install() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, remember)
