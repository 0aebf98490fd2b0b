"""Why the model said so: occlusion maps, overlays, margins and per-modality contributions.

Occlusion sensitivity needs nothing but the interpreter, so it works for any ``.tflite`` model on
the device and in ``affectlite analyze --explain``: grey out one patch of the face crop at a time
and see how far the predicted class's probability drops. Regions whose loss hurts most are what
the decision rests on. (Gradient-based maps need the Keras model: ``affectlite-convert explain``.)
What a map can and cannot say is in the README ("Explanations").
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from affectlite.faces.align import AlignOptions, crop_geometry
from affectlite.faces.blazeface import Face
from affectlite.labels import EMOTIONS


def occlusion_map(classify: Callable[[np.ndarray], np.ndarray], crop: np.ndarray, target: int,
                  patch: int = 8, stride: int = 4) -> np.ndarray:
    """(H, W) float map in [0, 1]: how much hiding each pixel lowers ``target``'s probability.

    ``classify`` takes a (H, W, C) uint8 crop and returns probabilities. Patches are filled with
    the crop's mean grey, which removes the structure without adding an edge the model reads.
    """
    height, width = crop.shape[:2]
    base = float(classify(crop)[target])
    fill = np.uint8(round(float(crop.mean())))
    drop = np.zeros((height, width), np.float32)
    covered = np.zeros((height, width), np.float32)
    for top in range(0, max(height - patch, 0) + 1, stride):
        for left in range(0, max(width - patch, 0) + 1, stride):
            hidden = crop.copy()
            hidden[top:top + patch, left:left + patch] = fill
            drop[top:top + patch, left:left + patch] += base - float(classify(hidden)[target])
            covered[top:top + patch, left:left + patch] += 1
    heat = np.clip(drop / np.maximum(covered, 1), 0, None)
    return heat / heat.max() if heat.max() > 0 else heat


def colorize(heat: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) uint8, blue (no effect) through yellow to red (decisive)."""
    stops = np.array([[0, 0, 128], [0, 90, 255], [0, 220, 220], [255, 230, 0], [230, 20, 0]], np.float32)
    position = np.clip(heat, 0, 1) * (len(stops) - 1)
    low = np.floor(position).astype(int).clip(0, len(stops) - 2)
    fraction = (position - low)[..., None]
    return (stops[low] * (1 - fraction) + stops[low + 1] * fraction).astype(np.uint8)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5, mask: np.ndarray | None = None) -> np.ndarray:
    """Blend the coloured map over an RGB or grayscale uint8 image of the same size."""
    rgb = np.repeat(image[..., :1], 3, axis=2) if image.ndim == 3 and image.shape[2] == 1 else image
    rgb = np.stack([rgb] * 3, axis=2) if rgb.ndim == 2 else rgb[..., :3]
    weight = alpha if mask is None else alpha * mask[..., None]
    return np.clip(rgb * (1 - weight) + colorize(heat) * weight, 0, 255).astype(np.uint8)


def heat_on_frame(frame_shape: tuple[int, ...], face: Face, heat: np.ndarray,
                  options: AlignOptions = AlignOptions()) -> tuple[np.ndarray, np.ndarray]:
    """A face crop's map placed back on the whole frame: (map, mask of the crop's area)."""
    centre, side, angle = crop_geometry(face, options)
    height, width = frame_shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    dx, dy = xs + 0.5 - centre[0], ys + 0.5 - centre[1]
    cos, sin = np.cos(angle), np.sin(angle)
    # Inverse of the crop's rotation: frame pixel -> position across the crop in [-0.5, 0.5).
    u, v = (dx * cos + dy * sin) / side, (-dx * sin + dy * cos) / side
    inside = (np.abs(u) < 0.5) & (np.abs(v) < 0.5)
    size = heat.shape[0]
    col = np.clip(((u + 0.5) * size).astype(int), 0, size - 1)
    row = np.clip(((v + 0.5) * size).astype(int), 0, size - 1)
    return np.where(inside, heat[row, col], 0.0).astype(np.float32), inside.astype(np.float32)


def margin(probabilities: np.ndarray) -> float:
    """Top class minus the runner-up: small margins are close calls worth treating with care."""
    top2 = np.sort(np.asarray(probabilities, np.float64))[-2:]
    return float(top2[1] - top2[0])


def top_classes(probabilities: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
    order = np.argsort(probabilities)[::-1][:k]
    return [(EMOTIONS[i], float(probabilities[i])) for i in order]


def contributions(modalities: dict[str, np.ndarray | None], weights: dict[str, float],
                  fused: np.ndarray) -> dict:
    """What each modality said and how much of the fused top class it supplied.

    For a weighted average the fused probability of class c is proportional to sum_m w_m p_m(c)
    over the modalities present, so each term over that sum is that modality's exact share of the
    decision. (Dividing by the renormalised fused probability instead would let the shares miss 1
    by however far the dequantised int8 outputs miss summing to 1.)
    """
    present = {name: p for name, p in modalities.items() if p is not None}
    winner = int(np.argmax(fused))
    terms = {name: weights[name] * float(probs[winner]) for name, probs in present.items()}
    whole = sum(terms.values())
    parts = {}
    for name, probs in present.items():
        own = int(np.argmax(probs))
        parts[name] = {"emotion": EMOTIONS[own], "p": round(float(probs[own]), 4),
                       "share": round(terms[name] / whole if whole > 0 else 1.0 / len(present), 4)}
    summary = ", ".join(f"{name}: {part['emotion']} {part['p']:.2f}" for name, part in parts.items())
    return {"emotion": EMOTIONS[winner], "margin": round(margin(fused), 4), "modalities": parts, "summary": summary}


def explain_frame(recognizer, rgb: np.ndarray) -> np.ndarray:
    """The frame with every face's occlusion map for its predicted class laid over it.

    ``recognizer`` is an :class:`affectlite.recognizer.EmotionRecognizer`; the maps are made on
    the same aligned crops and the same model that produced the results.
    """
    heat = np.zeros(rgb.shape[:2], np.float32)
    mask = np.zeros(rgb.shape[:2], np.float32)
    classify = recognizer.classifier.classify
    for face, crop in recognizer.face_crops(rgb):
        target = int(np.argmax(classify(crop)))
        placed, inside = heat_on_frame(rgb.shape, face, occlusion_map(classify, crop, target),
                                       recognizer.options.align)
        heat, mask = np.maximum(heat, placed), np.maximum(mask, inside)
    return overlay(rgb, heat, mask=mask)
