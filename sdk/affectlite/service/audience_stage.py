"""The service's audience stage: every analysed frame into the tally, a window's figures out every
``[audience] window_s``, with what the screen showed and what may have made the figures low.

The figures of a window are only as good as the frames behind them, so each message says how
much of the window was paused or in privacy mode (nothing analysed), how many frames were dropped
and how long the camera gave none.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from affectlite.audience import AttentionOptions, AudienceTally, Seen

#: A content id: what the kiosk software calls the item on screen.
CONTENT_ID = re.compile(r"^[\w.:/@+-]{1,64}$")


class AudienceStage:
    def __init__(self, config: dict[str, Any], face_timeout_s: float):
        self.window_s = float(config["window_s"])
        self.tally = AudienceTally(AttentionOptions(max_yaw_deg=config["max_yaw_deg"],
                                                    max_pitch_deg=config["max_pitch_deg"]), face_timeout_s)
        self._window_started: float | None = None
        self._content_until: float | None = None
        self._quiet = {"paused_s": 0.0, "privacy_s": 0.0, "no_frames_s": 0.0}
        self._last: float | None = None
        self._dropped_at_start = 0

    @property
    def content(self) -> str | None:
        return self.tally.content

    def set_content(self, content_id: str | None, now: float, duration_s: float | None = None) -> None:
        """What the screen shows from ``now``; with ``duration_s``, until then only."""
        if content_id is not None and not CONTENT_ID.fullmatch(content_id):
            raise ValueError(f"content id must be 1-64 letters, digits or . : / @ + - _, got {content_id[:40]!r}")
        self.tally.set_content(content_id)
        self._content_until = None if duration_s is None else now + duration_s

    def frame(self, now: float, faces: Iterable[Seen]) -> None:
        self._tick(now)
        self.tally.update(now, faces)

    def quiet(self, now: float, why: str) -> None:
        """A stretch with no analysis: ``paused``, ``privacy`` or ``no_frames`` (the camera gave none)."""
        step = self._tick(now)
        self._quiet[f"{why}_s"] += step

    def _tick(self, now: float) -> float:
        if self._window_started is None:
            self._window_started = now
        if self._content_until is not None and now >= self._content_until:
            self.tally.set_content(None)
            self._content_until = None
        step = 0.0 if self._last is None else max(now - self._last, 0.0)
        self._last = now
        return step

    def due(self, now: float, wall: float, dropped_frames: int, final: bool = False) -> dict[str, Any] | None:
        """The window's payload once ``window_s`` has passed (None before), and a new window begins;
        ``final``: the service stops, the part of the window so far (None when nothing was seen)."""
        if self._window_started is None:
            return None
        if final:
            self.tally.everyone_left()
        elif now - self._window_started < self.window_s:
            return None
        figures = self.tally.summary(now, reset=True)
        started = wall - (now - self._window_started)
        payload = {"v": 1, "window_start": round(started, 3), "window_end": round(wall, 3),
                   **{k: v for k, v in figures.items() if k not in ("window_start", "window_end")},
                   "quality": {k: round(v, 1) for k, v in self._quiet.items()}
                   | {"frames_dropped": dropped_frames - self._dropped_at_start, "partial": final}}
        self._window_started, self._dropped_at_start = now, dropped_frames
        self._quiet = dict.fromkeys(self._quiet, 0.0)
        return payload
