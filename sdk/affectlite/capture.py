"""Capture on its own thread, keeping only the newest frame.

When inference is slower than the camera, waiting frames are worth nothing: the service wants
the present. So the capture thread overwrites a single slot, and every frame overwritten before
it was taken counts as dropped. Memory stays constant however slow the consumer is.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from affectlite.sources.base import FrameSource, SourceError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Captured:
    number: int            # 1, 2, 3, ... in capture order
    rgb: np.ndarray
    captured_at: float     # time.monotonic() when the source delivered it


class LatestFrame:
    """Runs ``source`` on a thread; :meth:`get` returns the newest frame not yet taken."""

    def __init__(self, source: FrameSource):
        self.source = source
        self.captured = 0
        self.dropped = 0
        self.error: Exception | None = None
        self.ended = False
        self._slot: Captured | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"capture-{source.name}", daemon=True)
        self._started_at = 0.0

    def start(self) -> "LatestFrame":
        self.source.open()            # open errors surface in the caller, with their hint
        self._started_at = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                item = self.source.read()
                if item is None:
                    break
                rgb, at = item
                with self._cond:
                    self.captured += 1
                    if self._slot is not None:
                        self.dropped += 1
                    self._slot = Captured(self.captured, rgb, at)
                    self._cond.notify()
        except (SourceError, OSError) as exc:
            log.error("capture stopped: %s", exc)
            self.error = exc
        finally:
            with self._cond:
                self.ended = True
                self._cond.notify_all()

    def get(self, timeout: float = 1.0) -> Captured | None:
        """The newest untaken frame; None after ``timeout`` or when the source has ended."""
        with self._cond:
            if self._slot is None and not self.ended:
                self._cond.wait(timeout)
            frame, self._slot = self._slot, None
            return frame

    @property
    def capture_fps(self) -> float:
        elapsed = time.monotonic() - self._started_at
        return self.captured / elapsed if elapsed > 0 else 0.0

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.source.close()
