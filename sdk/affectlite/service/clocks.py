"""When the loop does what: the frame rate cap and the periodic jobs (voice, fusion steps, stats)."""

from __future__ import annotations


class FramePacer:
    """At most ``max_fps`` analyses a second. A frame is due when it arrives within a quarter
    interval of its slot, so that a 30 fps camera and ``max_fps = 15`` give 15 analyses a second
    despite arrival jitter; a late frame moves the slots, it does not cause a burst."""

    def __init__(self, max_fps: float, start: float):
        self.interval = 1.0 / max_fps
        self.next_due = start

    def due(self, now: float) -> bool:
        return now >= self.next_due - 0.25 * self.interval

    def taken(self, now: float) -> None:
        self.next_due = max(self.next_due + self.interval, now - self.interval)


class Every:
    """A job every ``period`` seconds, on a steady grid (a late tick does not shift the next)."""

    def __init__(self, period: float, start: float):
        self.period = period
        self.next = start

    def due(self, now: float) -> bool:
        if now < self.next:
            return False
        self.next = max(self.next + self.period, now - self.period)
        return True
