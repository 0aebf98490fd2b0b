"""Cutting a face out of a frame the way the expression model saw faces in training.

FER2013 faces are upright and framed from the hairline to the chin. A detector box is tighter
and a head in a kiosk is often tilted, so the crop is rotated onto the eye line, centred a little
below the eyes and widened by a margin, then sampled with area averaging (bilinear taps on a
finer grid, averaged down) so that a 200-pixel face shrinks to 48 pixels without aliasing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from affectlite.faces.blazeface import Face

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class AlignOptions:
    #: Crop side as a multiple of the detector box side.
    scale: float = 1.1
    #: Shift of the crop centre from the box centre, in box heights (negative is up): puts the
    #: eyes at about 37 % and the mouth at about 75 % of the crop's height, as in FER2013.
    shift_y: float = -0.11
    #: Rotate so that the eyes are level.
    rotate: bool = True


def crop_geometry(face: Face, options: AlignOptions) -> tuple[np.ndarray, float, float]:
    """(centre xy, side in pixels, angle in radians) of the crop for ``face``."""
    right_eye, left_eye = face.keypoints[0], face.keypoints[1]
    dx, dy = left_eye - right_eye
    angle = float(np.arctan2(dy, dx)) if options.rotate else 0.0
    x0, y0, x1, y1 = face.box
    side = max(x1 - x0, y1 - y0) * options.scale
    # The shift follows the face's own up direction when the head is tilted.
    up = np.array([np.sin(angle), -np.cos(angle)])
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2]) - up * options.shift_y * (y1 - y0)
    return centre, side, angle


def aligned_crop(frame: np.ndarray, face: Face, size: int, channels: int = 1,
                 options: AlignOptions = AlignOptions()) -> np.ndarray:
    """A (size, size, channels) uint8 crop; pixels outside the frame repeat the border."""
    centre, side, angle = crop_geometry(face, options)
    factor = int(np.clip(np.ceil(side / size), 1, 2))          # supersampling per output pixel
    n = size * factor
    grid = (np.arange(n, dtype=np.float32) + 0.5) / n - 0.5    # [-0.5, 0.5) across the crop
    u, v = np.meshgrid(grid * side, grid * side)
    cos, sin = np.cos(angle), np.sin(angle)
    xs = centre[0] + u * cos - v * sin - 0.5
    ys = centre[1] + u * sin + v * cos - 0.5

    # Work on the crop's bounding region only, converted to the output's channels once.
    h, w = frame.shape[:2]
    left, top = max(int(xs.min()), 0), max(int(ys.min()), 0)
    right, bottom = min(int(xs.max()) + 2, w), min(int(ys.max()) + 2, h)
    if right - left < 2 or bottom - top < 2:                   # the crop lies outside the frame
        left, top, right, bottom = max(min(left, w - 2), 0), max(min(top, h - 2), 0), w, h
    region = frame[top:bottom, left:right]
    if channels == 1:
        region = region[..., :3].astype(np.float32) @ _LUMA if region.ndim == 3 else region.astype(np.float32)
        region = region[..., None]
    elif channels == 3:
        region = region[..., :3].astype(np.float32)
    else:
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    sampled = _bilinear(region, xs - left, ys - top)           # (n, n, channels)
    if factor > 1:
        sampled = sampled.reshape(size, factor, size, factor, -1).mean(axis=(1, 3))
    return np.clip(np.round(sampled), 0, 255).astype(np.uint8)


def _bilinear(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Sample float (H, W, C) at float coordinates, clamping to the border."""
    h, w = image.shape[:2]
    xs = np.clip(xs, 0, w - 1.001)
    ys = np.clip(ys, 0, h - 1.001)
    x0 = xs.astype(np.int32)
    y0 = ys.astype(np.int32)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    fx = (xs - x0)[..., None]
    fy = (ys - y0)[..., None]
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bottom * fy
