"""Following faces across video frames by box overlap, so each person keeps one track id.

Greedy IoU matching is enough at camera frame rates, where a face moves a fraction of its size
between frames; a track survives a few missed detections (a blink of the detector) before it ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field




def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(x1 - x0, 0.0) * max(y1 - y0, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


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
        pairs = sorted(
            ((iou(track.box, box), t, b) for t, track in enumerate(self._tracks) for b, box in enumerate(boxes)),
            reverse=True,
        )
        ids: list[int | None] = [None] * len(boxes)
        used_tracks: set[int] = set()
        for overlap, t, b in pairs:
            if overlap < self.min_iou:
                break
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


