"""Audio-visual training sequences built from the two unimodal sets, paired by label.

There is no audio-visual corpus to train on, so a sequence of emotion ``c`` joins one FER2013
face of label ``c`` (its per-frame probabilities jittered step by step, as a face's frames
differ) with the speech windows of one RAVDESS clip of label ``c``. Faces and voices come from
disjoint sets for training and evaluation (FER2013 Training vs PublicTest; RAVDESS actors 1-16
vs 17-20). Modality dropout removes the face or the voice from whole sequences and from
stretches within them, so the model learns to work with either alone.

A step is 16 numbers: face probabilities (7), face present (1), voice probabilities (7), voice
present (1). Steps are 0.25 s apart; a voice window (2 s, every 0.5 s) covers two steps. A
window less sure than ``[audio] min_confidence`` is no voice, as on the device, where an unsure
voice never reaches the fusion.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectlite.classifiers.speech import DEFAULT_MIN_CONFIDENCE
from affectlite.fusion.late import Reliability
from affectlite.fusion.sequence import STEP_FEATURES, STEP_SECONDS  # one definition for training and device
from affectlite.labels import EMOTIONS
from affectlite_convert.data.faces import DataError


@dataclass(frozen=True)
class PairingOptions:
    steps: int = 8                    # 2 s at 4 steps a second
    face_missing: float = 0.2         # whole sequence without a face
    voice_missing: float = 0.3        # whole sequence without speech
    gap_probability: float = 0.3      # a stretch within the sequence loses one modality
    face_jitter: float = 0.3          # log-space noise between steps of the same face
    #: Log-space noise on the voice windows. The fusion trains on few speakers' clips (those the
    #: speech model never saw), and without noise it learns each clip's exact output rather than
    #: how far to trust the voice.
    voice_jitter: float = 1.0
    #: The device's ``[audio] min_confidence``: a less sure voice window is no voice.
    voice_min_confidence: float = DEFAULT_MIN_CONFIDENCE
    #: The share of sequences labelled neutral (the rest split evenly; None: all classes alike).
    #: With every class alike, a model learns that a face that looks neutral is often sad or
    #: afraid (the face model calls many of those neutral), and then reads neutral people as
    #: emotional: the complaint users have in the wild, where most faces are neutral.
    neutral_share: float | None = None

    def __post_init__(self):
        if self.neutral_share is not None and not 0.0 < self.neutral_share < 1.0:
            raise ValueError(f"neutral share must be between 0 and 1, got {self.neutral_share}")


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def make_sequences(face_probs: np.ndarray, face_labels: np.ndarray, voice_clips: list[np.ndarray],
                   voice_labels: np.ndarray, count: int, options: PairingOptions = PairingOptions(),
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` sequences (count, steps, 16) and their labels, classes drawn uniformly (or with
    ``options.neutral_share`` neutral)."""
    rng = np.random.default_rng(seed)
    classes = np.intersect1d(np.unique(face_labels), np.unique(voice_labels))
    by_face = {c: np.flatnonzero(face_labels == c) for c in classes}
    by_voice = {c: np.flatnonzero(voice_labels == c) for c in classes}
    x = np.zeros((count, options.steps, STEP_FEATURES), np.float32)
    shares = np.full(len(classes), 1.0 / len(classes))
    neutral = EMOTIONS.index("neutral")
    if options.neutral_share is not None and neutral in classes and len(classes) > 1:
        shares = np.where(classes == neutral, options.neutral_share, (1 - options.neutral_share) / (len(classes) - 1))
    y = rng.choice(classes, count, p=shares)
    steps = np.arange(options.steps)
    for i, label in enumerate(y):
        face = face_probs[rng.choice(by_face[label])]
        logits = np.log(np.maximum(face, 1e-6)) + rng.normal(0, options.face_jitter, (options.steps, 7))
        clip = voice_clips[rng.choice(by_voice[label])]
        start = rng.integers(0, max(1, len(clip) - options.steps // 2 + 1))
        windows = np.minimum(start + (steps * STEP_SECONDS / 0.5).astype(int), len(clip) - 1)
        voice = clip[windows]
        face_on = np.full(options.steps, rng.random() >= options.face_missing)
        voice_on = np.full(options.steps, rng.random() >= options.voice_missing)
        voice_on &= voice.max(axis=1) >= options.voice_min_confidence
        if rng.random() < options.gap_probability:
            a, b = sorted(rng.integers(0, options.steps + 1, 2))
            (face_on if rng.random() < 0.5 else voice_on)[a:b] = False
        x[i, :, 0:7] = _softmax(logits) * face_on[:, None]
        x[i, :, 7] = face_on
        if options.voice_jitter:
            voice = _softmax(np.log(np.maximum(voice, 1e-6)) + rng.normal(0, options.voice_jitter, voice.shape))
        x[i, :, 8:15] = voice * voice_on[:, None]
        x[i, :, 15] = voice_on
    return x, y


def remove_modality(x: np.ndarray, modality: str) -> np.ndarray:
    """The same sequences with the face or the voice taken out everywhere."""
    out = x.copy()
    part = slice(0, 8) if modality == "face" else slice(8, 16)
    out[:, :, part] = 0.0
    return out


def save_sequences(path: str | Path, x: np.ndarray, y: np.ndarray, reliability: Reliability = Reliability()) -> Path:
    """Held-out pairs as a file, so that a converted fusion model is measured on the very
    sequences its float original was reported on (``affectlite-convert evaluate``), against the
    weighted average with the reliabilities of the models that made them."""
    path = Path(path)
    np.savez(path, x=np.asarray(x, np.float32), y=np.asarray(y, np.int64), classes=np.array(EMOTIONS),
             reliability=np.array([reliability.face, reliability.voice]))
    return path


def _arrays(path: str | Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in ("x", "y", "reliability") if name in archive.files}
    except (OSError, ValueError):
        return {}


def _holds_steps(arrays: dict[str, np.ndarray]) -> bool:
    x = arrays.get("x")
    return x is not None and x.ndim == 3 and x.shape[2] == STEP_FEATURES and np.issubdtype(x.dtype, np.floating)


def is_sequence_file(path: str | Path) -> bool:
    """An ``.npz`` whose ``x`` holds float steps (N, steps, 16) rather than uint8 images."""
    return _holds_steps(_arrays(path))


def load_sequences(path: str | Path) -> tuple[np.ndarray, np.ndarray, Reliability]:
    arrays = _arrays(path)
    if not _holds_steps(arrays):
        raise DataError(f"{path}: not a sequence file; expected 'x' float (N, steps, {STEP_FEATURES}) and 'y' "
                        "as `affectlite-convert train fusion` writes them (held_out.npz)")
    x, y = arrays["x"], arrays.get("y")
    if y is None or y.shape != (len(x),) or (len(y) and (y.min() < 0 or y.max() >= len(EMOTIONS))):
        raise DataError(f"{path}: 'y' must hold {len(x)} labels in [0, {len(EMOTIONS) - 1}]")
    weights = arrays.get("reliability")
    reliability = Reliability(*map(float, weights)) if weights is not None else Reliability()
    return x.astype(np.float32), y.astype(np.int64), reliability
