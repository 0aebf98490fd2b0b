"""Captions or transcript lines (``[text]``): scored on arrival, counted for ``ttl_s``; the line
itself is not kept."""

from __future__ import annotations

import time
from typing import Any


class TextStream:
    def __init__(self, ttl_s: float):
        from affectlite.text import TextScorer

        self.scorer = TextScorer()
        self.ttl_s = ttl_s
        self._latest: tuple[float, Any] | None = None      # (arrival, TextValence)

    def add(self, text: str, now: float | None = None):
        """Raises ValueError for empty or over-long text (answered on MQTT, not fatal)."""
        scored = self.scorer.score(text)
        self._latest = (time.monotonic() if now is None else now, scored)
        return scored

    def current(self, now: float, privacy: bool):
        if self._latest is None or privacy or now - self._latest[0] > self.ttl_s:
            return None
        return self._latest[1]
