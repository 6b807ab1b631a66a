"""What every test process starts from: the futures feed can never reach the real exchange, and
each test's logging set-up is undone after it.

Why here: the futures feed is on by default (issue #17) and its URLs default to the live contract
API. A test that starts the service for another reason (the bot, the lock-down, health) and does
not care about futures must still never leave loopback, so the whole session points the feed at a
closed port on 127.0.0.1 unless the test sets the URLs itself (tests/test_futures_emulator.py
points them at the emulator). Subprocesses inherit it through their environment.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from common import logs

CLOSED_LOOPBACK = "127.0.0.1:9"  # the discard port: nothing listens there

os.environ.setdefault("MEXC_FUTURES_WS_URL", f"ws://{CLOSED_LOOPBACK}/edge")
os.environ.setdefault("MEXC_FUTURES_REST_URL", f"http://{CLOSED_LOOPBACK}")


@pytest.fixture(autouse=True)
def _logging_as_found() -> Iterator[None]:
    """Undo what a test's setup_logging (common/logs.py) did to this process's logging.

    Why: setup_logging replaces the root handlers with a stderr one (the stderr pytest captured for
    that test, closed later), quiets the HTTP libraries and sets the masker's secrets. Left in place,
    the next tests in the same process log through a closed stream and miss the library lines they
    look for: a test then passes or fails by the order the files ran in.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    libraries = {name: logging.getLogger(name).level for name in logs.QUIETED_LIBRARIES}
    setup, secrets = logs.inherited_setup(), list(logs.MASKER._secrets)
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, lib_level in libraries.items():
        logging.getLogger(name).setLevel(lib_level)
    logs._SETUP.clear()
    logs._SETUP.update(setup)
    logs.MASKER.set_secrets(secrets)
