"""Detect on some frames only, and follow the faces in between (as MediaPipe's face pipelines do).

Detection is the most expensive step of a frame; faces move little between two frames of a
camera. So the detector runs every ``detect_every`` frames; in between each face keeps its last
box and keypoints, and its crop is compared with the crop it had when it was last detected:
when the crop has changed by more than ``max_change`` grey levels on average (the person moved,
turned or left), the detector runs on that frame at once. A face that leaves therefore ends its
track at the next detection, and a face that moves is found again where it went.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from affectlite.faces.blazeface import Face


@dataclass(frozen=True)
class FollowOptions:
    #: Run the detector on every N-th frame (1: every frame).
    detect_every: int = 1
    #: Mean absolute change (grey levels, 0-255) of a followed face's crop since its detection
    #: that makes the detector run on this frame.
    max_change: float = 12.0

    def __post_init__(self):
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {self.detect_every}")
        if not self.max_change > 0:
            raise ValueError(f"max_change must be > 0, got {self.max_change}")


class FaceFollower:
    """One per video or camera: it remembers the faces of the last detection."""

    def __init__(self, detect: Callable[[np.ndarray], list[Face]], options: FollowOptions = FollowOptions()):
        self.detect = detect
        self.options = options
        self._faces: list[Face] = []
        self._references: list[np.ndarray] = []
        self._since = 0
        self.detections = 0
        self.frames = 0

    def crops(self, rgb: np.ndarray, crop: Callable[[np.ndarray, Face], np.ndarray]) -> list[tuple[Face, np.ndarray]]:
        """Every face of this frame with its crop, detected or followed."""
        self.frames += 1
        if self._faces and self._since < self.options.detect_every - 1:
            followed = [(face, crop(rgb, face)) for face in self._faces]
            if all(self._change(c, ref) <= self.options.max_change for (_, c), ref in zip(followed, self._references)):
                self._since += 1
                return followed
        found = [(face, crop(rgb, face)) for face in self.detect(rgb)]
        self.detections += 1
        self._faces = [face for face, _ in found]
        self._references = [c.astype(np.int16) for _, c in found]
        self._since = 0
        return found

    @staticmethod
    def _change(current: np.ndarray, reference: np.ndarray) -> float:
        return float(np.abs(current.astype(np.int16) - reference).mean())
