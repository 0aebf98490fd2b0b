"""FER+ crowd labels: ten raters' votes for every FER2013 image (Barsoum et al. 2016, MIT licence).

FER2013's single labels agree with the raters' majority on only about 63 % of the images, so a
model that learns them learns the labellers' mistakes and its probabilities mean little. The
votes give two things instead: a *majority* label (the standard FER+ accuracy protocol) and a
*vote distribution* (the probability targets, and what calibration is measured against).

How the votes beyond the seven labels are handled, in one place:
- ``contempt`` is not one of affectlite's labels: its votes are dropped and the rest renormalised;
  an image whose majority is contempt is left out (its remaining votes are a minority opinion).
- ``unknown`` and ``NF`` (not a face) say the image is ambiguous or no face: an image whose
  majority is one of them is left out, as in the FER+ protocol; otherwise those votes are dropped.
- A row of -1 (no FER+ image matched that FER2013 row) is left out.
Ties in the majority go to the first label in FER+'s order (neutral first), as ``argmax`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectlite.labels import EMOTIONS
from affectlite_convert.data.faces import DataError

#: The column order of ``ferplus_votes.npz``.
VOTE_CLASSES: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
#: For each of affectlite's labels (EMOTIONS order), its vote column.
_COLUMN_OF = {"angry": 4, "disgust": 5, "fear": 6, "happy": 1, "neutral": 0, "sad": 3, "surprise": 2}
VOTE_COLUMNS: tuple[int, ...] = tuple(_COLUMN_OF[name] for name in EMOTIONS)

#: The splits of ``ferplus_votes.npz`` and the FER2013 file each belongs to.
SPLIT_OF_FILE = {"fer2013_train": "train", "fer2013_publictest": "publictest"}

FERPLUS_INFO = {
    "name": "FER+ crowd labels (Barsoum et al. 2016, microsoft/FERPlus fer2013new.csv)",
    "licence": "MIT (the labels); the images are FER2013's",
}


@dataclass(frozen=True)
class Votes:
    """Vote counts (N, 10) int in :data:`VOTE_CLASSES` order; a row of -1 has no votes."""

    counts: np.ndarray

    def __len__(self) -> int:
        return len(self.counts)

    @property
    def usable(self) -> np.ndarray:
        """Rows with votes whose majority is one of the seven labels (see the module docstring)."""
        counts = self.counts
        has_votes = (counts >= 0).all(axis=1) & (counts.sum(axis=1) > 0)
        majority = np.argmax(np.where(has_votes[:, None], counts, 0), axis=1)
        return has_votes & np.isin(majority, VOTE_COLUMNS)

    def majority(self) -> np.ndarray:
        """Majority label per row as an index into EMOTIONS; -1 where the row is not usable."""
        labels = np.argmax(self.counts[:, VOTE_COLUMNS], axis=1)
        return np.where(self.usable, labels, -1)

    def distribution(self) -> np.ndarray:
        """Votes over the seven labels, normalised per row (float32, EMOTIONS order); rows that
        are not usable are all zero."""
        counts = np.clip(self.counts[:, VOTE_COLUMNS], 0, None).astype(np.float32)
        total = counts.sum(axis=1, keepdims=True)
        dist = np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
        return np.where(self.usable[:, None], dist, 0.0).astype(np.float32)

    def subset(self, keep: np.ndarray) -> "Votes":
        return Votes(self.counts[keep])


def load_votes(path: str | Path, split: str, expected_rows: int | None = None) -> Votes:
    """Read one split (``train`` or ``publictest``) of ``ferplus_votes.npz``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such votes file (expected ferplus_votes.npz from ../shared/data/faces)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if split not in archive.files:
                raise DataError(f"{path}: no split {split!r}; it holds {sorted(archive.files)}")
            counts = archive[split]
            classes = tuple(str(c) for c in archive["vote_classes"]) if "vote_classes" in archive.files else None
    except (OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: not a readable .npz file ({exc})") from exc
    if classes is not None and classes != VOTE_CLASSES:
        raise DataError(f"{path}: vote classes {list(classes)} differ from FER+'s {list(VOTE_CLASSES)}")
    if counts.ndim != 2 or counts.shape[1] != len(VOTE_CLASSES) or not np.issubdtype(counts.dtype, np.integer):
        raise DataError(f"{path}: {split!r} must be integer votes of shape (N, {len(VOTE_CLASSES)}), "
                        f"got {counts.dtype} {counts.shape}")
    if expected_rows is not None and len(counts) != expected_rows:
        raise DataError(f"{path}: {split!r} has {len(counts)} rows but the images have {expected_rows}; "
                        "the votes must be row-aligned with the FER2013 file")
    return Votes(counts.astype(np.int64))


def votes_for(images_path: str | Path, votes_path: str | Path, rows: int) -> Votes:
    """The votes that belong to a FER2013 file, chosen by its name (``fer2013_train.npz`` ->
    ``train``, ``fer2013_publictest.npz`` -> ``publictest``)."""
    stem = Path(images_path).stem
    if stem not in SPLIT_OF_FILE:
        raise DataError(f"{images_path}: FER+ votes exist for {sorted(f + '.npz' for f in SPLIT_OF_FILE)} only")
    return load_votes(votes_path, SPLIT_OF_FILE[stem], expected_rows=rows)
