"""Batch augmentation for face crops, as TensorFlow ops inside the ``tf.data`` pipeline.

Faces from a detector arrive slightly rotated, shifted and scaled, under uneven light and
sometimes partly hidden (hands, glasses); each transform below imitates one of those.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AugmentSpec:
    crop: int = 40                 # random crop side; the model is deployed on the full image
    max_rotation_deg: float = 12.0
    scale_range: tuple[float, float] = (0.88, 1.12)
    max_shift: float = 0.06        # fraction of the side
    brightness: float = 0.15       # additive, on [0, 1] pixels
    contrast: tuple[float, float] = (0.7, 1.3)
    erase_probability: float = 0.4
    erase_size: tuple[int, int] = (8, 18)


def augment_batch(images, spec: AugmentSpec):
    """images: float32 (B, H, W, C) in [0, 1]; returns (B, crop, crop, C) in [0, 1]."""
    import tensorflow as tf

    batch = tf.shape(images)[0]
    height = tf.cast(tf.shape(images)[1], tf.float32)
    width = tf.cast(tf.shape(images)[2], tf.float32)

    # One affine warp per image: rotation, scale and shift around the centre.
    angle = tf.random.uniform([batch], -1.0, 1.0) * (spec.max_rotation_deg * math.pi / 180.0)
    scale = tf.random.uniform([batch], *spec.scale_range)
    shift_x = tf.random.uniform([batch], -spec.max_shift, spec.max_shift) * width
    shift_y = tf.random.uniform([batch], -spec.max_shift, spec.max_shift) * height
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    cx, cy = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    # Output pixel (x, y) samples input at A @ (x - c) + c - shift.
    transform = tf.stack(
        [cos, -sin, cx - cos * cx + sin * cy - shift_x,
         sin, cos, cy - sin * cx - cos * cy - shift_y,
         tf.zeros([batch]), tf.zeros([batch])],
        axis=1,
    )
    images = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transform, output_shape=tf.shape(images)[1:3],
        interpolation="BILINEAR", fill_mode="REFLECT", fill_value=0.0,
    )

    images = tf.image.random_crop(images, tf.stack([batch, spec.crop, spec.crop, tf.shape(images)[3]]))
    images = tf.image.random_flip_left_right(images)

    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    contrast = tf.random.uniform([batch, 1, 1, 1], *spec.contrast)
    brightness = tf.random.uniform([batch, 1, 1, 1], -spec.brightness, spec.brightness)
    images = (images - mean) * contrast + mean + brightness

    images = _random_erase(images, spec)
    return tf.clip_by_value(images, 0.0, 1.0)


def _random_erase(images, spec: AugmentSpec):
    """Blank one random rectangle per image (with probability ``erase_probability``)."""
    import tensorflow as tf

    batch, size = tf.shape(images)[0], spec.crop
    lo, hi = spec.erase_size
    h = tf.random.uniform([batch], lo, hi + 1, dtype=tf.int32)
    w = tf.random.uniform([batch], lo, hi + 1, dtype=tf.int32)
    y0 = tf.cast(tf.random.uniform([batch]) * tf.cast(size - h, tf.float32), tf.int32)
    x0 = tf.cast(tf.random.uniform([batch]) * tf.cast(size - w, tf.float32), tf.int32)
    rows = tf.range(size)[None, :, None]
    cols = tf.range(size)[None, None, :]
    inside = (
        (rows >= y0[:, None, None]) & (rows < (y0 + h)[:, None, None])
        & (cols >= x0[:, None, None]) & (cols < (x0 + w)[:, None, None])
    )
    apply = tf.random.uniform([batch, 1, 1]) < spec.erase_probability
    mask = tf.cast(inside & apply, images.dtype)[..., None]
    fill = tf.random.uniform(tf.shape(images)[:1])[:, None, None, None]
    return images * (1.0 - mask) + fill * mask


def oval_mask(masked_faces: np.ndarray, threshold: int = 3) -> np.ndarray:
    """The oval that a set of pre-masked faces (black outside a face-shaped oval) shares, as a
    float32 (H, W) array of 1 inside and 0 outside: the pixels that are near-black in fewer than
    half of the images. Learnt from the data, so that it is the new set's own outline."""
    dark = (np.asarray(masked_faces) <= threshold).mean(axis=0)
    return (dark < 0.5).astype(np.float32)


def disguise_source(images, source, mask, mask_probability: float, blur_probability: float):
    """Give each face, at random, the look of the other source, so that neither the oval mask nor
    sharpness tells a model where a face came from: faces of source 0 (FER2013's unmasked web crops)
    get the new set's oval mask on black with ``mask_probability``; faces of source 1 (the new set's
    sharp, downsampled photos) are blurred to FER2013's resolution (down to a random 20-36 px side
    and back) with ``blur_probability``. images: float32 (B, H, W, C); source: int (B,)."""
    import tensorflow as tf

    batch = tf.shape(images)[0]
    size = tf.shape(images)[1:3]
    draw = tf.random.uniform([batch])
    masked = tf.cast((source == 0) & (draw < mask_probability), images.dtype)[:, None, None, None]
    images = images * (1.0 - masked) + images * mask[None, :, :, None] * masked
    side = tf.random.uniform([], 20, 37, dtype=tf.int32)
    soft = tf.image.resize(tf.image.resize(images, tf.stack([side, side]), antialias=True), size)
    blurred = tf.cast((source == 1) & (draw < blur_probability), images.dtype)[:, None, None, None]
    return images * (1.0 - blurred) + soft * blurred
