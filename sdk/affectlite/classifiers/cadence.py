"""Classify each tracked face on some frames only, and repeat its last result in between.

An expression lasts hundreds of milliseconds and the service smooths it over seconds, so
classifying a face on every frame of a 30 fps camera mostly re-measures what is known. With
``every`` N, each frame classifies every face that has no result yet (a new track), then the
faces whose results are oldest, at a steady rate of faces / N a frame (one face with N 3: every
third frame; ten faces: three or four a frame), and any face whose result has become N frames
old. So a face's result is never more than N - 1 frames old, and in a crowd the classifications
are spread over the frames instead of all falling on the same one. ``every`` 1 classifies every
face on every frame.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


class ClassifyCadence:
    """One per video or camera, beside its tracker: each track's last probabilities."""

    def __init__(self, every: int = 1):
        if every < 1:
            raise ValueError(f"classify_every must be >= 1, got {every}")
        self.every = every
        self._last: dict[int, tuple[int, np.ndarray]] = {}   # track id -> (frame classified, probabilities)
        self._frame = 0
        self._credit = 0.0             # classifications owed at the rate faces / every a frame
        self.classified = 0            # faces classified so far
        self.faces = 0                 # faces seen so far

    def _due(self, track_ids: list[int]) -> list[int]:
        """Indices (into ``track_ids``) of the faces to classify on this frame; spends the credit."""
        new = [i for i, t in enumerate(track_ids) if t not in self._last]
        known = sorted((i for i, t in enumerate(track_ids) if t in self._last),
                       key=lambda i: self._last[track_ids[i]][0])
        self._credit = min(self._credit + len(known) / self.every, len(known))
        overdue = sum(self._frame - self._last[track_ids[i]][0] >= self.every for i in known)
        chosen = known[:max(overdue, int(self._credit + 1e-9))]
        self._credit -= len(chosen)
        return sorted(new + chosen)

    def results(self, track_ids: list[int], classify: Callable[[list[int]], np.ndarray]) -> list[np.ndarray]:
        """Probabilities for every face of this frame: ``classify(indices)`` for the due faces (one
        row per index), the last result for the others. Tracks not on this frame are forgotten: a
        face that comes back is classified at once."""
        self._frame += 1
        due = self._due(track_ids)
        fresh = classify(due) if due else []
        for i, probs in zip(due, fresh):
            self._last[track_ids[i]] = (self._frame, probs)
        self._last = {t: self._last[t] for t in track_ids}
        self.classified += len(due)
        self.faces += len(track_ids)
        return [self._last[t][1] for t in track_ids]
