"""Detect on some frames only, and follow the faces in between (as MediaPipe's face pipelines do).

Detection is the most expensive step of a frame; faces move little between two frames of a
camera. So the detector runs every ``detect_every`` frames; in between each face is followed:
its box and keypoints are shifted by the offset (within ``search_px``) where its patch of a
4x-downscaled grey frame best matches the patch it had when it was detected (the mean absolute
difference, a few numpy operations per face), and its crop is then compared with the crop it had
when it was detected: when the crop has changed by more than ``max_change`` grey levels on
average (the person turned, moved too far or left), the detector runs on that frame at once. A
face that leaves therefore ends its track at the next detection, and a face that walks is
followed between detections.
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
    #: How far (frame pixels, each way) a followed face is looked for from where it was.
    search_px: int = 12

    def __post_init__(self):
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {self.detect_every}")
        if not self.max_change > 0:
            raise ValueError(f"max_change must be > 0, got {self.max_change}")
        if self.search_px < 0:
            raise ValueError(f"search_px must be >= 0, got {self.search_px}")


#: Following works on the grey frame downscaled by this factor.
SCALE = 4


class FaceFollower:
    """One per video or camera: it remembers the faces of the last detection."""

    def __init__(self, detect: Callable[[np.ndarray], list[Face]], options: FollowOptions = FollowOptions()):
        self.detect = detect
        self.options = options
        self._faces: list[Face] = []
        self._references: list[np.ndarray] = []     # each face's crop when detected
        self._patches: list[np.ndarray | None] = []  # its patch of the small grey frame when detected
        self._since = 0
        self.detections = 0
        self.frames = 0

    def crops(self, rgb: np.ndarray, crop: Callable[[np.ndarray, Face], np.ndarray]) -> list[tuple[Face, np.ndarray]]:
        """Every face of this frame with its crop, detected or followed."""
        self.frames += 1
        if self._faces and self._since < self.options.detect_every - 1:
            small = _small_grey(rgb)
            moved = [self._follow(small, face, patch) for face, patch in zip(self._faces, self._patches)]
            if all(face is not None for face in moved):
                followed = [(face, crop(rgb, face)) for face in moved]
                if all(self._change(c, ref) <= self.options.max_change
                       for (_, c), ref in zip(followed, self._references)):
                    self._since += 1
                    self._faces = moved
                    return followed
        found = [(face, crop(rgb, face)) for face in self.detect(rgb)]
        self.detections += 1
        self._faces = [face for face, _ in found]
        self._references = [c.astype(np.int16) for _, c in found]
        small = _small_grey(rgb) if found else None
        self._patches = [_patch(small, face) for face in self._faces]
        self._since = 0
        return found

    def _follow(self, small: np.ndarray, face: Face, patch: np.ndarray | None) -> Face | None:
        """The face shifted to where its patch from the last detection matches best now, searched
        around where it was on the last frame; None (detect instead) at the frame's edge."""
        if patch is None:
            return None
        reach = self.options.search_px // SCALE
        if reach == 0:
            return face
        h, w = patch.shape
        x0, y0 = int(round(face.box[0] / SCALE)), int(round(face.box[1] / SCALE))
        if y0 - reach < 0 or x0 - reach < 0 or y0 + h + reach > small.shape[0] or x0 + w + reach > small.shape[1]:
            return None
        area = small[y0 - reach:y0 + h + reach, x0 - reach:x0 + w + reach]
        cost = np.abs(np.lib.stride_tricks.sliding_window_view(area, (h, w)) - patch).mean(axis=(2, 3))
        dy, dx = np.unravel_index(int(np.argmin(cost)), cost.shape)
        if dy == reach and dx == reach:
            return face
        sx, sy = float((dx - reach) * SCALE), float((dy - reach) * SCALE)
        x_0, y_0, x_1, y_1 = face.box
        return Face((x_0 + sx, y_0 + sy, x_1 + sx, y_1 + sy), face.score,
                    face.keypoints + np.array([sx, sy], np.float32))

    @staticmethod
    def _change(current: np.ndarray, reference: np.ndarray) -> float:
        return float(np.abs(current.astype(np.int16) - reference).mean())


def _small_grey(rgb: np.ndarray) -> np.ndarray:
    """The frame downscaled by SCALE (every SCALE-th pixel), its green channel as the grey (most
    of luma, and a tenth of the cost of averaging the three): enough to follow a face."""
    return rgb[::SCALE, ::SCALE, 1].astype(np.float32)


def _patch(small: np.ndarray | None, face: Face) -> np.ndarray | None:
    """The face box's patch of the small grey frame; None where the box leaves the frame."""
    if small is None:
        return None
    x0, y0 = int(round(face.box[0] / SCALE)), int(round(face.box[1] / SCALE))
    x1, y1 = int(round(face.box[2] / SCALE)), int(round(face.box[3] / SCALE))
    if x0 < 0 or y0 < 0 or x1 > small.shape[1] or y1 > small.shape[0] or x1 - x0 < 4 or y1 - y0 < 4:
        return None
    return small[y0:y1, x0:x1].copy()
