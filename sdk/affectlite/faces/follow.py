"""Detect on some frames only, and follow the faces in between (as MediaPipe's face pipelines do).

Detection is the most expensive step of a frame; faces move little between two frames of a
camera. So the detector runs every ``detect_every`` frames; in between each face is followed:
its box and keypoints are shifted by the offset (within ``search_px``) where its patch of the
4x-downscaled grey frame best matches the patch it had when it was detected (the mean absolute
difference, a few numpy operations per face). When even the best match differs by more than
``max_change`` grey levels on average (the person turned, moved too far or left), the detector
runs on that frame at once. A face that leaves therefore ends its track at the next detection,
and a face that walks is followed between detections. The check needs no aligned crop, so a face
whose expression is not due on a frame (see :mod:`affectlite.classifiers.cadence`) costs no
alignment either.
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
    #: Mean absolute difference (grey levels, 0-255) between a followed face's best-matching patch
    #: and its patch at detection that makes the detector run on this frame. 10 is measured on the
    #: CREMA-D clips: two frames after its detection a face that stays differs by at most 9.5 in
    #: 98 % of cases, its place with the face replaced by flat background by 22 or more; with it
    #: no face is lost or added (benchmarks/crowd_frames.py).
    max_change: float = 10.0
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
        self._patches: list[np.ndarray | None] = []  # each face's patch of the small grey frame when detected
        self._since = 0
        self.detections = 0
        self.frames = 0

    def faces(self, rgb: np.ndarray) -> list[Face]:
        """Every face of this frame, detected or followed."""
        self.frames += 1
        if self._faces and self._since < self.options.detect_every - 1:
            moved = [self._follow(rgb, face, patch) for face, patch in zip(self._faces, self._patches)]
            if all(face is not None for face in moved):
                self._since += 1
                self._faces = moved
                return moved
        self._faces = self.detect(rgb)
        self.detections += 1
        self._patches = [_patch(rgb, face) for face in self._faces]
        self._since = 0
        return self._faces

    def _follow(self, rgb: np.ndarray, face: Face, patch: np.ndarray | None) -> Face | None:
        """The face shifted to where its patch from the last detection matches best now, searched
        around where it was on the last frame; None (detect instead) at the frame's edge or when
        even the best match differs by more than ``max_change``."""
        if patch is None:
            return None
        reach = self.options.search_px // SCALE
        h, w = patch.shape
        x0, y0 = int(round(face.box[0] / SCALE)), int(round(face.box[1] / SCALE))
        area = _small_grey(rgb, y0 - reach, x0 - reach, h + 2 * reach, w + 2 * reach)
        if area is None:
            return None
        dy, dx, cost = _best_offset(area, patch, reach)
        if cost > self.options.max_change:
            return None
        if dy == 0 and dx == 0:
            return face
        sx, sy = float(dx * SCALE), float(dy * SCALE)
        x_0, y_0, x_1, y_1 = face.box
        return Face((x_0 + sx, y_0 + sy, x_1 + sx, y_1 + sy), face.score,
                    face.keypoints + np.array([sx, sy], np.float32))


def _best_offset(area: np.ndarray, patch: np.ndarray, reach: int) -> tuple[int, int, float]:
    """(dy, dx, mean absolute difference) of the best place for ``patch`` within ``reach`` of the
    centre of ``area``, found by stepping to the best of the eight neighbours until none is
    better: a face moves a few pixels between frames and the block-averaged grey image is smooth,
    so this visits 9-12 of the 49 offsets of the default reach (on the CREMA-D clips and a crowd)."""
    h, w = patch.shape
    step = max(1, min(h, w) // 12)      # every other row and column of a large patch is enough to place it
    sparse = patch[::step, ::step]
    costs: dict[tuple[int, int], float] = {}

    def cost(dy: int, dx: int) -> float:
        if (dy, dx) not in costs:
            window = area[reach + dy:reach + dy + h:step, reach + dx:reach + dx + w:step]
            costs[dy, dx] = float(np.abs(window - sparse).sum()) / sparse.size   # sum: half the cost of mean()
        return costs[dy, dx]

    at = (0, 0)
    while True:
        around = [(at[0] + y, at[1] + x) for y in (-1, 0, 1) for x in (-1, 0, 1)
                  if abs(at[0] + y) <= reach and abs(at[1] + x) <= reach]
        best = min(around, key=lambda offset: (cost(*offset), offset != at))   # ties: stay
        if best == at:
            return at[0], at[1], costs[at]
        at = best


def _small_grey(rgb: np.ndarray, top: int, left: int, rows: int, cols: int) -> np.ndarray | None:
    """A region of the frame downscaled by SCALE, in downscaled pixels (each the mean of a
    SCALE x SCALE block, so that a face moved by part of a block still matches), its green channel
    as the grey (most of luma, and a third of the cost of all three); None where it leaves the frame.
    Only the regions around the faces are downscaled, never the whole frame; the blocks are summed
    by strided slices, three times faster than a mean over a reshaped array."""
    if top < 0 or left < 0 or (top + rows) * SCALE > rgb.shape[0] or (left + cols) * SCALE > rgb.shape[1]:
        return None
    block = rgb[top * SCALE:(top + rows) * SCALE, left * SCALE:(left + cols) * SCALE, 1].astype(np.uint16)
    columns = sum(block[:, i::SCALE] for i in range(SCALE))
    return sum(columns[i::SCALE] for i in range(SCALE)).astype(np.float32) / (SCALE * SCALE)


def _patch(rgb: np.ndarray, face: Face) -> np.ndarray | None:
    """The face box's patch of the downscaled grey frame; None where the box leaves the frame."""
    x0, y0 = int(round(face.box[0] / SCALE)), int(round(face.box[1] / SCALE))
    x1, y1 = int(round(face.box[2] / SCALE)), int(round(face.box[3] / SCALE))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    return _small_grey(rgb, y0, x0, y1 - y0, x1 - x0)
