"""Frames from a list in memory: for tests and for feeding frames from your own code."""

from __future__ import annotations

import time
from typing import Iterable

import numpy as np


class MemorySource:
    def __init__(self, frames: Iterable[np.ndarray], fps: float | None = None, name: str = "memory"):
        self.name = name
        self._frames = list(frames)
        self._interval = 1.0 / fps if fps else 0.0
        self._index = 0
        self._next = 0.0

    def open(self) -> None:
        self._index, self._next = 0, time.monotonic()

    def read(self) -> tuple[np.ndarray, float] | None:
        if self._index >= len(self._frames):
            return None
        if self._interval:
            delay = self._next - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._next += self._interval
        frame = self._frames[self._index]
        self._index += 1
        return frame, time.monotonic()

    def close(self) -> None:
        pass
