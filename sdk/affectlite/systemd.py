"""systemd's notification protocol (``sd_notify``), in a few lines of socket code.

With ``Type=notify`` and ``WatchdogSec=`` in the unit, systemd starts the next unit only once the
service says READY (camera open, broker session started) and restarts it when the watchdog pings
stop: a hung camera driver or a stuck inference then heals itself instead of leaving a kiosk
silent. Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op, so nothing else needs to
know how the service was started. The protocol is one datagram per message; see sd_notify(3).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


class SystemdNotifier:
    def __init__(self, environ: Mapping[str, str] | None = None):
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # "@name" is an abstract socket: the leading byte is NUL on the wire.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._socket: socket.socket | None = None
        watchdog_usec = env.get("WATCHDOG_USEC", "")
        watchdog_pid = env.get("WATCHDOG_PID", "")
        ours = not watchdog_pid or watchdog_pid == str(os.getpid())
        self.watchdog_s: float | None = int(watchdog_usec) / 1e6 if watchdog_usec.isdigit() and ours else None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, message: str) -> bool:
        """Send ``message`` (e.g. ``READY=1``); False when not under systemd or the socket is gone."""
        if not self._address:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto(message.encode(), self._address)
            return True
        except OSError:
            return False

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
