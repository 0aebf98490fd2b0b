"""Following faces across video frames by box overlap, so each person keeps one track id.

Greedy IoU matching is enough at camera frame rates, where a face moves a fraction of its size
between frames; a track survives a few missed detections (a blink of the detector) before it ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def iou_matrix(a: list[tuple[float, float, float, float]], b: list[tuple[float, float, float, float]]) -> np.ndarray:
    """(len(a), len(b)) overlaps of every box of ``a`` with every box of ``b``, in one numpy pass
    (a crowd of twenty is 400 pairs a frame)."""
    if not a or not b:
        return np.zeros((len(a), len(b)))
    x, y = np.asarray(a, np.float64)[:, None, :], np.asarray(b, np.float64)[None, :, :]
    w = np.clip(np.minimum(x[..., 2], y[..., 2]) - np.maximum(x[..., 0], y[..., 0]), 0, None)
    h = np.clip(np.minimum(x[..., 3], y[..., 3]) - np.maximum(x[..., 1], y[..., 1]), 0, None)
    inter = w * h
    union = (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1]) + (y[..., 2] - y[..., 0]) * (y[..., 3] - y[..., 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


@dataclass
class Track:
    track_id: int
    box: tuple[float, float, float, float]
    missed: int = 0


@dataclass
class IouTracker:
    min_iou: float = 0.3
    max_missed: int = 5
    _tracks: list[Track] = field(default_factory=list)
    _next_id: int = 1

    def update(self, boxes: list[tuple[float, float, float, float]]) -> list[int]:
        """Track ids for ``boxes`` (same order); unmatched boxes start new tracks."""
        overlaps = iou_matrix([track.box for track in self._tracks], boxes)
        ids: list[int | None] = [None] * len(boxes)
        used_tracks: set[int] = set()
        # Pairs best first (ties: later track, then later box first), down to min_iou.
        t_index, b_index = np.nonzero(overlaps >= self.min_iou)
        order = np.lexsort((-b_index, -t_index, -overlaps[t_index, b_index]))
        for t, b in zip(t_index[order].tolist(), b_index[order].tolist()):
            if t in used_tracks or ids[b] is not None:
                continue
            used_tracks.add(t)
            ids[b] = self._tracks[t].track_id
            self._tracks[t].box, self._tracks[t].missed = boxes[b], 0
        for t, track in enumerate(self._tracks):
            if t not in used_tracks:
                track.missed += 1
        self._tracks = [track for track in self._tracks if track.missed <= self.max_missed]
        for b, box in enumerate(boxes):
            if ids[b] is None:
                ids[b] = self._next_id
                self._tracks.append(Track(self._next_id, box))
                self._next_id += 1
        return [int(i) for i in ids]  # type: ignore[arg-type]

    @property
    def active_ids(self) -> list[int]:
        return [track.track_id for track in self._tracks if track.missed == 0]


