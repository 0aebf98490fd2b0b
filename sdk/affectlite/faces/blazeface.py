"""BlazeFace face detection (MediaPipe's short- and full-range models) in plain numpy.

The TFLite models output raw anchor offsets; turning them into faces (anchor generation,
decoding, weighted non-maximum suppression) is MediaPipe's graph work, redone here in a few
vectorised lines so the device needs neither MediaPipe nor OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from affectlite.runtime.interpreter import make_interpreter

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"

Range = Literal["short", "full"]


@dataclass(frozen=True)
class BlazeFaceSpec:
    file: str
    input_size: int
    strides: tuple[int, ...]
    anchors_per_layer: int          # 2 with interpolated_scale_aspect_ratio 1.0, else 1


SPECS: dict[str, BlazeFaceSpec] = {
    "short": BlazeFaceSpec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2),
    "full": BlazeFaceSpec("face_detection_full_range_sparse.tflite", 192, (4,), 1),
}

#: Keypoint order in the model's output.
KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")


@dataclass(frozen=True)
class Face:
    """A detected face in frame pixels: box (x0, y0, x1, y1), score, six keypoints (x, y)."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray          # (6, 2) float32, in KEYPOINTS order

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def ssd_anchors(input_size: int, strides: tuple[int, ...], anchors_per_layer: int) -> np.ndarray:
    """Anchor centres (N, 2) in [0, 1] as MediaPipe's SsdAnchorsCalculator lays them out with
    fixed anchor size: consecutive layers of equal stride share one grid, their anchors per cell
    added up, cell by cell in row-major order."""
    centres = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        same = 0
        while layer + same < len(strides) and strides[layer + same] == stride:
            same += 1
        grid = int(np.ceil(input_size / stride))
        ys, xs = np.meshgrid((np.arange(grid) + 0.5) / grid, (np.arange(grid) + 0.5) / grid, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cells, same * anchors_per_layer, axis=0))
        layer += same
    return np.concatenate(centres).astype(np.float32)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray, iou_threshold: float):
    """MediaPipe's WEIGHTED suppression: each cluster of overlapping candidates becomes their
    score-weighted average box and keypoints, with the best candidate's score."""
    order = np.argsort(-scores)
    boxes, scores, keypoints = boxes[order], scores[order], keypoints[order]
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    remaining = np.ones(len(scores), bool)
    merged = []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        x0 = np.maximum(boxes[i, 0], boxes[:, 0])
        y0 = np.maximum(boxes[i, 1], boxes[:, 1])
        x1 = np.minimum(boxes[i, 2], boxes[:, 2])
        y1 = np.minimum(boxes[i, 3], boxes[:, 3])
        inter = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
        iou = inter / np.maximum(areas[i] + areas - inter, 1e-9)
        cluster = remaining & (iou > iou_threshold)
        cluster[i] = True
        weights = scores[cluster][:, None]
        total = weights.sum()
        merged.append((
            (boxes[cluster] * weights).sum(0) / total,
            float(scores[i]),
            (keypoints[cluster] * weights[:, :, None]).sum(0) / total,
        ))
        remaining &= ~cluster
    return merged


def letterbox(frame: np.ndarray, size: int) -> tuple[np.ndarray, float, float, float]:
    """Pad the frame to a square and sample it to (size, size) by nearest neighbour.

    Returns the image and (scale, pad_x, pad_y) to map normalised coordinates back to pixels.
    Nearest-neighbour is enough for the detector; the sampled rows are taken first and then the
    columns of those rows only (two ``take`` calls, not one fancy index over both axes), which
    keeps it near a tenth of a millisecond for a 640x480 frame.
    """
    h, w = frame.shape[:2]
    side = max(h, w)
    pad_x, pad_y = (side - w) / 2, (side - h) / 2
    coords = (np.arange(size) + 0.5) * side / size
    ys = np.floor(coords - pad_y).astype(np.intp)
    xs = np.floor(coords - pad_x).astype(np.intp)
    # The coordinates rise monotonically, so the samples inside the frame form one block, after
    # as many rows (columns) as fall in the padding above (left of) the frame.
    top, left = int((ys < 0).sum()), int((xs < 0).sum())
    ys, xs = ys[(ys >= 0) & (ys < h)], xs[(xs >= 0) & (xs < w)]
    out = np.zeros((size, size, 3), np.uint8)
    out[top:top + len(ys), left:left + len(xs)] = frame.take(ys, axis=0).take(xs, axis=1)[..., :3]
    return out, float(side), pad_x, pad_y


class BlazeFaceDetector:
    """Finds faces in RGB uint8 frames of any size. Use as a context manager or call close()."""

    def __init__(self, range: Range = "short", min_score: float = 0.5, iou_threshold: float = 0.3,
                 num_threads: int = 1, model_path: str | Path | None = None):
        if range not in SPECS:
            raise ValueError(f"detector range must be one of {sorted(SPECS)}, got {range!r}")
        if not 0.0 < min_score < 1.0:
            raise ValueError(f"min_score must be in (0, 1), got {min_score}")
        self.spec = SPECS[range]
        self.min_score = min_score
        self.iou_threshold = iou_threshold
        self._interpreter = make_interpreter(model_path or MODELS_DIR / self.spec.file, num_threads=num_threads)
        inp = self._interpreter.get_input_details()[0]
        outputs = sorted(self._interpreter.get_output_details(), key=lambda d: int(d["shape"][-1]), reverse=True)
        self._input_index = inp["index"]
        self._regressors, self._scores = outputs[0]["index"], outputs[1]["index"]
        self._anchors = ssd_anchors(self.spec.input_size, self.spec.strides, self.spec.anchors_per_layer)
        if len(self._anchors) != int(outputs[0]["shape"][1]):
            raise ValueError(f"anchor layout gives {len(self._anchors)} anchors, the model has {outputs[0]['shape'][1]}")

    def detect(self, frame: np.ndarray) -> list[Face]:
        if frame.ndim != 3 or frame.shape[2] < 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {frame.dtype} {frame.shape}")
        size = self.spec.input_size
        image, side, pad_x, pad_y = letterbox(frame, size)
        self._interpreter.set_tensor(self._input_index, (image.astype(np.float32) / 127.5 - 1.0)[None])
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._regressors)[0]
        logits = self._interpreter.get_tensor(self._scores)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -100, 100)))
        keep = scores >= self.min_score
        if not keep.any():
            return []
        raw, scores, anchors = raw[keep] / size, scores[keep], self._anchors[keep]
        centre = anchors + raw[:, 0:2]
        half = raw[:, 2:4] / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        keypoints = anchors[:, None, :] + raw[:, 4:16].reshape(-1, 6, 2)

        faces = []
        for box, score, points in weighted_nms(boxes, scores, keypoints, self.iou_threshold):
            box_px = box * side - np.array([pad_x, pad_y, pad_x, pad_y])
            points_px = points * side - np.array([pad_x, pad_y])
            faces.append(Face(tuple(float(v) for v in box_px), score, points_px.astype(np.float32)))
        return faces

    def close(self) -> None:
        self._interpreter = None

    def __enter__(self) -> "BlazeFaceDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
