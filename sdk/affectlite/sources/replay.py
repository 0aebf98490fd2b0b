"""A video file or stream replayed as if it were a camera: at its own frame rate, optionally looped.

This is the default demo source (the bundled sample clip), and a way to test a deployment with
recorded footage before a camera is installed.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from affectlite.sources.base import SourceError
from affectlite.sources.images import MediaError
from affectlite.sources.video_file import VideoEndedEarly, read_video

log = logging.getLogger(__name__)


class VideoReplaySource:
    def __init__(self, path: str | Path, realtime: bool = True, loop: bool = False):
        self.path = str(path)
        self.name = f"file:{Path(self.path).name}"
        self.realtime, self.loop = realtime, loop
        self._frames: Iterator | None = None
        self._start = 0.0
        self._offset = 0.0
        self.loops = 0
        self._said_short = False

    def open(self) -> None:
        self._frames = read_video(self.path)
        self._start = time.monotonic()
        self._offset = 0.0

    def read(self) -> tuple[np.ndarray, float] | None:
        if self._frames is None:
            raise SourceError(f"{self.name}: read() before open()")
        try:
            frame = self._next()
            if frame is None and self.loop:
                self.loops += 1
                self._offset = time.monotonic() - self._start
                self._frames = read_video(self.path)
                frame = self._next()
        except MediaError as exc:
            raise SourceError(str(exc)) from exc
        if frame is None:
            return None
        if self.realtime:
            due = self._start + self._offset + frame.timestamp
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return frame.rgb, time.monotonic()

    def _next(self):
        """The next frame, or None at the end; a file that ends early ends there, said once."""
        try:
            return next(self._frames, None)
        except VideoEndedEarly as exc:
            if not self._said_short:
                log.warning("%s", exc)
                self._said_short = True
            return None

    def close(self) -> None:
        if self._frames is not None:
            self._frames.close()
            self._frames = None
