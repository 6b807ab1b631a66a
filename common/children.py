"""What every forked child of the supervisor does first."""

from __future__ import annotations

import signal


def reset_child_signals() -> None:
    """In a forked child: default SIGTERM/SIGINT and no inherited wake-up fd.

    Why: the supervisor installs its loop's signal handlers before forking, and a child must not
    deliver its own SIGTERM into the parent's loop (through the inherited wake-up socket) before
    it has set up its own: the supervisor's terminate() relies on SIGTERM stopping a child.
    """
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
