"""Loading and checking face-expression data sets (``.npz`` as in ``../shared/data/faces``).

A file is checked once, here, so that training, calibration and evaluation all fail with the
same message naming the file and what is wrong with it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from affectlite.labels import EMOTIONS


class DataError(ValueError):
    """A data file that cannot be used as given; the message says which file and why."""


@dataclass(frozen=True)
class FaceSet:
    """Images (N, H, W) or (N, H, W, C) uint8 and labels (N,) indexing :data:`EMOTIONS`;
    ``votes``: the FER+ crowd votes row-aligned with them, when attached
    (:class:`affectlite_convert.data.ferplus.Votes`)."""

    x: np.ndarray
    y: np.ndarray
    source: str
    votes: Any = None

    def __len__(self) -> int:
        return len(self.y)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.y, minlength=len(EMOTIONS))

    def subset(self, keep: np.ndarray) -> "FaceSet":
        votes = None if self.votes is None else self.votes.subset(keep)
        return replace(self, x=self.x[keep], y=self.y[keep], votes=votes)


def load_face_npz(path: str | Path) -> FaceSet:
    """Read an ``.npz`` with ``x`` (uint8 images), ``y`` (int labels) and ``classes``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such data file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"x", "y"} - set(archive.files)
            if missing:
                raise DataError(
                    f"{path}: missing array(s) {sorted(missing)}; expected 'x' (N,H,W[,C] uint8), "
                    f"'y' (N,) labels and 'classes'"
                )
            x, y = archive["x"], archive["y"]
            classes = [str(c) for c in archive["classes"]] if "classes" in archive.files else None
    except (OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: not a readable .npz file ({exc})") from exc
    if classes is not None and tuple(classes) != EMOTIONS:
        raise DataError(
            f"{path}: classes {classes} differ from affectlite's order {list(EMOTIONS)}; "
            "re-index the labels into that order first"
        )
    if x.dtype != np.uint8 or x.ndim not in (3, 4):
        raise DataError(f"{path}: 'x' must be uint8 of shape (N,H,W) or (N,H,W,C), got {x.dtype} {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{path}: 'y' must have shape ({len(x)},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and (y.min() < 0 or y.max() >= len(EMOTIONS))):
        raise DataError(f"{path}: labels must be integers in [0, {len(EMOTIONS) - 1}]")
    return FaceSet(x, y.astype(np.int64), str(path))


def _digests(x: np.ndarray) -> np.ndarray:
    return np.array([hashlib.blake2b(img.tobytes(), digest_size=12).hexdigest() for img in x])


def clean_training_set(train: FaceSet, held_out: FaceSet | None = None) -> tuple[FaceSet, dict[str, int]]:
    """Drop near-blank images, duplicates whose copies disagree on the label, and any image that
    also appears in the held-out set (FER2013 PublicTest shares 270 images with train), so that
    the reported figures are not inflated by training on test images."""
    digests = _digests(train.x)
    keep = train.x.reshape(len(train), -1).std(axis=1) >= 3.0
    blank = int((~keep).sum())
    labels_by_digest: dict[str, set[int]] = {}
    for d, label in zip(digests, train.y):
        labels_by_digest.setdefault(d, set()).add(int(label))
    conflicting = np.array([len(labels_by_digest[d]) > 1 for d in digests])
    keep &= ~conflicting
    leaked = np.zeros(len(train), bool)
    if held_out is not None:
        leaked = np.isin(digests, _digests(held_out.x))
        keep &= ~leaked
    report = {
        "near_blank": blank,
        "conflicting_duplicates": int(conflicting.sum()),
        "also_in_validation": int(leaked.sum()),
        "kept": int(keep.sum()),
    }
    return train.subset(keep), report


#: Parts of a face set without subject ids, split by image content (see :func:`holdout_part`):
#: the share of images in each held-out part. The rest is for training.
HOLDOUT_PARTS = {"report": (0.0, 0.10), "choose": (0.10, 0.16)}


def holdout_part(faces: FaceSet, part: str) -> FaceSet:
    """One part of a set split by image, for a set with no subject ids: ``report`` (10 %, the
    figures a card quotes), ``choose`` (6 %, what a recipe may pick settings on) or ``train`` (the
    rest). Each image's part follows from a hash of its pixels, so the split is the same in every
    run, on every machine and in any row order, and a copy of an image lands in the same part."""
    if part != "train" and part not in HOLDOUT_PARTS:
        raise ValueError(f"part must be 'train' or one of {sorted(HOLDOUT_PARTS)}, got {part!r}")
    position = np.array([int(d[:16], 16) / 16 ** 16 for d in _digests(faces.x)])
    if part == "train":
        keep = np.ones(len(faces), bool)
        for low, high in HOLDOUT_PARTS.values():
            keep &= ~((position >= low) & (position < high))
    else:
        low, high = HOLDOUT_PARTS[part]
        keep = (position >= low) & (position < high)
    return faces.subset(keep)
