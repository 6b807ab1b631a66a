"""What every test process starts from: the futures feed can never reach the real exchange.

Why here: the futures feed is on by default (issue #17) and its URLs default to the live contract
API. A test that starts the service for another reason (the bot, the lock-down, health) and does
not care about futures must still never leave loopback, so the whole session points the feed at a
closed port on 127.0.0.1 unless the test sets the URLs itself (tests/test_futures_emulator.py
points them at the emulator). Subprocesses inherit it through their environment.
"""

from __future__ import annotations

import os

CLOSED_LOOPBACK = "127.0.0.1:9"  # the discard port: nothing listens there

os.environ.setdefault("MEXC_FUTURES_WS_URL", f"ws://{CLOSED_LOOPBACK}/edge")
os.environ.setdefault("MEXC_FUTURES_REST_URL", f"http://{CLOSED_LOOPBACK}")
