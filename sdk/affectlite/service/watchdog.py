"""systemd's watchdog, fed only while frames keep coming: a camera that stops delivering for half
the watchdog period gets the service restarted by systemd."""

from __future__ import annotations

from affectlite.systemd import SystemdNotifier


class FrameWatchdog:
    def __init__(self, notifier: SystemdNotifier, start: float):
        self.notifier = notifier
        self.period = notifier.watchdog_s
        self.last_frame_at = self.last_ping = start

    def tick(self, now: float, got_frame: bool) -> None:
        if got_frame:
            self.last_frame_at = now
        if self.period and now - self.last_ping >= self.period / 4 and now - self.last_frame_at < self.period / 2:
            self.notifier.watchdog()
            self.last_ping = now
