"""systemd's notify protocol: READY at start, WATCHDOG while healthy, STOPPING on the way out.

Why: with Type=notify and WatchdogSec= in the unit, systemd restarts a service that hangs (alive
but not working), which Restart=always alone cannot see. The supervisor pings the watchdog only
while every shard is alive and beating, so a wedged shard set gets the whole service restarted.
Without $NOTIFY_SOCKET (Docker, a terminal) every call is a no-op.
"""

from __future__ import annotations

import os
import socket


class SdNotifier:
    """Sends datagrams to $NOTIFY_SOCKET (a path, or @abstract); silent when it is not set."""

    def __init__(self, address: str | None = None) -> None:
        address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        if address and address.startswith("@"):
            address = "\0" + address[1:]
        self.address = address or None
        self.watchdog_usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def watchdog_interval_s(self, default: float = 10.0) -> float:
        """Half the unit's WatchdogSec (systemd's advice), or default when no watchdog is set."""
        return self.watchdog_usec / 2e6 if self.watchdog_usec > 0 else default

    def notify(self, state: str) -> bool:
        """Send one state line (e.g. "READY=1"); False when disabled or the socket is gone."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(state.encode(), self.address)
            return True
        except OSError:
            return False
