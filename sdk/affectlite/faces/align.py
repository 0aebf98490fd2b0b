"""Cutting a face out of a frame the way the expression model saw faces in training.

FER2013 faces are upright and framed from the hairline to the chin. A detector box is tighter
and a head in a kiosk is often tilted, so the crop is rotated onto the eye line, centred a little
below the eyes and widened by a margin, then sampled with area averaging (bilinear taps on a
finer grid, averaged down) so that a 200-pixel face shrinks to 48 pixels without aliasing.
The warp runs in C (Pillow); this module only computes where the crop lies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from affectlite.faces.blazeface import Face

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
    """A (size, size, channels) uint8 crop; pixels outside the frame repeat the border.

    One affine warp in C (Pillow's ``Image.transform``) on the crop's bounding region, at up to
    twice the output size, then a 2x2 box average (``Image.reduce``): the same area-averaged
    sampling as a per-pixel warp, at a fraction of the cost per face."""
    from PIL import Image

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    centre, side, angle = crop_geometry(face, options)
    factor = int(np.clip(np.ceil(side / size), 1, 2))          # supersampling per output pixel
    n = size * factor
    cos, sin = float(np.cos(angle)), float(np.sin(angle))
    # The crop's corners in the frame, to cut out (and if needed pad) only the region it covers.
    half = side / 2
    corners_x = centre[0] + np.array([-1, 1, 1, -1]) * half * cos - np.array([-1, -1, 1, 1]) * half * sin
    corners_y = centre[1] + np.array([-1, 1, 1, -1]) * half * sin + np.array([-1, -1, 1, 1]) * half * cos
    left, top = int(np.floor(corners_x.min())) - 1, int(np.floor(corners_y.min())) - 1
    right, bottom = int(np.ceil(corners_x.max())) + 2, int(np.ceil(corners_y.max())) + 2
    h, w = frame.shape[:2]
    region = frame[max(top, 0):min(bottom, h), max(left, 0):min(right, w)]
    if region.size == 0:                                       # the crop lies outside the frame
        region = frame[max(min(top, h - 1), 0):, max(min(left, w - 1), 0):][:1, :1]
    pads = (max(0, -top), max(0, bottom - h)), (max(0, -left), max(0, right - w))
    if any(p for pair in pads for p in pair):
        region = np.pad(region, pads + ((0, 0),) * (region.ndim - 2), mode="edge")
    image = Image.fromarray(np.ascontiguousarray(region[..., :3] if region.ndim == 3 else region))
    image = image.convert("L" if channels == 1 else "RGB")
    # Output pixel (x, y) samples the region at the crop point ((x + 0.5) / n - 0.5) * side,
    # rotated by the eye line; Pillow's AFFINE data maps output to input coordinates.
    step = side / n
    ox, oy = centre[0] - left, centre[1] - top
    data = (step * cos, -step * sin, ox - half * cos + half * sin,
            step * sin, step * cos, oy - half * sin - half * cos)
    warped = image.transform((n, n), Image.AFFINE, data, resample=Image.BILINEAR)
    if factor > 1:
        warped = warped.reduce(factor)
    return np.asarray(warped).reshape(size, size, channels)
